package app_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/example/app"
	"github.com/ginbyok/byok/internal/testenv"
)

// flow is the walk every storage setup must pass: a guest is turned away
// from a demo, signs in, stores a key through the JSON API, opens the demo
// (masked JSON and a page), signs out, and is turned away again.
func flow(t *testing.T, s *server) {
	t.Helper()
	c := newClient(t, s.URL)

	home := c.get("/")
	if home.status != http.StatusOK || !strings.Contains(home.body, "Sign in") || !strings.Contains(home.body, "Guest session") {
		t.Fatalf("GET / as a guest: %d; want 200 with the sign-in form", home.status)
	}
	c.wantKeyRequired("openai")

	if who := c.getJSON("/whoami"); who.status != http.StatusOK || strings.TrimSpace(who.body) != `{"user":""}` {
		t.Fatalf("GET /whoami as a guest: %d %s", who.status, who.body)
	}
	c.login("alice")
	if who := c.getJSON("/whoami"); who.status != http.StatusOK || strings.TrimSpace(who.body) != `{"user":"alice"}` {
		t.Fatalf("GET /whoami as alice: %d %s", who.status, who.body)
	}
	home = c.get("/")
	if !strings.Contains(home.body, "Signed in as <span class=\"font-semibold\">alice</span>") {
		t.Fatalf("GET / after signing in does not say who is signed in:\n%s", home.body)
	}
	c.wantKeyRequired("openai")

	c.setKey("openai", openaiKey, http.StatusCreated)
	c.setKey("anthropic", anthropicKey, http.StatusCreated)
	c.wantDemo("openai", encrypt.Mask(openaiKey))
	c.wantDemo("anthropic", encrypt.Mask(anthropicKey))
	c.wantKeyRequired("google")

	page := c.get("/demo/openai")
	if page.status != http.StatusOK || !strings.Contains(page.body, encrypt.Mask(openaiKey)) ||
		!strings.Contains(page.body, "OpenAI demo") {
		t.Fatalf("GET /demo/openai as HTML: %d, want the demo page with the mask:\n%s", page.status, page.body)
	}
	home = c.get("/")
	if !strings.Contains(home.body, encrypt.Mask(openaiKey)) || !strings.Contains(home.body, "You have saved 2 of 6.") {
		t.Fatalf("GET / does not show the saved keys:\n%s", home.body)
	}
	noSentinel(t, "the demo page", page.body)
	noSentinel(t, "the home page", home.body)
	noSentinel(t, "the key list", c.getJSON("/keys").body)

	// Replace, then the demo uses the new key.
	const replacement = "sk-proj-REPLACEMENTkey0123456789abcdefghijklmnop"
	c.setKey("openai", replacement, http.StatusOK)
	c.wantDemo("openai", encrypt.Mask(replacement))

	out := c.postForm("/logout", nil)
	if out.status != http.StatusSeeOther || out.header.Get("Location") != "/" {
		t.Fatalf("POST /logout: %d to %q, want 303 to /", out.status, out.header.Get("Location"))
	}
	if home := c.get("/"); !strings.Contains(home.body, "Guest session") {
		t.Fatal("GET / after signing out still shows a user")
	}
	// alice's keys are hers: the guest she left behind has none.
	c.wantKeyRequired("openai")

	// Another browser signing in as alice finds her keys (they are in the
	// database, not in the first browser's session).
	other := newClient(t, s.URL)
	other.login("alice")
	other.wantDemo("anthropic", encrypt.Mask(anthropicKey))
	bob := newClient(t, s.URL)
	bob.login("bob")
	bob.wantKeyRequired("anthropic")

	noSentinel(t, "the log", s.log.String())
}

func TestEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	s := start(t, app.Config{DataDir: dir})
	flow(t, s)
	s.stop()

	// Nothing stored holds a key in plaintext: not the SQLite file (with its
	// WAL), not the secret file's neighbours.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		noSentinel(t, e.Name(), string(b))
	}
	if !strings.Contains(strings.Join(names, " "), app.SQLiteFile) {
		t.Errorf("data dir holds %v, want the SQLite file %s", names, app.SQLiteFile)
	}
	log := s.log.String()
	for _, want := range []string{"source=generated", "SQLite file " + filepath.Join(dir, app.SQLiteFile), "signed, encrypted cookies"} {
		if !strings.Contains(log, want) {
			t.Errorf("start-up log does not say %q:\n%s", want, log)
		}
	}
}

