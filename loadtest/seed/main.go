// Command seed signs users in to running replicas of the example app and
// stores a key for each through its HTTP API, for scripts/load.sh. It
// writes each user's Cookie header, one line per user, for wrk.
//
//	seed -replicas http://127.0.0.1:8081,http://127.0.0.1:8082 -users 200 -out cookies.txt
//
// Each user signs in (POST /login) and stores a freshly generated,
// well-formed key (POST /keys/{provider}, JSON) on one replica, then opens
// the guarded demo (GET /demo/{provider}, JSON) on every replica, which must
// answer 200 with the key's mask; that also leaves the user's session cache
// filled. The keys are random and never printed: they exist only to be
// stored, sealed, and served back masked.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/ginbyok/byok/encrypt"
)

// config is the command line.
type config struct {
	replicas    []string
	users       int
	provider    string
	prefix      string // the key's prefix, e.g. "sk-proj-" for openai
	userPrefix  string
	out         string
	concurrency int
	timeout     time.Duration
}

func main() {
	var cfg config
	var replicas string
	flag.StringVar(&replicas, "replicas", "", "comma-separated base URLs of the example app's replicas (loopback)")
	flag.IntVar(&cfg.users, "users", 100, "how many users to sign in and give a key")
	flag.StringVar(&cfg.provider, "provider", "openai", "the provider to store a key for")
	flag.StringVar(&cfg.prefix, "key-prefix", "sk-proj-", "what each generated key starts with (the provider's prefix)")
	flag.StringVar(&cfg.userPrefix, "user-prefix", "load-", "user names are this and a number")
	flag.StringVar(&cfg.out, "out", "cookies.txt", "file to write the Cookie headers to, one line per user")
	flag.IntVar(&cfg.concurrency, "concurrency", 8, "users seeded at once")
	flag.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	for r := range strings.SplitSeq(replicas, ",") {
		if r = strings.TrimSpace(r); r != "" {
			cfg.replicas = append(cfg.replicas, strings.TrimSuffix(r, "/"))
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// run seeds cfg.users users and writes their cookies to cfg.out.
func run(ctx context.Context, cfg config) error {
	if len(cfg.replicas) == 0 {
		return errors.New("no -replicas")
	}
	if cfg.users < 1 || cfg.concurrency < 1 {
		return errors.New("-users and -concurrency must be at least 1")
	}
	lines := make([]string, cfg.users)
	errs := make([]error, cfg.users)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.concurrency, cfg.users) {
		wg.Go(func() {
			for i := range next {
				lines[i], errs[i] = seedUser(ctx, cfg, i)
			}
		})
	}
	for i := range cfg.users {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.WriteFile(cfg.out, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "seed: %d users with a %s key on %d replicas; cookies in %s\n",
		cfg.users, cfg.provider, len(cfg.replicas), cfg.out)
	return nil
}

// seedUser signs user i in, stores a key and checks the guarded demo on
// every replica. It returns the user's Cookie header.
func seedUser(ctx context.Context, cfg config, i int) (string, error) {
	user := fmt.Sprintf("%s%d", cfg.userPrefix, i)
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	home := cfg.replicas[i%len(cfg.replicas)]

	form := url.Values{"user": {user}}.Encode()
	if err := call(ctx, client, http.MethodPost, home+"/login", "application/x-www-form-urlencoded", form, http.StatusSeeOther, nil); err != nil {
		return "", fmt.Errorf("%s: signing in: %w", user, err)
	}
	key := cfg.prefix + rand.Text() + rand.Text() // 52 random base32 characters
	body, err := json.Marshal(map[string]string{"api_key": key, "ttl": "never"})
	if err != nil {
		return "", err
	}
	if err := call(ctx, client, http.MethodPost, home+"/keys/"+cfg.provider, "application/json", string(body), http.StatusCreated, nil); err != nil {
		return "", fmt.Errorf("%s: storing the key: %w", user, err)
	}
	for _, r := range cfg.replicas {
		var got struct {
			Masked string `json:"masked"`
		}
		if err := call(ctx, client, http.MethodGet, r+"/demo/"+cfg.provider, "", "", http.StatusOK, &got); err != nil {
			return "", fmt.Errorf("%s: the guarded demo on %s: %w", user, r, err)
		}
		if got.Masked != encrypt.Mask(key) {
			return "", fmt.Errorf("%s: the guarded demo on %s showed another key", user, r)
		}
	}
	u, err := url.Parse(home)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, c := range jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; "), nil
}

// call sends one request asking for JSON and checks the status; with out,
// it decodes the JSON answer into it. Errors name the status, never a body
// (which could hold anything).
func call(ctx context.Context, client *http.Client, method, url, contentType, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s answered %d, want %d", method, req.URL.Path, res.StatusCode, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
		}
	}
	return nil
}
