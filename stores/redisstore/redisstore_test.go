package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/tester"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/redisstore"
)

// The store accepts every kind of go-redis client: single node, Sentinel
// (failover) and Cluster.
var (
	_ redis.UniversalClient = (*redis.Client)(nil)
	_ redis.UniversalClient = (*redis.ClusterClient)(nil)
	_ sessions.Store        = (*redisstore.Store)(nil)
)

// Fixed test keys in the shape encrypt.Keyring.SessionKeyPairs gives:
// a 64-byte authentication key and a 32-byte encryption key per pair. The
// authentication keys carry a sentinel that must never leak.
var (
	keysA = [][]byte{[]byte("SENTINEL-A-auth-0123456789abcdef0123456789abcdef0123456789abcdef"), bytes.Repeat([]byte{'e'}, 32)}
	keysB = [][]byte{[]byte("SENTINEL-B-auth-0123456789abcdef0123456789abcdef0123456789abcdef"), bytes.Repeat([]byte{'f'}, 32)}
)

const cookieName = "byok"

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(m.Run())
}

// newStore returns a store on client under a fresh key prefix; the keys it
// wrote are deleted when the test ends.
func newStore(t testing.TB, client redis.UniversalClient, keys [][]byte, opts ...redisstore.Option) (*redisstore.Store, string) {
	t.Helper()
	prefix := testenv.Prefix(t)
	return newStoreAt(t, client, keys, prefix, opts...), prefix
}

func newStoreAt(t testing.TB, client redis.UniversalClient, keys [][]byte, prefix string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.NewStore(client, keys, append([]redisstore.Option{redisstore.WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	t.Cleanup(func() { deletePrefix(client, prefix) })
	return s
}

func deletePrefix(client redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, _ := client.Keys(ctx, prefix+"*").Result()
	if len(keys) > 0 {
		_ = client.Del(ctx, keys...).Err()
	}
}

func countKeys(t *testing.T, client redis.UniversalClient, prefix string) int {
	t.Helper()
	keys, err := client.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	return len(keys)
}

// request sends a GET through h with the given cookies.
func request(h http.Handler, path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		if c != nil {
			req.AddCookie(c)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// lastCookie returns the last Set-Cookie of the named cookie, or nil.
func lastCookie(w *httptest.ResponseRecorder, name string) *http.Cookie {
	var out *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			out = c
		}
	}
	return out
}

// idOf returns the session id a cookie carries (the part before the dot).
func idOf(t *testing.T, c *http.Cookie) string {
	t.Helper()
	if c == nil {
		t.Fatal("no session cookie")
	}
	id, _, ok := strings.Cut(c.Value, ".")
	if !ok {
		t.Fatalf("cookie value %q has no signature", c.Value)
	}
	return id
}

// saveDirect saves values in a new session through the store's own API and
// returns the cookie.
func saveDirect(t *testing.T, s *redisstore.Store, values map[any]any) *http.Cookie {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, err := s.Get(req, cookieName)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	for k, v := range values {
		sess.Values[k] = v
	}
	w := httptest.NewRecorder()
	if err := sess.Save(req, w); err != nil {
		t.Fatalf("Save: %v", err)
	}
	return lastCookie(w, cookieName)
}

// load reads the session a cookie points to with a fresh request.
func load(s *redisstore.Store, c *http.Cookie) (*gsessions.Session, error) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if c != nil {
		req.AddCookie(c)
	}
	return s.Get(req, cookieName)
}

func TestTesterSuite(t *testing.T) {
	rdb := testenv.Redis(t)
	factory := func(t *testing.T) sessions.Store {
		s, _ := newStore(t, rdb, keysA)
		return s
	}
	suite := []struct {
		name string
		run  func(*testing.T, func(*testing.T) sessions.Store)
	}{
		{"GetSet", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.GetSet(t, f) }},
		{"DeleteKey", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.DeleteKey(t, f) }},
		{"Flashes", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Flashes(t, f) }},
		{"Clear", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Clear(t, f) }},
		{"Options", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Options(t, f) }},
		{"Many", func(t *testing.T, f func(*testing.T) sessions.Store) { tester.Many(t, f) }},
	}
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, factory) })
	}
}