func TestRedisAndPostgres(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	pgURL := testenv.PostgresURL(t)
	prefix := testenv.Prefix(t)
	secret, err := encrypt.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, app.Config{DataDir: t.TempDir(), Secret: secret, RedisURL: redisURL, DatabaseURL: pgURL, RedisPrefix: prefix})
	flow(t, s)

	// Sessions went to Redis under the test's prefix, and no Redis value
	// holds a key.
	rdb := testenv.Redis(t)
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatalf("no Redis keys under %q: sessions are not in Redis", prefix)
	}
	for _, k := range keys {
		if v, err := rdb.Get(ctx, k).Result(); err == nil {
			noSentinel(t, "Redis key "+k, v)
		}
	}
	// PostgreSQL holds the signed-in users' keys, sealed.
	db, err := sqlx.Open("postgres", pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []struct {
		User       string `db:"user_id"`
		Ciphertext []byte `db:"ciphertext"`
	}
	if err := db.Select(&rows, "SELECT user_id, ciphertext FROM byok_keys"); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("byok_keys holds %d rows, want alice's 2", len(rows))
	}
	for _, r := range rows {
		noSentinel(t, "a byok_keys row", string(r.Ciphertext))
	}
	log := s.log.String()
	for _, want := range []string{"source=BYOK_SECRET", "PostgreSQL postgres://", "Redis redis://"} {
		if !strings.Contains(log, want) {
			t.Errorf("start-up log does not say %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, secret) {
		t.Error("the log holds the secret")
	}
}

func TestSecretFileCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, app.SecretFile)

	s1 := start(t, app.Config{DataDir: dir})
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no secret file after the first start: %v", err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret file mode %04o, want 0600", perm)
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encrypt.ParseSecret(string(first)); err != nil {
		t.Fatalf("the generated secret does not parse: %v", err)
	}
	c := newClient(t, s1.URL)
	c.login("carol")
	c.setKey("openai", openaiKey, http.StatusCreated)
	guest := newClient(t, s1.URL)
	guest.setKey("anthropic", anthropicKey, http.StatusCreated)
	s1.stop()

	// A restart reads the same file, so the sign-in cookie, the signed-in
	// user's stored key and the guest's cookie session all still open.
	s2 := start(t, app.Config{DataDir: dir})
	again, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Fatal("the secret file changed on restart")
	}
	if !strings.Contains(s2.log.String(), "source=file") {
		t.Errorf("second start does not say it read the secret file:\n%s", s2.log.String())
	}
	c2 := c.onto(s2.URL)
	if home := c2.get("/"); !strings.Contains(home.body, "Signed in as") {
		t.Fatal("the sign-in did not survive the restart")
	}
	c2.wantDemo("openai", encrypt.Mask(openaiKey))
	guest.onto(s2.URL).wantDemo("anthropic", encrypt.Mask(anthropicKey))
}

