package byok_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
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
	gsessions "github.com/gorilla/sessions"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/testenv"
)

// signIn is the host's sign-in and sign-out, as an app would write them:
// POST /signin puts the form's user on the gin context (where WithUser
// reads it) and adopts the anonymous keys; POST /signout forgets the
// session. The last result is kept for the test.
type signIn struct {
	n   int
	err error
	// guestKeys is how many keys the guest has, in memory, right after a
	// failed adoption in the same request.
	guestKeys int
}

func mountSignIn(a *app) *signIn {
	res := &signIn{}
	a.engine.POST("/signin", func(c *gin.Context) {
		if u := c.PostForm("user"); u != "" {
			c.Set("user", u)
		}
		res.n, res.err = a.p.AdoptAnonymousKeys(c)
		if v, ok := c.Get(sessions.DefaultKey); ok && c.PostForm("user") != "" {
			// A host with sessions of its own records the sign-in there,
			// whatever the adoption did.
			hs := v.(sessions.Session)
			hs.Set("host.user", c.PostForm("user"))
			_ = hs.Save()
		}
		if res.err != nil {
			c.Set("user", "")
			infos, _ := a.p.List(c)
			res.guestKeys = 0
			for _, k := range infos {
				if k.HasKey {
					res.guestKeys++
				}
			}
			c.String(http.StatusServiceUnavailable, res.err.Error())
			return
		}
		c.String(http.StatusOK, "adopted %d", res.n)
	})
	a.engine.POST("/signout", func(c *gin.Context) {
		res.err = a.p.ForgetSession(c)
		if res.err != nil {
			c.String(http.StatusServiceUnavailable, res.err.Error())
			return
		}
		c.Status(http.StatusNoContent)
	})
	return res
}

// signIn signs user in ("" for a request without one) and returns what
// AdoptAnonymousKeys said; on success the app's later requests are user's.
func (a *app) signIn(s *signIn, user string) (int, error) {
	a.t.Helper()
	a.do(req(kHTML, http.MethodPost, "/signin", url.Values{"user": {user}}))
	if s.err == nil && user != "" {
		a.setUser(user)
	}
	return s.n, s.err
}

// signOut forgets the session and makes the app's later requests anonymous.
func (a *app) signOut(s *signIn) error {
	a.t.Helper()
	a.do(req(kHTML, http.MethodPost, "/signout", nil))
	a.setUser("")
	return s.err
}

// sessionEntries lists the values in this browser's session of the plugin.
func (a *app) sessionEntries() []string {
	a.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range a.jar.Cookies(base) {
		r.AddCookie(c)
	}
	names, err := byok.OwnSessionEntries(a.p, r)
	if err != nil {
		a.t.Fatalf("reading the session: %v", err)
	}
	return names
}

func (a *app) masked(provider string) string {
	a.t.Helper()
	m, _ := a.info(provider)["masked"].(string)
	return m
}