func TestNewStoreValidation(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	cases := []struct {
		name   string
		client redis.UniversalClient
		keys   [][]byte
		opts   []redisstore.Option
		want   error
	}{
		{"nil client", nil, keysA, nil, redisstore.ErrNoClient},
		{"no key pairs", rdb, nil, nil, redisstore.ErrNoKeys},
		{"empty key list", rdb, [][]byte{}, nil, redisstore.ErrNoKeys},
		{"short auth key", rdb, [][]byte{[]byte("SENTINEL-short")}, nil, redisstore.ErrShortKey},
		{"short auth key in second pair", rdb, append(append([][]byte{}, keysA...), []byte("SENTINEL-short2")), nil, redisstore.ErrShortKey},
		{"empty prefix", rdb, keysA, []redisstore.Option{redisstore.WithPrefix("")}, redisstore.ErrInvalidOption},
		{"negative max age", rdb, keysA, []redisstore.Option{redisstore.WithMaxAge(-time.Second)}, redisstore.ErrInvalidOption},
		{"sub-second max age", rdb, keysA, []redisstore.Option{redisstore.WithMaxAge(time.Millisecond)}, redisstore.ErrInvalidOption},
		{"zero max length", rdb, keysA, []redisstore.Option{redisstore.WithMaxLength(0)}, redisstore.ErrInvalidOption},
		{"negative default MaxAge", rdb, keysA, []redisstore.Option{redisstore.WithDefaultOptions(sessions.Options{MaxAge: -1})}, redisstore.ErrInvalidOption},
		{"valid", rdb, keysA, []redisstore.Option{redisstore.WithPrefix("p:"), redisstore.WithMaxAge(time.Hour), redisstore.WithMaxLength(10)}, nil},
		{"auth key only, no encryption key", rdb, keysA[:1], nil, nil},
		{"rotation list", rdb, append(append([][]byte{}, keysB...), keysA...), nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.NewStore(tc.client, tc.keys, tc.opts...)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("NewStore: err = %v, want %v", err, tc.want)
			}
			if (err == nil) != (s != nil) {
				t.Fatalf("NewStore: store %v with err %v", s, err)
			}
			if err != nil && strings.Contains(err.Error(), "SENTINEL") {
				t.Fatalf("error reveals key material: %v", err)
			}
		})
	}
}

// Every kind of go-redis client is accepted; constructing the store makes no
// connection.
func TestAcceptsUniversalClients(t *testing.T) {
	clients := map[string]redis.UniversalClient{
		"client":    redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		"cluster":   redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}),
		"failover":  redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}}),
		"universal": redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}),
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			t.Cleanup(func() { _ = c.Close() })
			if _, err := redisstore.NewStore(c, keysA); err != nil {
				t.Fatalf("NewStore(%T): %v", c, err)
			}
		})
	}
}

func TestTTL(t *testing.T) {
	rdb := testenv.Redis(t)
	cases := []struct {
		name       string
		opts       []redisstore.Option
		sessionAge int // per-session Options.MaxAge, 0 = keep the store's
		wantTTL    time.Duration
		wantMaxAge int // cookie Max-Age attribute
	}{
		{"default: browser-session cookie, 24h in Redis", nil, 0, redisstore.DefaultTTL, 0},
		{"WithMaxAge", []redisstore.Option{redisstore.WithMaxAge(2 * time.Hour)}, 0, 2 * time.Hour, 7200},
		{"WithMaxAge wins over WithDefaultOptions", []redisstore.Option{redisstore.WithMaxAge(time.Hour), redisstore.WithDefaultOptions(sessions.Options{Path: "/", MaxAge: 60})}, 0, time.Hour, 3600},
		{"WithDefaultOptions MaxAge", []redisstore.Option{redisstore.WithDefaultOptions(sessions.Options{Path: "/", MaxAge: 600})}, 0, 10 * time.Minute, 600},
		{"per-session MaxAge", nil, 90, 90 * time.Second, 90},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, prefix := newStore(t, rdb, keysA, tc.opts...)
			r := gin.New()
			r.Use(sessions.Sessions(cookieName, s))
			r.GET("/set", func(c *gin.Context) {
				sess := sessions.Default(c)
				if tc.sessionAge != 0 {
					sess.Options(sessions.Options{Path: "/", MaxAge: tc.sessionAge})
				}
				sess.Set("k", "v")
				if err := sess.Save(); err != nil {
					t.Errorf("Save: %v", err)
				}
			})
			w := request(r, "/set")
			c := lastCookie(w, cookieName)
			got, err := rdb.TTL(t.Context(), prefix+idOf(t, c)).Result()
			if err != nil {
				t.Fatalf("TTL: %v", err)
			}
			if got > tc.wantTTL || got < tc.wantTTL-5*time.Second {
				t.Errorf("TTL = %v, want about %v", got, tc.wantTTL)
			}
			if c.MaxAge != tc.wantMaxAge {
				t.Errorf("cookie Max-Age = %d, want %d", c.MaxAge, tc.wantMaxAge)
			}
		})
	}
}

