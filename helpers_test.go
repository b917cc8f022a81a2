package byok_test

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginbyok/byok/internal/testenv"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok"
)

func init() { gin.SetMode(gin.TestMode) }

// Two fixed, random-looking master secrets for tests (32 bytes, base64).
const (
	secretA = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="
	secretB = "3q2+7wAREiIzRFVmd4iZqrvM3e7/ABEiM0RVZneImao="
)

// Well-formed keys.
const (
	openAIKey  = "sk-test-0123456789abcdefghijklmnop"
	openAIKey2 = "sk-test-ZYXWVUTSRQPONMLKJIHGFEDCBA9876"
	anthroKey  = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz"
)

// syncBuffer captures a logger's output (shared helper in testenv).
type syncBuffer = testenv.SyncBuffer

// app is a Gin engine with the plugin mounted, a browser-like cookie jar,
// and everything the plugin logged and audited.
type app struct {
	t      testing.TB
	engine *gin.Engine
	p      *byok.Plugin
	logs   *syncBuffer
	jar    http.CookieJar
	*shared
}

// shared is what every browser of one app shares.
type shared struct {
	mu     sync.Mutex
	user   string // what WithUser returns, changeable between requests
	events []byok.AuditEvent
	// seen collects every response header and body, for the sentinel test.
	seen []string
}

// appOptions are what every test app gets before the test's own options.
func (a *app) baseOptions() []byok.Option {
	return []byok.Option{
		byok.WithSecret(secretA),
		byok.WithLogger(slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		byok.WithAudit(func(_ context.Context, e byok.AuditEvent) {
			a.mu.Lock()
			a.events = append(a.events, e)
			a.mu.Unlock()
		}),
		byok.WithUser(func(c *gin.Context) string { return c.GetString("user") }),
		byok.WithProviders(byok.OpenAI, byok.Anthropic),
		byok.WithRateLimit(0, 0),
	}
}

// newApp registers the plugin on a fresh engine. setup, if given, runs on
// the engine before Register (to install host middleware).
func newApp(t testing.TB, opts ...byok.Option) *app {
	t.Helper()
	return newAppWith(t, nil, opts...)
}

func newAppWith(t testing.TB, setup func(r *gin.Engine) gin.IRouter, opts ...byok.Option) *app {
	t.Helper()
	a := &app{t: t, engine: gin.New(), logs: &syncBuffer{}, shared: &shared{}}
	a.jar, _ = cookiejar.New(nil)
	a.engine.Use(func(c *gin.Context) {
		a.mu.Lock()
		u := a.user
		a.mu.Unlock()
		if u != "" {
			c.Set("user", u)
		}
		c.Next()
	})
	var router gin.IRouter = a.engine
	if setup != nil {
		router = setup(a.engine)
	}
	p, err := byok.Register(router, append(a.baseOptions(), opts...)...)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	a.p = p
	return a
}

func (a *app) setUser(u string) {
	a.mu.Lock()
	a.user = u
	a.mu.Unlock()
}

func (a *app) auditActions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, len(a.events))
	for i, e := range a.events {
		out[i] = e.Action
	}
	return out
}

var base, _ = url.Parse("http://app.test/")

// do sends r through the engine with the jar's cookies and keeps the
// response's cookies.
func (a *app) do(r *http.Request) *httptest.ResponseRecorder {
	a.t.Helper()
	if r.Host == "" || r.Host == "example.com" {
		r.Host = "app.test"
	}
	for _, c := range a.jar.Cookies(base) {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.engine.ServeHTTP(w, r)
	res := w.Result()
	a.jar.SetCookies(base, res.Cookies())
	var hdr strings.Builder
	_ = w.Header().Write(&hdr)
	a.mu.Lock()
	a.seen = append(a.seen, hdr.String(), w.Body.String())
	a.mu.Unlock()
	return w
}

// Kinds of client.
const (
	kJSON = "json"
	kHTMX = "htmx"
	kHTML = "html"
)

var kinds = []string{kJSON, kHTMX, kHTML}

// req builds a request of a kind of client. body is a url.Values (a form),
// any other non-nil value is sent as JSON.
func req(kind, method, target string, body any) *http.Request {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	r := httptest.NewRequest(method, target, rd)
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	switch kind {
	case kJSON:
		r.Header.Set("Accept", "application/json")
	case kHTMX:
		r.Header.Set("HX-Request", "true")
		r.Header.Set("Accept", "text/html")
	default:
		r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	return r
}

// keyBody is the body that stores key for a kind of client: JSON for JSON
// clients, a form for the others.
func keyBody(kind, key, ttl string) any {
	if kind == kJSON {
		m := map[string]string{"api_key": key}
		if ttl != "" {
			m["ttl"] = ttl
		}
		return m
	}
	v := url.Values{"api_key": {key}}
	if ttl != "" {
		v.Set("ttl", ttl)
	}
	return v
}

// store saves a key through the JSON API and fails the test if it is not
// accepted.
func (a *app) store(provider, key, ttl string) {
	a.t.Helper()
	w := a.do(req(kJSON, http.MethodPost, "/keys/"+provider, keyBody(kJSON, key, ttl)))
	if w.Code != http.StatusCreated && w.Code != http.StatusOK {
		a.t.Fatalf("storing %s key: %d %s", provider, w.Code, w.Body)
	}
}

// info reads one provider's key info through the JSON API.
func (a *app) info(provider string) map[string]any {
	a.t.Helper()
	w := a.do(req(kJSON, http.MethodGet, "/keys/"+provider, nil))
	if w.Code != http.StatusOK {
		a.t.Fatalf("GET /keys/%s: %d %s", provider, w.Code, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		a.t.Fatalf("GET /keys/%s: %v: %s", provider, err, w.Body)
	}
	return m
}

func (a *app) hasKey(provider string) bool {
	a.t.Helper()
	return a.info(provider)["has_key"] == true
}

// problemCode returns the "code" of a problem+json answer.
func problemCode(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want problem+json; body %s", ct, w.Body)
	}
	var m struct{ Code string }
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("problem: %v", err)
	}
	return m.Code
}

// clock is a settable clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func ginEngine() *gin.Engine { return gin.New() }

// discardLogger logs into the app's buffer (for tests that check no secret
// is ever logged) without a handler level below Info.
func discardLogger(a *app) *slog.Logger { return slog.New(slog.NewTextHandler(a.logs, nil)) }
