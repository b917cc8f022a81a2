package guards_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/guards"
	"github.com/ginbyok/byok/stores"
)

func init() { gin.SetMode(gin.TestMode) }

// sentinelKey must never appear in a response, header or log line.
const sentinelKey = "sk-SENTINEL-0123456789abcdefghijklmnopqrstuvwxyz"

// memSource is a KeySource over a map, counting loads.
type memSource struct {
	mu    sync.Mutex
	keys  map[string]string
	err   error
	loads map[string]int
}

func newMemSource(keys map[string]string) *memSource {
	return &memSource{keys: keys, loads: map[string]int{}}
}

func (m *memSource) LoadKey(c *gin.Context, provider string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads[provider]++
	if m.err != nil {
		return "", m.err
	}
	k, ok := m.keys[provider]
	if !ok {
		return "", fmt.Errorf("memSource: %s: %w", provider, guards.ErrNoKey)
	}
	return k, nil
}

type client struct {
	name   string
	header map[string]string
}

var (
	jsonClient    = client{"json", map[string]string{"Accept": "application/json"}}
	htmxClient    = client{"htmx", map[string]string{"HX-Request": "true", "HX-Current-URL": "http://example.com/page?tab=2"}}
	browserClient = client{"browser", map[string]string{"Accept": "text/html,*/*;q=0.8"}}
)