func TestDefaultCookieAttributes(t *testing.T) {
	rdb := testenv.Redis(t)
	s, _ := newStore(t, rdb, keysA)
	c := saveDirect(t, s, map[any]any{"k": "v"})
	if c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != 0 {
		t.Errorf("cookie = %+v, want Path / HttpOnly SameSite=Lax, not Secure, no Max-Age", c)
	}
	secure, _ := newStore(t, rdb, keysA, redisstore.WithDefaultOptions(sessions.Options{Path: "/app", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}))
	c = saveDirect(t, secure, map[any]any{"k": "v"})
	if c.Path != "/app" || !c.Secure || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("cookie = %+v, want Path /app Secure SameSite=Strict", c)
	}
}

func TestMaxLength(t *testing.T) {
	rdb := testenv.Redis(t)
	s, prefix := newStore(t, rdb, keysA, redisstore.WithMaxLength(1024))
	cases := []struct {
		name    string
		value   string
		wantErr bool
	}{
		{"under the limit", strings.Repeat("x", 900), false},
		{"over the limit", strings.Repeat("x", 1100), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := countKeys(t, rdb, prefix)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			sess, _ := s.Get(req, cookieName)
			sess.Values["big"] = tc.value
			w := httptest.NewRecorder()
			err := sess.Save(req, w)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Save: %v", err)
				}
				return
			}
			if !errors.Is(err, redisstore.ErrTooLarge) || !errors.Is(err, stores.ErrTooLarge) {
				t.Fatalf("Save: err = %v, want ErrTooLarge (and stores.ErrTooLarge)", err)
			}
			if n := countKeys(t, rdb, prefix); n != before {
				t.Errorf("%d keys after a refused save, want %d", n, before)
			}
			if c := lastCookie(w, cookieName); c != nil {
				t.Errorf("refused save set a cookie: %v", c)
			}
		})
	}
}

func TestRegenerate(t *testing.T) {
	rdb := testenv.Redis(t)
	s, prefix := newStore(t, rdb, keysA)
	r := gin.New()
	r.Use(sessions.Sessions(cookieName, s))
	r.GET("/set", func(c *gin.Context) {
		sess := sessions.Default(c)
		sess.Set("uid", "u1")
		if err := sess.Save(); err != nil {
			t.Errorf("Save: %v", err)
		}
	})
	r.GET("/login", func(c *gin.Context) {
		sess := sessions.Default(c)
		sess.Set("role", "admin")
		if err := s.Regenerate(c, cookieName); err != nil {
			t.Errorf("Regenerate: %v", err)
		}
		// The gin-contrib session is the regenerated one: later writes
		// go to the new id.
		sess.Set("after", "yes")
		if err := sess.Save(); err != nil {
			t.Errorf("Save after Regenerate: %v", err)
		}
	})
	r.GET("/get", func(c *gin.Context) {
		sess := sessions.Default(c)
		c.String(http.StatusOK, "%v|%v|%v", sess.Get("uid"), sess.Get("role"), sess.Get("after"))
	})

	old := lastCookie(request(r, "/set"), cookieName)
	oldID := idOf(t, old)
	if n, _ := rdb.Exists(t.Context(), prefix+oldID).Result(); n != 1 {
		t.Fatalf("old session not in Redis before regenerate")
	}
	fresh := lastCookie(request(r, "/login", old), cookieName)
	newID := idOf(t, fresh)
	if newID == oldID {
		t.Fatal("Regenerate kept the session id")
	}
	if n, _ := rdb.Exists(t.Context(), prefix+oldID).Result(); n != 0 {
		t.Error("old session key still in Redis after Regenerate")
	}
	if n := countKeys(t, rdb, prefix); n != 1 {
		t.Errorf("%d session keys after Regenerate, want 1", n)
	}
	if got := request(r, "/get", old).Body.String(); got != "<nil>|<nil>|<nil>" {
		t.Errorf("old cookie still loads data: %q", got)
	}
	if got := request(r, "/get", fresh).Body.String(); got != "u1|admin|yes" {
		t.Errorf("new cookie loads %q, want u1|admin|yes", got)
	}
}

