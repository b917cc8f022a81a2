package reliability_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/httpx"
	"github.com/ginbyok/byok/internal/testenv"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	// go-redis logs every failed dial to stderr; while a test has Redis
	// down that is thousands of lines. Count them instead.
	redis.SetLogger(redisLog)
	os.Exit(m.Run())
}

// redisLog counts go-redis's own log lines (failed dials while Redis is
// down).
var redisLog = &lineCounter{}

type lineCounter struct{ n atomic.Int64 }

func (l *lineCounter) Printf(context.Context, string, ...any) { l.n.Add(1) }

// Two random master secrets (32 bytes, base64) made for this package.
const (
	secretA = "/WkPzFgg6gBEbSRHLWtolYAH6DsiMNSMF5vCMgcaNc4="
	secretB = "S4YCrkwcMxZE+wVbD/rRosAXTVt+8eVvHoMQz9ZWDQk="
)

// userHeader names the signed-in user in the test stacks. Identity must not
// live only in a Redis session, or a Redis outage would sign everyone out;
// a header set by the client plays the part of the app's own sign-in.
const userHeader = "X-Test-User"

// providers are the providers every test stack offers.
var providers = []string{"openai", "anthropic"}

// soak reports whether BYOK_SOAK asks for the long run (scripts/soak.sh).
func soak() bool {
	v := os.Getenv("BYOK_SOAK")
	return v != "" && v != "0" && v != "false"
}

// runFor is short in the default run; under BYOK_SOAK it is
// BYOK_SOAK_DURATION when set, else long.
func runFor(short, long time.Duration) time.Duration {
	if !soak() {
		return short
	}
	if d, err := time.ParseDuration(os.Getenv("BYOK_SOAK_DURATION")); err == nil && d > 0 {
		return d
	}
	return long
}

// sharedRedis returns a client of the shared test Redis and a prefix of
// this test's own; every key under the prefix is deleted at cleanup (the
// plugin's sessions would otherwise stay for their 30 days).
func sharedRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb, prefix := testenv.Redis(t), testenv.Prefix(t)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for chunk := range slices.Chunk(keys, 500) {
			_ = rdb.Del(ctx, chunk...).Err()
		}
	})
	return rdb, prefix
}

// syncBuffer captures a logger's output (shared helper in testenv).
type syncBuffer = testenv.SyncBuffer

// stack is one replica of a test app: a Gin engine with gin's recovery
// (its output captured), the plugin, a guarded route per provider and a
// health route, served by an httptest server.
type stack struct {
	t      testing.TB
	kit    *byok.Plugin
	srv    *httptest.Server
	h      http.Handler // the engine, for in-process requests (fuzzing)
	logs   *syncBuffer  // everything the plugin logged (Debug and up)
	panics *syncBuffer  // what gin's recovery middleware wrote
	tr     *http.Transport
	health string // the path healthy asks; "" means /healthz
}

// newStack starts a stack with the base options, then opts (later ones
// win), and fails the test if Register fails.
func newStack(t testing.TB, opts ...byok.Option) *stack {
	t.Helper()
	s, err := startStack(t, opts...)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return s
}