func serve(r http.Handler, method, target string, c client, extra ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func noLeak(t *testing.T, w *httptest.ResponseRecorder, logs string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(w.Body.String())
	for k, v := range w.Header() {
		b.WriteString(k + ": " + strings.Join(v, ",") + "\n")
	}
	b.WriteString(logs)
	if strings.Contains(b.String(), sentinelKey) || strings.Contains(b.String(), "SENTINEL") {
		t.Fatalf("the key leaked: %s", b.String())
	}
}

func newRouter(mw ...gin.HandlerFunc) *gin.Engine {
	r := gin.New()
	h := append(mw, func(c *gin.Context) {
		c.String(http.StatusOK, "ok len=%d", len(guards.Key(c, "openai")))
	})
	r.GET("/chat", h...)
	r.POST("/chat", h...)
	return r
}

func TestRequireKeyPresent(t *testing.T) {
	src := newMemSource(map[string]string{"openai": sentinelKey})
	var logs strings.Builder
	opts := guards.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	for _, cl := range []client{jsonClient, htmxClient, browserClient} {
		t.Run(cl.name, func(t *testing.T) {
			r := newRouter(guards.RequireKey(src, opts, "openai"))
			w := serve(r, http.MethodGet, "/chat", cl)
			if w.Code != 200 || w.Body.String() != fmt.Sprintf("ok len=%d", len(sentinelKey)) {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			noLeak(t, w, logs.String())
		})
	}
}

func TestRequireKeyMissing(t *testing.T) {
	src := newMemSource(map[string]string{})
	var denied [][]string
	opts := guards.Options{
		OnDenied:    func(c *gin.Context, ps []string) { denied = append(denied, ps) },
		DisplayName: func(p string) string { return map[string]string{"openai": "OpenAI"}[p] },
	}
	r := newRouter(guards.RequireKey(src, opts, "openai"))

	t.Run("json", func(t *testing.T) {
		w := serve(r, http.MethodGet, "/chat?x=1", jsonClient)
		if w.Code != http.StatusForbidden || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%d %v", w.Code, w.Header())
		}
		var p struct {
			Code, Provider, Detail string
			FormURL                string `json:"form_url"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Code != "key_required" || p.Provider != "openai" || p.FormURL != "/keys?need=openai&next=%2Fchat%3Fx%3D1" || !strings.Contains(p.Detail, "OpenAI") {
			t.Fatalf("problem %+v", p)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("no Cache-Control: no-store")
		}
	})
	t.Run("htmx", func(t *testing.T) {
		w := serve(r, http.MethodPost, "/chat", htmxClient)
		if w.Code != http.StatusNoContent || w.Header().Get("HX-Redirect") != "/keys?need=openai&next=%2Fpage%3Ftab%3D2" {
			t.Fatalf("%d %v", w.Code, w.Header())
		}
	})
	t.Run("browser", func(t *testing.T) {
		w := serve(r, http.MethodGet, "/chat?q=a%20b", browserClient)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/keys?need=openai&next=%2Fchat%3Fq%3Da%2520b" {
			t.Fatalf("%d %v", w.Code, w.Header())
		}
	})
	t.Run("browser form post comes back to the referring page", func(t *testing.T) {
		w := serve(r, http.MethodPost, "/chat", browserClient, "Referer", "http://example.com/compose?draft=1")
		if w.Header().Get("Location") != "/keys?need=openai&next=%2Fcompose%3Fdraft%3D1" {
			t.Fatalf("%v", w.Header())
		}
		w = serve(r, http.MethodPost, "/chat", browserClient, "Referer", "https://evil.example/x")
		if w.Header().Get("Location") != "/keys?need=openai" {
			t.Fatalf("foreign referer kept: %v", w.Header())
		}
	})
	t.Run("htmx on a foreign page", func(t *testing.T) {
		w := serve(r, http.MethodPost, "/chat", client{"h", map[string]string{"HX-Request": "true", "HX-Current-URL": "https://evil.example//x"}})
		if w.Header().Get("HX-Redirect") != "/keys?need=openai" {
			t.Fatalf("%v", w.Header())
		}
	})
	if len(denied) != 6 || denied[0][0] != "openai" {
		t.Fatalf("OnDenied calls: %v", denied)
	}
}

func TestRequireKeyMany(t *testing.T) {
	src := newMemSource(map[string]string{"anthropic": "sk-ant-x"})
	r := gin.New()
	r.GET("/all", guards.RequireKey(src, guards.Options{Prefix: "/my/keys"}, "openai", "anthropic", "google"), func(c *gin.Context) {})
	r.GET("/any", guards.RequireAnyKey(src, guards.Options{}, "openai", "anthropic", "google"), func(c *gin.Context) {
		c.String(200, "%q %q %q", guards.Key(c, "openai"), guards.Key(c, "anthropic"), guards.Key(c, "google"))
	})
	r.GET("/none", guards.RequireAnyKey(src, guards.Options{}, "openai", "google"), func(c *gin.Context) {})

	w := serve(r, http.MethodGet, "/all", jsonClient)
	var p struct {
		Detail  string
		FormURL string `json:"form_url"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if w.Code != 403 || p.FormURL != "/my/keys?need=openai&need=google&next=%2Fall" || !strings.Contains(p.Detail, "openai and google") {
		t.Fatalf("%d %+v", w.Code, p)
	}
	w = serve(r, http.MethodGet, "/any", jsonClient)
	if w.Code != 200 || w.Body.String() != `"" "sk-ant-x" ""` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if src.loads["google"] != 1 { // only from /all
		t.Fatalf("RequireAnyKey kept loading after a hit: %v", src.loads)
	}
	w = serve(r, http.MethodGet, "/none", browserClient)
	if w.Code != 303 || w.Header().Get("Location") != "/keys?need=openai&need=google&next=%2Fnone" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}

func TestRequireKeyLoadsOnce(t *testing.T) {
	src := newMemSource(map[string]string{"openai": sentinelKey, "google": "AIza-x"})
	r := gin.New()
	r.Use(guards.RequireKey(src, guards.Options{}, "openai"))
	r.GET("/x", guards.RequireAnyKey(src, guards.Options{}, "openai", "google"), guards.RequireKey(src, guards.Options{}, "openai", "google"),
		func(c *gin.Context) {
			// Dumping the gin context never shows a key.
			dump := fmt.Sprintf("%v %+v %#v %s", c.Keys, c.Keys, c.Keys, c.Keys)
			var vals []any
			for _, v := range c.Keys {
				vals = append(vals, v)
			}
			j, err := json.Marshal(vals)
			if err != nil {
				t.Error(err)
			}
			var logs strings.Builder
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("keys", "keys", c.Keys)
			if strings.Contains(dump+string(j)+logs.String(), "SENTINEL") {
				t.Errorf("context dump shows the key: %s %s %s", dump, j, logs.String())
			}
			c.String(200, "%d", len(guards.Key(c, "openai")))
		})
	w := serve(r, http.MethodGet, "/x", jsonClient)
	if w.Code != 200 || src.loads["openai"] != 1 || src.loads["google"] != 1 {
		t.Fatalf("%d, loads %v", w.Code, src.loads)
	}
}

func TestRequireKeyStorageFailure(t *testing.T) {
	src := newMemSource(nil)
	src.err = fmt.Errorf("redis: connection refused: %w", stores.ErrUnavailable)
	var logs strings.Builder
	rendered := 0
	opts := guards.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Render: func(c *gin.Context, p guards.Problem) {
			rendered++
			c.String(p.Status, "rendered %s", p.Code)
		},
	}
	r := newRouter(guards.RequireKey(src, opts, "openai"))
	w := serve(r, http.MethodGet, "/chat", jsonClient)
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"storage_unavailable"`) || strings.Contains(w.Body.String(), "redis") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = serve(r, http.MethodGet, "/chat", browserClient)
	if w.Code != 503 || w.Body.String() != "rendered storage_unavailable" || rendered != 1 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s %v", w.Code, w.Body, w.Header())
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("storage error not logged: %s", logs.String())
	}
	// Without Render: built-in page; htmx gets a swappable fragment.
	r = newRouter(guards.RequireKey(src, guards.Options{Logger: opts.Logger}, "openai"))
	w = serve(r, http.MethodGet, "/chat", htmxClient)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `data-problem="storage_unavailable"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestRequireKeyMisconfigured(t *testing.T) {
	var logs strings.Builder
	l := slog.New(slog.NewTextHandler(&logs, nil))
	src := newMemSource(nil)
	for name, h := range map[string]gin.HandlerFunc{
		"nil source":   guards.RequireKey(nil, guards.Options{Logger: l}, "openai"),
		"no providers": guards.RequireAnyKey(src, guards.Options{Logger: l}),
		"bad name":     guards.RequireKey(src, guards.Options{Logger: l}, "Open AI"),
		"bad prefix":   guards.RequireKey(src, guards.Options{Logger: l, Prefix: "//evil.example"}, "openai"),
	} {
		t.Run(name, func(t *testing.T) {
			w := serve(newRouter(h), http.MethodGet, "/chat", jsonClient)
			if w.Code != 500 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		})
	}
	if !strings.Contains(logs.String(), "misconfigured") {
		t.Fatal("misconfiguration not logged")
	}
}

func TestKeyWithoutGuard(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	if guards.Key(c, "openai") != "" {
		t.Fatal("key without a guard")
	}
	c.Set("unrelated", 1)
	if guards.Key(c, "openai") != "" {
		t.Fatal("key without a guard")
	}
}

func TestFormURL(t *testing.T) {
	tests := []struct {
		next, want string
	}{
		{"/chat?a=1", "/keys?need=openai&next=%2Fchat%3Fa%3D1"},
		{"//evil.example", "/keys?need=openai"},
		{"https://evil.example", "/keys?need=openai"},
		{"", "/keys?need=openai"},
	}
	for _, tt := range tests {
		if got := guards.FormURL("/keys", []string{"openai"}, tt.next); got != tt.want {
			t.Errorf("FormURL(%q) = %q, want %q", tt.next, got, tt.want)
		}
		u, err := url.Parse(tt.want)
		if err != nil || u.Host != "" {
			t.Fatal(tt.want)
		}
	}
}

var errBoom = errors.New("boom")

func TestKeySourceFunc(t *testing.T) {
	var src guards.KeySource = guards.KeySourceFunc(func(c *gin.Context, p string) (string, error) { return "", errBoom })
	if _, err := src.LoadKey(nil, "x"); !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
}

// benchmark setup: the same route, guarded by RequireKey over an in-memory
// source, and unguarded.
func benchRoute(b *testing.B, guarded bool) {
	src := guards.KeySourceFunc(func(c *gin.Context, p string) (string, error) { return sentinelKey, nil })
	r := gin.New()
	h := []gin.HandlerFunc{func(c *gin.Context) { c.String(200, "%d", len(guards.Key(c, "openai"))) }}
	if guarded {
		h = append([]gin.HandlerFunc{guards.RequireKey(src, guards.Options{}, "openai")}, h...)
	}
	r.GET("/chat", h...)
	req := httptest.NewRequest(http.MethodGet, "/chat", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		r.ServeHTTP(w, req)
	}
}

func BenchmarkRequireKeyMemory(b *testing.B) { benchRoute(b, true) }
func BenchmarkUnguarded(b *testing.B)        { benchRoute(b, false) }