func TestRegenerateNewSession(t *testing.T) {
	rdb := testenv.Redis(t)
	s, prefix := newStore(t, rdb, keysA)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, _ := s.Get(req, cookieName)
	sess.Values["k"] = "v"
	w := httptest.NewRecorder()
	if err := s.RegenerateID(w, req, sess); err != nil {
		t.Fatalf("RegenerateID: %v", err)
	}
	c := lastCookie(w, cookieName)
	if idOf(t, c) != sess.ID || countKeys(t, rdb, prefix) != 1 {
		t.Fatalf("RegenerateID of a new session: cookie %v, id %q", c, sess.ID)
	}
	got, err := load(s, c)
	if err != nil || got.Values["k"] != "v" {
		t.Fatalf("load after RegenerateID: %v, %v", got.Values, err)
	}
}

func TestExpireDeletes(t *testing.T) {
	rdb := testenv.Redis(t)
	s, prefix := newStore(t, rdb, keysA)
	c := saveDirect(t, s, map[any]any{"uid": "u1"})

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(c)
	sess, err := s.Get(req, cookieName)
	if err != nil || sess.Values["uid"] != "u1" {
		t.Fatalf("load: %v %v", sess.Values, err)
	}
	sess.Options.MaxAge = -1
	w := httptest.NewRecorder()
	if err := sess.Save(req, w); err != nil {
		t.Fatalf("Save with MaxAge -1: %v", err)
	}
	if n := countKeys(t, rdb, prefix); n != 0 {
		t.Errorf("%d keys after delete, want 0", n)
	}
	if gone := lastCookie(w, cookieName); gone == nil || gone.MaxAge >= 0 || gone.Value != "" {
		t.Errorf("cookie not expired: %+v", gone)
	}
	again, err := load(s, c)
	if err != nil || !again.IsNew || len(again.Values) != 0 {
		t.Errorf("deleted session loads: %v %v", again.Values, err)
	}
}

func TestForgedCookies(t *testing.T) {
	rdb := testenv.Redis(t)
	s, prefix := newStore(t, rdb, keysA)
	good := saveDirect(t, s, map[any]any{"uid": "victim"})
	id := idOf(t, good)
	other := newStoreAt(t, rdb, keysB, prefix) // same Redis keys, other signing key
	flip := func(v string, i int) string {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name  string
		value string
	}{
		{"bare id, unsigned", id},
		{"id with empty signature", id + "."},
		{"signed with another key", redisstore.SignForTest(other, cookieName, id)},
		{"signed for another cookie name", redisstore.SignForTest(s, "other", id)},
		{"last signature character changed", flip(good.Value, len(good.Value)-1)},
		{"id changed", flip(good.Value, 0)},
		{"signature of another id", redisstore.NewIDForTest() + good.Value[43:]},
		{"extra byte", good.Value + "A"},
		{"securecookie-looking", "MTcwMDAwMDAwMHxEdi1CQkFFQ180SUFBUkFCRUFBQUJmLUNBQUE9fA=="},
		{"empty", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := load(s, &http.Cookie{Name: cookieName, Value: tc.value})
			if !errors.Is(err, redisstore.ErrInvalidCookie) {
				t.Errorf("err = %v, want ErrInvalidCookie", err)
			}
			if sess == nil || !sess.IsNew || sess.ID != "" || len(sess.Values) != 0 {
				t.Fatalf("forged cookie gave session %+v", sess)
			}
		})
	}
	// The genuine cookie still works.
	sess, err := load(s, good)
	if err != nil || sess.Values["uid"] != "victim" {
		t.Fatalf("genuine cookie: %v %v", sess.Values, err)
	}
}

