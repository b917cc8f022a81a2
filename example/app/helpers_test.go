package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/ginbyok/byok/internal/testenv"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/example/app"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// The sentinel keys of these tests: well-formed for their providers, and
// searched for in every response, log line and stored byte.
const (
	openaiKey    = "sk-proj-SENTINELopenai0123456789abcdefghijKLMNOP"
	anthropicKey = "sk-ant-api03-SENTINELanthropic0123456789abcdefghij"
)

// syncBuffer captures a logger's output (shared helper in testenv).
type syncBuffer = testenv.SyncBuffer

// server is the example app on an httptest server, with its log.
type server struct {
	*httptest.Server
	log     *syncBuffer
	release func()
}

// start runs app.New(cfg) on a test server; both stop at cleanup. A nil
// cfg.Logger logs (at Debug) into the server's buffer.
func start(t *testing.T, cfg app.Config) *server {
	t.Helper()
	s := &server{log: &syncBuffer{}}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h, release, err := app.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	s.Server = httptest.NewServer(h)
	s.release = release
	t.Cleanup(func() { s.stop() })
	return s
}

// stop closes the server and releases the app (idempotent).
func (s *server) stop() {
	if s.release == nil {
		return
	}
	s.Close()
	s.release()
	s.release = nil
}

// client is a browser-like client: a cookie jar, and redirects not followed
// so the tests see each 303.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T, base string) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: base, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// onto returns a client of another server that keeps this client's
// cookies (the same browser, after a restart of the app).
func (c *client) onto(base string) *client {
	old, _ := url.Parse(c.base)
	nu, _ := url.Parse(base)
	n := newClient(c.t, base)
	n.http.Jar.SetCookies(nu, c.http.Jar.Cookies(old))
	return n
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
}

// do sends a request; accept and contentType may be "".
func (c *client) do(method, path, contentType, accept string, body io.Reader) response {
	c.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) get(path string) response { return c.do(http.MethodGet, path, "", "text/html", nil) }

func (c *client) getJSON(path string) response {
	return c.do(http.MethodGet, path, "", "application/json", nil)
}

func (c *client) postForm(path string, form url.Values) response {
	return c.do(http.MethodPost, path, "application/x-www-form-urlencoded", "text/html", strings.NewReader(form.Encode()))
}

func (c *client) postJSON(path string, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(http.MethodPost, path, "application/json", "application/json", bytes.NewReader(b))
}

// login signs user in and checks the redirect home.
func (c *client) login(user string) {
	c.t.Helper()
	r := c.postForm("/login", url.Values{"user": {user}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		c.t.Fatalf("POST /login: %d to %q, want 303 to /; body %s", r.status, r.header.Get("Location"), r.body)
	}
}

// setKey stores a key through the JSON API and checks the status.
func (c *client) setKey(provider, key string, want int) {
	c.t.Helper()
	r := c.postJSON("/keys/"+provider, map[string]string{"api_key": key, "ttl": "24h"})
	if r.status != want {
		c.t.Fatalf("POST /keys/%s: %d, want %d; body %s", provider, r.status, want, r.body)
	}
}

// demo is the JSON answer of a demo page.
type demo struct {
	Provider string `json:"provider"`
	Masked   string `json:"masked"`
}

// wantDemo checks that GET /demo/{provider} opens with the key's mask.
func (c *client) wantDemo(provider, masked string) {
	c.t.Helper()
	r := c.getJSON("/demo/" + provider)
	if r.status != http.StatusOK {
		c.t.Fatalf("GET /demo/%s: %d, want 200; body %s", provider, r.status, r.body)
	}
	var d demo
	r.json(c.t, &d)
	if d.Provider != provider || d.Masked != masked {
		c.t.Fatalf("GET /demo/%s: %+v, want provider %q masked %q", provider, d, provider, masked)
	}
}

// wantKeyRequired checks that GET /demo/{provider} is refused with 403
// key_required for a JSON client.
func (c *client) wantKeyRequired(provider string) {
	c.t.Helper()
	r := c.getJSON("/demo/" + provider)
	if r.status != http.StatusForbidden || !strings.Contains(r.body, `"key_required"`) {
		c.t.Fatalf("GET /demo/%s without a key: %d %s, want 403 key_required", provider, r.status, r.body)
	}
}

// noSentinel fails if any sentinel key is in s.
func noSentinel(t *testing.T, what, s string) {
	t.Helper()
	for _, k := range []string{openaiKey, anthropicKey} {
		if strings.Contains(s, k) {
			t.Errorf("%s holds a plaintext key", what)
		}
		// Any 16-character run of a key is too much, too.
		for i := 0; i+16 <= len(k); i += 8 {
			if strings.Contains(s, k[i:i+16]) {
				t.Errorf("%s holds part of a plaintext key (%q)", what, k[i:i+16])
				break
			}
		}
	}
}
