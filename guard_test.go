package byok_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok"
)

// guarded mounts /chat (needs openai) and /any (needs openai or anthropic)
// on the engine, outside the plugin's prefix. Each answers with the keys
// the guard opened.
func (a *app) guarded(r gin.IRoutes) {
	h := func(c *gin.Context) {
		c.String(http.StatusOK, "openai=%s anthropic=%s", byok.Key(c, "openai"), byok.Key(c, "anthropic"))
	}
	r.GET("/chat", a.p.RequireKey("openai"), h)
	r.POST("/chat", a.p.RequireKey("openai"), h)
	r.GET("/both", a.p.RequireKey("openai", "anthropic"), h)
	r.GET("/any", a.p.RequireAnyKey("openai", "anthropic"), h)
	r.GET("/typo", a.p.RequireKey("opnai"), h)
}

func TestRequireKeyByKind(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			a := newApp(t)
			a.guarded(a.engine)
			w := a.do(req(kind, http.MethodGet, "/chat?x=1", nil))
			form := "/keys?need=openai&next=%2Fchat%3Fx%3D1"
			switch kind {
			case kJSON:
				if w.Code != 403 || problemCode(t, w) != "key_required" {
					t.Fatalf("%d %s", w.Code, w.Body)
				}
				var p struct {
					Provider string `json:"provider"`
					FormURL  string `json:"form_url"`
				}
				_ = json.Unmarshal(w.Body.Bytes(), &p)
				if p.Provider != "openai" || p.FormURL != form {
					t.Fatalf("problem %+v", p)
				}
			case kHTMX:
				if w.Code != 204 || w.Header().Get("HX-Redirect") != form {
					t.Fatalf("%d %v", w.Code, w.Header())
				}
			default:
				if w.Code != 303 || w.Header().Get("Location") != form {
					t.Fatalf("%d %v", w.Code, w.Header())
				}
			}
			if !slices.Contains(a.auditActions(), byok.EventGuardDenied) {
				t.Fatalf("no guard.denied in %v", a.auditActions())
			}

			// The form asks for the provider and brings the user back.
			page := a.do(req(kHTML, http.MethodGet, form, nil))
			if page.Code != 200 || !strings.Contains(page.Body.String(), `name="next" value="/chat?x=1"`) {
				t.Fatalf("form page %d lacks next:\n%s", page.Code, page.Body)
			}
			back := a.do(req(kHTML, http.MethodPost, "/keys/openai", url.Values{"api_key": {openAIKey}, "next": {"/chat?x=1"}}))
			if back.Code != 303 || back.Header().Get("Location") != "/chat?x=1" {
				t.Fatalf("after saving: %d %v", back.Code, back.Header())
			}

			w = a.do(req(kind, http.MethodGet, "/chat?x=1", nil))
			if w.Code != 200 || w.Body.String() != "openai="+openAIKey+" anthropic=" {
				t.Fatalf("with the key: %d %q", w.Code, w.Body)
			}
			w = a.do(req(kind, http.MethodGet, "/both", nil))
			if w.Code == 200 {
				t.Fatal("RequireKey(openai, anthropic) passed with one key")
			}
			w = a.do(req(kind, http.MethodGet, "/any", nil))
			if w.Code != 200 || w.Body.String() != "openai="+openAIKey+" anthropic=" {
				t.Fatalf("any: %d %q", w.Code, w.Body)
			}
			w = a.do(req(kind, http.MethodGet, "/typo", nil))
			if w.Code != 500 && (kind != kHTMX || w.Code != 200) {
				t.Fatalf("misconfigured guard: %d", w.Code)
			}
		})
	}
}

func TestRequireAnyKeyAsksForAll(t *testing.T) {
	a := newApp(t)
	a.guarded(a.engine)
	w := a.do(req(kHTML, http.MethodGet, "/any", nil))
	if loc := w.Header().Get("Location"); loc != "/keys?need=openai&need=anthropic&next=%2Fany" {
		t.Fatalf("Location %q", loc)
	}
	a.store("anthropic", anthroKey, "")
	w = a.do(req(kJSON, http.MethodGet, "/any", nil))
	if w.Code != 200 || w.Body.String() != "openai= anthropic="+anthroKey {
		t.Fatalf("%d %q", w.Code, w.Body)
	}
}