func TestKeyRotation(t *testing.T) {
	rdb := testenv.Redis(t)
	oldStore, prefix := newStore(t, rdb, keysA)
	rotated := newStoreAt(t, rdb, append(append([][]byte{}, keysB...), keysA...), prefix) // new key first, old still accepted
	newOnly := newStoreAt(t, rdb, keysB, prefix)                                          // old key retired

	oldCookie := saveDirect(t, oldStore, map[any]any{"uid": "u1"})

	// The rotated store reads a cookie signed with the previous key...
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(oldCookie)
	sess, err := rotated.Get(req, cookieName)
	if err != nil || sess.Values["uid"] != "u1" {
		t.Fatalf("rotated store reading old cookie: %v %v", sess.Values, err)
	}
	// ...and re-signs it with the new key on save, keeping the id.
	w := httptest.NewRecorder()
	if err := sess.Save(req, w); err != nil {
		t.Fatalf("Save: %v", err)
	}
	resigned := lastCookie(w, cookieName)
	if resigned.Value == oldCookie.Value || idOf(t, resigned) != idOf(t, oldCookie) {
		t.Fatalf("re-signed cookie %q, old %q: want same id, new signature", resigned.Value, oldCookie.Value)
	}
	cases := []struct {
		name    string
		store   *redisstore.Store
		cookie  *http.Cookie
		wantErr error
	}{
		{"new-key-only store reads the re-signed cookie", newOnly, resigned, nil},
		{"new-key-only store refuses the old cookie", newOnly, oldCookie, redisstore.ErrInvalidCookie},
		{"old store refuses a cookie signed with the new key", oldStore, resigned, redisstore.ErrInvalidCookie},
		{"rotated store reads the re-signed cookie", rotated, resigned, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := load(tc.store, tc.cookie)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			want := any("u1")
			if tc.wantErr != nil {
				want = nil
			}
			if sess.Values["uid"] != want {
				t.Errorf("uid = %v, want %v", sess.Values["uid"], want)
			}
		})
	}
}

func TestCorruptValue(t *testing.T) {
	rdb := testenv.Redis(t)
	s, prefix := newStore(t, rdb, keysA)
	c := saveDirect(t, s, map[any]any{"uid": "u1"})
	for _, garbage := range []string{"", "\x01", "\x02\x00", "\x01\x05s\x01a", "not a session", "\x01\x01s\x01kL\x01L\x00"} {
		t.Run(fmt.Sprintf("%q", garbage), func(t *testing.T) {
			if err := rdb.Set(t.Context(), prefix+idOf(t, c), garbage, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			sess, err := load(s, c)
			if !errors.Is(err, redisstore.ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
			if !sess.IsNew || sess.ID != "" || len(sess.Values) != 0 {
				t.Errorf("corrupt value gave session %+v", sess)
			}
		})
	}
	// Through gin the handler gets a usable empty session.
	r := gin.New()
	r.Use(sessions.Sessions(cookieName, s))
	r.GET("/", func(c *gin.Context) {
		sess := sessions.Default(c)
		c.String(http.StatusOK, "%v", sess.Get("uid"))
	})
	if got := request(r, "/", c).Body.String(); got != "<nil>" {
		t.Errorf("handler saw %q", got)
	}
}

func TestRedisDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := srv.Client()
	s, _ := newStore(t, rdb, keysA)
	c := saveDirect(t, s, map[any]any{"uid": "u1"})
	if sess, err := load(s, c); err != nil || sess.Values["uid"] != "u1" {
		t.Fatalf("load while up: %v %v", sess.Values, err)
	}

	srv.Stop()

	sess, err := load(s, c)
	if !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("load while down: err = %v, want stores.ErrUnavailable", err)
	}
	if sess == nil || !sess.IsNew || sess.ID != "" || len(sess.Values) != 0 {
		t.Fatalf("load while down gave %+v", sess)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	sess.Values["k"] = "v"
	if err := s.Save(req, httptest.NewRecorder(), sess); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("Save while down: err = %v, want stores.ErrUnavailable", err)
	}
	if err := s.RegenerateID(httptest.NewRecorder(), req, sess); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("RegenerateID while down: err = %v, want stores.ErrUnavailable", err)
	}

	// Through gin: no panic, the handler sees an empty session and a
	// failing Save.
	r := gin.New()
	r.Use(sessions.Sessions(cookieName, s))
	r.GET("/", func(c *gin.Context) {
		sess := sessions.Default(c)
		sess.Set("k", "v")
		c.String(http.StatusOK, "%v %v", sess.Get("uid"), sess.Save() != nil)
	})
	if got := request(r, "/", c).Body.String(); got != "<nil> true" {
		t.Errorf("handler while down: %q", got)
	}

	srv.Start()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if !testenv.WaitFor(ctx, func() bool { _, err := load(s, c); return err == nil }) {
		t.Fatal("store did not recover after Redis came back")
	}
}