// digest stands for a key in a response: its SHA-256, in hex.
func digest(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func anthroSentinel(t testing.TB) string {
	return "sk-ant-api03-" + strings.TrimPrefix(sentinelKey(t), "sk-")
}

// events returns the audited events with this action.
func (a *app) eventsOf(action string) []byok.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []byok.AuditEvent
	for _, e := range a.events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// noKeyAnywhere fails if a key is in the app's logs, audit events,
// responses, Redis values under prefix or SQL rows, in any usual encoding.
func noKeyAnywhere(t *testing.T, a *app, db *sqlx.DB, rdb redis.UniversalClient, prefix string, keys ...string) {
	t.Helper()
	where := map[string]string{"logs": a.logs.String()}
	a.mu.Lock()
	where["audit"] = fmt.Sprintf("%+v", a.events)
	where["responses"] = strings.Join(a.seen, "\n")
	a.mu.Unlock()
	if rdb != nil {
		where["redis"] = redisDump(t, rdb, prefix)
	}
	if db != nil {
		where["sql"] = sqlDump(t, db)
	}
	for place, text := range where {
		for _, k := range keys {
			for _, form := range []string{k, hex.EncodeToString([]byte(k)), base64.StdEncoding.EncodeToString([]byte(k)),
				base64.RawURLEncoding.EncodeToString([]byte(k)), strings.TrimPrefix(k, "sk-")} {
				if strings.Contains(text, form) {
					t.Errorf("%s holds a key (as %q…)", place, form[:12])
				}
			}
		}
	}
}

// TestAdoptAnonymousKeys: on every backend, keys saved as a guest become the
// signed-in user's (times kept, readable through the guards and, with SQL,
// from another browser); a key the user already has wins; expired keys are
// dropped; without a user nothing happens; and no key is ever written out.
func TestAdoptAnonymousKeys(t *testing.T) {
	type env struct {
		a, other    *app
		s           *signIn
		clk         *clock
		sql         bool // keys of signed-in users persist in SQL
		openai, ant string
	}
	tests := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"adopted and readable as the user", func(t *testing.T, e env) {
			a := e.a
			a.store("openai", e.openai, "7d")
			a.store("anthropic", e.ant, "never")
			before := a.info("openai")
			e.clk.Add(time.Minute)
			n, err := a.signIn(e.s, "alice")
			if err != nil || n != 2 {
				t.Fatalf("AdoptAnonymousKeys = %d, %v; want 2, nil", n, err)
			}
			after := a.info("openai")
			if after["has_key"] != true || after["masked"] != before["masked"] ||
				after["created_at"] != before["created_at"] || after["expires_at"] != before["expires_at"] {
				t.Fatalf("adopted key\n got %v\nwant %v", after, before)
			}
			if a.info("anthropic")["expires_at"] != nil {
				t.Fatal("a key kept forever was given an expiry")
			}
			if w := a.do(req(kJSON, http.MethodGet, "/digests", nil)); w.Code != http.StatusOK ||
				w.Body.String() != digest(e.openai)+" "+digest(e.ant) {
				t.Fatalf("guard after adoption: %d", w.Code)
			}
			if ev := a.eventsOf(byok.EventKeyAdopted); len(ev) != 2 || ev[0].Owner != "u:alice" || ev[0].UserID != "alice" ||
				len(ev[0].Fingerprint) != 16 || !strings.HasPrefix(ev[0].Reason, "saved before sign-in as a:") {
				t.Fatalf("key.adopted events: %+v", ev)
			}
			if !strings.Contains(a.logs.String(), "adopted=2") {
				t.Error("no log line with the count")
			}
			// Nothing anonymous is left in the session.
			for _, name := range a.sessionEntries() {
				if name == "byok.anon" || (e.sql && name == "byok.keys") {
					t.Errorf("session still holds %q: %v", name, a.sessionEntries())
				}
			}
			a.setUser("")
			if a.hasKey("openai") || a.hasKey("anthropic") {
				t.Fatal("the guest still has the keys after they were adopted")
			}
			a.setUser("alice")
			if e.sql {
				e.other.setUser("alice")
				if e.other.masked("openai") != before["masked"] || !e.other.hasKey("anthropic") {
					t.Fatal("adopted keys do not follow alice to another browser")
				}
			}
			// A second call has nothing left to adopt.
			if n, err := a.signIn(e.s, "alice"); n != 0 || err != nil {
				t.Fatalf("second call = %d, %v", n, err)
			}
		}},
		{"the user's own key wins", func(t *testing.T, e env) {
			if !e.sql {
				t.Skip("a session-only setup keeps one owner's keys per session: a signed-in user's keys and a guest's never meet")
			}
			// alice stored a key from another browser before.
			e.other.setUser("alice")
			e.other.store("openai", openAIKey2, "")
			want := e.other.masked("openai")
			e.other.setUser("")
			a := e.a
			a.store("openai", e.openai, "")
			a.store("anthropic", e.ant, "")
			n, err := a.signIn(e.s, "alice")
			if err != nil || n != 1 {
				t.Fatalf("AdoptAnonymousKeys = %d, %v; want 1, nil", n, err)
			}
			if got := a.masked("openai"); got != want {
				t.Fatalf("alice's key was overwritten: %q, want %q", got, want)
			}
			if !a.hasKey("anthropic") {
				t.Fatal("the other key was not adopted")
			}
			del := a.eventsOf(byok.EventKeyDeleted)
			if len(del) != 1 || del[0].Provider != "openai" || !strings.HasPrefix(del[0].Owner, "a:") || del[0].Reason == "" {
				t.Fatalf("key.deleted events: %+v", del)
			}
			a.setUser("")
			if a.hasKey("openai") {
				t.Fatal("the guest's key that was not adopted is still there")
			}
		}},
		{"expired keys dropped", func(t *testing.T, e env) {
			a := e.a
			a.store("openai", e.openai, "30m")
			a.store("anthropic", e.ant, "7d")
			e.clk.Add(31 * time.Minute)
			n, err := a.signIn(e.s, "alice")
			if err != nil || n != 1 {
				t.Fatalf("AdoptAnonymousKeys = %d, %v; want 1, nil", n, err)
			}
			if a.hasKey("openai") || !a.hasKey("anthropic") {
				t.Fatal("want the live key adopted and the expired one not")
			}
			if e.sql {
				// The expired key is gone from the session with the rest.
				if names := a.sessionEntries(); slices.Contains(names, "byok.keys") || slices.Contains(names, "byok.anon") {
					t.Fatalf("session after adoption: %v", names)
				}
			}
		}},
		{"no signed-in user", func(t *testing.T, e env) {
			a := e.a
			a.store("openai", e.openai, "")
			n, err := a.signIn(e.s, "")
			if !errors.Is(err, byok.ErrNotSignedIn) || n != 0 {
				t.Fatalf("AdoptAnonymousKeys = %d, %v; want ErrNotSignedIn", n, err)
			}
			if !a.hasKey("openai") {
				t.Fatal("the guest lost a key")
			}
			if len(a.eventsOf(byok.EventKeyAdopted)) != 0 {
				t.Fatal("key.adopted without a user")
			}
		}},
		{"nothing to adopt", func(t *testing.T, e env) {
			if n, err := e.a.signIn(e.s, "alice"); n != 0 || err != nil {
				t.Fatalf("AdoptAnonymousKeys = %d, %v; want 0, nil", n, err)
			}
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					opts, db, rdb, prefix := be.opts(t)
					clk := newClock()
					a := newApp(t, append(opts, byok.WithClock(clk.Now))...)
					a.engine.GET("/digests", a.p.RequireKey("openai", "anthropic"), func(c *gin.Context) {
						c.String(http.StatusOK, digest(byok.Key(c, "openai"))+" "+digest(byok.Key(c, "anthropic")))
					})
					e := env{a: a, other: a.browser(), s: mountSignIn(a), clk: clk, sql: db != nil,
						openai: sentinelKey(t), ant: anthroSentinel(t)}
					tt.run(t, e)
					noKeyAnywhere(t, a, db, rdb, prefix, e.openai, e.ant)
				})
			}
		})
	}
}