func TestGuardExpiredKey(t *testing.T) {
	clk := newClock()
	a := newApp(t, byok.WithClock(clk.Now))
	a.guarded(a.engine)
	a.store("openai", openAIKey, "30m")
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 {
		t.Fatalf("fresh key: %d", w.Code)
	}
	clk.Add(29 * time.Minute)
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 {
		t.Fatalf("29 minutes on: %d", w.Code)
	}
	clk.Add(time.Minute)
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 403 {
		t.Fatalf("30 minutes on: %d", w.Code)
	}
	if a.hasKey("openai") {
		t.Fatal("an expired key is listed as present")
	}
}

func TestHostSessionsMiddleware(t *testing.T) {
	hostStore := cookie.NewStore([]byte("host-auth-key-0123456789abcdef0123456789abcdef"))
	hostStore.Options(sessions.Options{Path: "/", HttpOnly: true}) // not Secure: the test client speaks http
	a := newAppWith(t, func(r *gin.Engine) gin.IRouter {
		r.Use(sessions.Sessions("host", hostStore))
		return r
	})
	a.guarded(a.engine)
	a.engine.GET("/host", func(c *gin.Context) {
		s := sessions.Default(c)
		n, _ := s.Get("n").(int)
		s.Set("n", n+1)
		_ = s.Save()
		c.String(200, "%d", n+1)
	})
	a.store("openai", openAIKey, "")
	for _, c := range a.jar.Cookies(base) {
		if c.Name == "byok" {
			t.Fatal("the plugin opened its own session although the host has one")
		}
	}
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 {
		t.Fatalf("guard with host sessions: %d %s", w.Code, w.Body)
	}
	// The host's own values live alongside.
	a.do(httptest.NewRequest(http.MethodGet, "/host", nil))
	if w := a.do(httptest.NewRequest(http.MethodGet, "/host", nil)); w.Body.String() != "2" {
		t.Fatalf("host session: %q", w.Body)
	}
	if !a.hasKey("openai") {
		t.Fatal("key lost after host session writes")
	}
}

func TestOnGroup(t *testing.T) {
	a := newAppWith(t, func(r *gin.Engine) gin.IRouter { return r.Group("/app") }, byok.WithPrefix("/settings/api-keys"))
	a.guarded(a.engine.Group("/app"))
	if got := a.p.Prefix(); got != "/app/settings/api-keys" {
		t.Fatalf("Prefix() = %q", got)
	}
	w := a.do(req(kHTML, "GET", "/app/chat", nil))
	if loc := w.Header().Get("Location"); loc != "/app/settings/api-keys?need=openai&next=%2Fapp%2Fchat" {
		t.Fatalf("Location %q", loc)
	}
	w = a.do(req(kJSON, "POST", "/app/settings/api-keys/openai", keyBody(kJSON, openAIKey, "")))
	if w.Code != 201 {
		t.Fatalf("store on group: %d %s", w.Code, w.Body)
	}
	w = a.do(req(kHTML, "GET", "/app/settings/api-keys", nil))
	if !strings.Contains(w.Body.String(), `action="/app/settings/api-keys/openai"`) || !strings.Contains(w.Body.String(), `/app/settings/api-keys/assets/byok.js`) {
		t.Fatalf("page does not use the group's prefix:\n%s", w.Body)
	}
	if w := a.do(req(kJSON, "GET", "/app/chat", nil)); w.Code != 200 {
		t.Fatalf("guard on group: %d", w.Code)
	}
}

// BenchmarkGuard measures a route guarded by RequireKey, whose handler reads
// the key with Key, against the same route unguarded, both with a cookie
// session holding the key. Each iteration sends a fresh request, as
// gorilla/sessions caches the session per request.
func BenchmarkGuard(b *testing.B) {
	a := newApp(b)
	h := func(c *gin.Context) { c.String(http.StatusOK, "%d", len(byok.Key(c, "openai"))) }
	a.engine.GET("/open", h)
	a.engine.GET("/guarded", a.p.RequireKey("openai"), h)
	a.store("openai", openAIKey, "")
	var cookies []string
	for _, c := range a.jar.Cookies(base) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	for _, path := range []string{"/open", "/guarded"} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Cookie", strings.Join(cookies, "; "))
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		a.engine.ServeHTTP(w, r.Clone(r.Context()))
		if path == "/guarded" && w.Body.String() != "34" {
			b.Fatalf("guarded route answered %d %q", w.Code, w.Body)
		}
		name := "unguarded"
		if path == "/guarded" {
			name = "guarded"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				a.engine.ServeHTTP(w, r.Clone(r.Context()))
			}
		})
	}
}
