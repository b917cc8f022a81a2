package byok_test

import (
	"crypto/tls"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/internal/testenv"
)

// countingAEAD is a tink-like AEAD: only Encrypt and Decrypt.
type countingAEAD struct {
	inner      encrypt.AEAD
	seal, open atomic.Int64
}

func (c *countingAEAD) Encrypt(p, ad []byte) ([]byte, error) {
	c.seal.Add(1)
	return c.inner.Encrypt(p, ad)
}

func (c *countingAEAD) Decrypt(ct, ad []byte) ([]byte, error) {
	c.open.Add(1)
	return c.inner.Decrypt(ct, ad)
}

func TestWithAEAD(t *testing.T) {
	db := testenv.SQLite(t)
	aead := &countingAEAD{inner: mustKeyring(t, secretB)}
	a := newApp(t, byok.WithAEAD(aead), byok.WithDB(db))
	a.guarded(a.engine)
	a.setUser("alice")
	a.store("openai", openAIKey, "")
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 {
		t.Fatalf("guard: %d", w.Code)
	}
	if aead.seal.Load() == 0 || aead.open.Load() == 0 {
		t.Fatal("the AEAD was not used")
	}
	if ids := keyIDs(t, db); len(ids) != 1 || ids[0] != 0 {
		t.Fatalf("key ids %v: want 0 (unknown) for a foreign AEAD", ids)
	}
	_ = a.p.Close()
	// The check value was sealed with the AEAD: the same secret with the
	// keyring instead of the AEAD is refused.
	if _, err := byok.Register(ginEngine(), byok.WithSecret(secretA), byok.WithDB(db), byok.WithLogger(discardLogger(a))); !errors.Is(err, encrypt.ErrWrongSecret) {
		t.Fatalf("Register without the AEAD: %v", err)
	}
}

func TestWithKeyring(t *testing.T) {
	db := testenv.SQLite(t)
	ring := mustKeyring(t, secretB)
	a := newApp(t, byok.WithKeyring(ring), byok.WithDB(db))
	a.setUser("alice")
	a.store("openai", openAIKey, "")
	if ids := keyIDs(t, db); len(ids) != 1 || ids[0] != int64(ring.PrimaryID()) {
		t.Fatalf("key ids %v, want the keyring's %d", ids, ring.PrimaryID())
	}
}

func TestCookieFromAnotherSecret(t *testing.T) {
	a := newApp(t)
	a.store("openai", openAIKey, "")
	cookies := a.jar.Cookies(base)

	other := newApp(t, byok.WithSecret(secretB))
	other.jar.SetCookies(base, cookies)
	if other.hasKey("openai") {
		t.Fatal("a session sealed under another secret was read")
	}

	rotated := newApp(t, byok.WithSecret(secretB, secretA))
	rotated.jar.SetCookies(base, cookies)
	if !rotated.hasKey("openai") {
		t.Fatal("a session sealed under the previous secret was not read")
	}
}

func TestHostSessionsMany(t *testing.T) {
	hostStore := cookie.NewStore([]byte("host-auth-key-0123456789abcdef0123456789abcdef"))
	hostStore.Options(sessions.Options{Path: "/"})
	a := newAppWith(t, func(r *gin.Engine) gin.IRouter {
		r.Use(sessions.SessionsMany([]string{"a", "b"}, hostStore))
		return r
	})
	a.guarded(a.engine)
	a.store("openai", openAIKey, "")
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 {
		t.Fatalf("guard: %d", w.Code)
	}
	names := ""
	for _, c := range a.jar.Cookies(base) {
		names += c.Name + " "
	}
	if !strings.Contains(names, "byok") {
		t.Fatalf("cookies %q: the plugin should keep its own session beside SessionsMany", names)
	}
}

func TestWithSessionStoreAndName(t *testing.T) {
	store := cookie.NewStore([]byte("host-auth-key-0123456789abcdef0123456789abcdef"))
	store.Options(sessions.Options{Path: "/", HttpOnly: true})
	a := newApp(t, byok.WithSessionStore(store), byok.WithSessionName("keys_sid"))
	a.guarded(a.engine)
	a.store("openai", openAIKey, "")
	cs := a.jar.Cookies(base)
	if len(cs) != 1 || cs[0].Name != "keys_sid" {
		t.Fatalf("cookies %v", cs)
	}
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 {
		t.Fatalf("guard: %d", w.Code)
	}
}