func TestConcurrentSessions(t *testing.T) {
	rdb := testenv.Redis(t)
	s, _ := newStore(t, rdb, keysA)
	r := gin.New()
	r.Use(sessions.Sessions(cookieName, s))
	r.GET("/set/:v", func(c *gin.Context) {
		sess := sessions.Default(c)
		sess.Set("v", c.Param("v"))
		if err := sess.Save(); err != nil {
			t.Errorf("Save: %v", err)
		}
	})
	r.GET("/get", func(c *gin.Context) {
		c.String(http.StatusOK, "%v", sessions.Default(c).Get("v"))
	})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			want := fmt.Sprint(i)
			c := lastCookie(request(r, "/set/"+want), cookieName)
			for range 10 {
				if got := request(r, "/get", c).Body.String(); got != want {
					t.Errorf("session %d read %q", i, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Neither the cookie nor Redis holds key material; errors do not either.
func TestKeysNeverLeak(t *testing.T) {
	rdb := testenv.Redis(t)
	s, prefix := newStore(t, rdb, keysA)
	c := saveDirect(t, s, map[any]any{"uid": "u1"})
	val, err := rdb.Get(t.Context(), prefix+idOf(t, c)).Result()
	if err != nil {
		t.Fatal(err)
	}
	_, forgedErr := load(s, &http.Cookie{Name: cookieName, Value: idOf(t, c) + ".x"})
	for what, text := range map[string]string{"cookie": c.String(), "redis value": val, "error": fmt.Sprint(forgedErr)} {
		for _, k := range append(keysA, keysB...) {
			if strings.Contains(text, string(k)) || strings.Contains(text, "SENTINEL") {
				t.Errorf("%s reveals key material", what)
			}
		}
	}
}

// roundTrips counts what a client sends: each command or pipeline is one
// round trip. A new connection's handshake (HELLO, CLIENT SETINFO) is not
// counted: it is paid once per pooled connection, not per operation.
type roundTrips struct {
	mu    sync.Mutex
	trips int
	cmds  []string
}

func isHandshake(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if n := c.Name(); n != "hello" && n != "client" {
			return false
		}
	}
	return true
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.record(cmds)
		return next(ctx, cmds)
	}
}

func (h *roundTrips) record(cmds []redis.Cmder) {
	if isHandshake(cmds) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips++
	for _, c := range cmds {
		h.cmds = append(h.cmds, c.Name())
	}
}

func (h *roundTrips) take() (int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, cmds := h.trips, strings.Join(h.cmds, " ")
	h.trips, h.cmds = 0, nil
	return n, cmds
}

// Loading is one GET, saving one SET, regenerating one pipelined SET+DEL,
// deleting one DEL; a forged cookie costs no round trip at all.
func TestRoundTrips(t *testing.T) {
	rdb := testenv.Redis(t)
	hook := &roundTrips{}
	rdb.AddHook(hook)
	s, _ := newStore(t, rdb, keysA)

	c := saveDirect(t, s, map[any]any{"uid": "u1"})
	check := func(step string, wantTrips int, wantCmds string) {
		t.Helper()
		if n, cmds := hook.take(); n != wantTrips || cmds != wantCmds {
			t.Errorf("%s: %d round trips (%s), want %d (%s)", step, n, cmds, wantTrips, wantCmds)
		}
	}
	check("save", 1, "set")

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(c)
	sess, err := s.Get(req, cookieName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(req, cookieName); err != nil { // cached for the request
		t.Fatal(err)
	}
	check("load", 1, "get")

	if err := s.RegenerateID(httptest.NewRecorder(), req, sess); err != nil {
		t.Fatal(err)
	}
	check("regenerate", 1, "set del")

	sess.Options.MaxAge = -1
	if err := s.Save(req, httptest.NewRecorder(), sess); err != nil {
		t.Fatal(err)
	}
	check("delete", 1, "del")

	if _, err := load(s, &http.Cookie{Name: cookieName, Value: c.Value[:43] + ".forged"}); err == nil {
		t.Fatal("forged cookie accepted")
	}
	check("forged cookie", 0, "")
}