// baseOptions: secret A, the two providers, header identity, plain HTTP,
// a debug logger into logs, and no write rate limit.
func baseOptions(logs io.Writer) []byok.Option {
	return []byok.Option{
		byok.WithSecret(secretA),
		byok.WithProviders(byok.OpenAI, byok.Anthropic),
		byok.WithUser(func(c *gin.Context) string { return c.GetString("user") }),
		byok.WithRequireHTTPS(false),
		byok.WithRateLimit(0, 0),
		byok.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
}

// startStack is newStack returning Register's error. At cleanup it checks
// that gin never recovered a panic.
func startStack(t testing.TB, opts ...byok.Option) (*stack, error) {
	t.Helper()
	s := &stack{t: t, logs: &syncBuffer{}, panics: &syncBuffer{}}
	r := gin.New()
	r.Use(gin.RecoveryWithWriter(s.panics))
	r.Use(func(c *gin.Context) {
		if u := c.GetHeader(userHeader); u != "" {
			c.Set("user", u)
		}
		c.Next()
	})
	kit, err := byok.Register(r, append(baseOptions(s.logs), opts...)...)
	if err != nil {
		return nil, err
	}
	s.kit = kit
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	for _, p := range providers {
		r.GET("/use/"+p, kit.RequireKey(p), func(c *gin.Context) {
			// The test route answers a digest of the key, never the key.
			c.JSON(http.StatusOK, gin.H{"provider": p, "sum": sum(byok.Key(c, p))})
		})
	}
	s.h = r
	s.srv = httptest.NewServer(r)
	s.tr = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(func() {
		s.srv.Close()
		s.tr.CloseIdleConnections()
		_ = kit.Close()
		if p := s.panics.String(); p != "" {
			t.Errorf("gin recovered a panic:\n%s", p)
		}
	})
	return s, nil
}

// healthy fails the test unless the server still answers its health route.
func (s *stack) healthy() {
	s.t.Helper()
	path := cmp.Or(s.health, "/healthz")
	r := s.client("").do("GET", path, nil, "Accept", "text/html")
	if r.status != http.StatusOK || (path == "/healthz" && string(r.body) != "ok") {
		s.t.Fatalf("health check after the test: %d %q", r.status, r.body)
	}
}

// client is one browser or device: its own cookie jar, a user it signs in
// as (the header; "" for anonymous), and the replica it talks to.
type client struct {
	s    *stack
	hc   *http.Client
	user string
	rec  *transcript
}

// client returns a new device of user on this stack.
func (s *stack) client(user string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{s: s, user: user, hc: &http.Client{
		Jar: jar, Transport: s.tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// on returns the same device (cookies and user) talking to another replica.
func (c *client) on(s *stack) *client {
	return &client{s: s, user: c.user, rec: c.rec, hc: &http.Client{
		Jar: c.hc.Jar, Transport: s.tr, Timeout: c.hc.Timeout, CheckRedirect: c.hc.CheckRedirect,
	}}
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   []byte
	err    error // transport error; status is 0
}

// do sends a request; header holds name, value pairs. A JSON Accept is the
// default unless the pairs set Accept.
func (c *client) do(method, path string, body io.Reader, header ...string) response {
	req, err := http.NewRequest(method, c.s.srv.URL+path, body)
	if err != nil {
		return response{err: err}
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if c.user != "" {
		req.Header.Set(userHeader, c.user)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, body: b, err: err}
	if c.rec != nil {
		c.rec.add(method+" "+path, r)
	}
	return r
}

// setKey stores key for provider as JSON; ttl "" sends none.
func (c *client) setKey(provider, key, ttl string) response {
	m := map[string]string{"api_key": key}
	if ttl != "" {
		m["ttl"] = ttl
	}
	b, _ := json.Marshal(m)
	return c.do("POST", "/keys/"+provider, bytes.NewReader(b), "Content-Type", "application/json")
}

// deleteKey deletes the provider's key (JSON client).
func (c *client) deleteKey(provider string) response {
	return c.do("DELETE", "/keys/"+provider, nil)
}

// clear deletes all of the user's keys (JSON client).
func (c *client) clear() response { return c.do("DELETE", "/keys", nil) }

// use calls the provider's guarded route and returns the digest of the key
// it was given ("" when the guard refused), with the response.
func (c *client) use(provider string) (string, response) {
	r := c.do("GET", "/use/"+provider, nil)
	if r.status != http.StatusOK {
		return "", r
	}
	var v struct{ Sum string }
	if err := json.Unmarshal(r.body, &v); err != nil || v.Sum == "" {
		r.err = fmt.Errorf("guarded route answered %q", r.body)
		return "", r
	}
	return v.Sum, r
}

// problem is an RFC 9457 answer of the plugin.
type problem struct {
	Type, Title, Detail, Code, Provider string
	Status                              int
}

// problemOf decodes r as application/problem+json; ok is false when r is
// not one.
func problemOf(r response) (problem, bool) {
	var p problem
	if !strings.HasPrefix(r.header.Get("Content-Type"), httpx.ProblemContentType) {
		return p, false
	}
	if err := json.Unmarshal(r.body, &p); err != nil || p.Status != r.status || p.Code == "" ||
		p.Type != httpx.TypeBase+p.Code || p.Title == "" {
		return p, false
	}
	return p, true
}

// isProblem reports whether r is the problem+json answer with this status
// and code.
func isProblem(r response, status int, code string) bool {
	p, ok := problemOf(r)
	return ok && r.status == status && p.Code == code
}

// describe is a short account of r for a failure message.
func (r response) String() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	b := string(r.body)
	if len(b) > 300 {
		b = b[:300] + "…"
	}
	return fmt.Sprintf("%d %s %s", r.status, r.header.Get("Content-Type"), b)
}

// transcript keeps every response header and body a client got, for the
// sentinel search.
type transcript struct {
	mu    sync.Mutex
	parts []string
	n     int
}

func (tr *transcript) add(what string, r response) {
	var sb strings.Builder
	sb.WriteString(what + "\n")
	_ = r.header.Write(&sb)
	sb.Write(r.body)
	if r.err != nil {
		sb.WriteString(r.err.Error())
	}
	tr.mu.Lock()
	tr.parts = append(tr.parts, sb.String())
	tr.n++
	tr.mu.Unlock()
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.parts, "\n")
}

// newKey returns a fresh well-formed key for provider.
func newKey(provider string) string {
	switch provider {
	case "anthropic":
		return "sk-ant-rel-" + randText(40)
	default:
		return "sk-rel-" + randText(40)
	}
}

// randText returns n random letters and digits.
func randText(n int) string {
	const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = abc[int(b[i])%len(abc)]
	}
	return string(b)
}

// sum is the digest the guarded test route answers for a key.
func sum(key string) string {
	if key == "" {
		return ""
	}
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:8])
}

// counter is a set of named counts safe for concurrent use, logged in a
// stable order.
type counter struct {
	mu sync.Mutex
	m  map[string]int
	k  []string
}

func (c *counter) add(name string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	if _, ok := c.m[name]; !ok {
		c.k = append(c.k, name)
	}
	c.m[name] += n
}

func (c *counter) inc(name string) { c.add(name, 1) }

func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.Sorted(slices.Values(c.k))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c.m[k]))
	}
	return strings.Join(parts, " ")
}

// latencies collects request durations by label, for quantiles in the logs.
type latencies struct {
	mu sync.Mutex
	m  map[string][]time.Duration
}

func (l *latencies) add(label string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string][]time.Duration{}
	}
	l.m[label] = append(l.m[label], d)
}

// String gives p50, p99 and max per label.
func (l *latencies) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	labels := slices.Sorted(maps.Keys(l.m))
	parts := make([]string, 0, len(labels))
	for _, k := range labels {
		ds := slices.Clone(l.m[k])
		slices.Sort(ds)
		q := func(f float64) time.Duration { return ds[int(f*float64(len(ds)-1))].Round(time.Millisecond) }
		parts = append(parts, fmt.Sprintf("%s: n=%d p50=%s p99=%s max=%s", k, len(ds), q(0.5), q(0.99), ds[len(ds)-1].Round(time.Millisecond)))
	}
	return strings.Join(parts, "; ")
}