// TestAdoptStorageCut: with PostgreSQL cut off (with and without Redis,
// in the plugin's session or a host's that the host saves afterwards),
// adoption fails with ErrUnavailable and the guest keeps every key; once
// PostgreSQL is back, adoption works.
func TestAdoptStorageCut(t *testing.T) {
	for _, tt := range []struct {
		name        string
		redis, host bool
	}{
		{"postgres", false, false},
		{"redis+postgres", true, false},
		{"postgres, host session", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proxy := testenv.StartProxy(t, testenv.PostgresAddr(t))
			db, err := sqlx.Open("postgres", testenv.ViaProxy(testenv.PostgresURL(t), proxy))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			opts := []byok.Option{byok.WithDB(db)}
			var rdb redis.UniversalClient
			prefix := ""
			if tt.redis {
				rdb, prefix = testenv.Redis(t), testenv.Prefix(t)
				opts = append(opts, byok.WithRedis(rdb), byok.WithRedisPrefix(prefix))
			}
			var a *app
			entries := (*app).sessionEntries
			if tt.host {
				a = newHostSessionApp(t, opts...)
				entries = func(a *app) []string { return strings.Split(a.hostEntries(), ",") }
			} else {
				a = newApp(t, opts...)
			}
			s := mountSignIn(a)
			k1, k2 := sentinelKey(t), anthroSentinel(t)
			a.store("openai", k1, "")
			a.store("anthropic", k2, "")
			before := entries(a)

			proxy.Cut()
			n, err := a.signIn(s, "alice")
			if !errors.Is(err, byok.ErrUnavailable) || n != 0 {
				t.Fatalf("AdoptAnonymousKeys with PostgreSQL cut = %d, %v; want ErrUnavailable", n, err)
			}
			if s.guestKeys != 2 {
				t.Fatalf("right after the failed adoption the guest has %d keys, want 2", s.guestKeys)
			}
			after := slices.DeleteFunc(entries(a), func(n string) bool { return n == "host.user" })
			if !slices.Equal(after, before) {
				t.Fatalf("session changed by a failed adoption: %v → %v", before, after)
			}
			a.setUser("")
			if !a.hasKey("openai") || !a.hasKey("anthropic") {
				t.Fatal("the guest lost keys to a failed adoption")
			}

			proxy.Restore()
			if n, err := a.signIn(s, "alice"); n != 2 || err != nil {
				t.Fatalf("AdoptAnonymousKeys after the cut = %d, %v; want 2", n, err)
			}
			if !a.hasKey("openai") || !a.hasKey("anthropic") {
				t.Fatal("keys not adopted after the cut")
			}
			noKeyAnywhere(t, a, db, rdb, prefix, k1, k2)
		})
	}
}