func TestSecretFileRotation(t *testing.T) {
	// The old secret moves to BYOK_PREVIOUS_SECRETS and a new one comes in:
	// the stored key and the sign-in still open.
	dir := t.TempDir()
	s1 := start(t, app.Config{DataDir: dir})
	old, err := os.ReadFile(filepath.Join(dir, app.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s1.URL)
	c.login("dave")
	c.setKey("openai", openaiKey, http.StatusCreated)
	s1.stop()

	fresh, err := encrypt.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2 := start(t, app.Config{DataDir: dir, Secret: fresh, PreviousSecrets: []string{strings.TrimSpace(string(old))}})
	c2 := c.onto(s2.URL)
	if home := c2.get("/"); !strings.Contains(home.body, "Signed in as") {
		t.Fatal("the sign-in did not survive the rotation")
	}
	c2.wantDemo("openai", encrypt.Mask(openaiKey))
}

func TestSecretFileReadableByOthersIsRefused(t *testing.T) {
	dir := t.TempDir()
	secret, err := encrypt.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, app.SecretFile)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = app.New(t.Context(), app.Config{DataDir: dir, Logger: discard()})
	if !errors.Is(err, app.ErrConfig) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("New with a 0644 secret file: %v, want ErrConfig telling to chmod 600", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatal("the error holds the secret")
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	good, err := encrypt.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  app.Config
		want error
	}{
		{"short secret", app.Config{Secret: "c2hvcnQ="}, encrypt.ErrShortSecret},
		{"not a secret", app.Config{Secret: "not base64 at all!"}, app.ErrConfig},
		{"bad previous secret", app.Config{Secret: good, PreviousSecrets: []string{"c2hvcnQ="}}, encrypt.ErrShortSecret},
		{"mysql database", app.Config{Secret: good, DatabaseURL: "mysql://localhost/db"}, app.ErrConfig},
		{"bad redis url", app.Config{Secret: good, RedisURL: "http://localhost:6379"}, app.ErrConfig},
		{"redis not listening", app.Config{Secret: good, RedisURL: "redis://127.0.0.1:1/0"}, nil},
		{"postgres not listening", app.Config{Secret: good, DatabaseURL: "postgres://u:pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DataDir = t.TempDir()
			tt.cfg.Logger = discard()
			h, release, err := app.New(t.Context(), tt.cfg)
			if err == nil {
				release()
				t.Fatalf("New succeeded (%T), want an error", h)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want an error wrapping %v", err, tt.want)
			}
			if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), "pw@") {
				t.Fatalf("the error %q holds a secret", err)
			}
			// Nothing was generated for a start that failed on its settings.
			if tt.cfg.Secret != "" {
				if _, err := os.Stat(filepath.Join(tt.cfg.DataDir, app.SecretFile)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a secret file was written although BYOK_SECRET was set")
				}
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want app.Config
	}{
		{"defaults", nil, app.Config{Addr: app.DefaultAddr, DataDir: app.DefaultDataDir}},
		{"everything", map[string]string{
			"ADDR": "0.0.0.0:9000", "BYOK_DATA_DIR": "/var/lib/byok", "BYOK_SECRET": " s3cret ",
			"BYOK_PREVIOUS_SECRETS": "a, b,,c ", "REDIS_URL": "redis://r:6379/0", "DATABASE_URL": "postgres://db/x",
		}, app.Config{Addr: "0.0.0.0:9000", DataDir: "/var/lib/byok", Secret: "s3cret",
			PreviousSecrets: []string{"a", "b", "c"}, RedisURL: "redis://r:6379/0", DatabaseURL: "postgres://db/x"}},
		{"blank values are unset", map[string]string{"ADDR": " ", "BYOK_PREVIOUS_SECRETS": " , "},
			app.Config{Addr: app.DefaultAddr, DataDir: app.DefaultDataDir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := app.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if got.Addr != tt.want.Addr || got.DataDir != tt.want.DataDir || got.Secret != tt.want.Secret ||
				got.RedisURL != tt.want.RedisURL || got.DatabaseURL != tt.want.DatabaseURL ||
				strings.Join(got.PreviousSecrets, "|") != strings.Join(tt.want.PreviousSecrets, "|") {
				t.Fatalf("ConfigFromEnv = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPages(t *testing.T) {
	s := start(t, app.Config{DataDir: t.TempDir()})
	c := newClient(t, s.URL)
	c.login("erin")
	c.setKey("openai", openaiKey, http.StatusCreated)

	tests := []struct {
		name, path string
		status     int
		want       []string
	}{
		{"home", "/", http.StatusOK, []string{"Welcome, erin", "Open the demo", `href="/demo/google"`, `href="/keys#byok-card-openai"`}},
		{"demo page", "/demo/openai", http.StatusOK, []string{"The key this page would use", encrypt.Mask(openaiKey), "expires in 1 day", `byok.Key(c, "openai")`}},
		{"keys page", "/keys", http.StatusOK, []string{"Signed in as", encrypt.Mask(openaiKey)}},
		{"unknown demo", "/demo/nope", http.StatusNotFound, []string{"Page not found"}},
		{"unknown page", "/nope", http.StatusNotFound, []string{"Page not found"}},
		{"favicon", "/favicon.ico", http.StatusOK, []string{"<svg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.get(tt.path)
			if r.status != tt.status {
				t.Fatalf("GET %s: %d, want %d", tt.path, r.status, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("GET %s does not say %q", tt.path, w)
				}
			}
			csp := r.header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("GET %s: CSP %q lacks %q", tt.path, csp, d)
				}
			}
			if strings.Contains(r.body, "<script>") || strings.Contains(r.body, " style=") || strings.Contains(r.body, " onclick=") {
				t.Errorf("GET %s has inline script or style", tt.path)
			}
			noSentinel(t, "GET "+tt.path, r.body)
		})
	}
}

func TestGuardSendsBrowserToTheFormAndBack(t *testing.T) {
	s := start(t, app.Config{DataDir: t.TempDir()})
	c := newClient(t, s.URL)
	r := c.get("/demo/openai")
	if r.status != http.StatusSeeOther {
		t.Fatalf("GET /demo/openai without a key: %d, want 303", r.status)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || loc.Path != "/keys" || loc.Query().Get("need") != "openai" || loc.Query().Get("next") != "/demo/openai" {
		t.Fatalf("redirected to %q, want /keys?need=openai&next=/demo/openai", r.header.Get("Location"))
	}
	form := c.get(loc.String())
	if !strings.Contains(form.body, `name="next" value="/demo/openai"`) {
		t.Fatalf("the key form does not carry next:\n%s", form.body)
	}
	saved := c.postForm("/keys/openai", url.Values{"api_key": {openaiKey}, "ttl": {"24h"}, "next": {"/demo/openai"}})
	if saved.status != http.StatusSeeOther || saved.header.Get("Location") != "/demo/openai" {
		t.Fatalf("form post: %d to %q, want 303 to /demo/openai", saved.status, saved.header.Get("Location"))
	}
	if page := c.get("/demo/openai"); page.status != http.StatusOK || !strings.Contains(page.body, encrypt.Mask(openaiKey)) {
		t.Fatalf("back at /demo/openai: %d, want the demo page with the mask", page.status)
	}
}

func TestLogin(t *testing.T) {
	s := start(t, app.Config{DataDir: t.TempDir()})
	tests := []struct {
		name   string
		user   string
		header map[string]string
		status int
		want   string
	}{
		{"plain name", "frank", nil, http.StatusSeeOther, ""},
		{"email-like", "grace.h@example.com", nil, http.StatusSeeOther, ""},
		{"empty", "", nil, http.StatusUnprocessableEntity, "That name cannot be used"},
		{"spaces", "a b", nil, http.StatusUnprocessableEntity, "That name cannot be used"},
		{"markup", "<script>", nil, http.StatusUnprocessableEntity, "&lt;script&gt;"},
		{"too long", strings.Repeat("x", 65), nil, http.StatusUnprocessableEntity, "That name cannot be used"},
		{"cross-site form", "mallory", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "Cross-origin request refused"},
		{"other origin", "mallory", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden, "Cross-origin request refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, s.URL)
			req, err := http.NewRequest(http.MethodPost, s.URL+"/login", strings.NewReader(url.Values{"user": {tt.user}}.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			res, err := c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("POST /login %q: %d, want %d", tt.user, res.StatusCode, tt.status)
			}
			if tt.want != "" && !strings.Contains(body.String(), tt.want) {
				t.Errorf("POST /login %q does not say %q", tt.user, tt.want)
			}
			signedIn := strings.Contains(c.get("/").body, "Signed in as")
			if signedIn != (tt.status == http.StatusSeeOther) {
				t.Errorf("signed in = %v after a %d", signedIn, res.StatusCode)
			}
		})
	}
}