func TestWithTemplates(t *testing.T) {
	fsys := fstest.MapFS{"byok/card.tmpl": {Data: []byte(`{{define "byok/key-card"}}<p id="custom">custom card for {{.Key.Provider.Name}}</p>{{end}}`)}}
	a := newApp(t, byok.WithTemplates(fsys))
	w := a.do(req(kHTMX, "GET", "/keys/openai", nil))
	if w.Body.String() != `<p id="custom">custom card for openai</p>` {
		t.Fatalf("override not used: %s", w.Body)
	}
	bad := fstest.MapFS{"x.tmpl": {Data: []byte(`{{define "byok/key-card"}}{{.Nope`)}}
	if _, err := byok.Register(ginEngine(), byok.WithSecret(secretA), byok.WithTemplates(bad)); !errors.Is(err, byok.ErrConfig) {
		t.Fatalf("broken override: %v", err)
	}
	// The host's own templates (LoadHTML*, SetHTMLTemplate) are never used.
	host := newAppWith(t, func(r *gin.Engine) gin.IRouter {
		r.SetHTMLTemplate(template.Must(template.New("byok/page").Parse(`HOST PAGE`)))
		return r
	})
	if body := host.do(req(kHTML, "GET", "/keys", nil)).Body.String(); strings.Contains(body, "HOST PAGE") || !strings.Contains(body, "byok-dashboard") {
		t.Fatalf("the plugin rendered with the host's templates: %.200s", body)
	}
}

func TestTTLChoices(t *testing.T) {
	clk := newClock()
	a := newApp(t, byok.WithTTLChoices(time.Hour, 8*time.Hour), byok.WithTTL(8*time.Hour), byok.WithClock(clk.Now))
	page := a.do(req(kHTML, "GET", "/keys", nil)).Body.String()
	if !strings.Contains(page, `<option value="1h">1 hour</option>`) || !strings.Contains(page, `<option value="8h" selected>8 hours</option>`) || strings.Contains(page, `value="never"`) {
		t.Fatalf("choices not offered:\n%s", page)
	}
	a.store("openai", openAIKey, "")
	if got := a.info("openai")["expires_at"]; got != clk.Now().Add(8*time.Hour).Format(time.RFC3339Nano) {
		t.Fatalf("default ttl: expires_at %v", got)
	}
	a.store("openai", openAIKey, "1h")
	if got := a.info("openai")["expires_at"]; got != clk.Now().Add(time.Hour).Format(time.RFC3339Nano) {
		t.Fatalf("1h: expires_at %v", got)
	}
	for _, ttl := range []string{"never", "24h", "7d"} {
		w := a.do(req(kJSON, "POST", "/keys/openai", keyBody(kJSON, openAIKey, ttl)))
		if w.Code != 422 || problemCode(t, w) != "invalid_ttl" || !strings.Contains(w.Body.String(), "1h, 8h") {
			t.Fatalf("ttl %s: %d %s", ttl, w.Code, w.Body)
		}
	}
	// A JSON ttl that is not a string.
	w := a.do(req(kJSON, "POST", "/keys/openai", map[string]any{"api_key": openAIKey, "ttl": 3600}))
	if w.Code != 422 || problemCode(t, w) != "invalid_ttl" {
		t.Fatalf("numeric ttl: %d %s", w.Code, w.Body)
	}
}

func TestRequireHTTPS(t *testing.T) {
	a := newApp(t, byok.WithRequireHTTPS(true))
	r := req(kJSON, "POST", "/keys/openai", keyBody(kJSON, openAIKey, ""))
	r.TLS = &tls.ConnectionState{}
	w := a.do(r)
	if w.Code != 201 {
		t.Fatalf("over TLS: %d %s", w.Code, w.Body)
	}
	c := w.Result().Cookies()
	if len(c) == 0 || !c[0].Secure {
		t.Fatalf("session cookie not Secure: %+v", c)
	}
	// gin trusts no proxy here: a forwarded "https" from the client itself
	// does not count.
	a.engine.SetTrustedProxies(nil)
	r = req(kJSON, "GET", "/keys", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	if w := a.do(r); w.Code != http.StatusForbidden {
		t.Fatalf("spoofed X-Forwarded-Proto: %d", w.Code)
	}
}

// TestCookieSessionRotation: a key kept in a cookie session under secret A
// is re-sealed (the key and the cookie) when read by an app given (B, A), and
// then opens with B alone.
func TestCookieSessionRotation(t *testing.T) {
	a := newApp(t)
	a.store("openai", openAIKey, "")
	cookies := a.jar.Cookies(base)

	rotated := newApp(t, byok.WithSecret(secretB, secretA))
	rotated.guarded(rotated.engine)
	rotated.jar.SetCookies(base, cookies)
	if w := rotated.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 || !strings.Contains(w.Body.String(), openAIKey) {
		t.Fatalf("rotated read: %d %s", w.Code, w.Body)
	}
	onlyB := newApp(t, byok.WithSecret(secretB))
	onlyB.jar.SetCookies(base, rotated.jar.Cookies(base))
	if !onlyB.hasKey("openai") {
		t.Fatal("the session was not re-sealed under the new secret")
	}
}