// TestAdoptRollback: in a session-only setup the user's keys replace the
// guest's in the one session entry; when a later key does not fit, the
// adoption fails and the session is as it was, also in memory for the rest
// of the request.
func TestAdoptRollback(t *testing.T) {
	big := byok.Provider{Name: "big", DisplayName: "Big", MaxLen: byok.MaxKeyLength}
	a := newApp(t, byok.WithProviders(byok.OpenAI, big))
	s := mountSignIn(a)
	user := strings.Repeat("u", 64) // a longer owner than the guest's "a:<22 characters>"
	size := func() int {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, c := range a.jar.Cookies(base) {
			r.AddCookie(c)
		}
		return byok.OwnSessionValueSize(a.p, r, "byok.keys")
	}
	const limit = 2000 // the session store's default entry limit
	a.store("openai", openAIKey, "")
	a.store("big", strings.Repeat("b", 1500), "")
	// Make the guest's entry 10 bytes short of the limit: the user's, with
	// 42 more bytes of owner, does not fit.
	a.store("big", strings.Repeat("b", 1500+limit-10-size()), "")
	if n := size(); n != limit-10 {
		t.Fatalf("setup: guest entry of %d bytes, want %d", n, limit-10)
	}
	before := a.sessionEntries()

	n, err := a.signIn(s, user)
	if !errors.Is(err, byok.ErrTooLarge) || n != 0 {
		t.Fatalf("AdoptAnonymousKeys = %d, %v; want ErrTooLarge", n, err)
	}
	if s.guestKeys != 2 {
		t.Fatalf("right after the failed adoption the guest has %d keys, want 2", s.guestKeys)
	}
	if got := a.sessionEntries(); !slices.Equal(got, before) || size() != limit-10 {
		t.Fatalf("session changed: %v → %v", before, got)
	}
	if !a.hasKey("openai") || !a.hasKey("big") {
		t.Fatal("the guest lost keys")
	}
	if ev := a.eventsOf(byok.EventKeyAdopted); len(ev) != 0 {
		t.Fatalf("key.adopted audited for a rolled-back adoption: %+v", ev)
	}
}

// TestForgetSession: after sign-out the browser's session of the plugin is
// gone (no cookie, nothing in Redis); keys kept in SQL stay the user's,
// keys kept only in the session are gone (and audited as cleared).
func TestForgetSession(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			opts, db, rdb, prefix := be.opts(t)
			a := newApp(t, opts...)
			s := mountSignIn(a)
			k1, k2 := sentinelKey(t), anthroSentinel(t)
			a.store("openai", k1, "")
			if _, err := a.signIn(s, "alice"); err != nil {
				t.Fatal(err)
			}
			// A form post, its redirect not followed: a flash is left in
			// the session too.
			if w := a.do(req(kHTML, http.MethodPost, "/keys/anthropic", keyBody(kHTML, k2, ""))); w.Code != http.StatusSeeOther {
				t.Fatalf("storing through the form: %d", w.Code)
			}
			if !a.hasKey("openai") || !a.hasKey("anthropic") {
				t.Fatal("setup: alice lacks a key")
			}
			if names := a.sessionEntries(); !slices.Contains(names, "byok.flash") {
				t.Fatalf("setup: session holds %v", names)
			}

			if err := a.signOut(s); err != nil {
				t.Fatalf("ForgetSession: %v", err)
			}
			for _, c := range a.jar.Cookies(base) {
				if c.Name == byok.DefaultSessionName {
					t.Fatalf("the session cookie survived sign-out")
				}
			}
			if names := a.sessionEntries(); len(names) != 0 {
				t.Fatalf("session after sign-out: %v", names)
			}
			if rdb != nil {
				if dump := redisDump(t, rdb, prefix+"sess:"); dump != "" {
					t.Fatalf("a session is left in Redis: %q", dump[:strings.IndexByte(dump, '=')])
				}
			}
			if a.hasKey("openai") || a.hasKey("anthropic") {
				t.Fatal("the browser still has keys after sign-out")
			}
			a.setUser("alice")
			if db != nil {
				if !a.hasKey("openai") || !a.hasKey("anthropic") {
					t.Fatal("alice lost keys kept in SQL")
				}
			} else {
				if a.hasKey("openai") {
					t.Fatal("a session-only key outlived ForgetSession")
				}
				ev := a.eventsOf(byok.EventKeyCleared)
				if len(ev) != 1 || ev[0].Count != 2 || ev[0].UserID != "alice" || ev[0].Reason == "" {
					t.Fatalf("key.cleared events: %+v", ev)
				}
			}
			// A later request starts a fresh session.
			a.setUser("")
			a.store("openai", k1, "")
			if !a.hasKey("openai") {
				t.Fatal("no new session after sign-out")
			}
			noKeyAnywhere(t, a, db, rdb, prefix, k1, k2)
		})
	}
}

// newHostSessionApp is an app whose host runs gin-contrib sessions of its
// own (so the plugin keeps its entries there), with POST /host/set (the
// host stores a value) and GET /host/entries (the session's value names).
func newHostSessionApp(t *testing.T, opts ...byok.Option) *app {
	t.Helper()
	hostStore := cookie.NewStore([]byte("host-auth-key-0123456789abcdef0123456789abcdef"))
	hostStore.Options(sessions.Options{Path: "/", HttpOnly: true}) // not Secure: the test client speaks http
	return newAppWith(t, func(r *gin.Engine) gin.IRouter {
		r.Use(sessions.Sessions("host", hostStore))
		r.POST("/host/set", func(c *gin.Context) {
			s := sessions.Default(c)
			s.Set("host.cart", "3 items")
			_ = s.Save()
		})
		r.GET("/host/entries", func(c *gin.Context) {
			s, _ := sessions.Default(c).(interface{ Session() *gsessions.Session })
			var names []string
			for k := range s.Session().Values {
				names = append(names, fmt.Sprint(k))
			}
			slices.Sort(names)
			c.String(http.StatusOK, strings.Join(names, ","))
		})
		return r
	}, opts...)
}

func (a *app) hostEntries() string {
	a.t.Helper()
	return a.do(req(kHTML, http.MethodGet, "/host/entries", nil)).Body.String()
}

// TestForgetSessionHostSession: in a host's session, ForgetSession removes
// the plugin's entries and leaves the host's own.
func TestForgetSessionHostSession(t *testing.T) {
	a := newHostSessionApp(t)
	s := mountSignIn(a)
	a.do(req(kHTML, http.MethodPost, "/host/set", nil))
	a.store("openai", openAIKey, "")
	if n, err := a.signIn(s, "alice"); n != 1 || err != nil {
		t.Fatalf("AdoptAnonymousKeys in a host session = %d, %v", n, err)
	}
	if !a.hasKey("openai") {
		t.Fatal("key not adopted in a host session")
	}
	if err := a.signOut(s); err != nil {
		t.Fatalf("ForgetSession: %v", err)
	}
	if got := a.hostEntries(); got != "host.cart,host.user" {
		t.Fatalf("host session after ForgetSession holds %q, want only host.cart,host.user", got)
	}
}
