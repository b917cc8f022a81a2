package session_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/session"
)

// fakeSession is an in-memory stores.Session that counts saves and can fail
// them.
type fakeSession struct {
	vals    map[any]any
	saves   int
	saveErr error
}

func newFake() *fakeSession { return &fakeSession{vals: map[any]any{}} }

func (f *fakeSession) Get(k any) any     { return f.vals[k] }
func (f *fakeSession) Set(k, v any)      { f.vals[k] = v }
func (f *fakeSession) Delete(k any)      { delete(f.vals, k) }
func (f *fakeSession) Save() error       { f.saves++; return f.saveErr }
func (f *fakeSession) entry() []byte     { b, _ := f.vals[session.DefaultKey].([]byte); return b }
func (f *fakeSession) has(k string) bool { _, ok := f.vals[k]; return ok }

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)} }
func ct(s string) []byte             { return []byte("\x01\x00\x00\x00\x07" + s + strings.Repeat("#", 28)) }
func rec(p string, c *clock) stores.Record {
	return stores.Record{Provider: p, Ciphertext: ct(p), KeyID: 7, CreatedAt: c.now()}
}

func newStore(t *testing.T, c *clock, opts ...session.Option) *session.Store {
	t.Helper()
	s, err := session.New(append([]session.Option{session.WithClock(c.now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCRUD(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(t, c)
	fs := newFake()
	scope := stores.Scope{UserID: "u1", Session: fs}

	if _, err := s.Get(ctx, scope, "openai"); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Get on empty session: %v, want ErrNotFound", err)
	}
	for _, p := range []string{"openai", "anthropic", "mistral"} {
		replaced, err := s.Put(ctx, scope, rec(p, c))
		if err != nil || replaced {
			t.Fatalf("Put %s = %v, %v; want false, nil", p, replaced, err)
		}
	}
	if fs.saves != 3 {
		t.Errorf("saves = %d, want 3 (one per Put)", fs.saves)
	}
	got, err := s.Get(ctx, scope, "anthropic")
	if err != nil {
		t.Fatal(err)
	}
	want := rec("anthropic", c)
	want.UserID = "u1"
	want.CreatedAt = want.CreatedAt.Truncate(time.Microsecond)
	want.UpdatedAt = want.CreatedAt
	if !equal(got, want) {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	list, err := s.List(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if ps := providers(list); ps != "anthropic,mistral,openai" {
		t.Errorf("List providers = %s, want sorted anthropic,mistral,openai", ps)
	}

	c.add(time.Minute)
	r2 := rec("openai", c)
	r2.Ciphertext = ct("second")
	if replaced, err := s.Put(ctx, scope, r2); err != nil || !replaced {
		t.Fatalf("replacing Put = %v, %v; want true, nil", replaced, err)
	}
	if got, _ := s.Get(ctx, scope, "openai"); !bytes.Equal(got.Ciphertext, ct("second")) || !got.UpdatedAt.Equal(c.now().Truncate(time.Microsecond)) {
		t.Errorf("after replace Get = %+v", got)
	}

	if existed, err := s.Delete(ctx, scope, "mistral"); err != nil || !existed {
		t.Fatalf("Delete = %v, %v; want true, nil", existed, err)
	}
	saves := fs.saves
	if existed, err := s.Delete(ctx, scope, "mistral"); err != nil || existed {
		t.Fatalf("second Delete = %v, %v; want false, nil", existed, err)
	}
	if fs.saves != saves {
		t.Errorf("a Delete that changed nothing saved the session")
	}
	if n, err := s.Clear(ctx, scope); err != nil || n != 2 {
		t.Fatalf("Clear = %d, %v; want 2, nil", n, err)
	}
	if fs.has(session.DefaultKey) {
		t.Errorf("Clear left the entry in the session")
	}
	if n, err := s.Clear(ctx, scope); err != nil || n != 0 {
		t.Fatalf("second Clear = %d, %v; want 0, nil", n, err)
	}
	if l, err := s.List(ctx, scope); err != nil || len(l) != 0 {
		t.Fatalf("List after Clear = %v, %v", l, err)
	}
}

func TestExpiry(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(t, c)
	fs := newFake()
	scope := stores.Scope{AnonID: "a1", Session: fs}

	short := rec("openai", c)
	short.ExpiresAt = c.now().Add(time.Hour)
	long := rec("groq", c)
	long.ExpiresAt = c.now().Add(48 * time.Hour)
	for _, r := range []stores.Record{short, long, rec("mistral", c)} {
		if _, err := s.Put(ctx, scope, r); err != nil {
			t.Fatal(err)
		}
	}
	c.add(time.Hour) // exactly at expiry: expired
	saves := fs.saves
	before := bytes.Clone(fs.entry())
	if _, err := s.Get(ctx, scope, "openai"); !errors.Is(err, stores.ErrNotFound) {
		t.Errorf("Get of an expired key: %v, want ErrNotFound", err)
	}
	if l, _ := s.List(ctx, scope); providers(l) != "groq,mistral" {
		t.Errorf("List = %s, want groq,mistral", providers(l))
	}
	if fs.saves != saves || !bytes.Equal(before, fs.entry()) {
		t.Errorf("a read modified or saved the session")
	}

	// Put of a provider whose record expired counts as new.
	if replaced, err := s.Put(ctx, scope, rec("openai", c)); err != nil || replaced {
		t.Errorf("Put over an expired record = %v, %v; want false, nil", replaced, err)
	}
	// Delete of an expired record reports false but drops it from the entry.
	c.add(47 * time.Hour)
	if existed, err := s.Delete(ctx, scope, "groq"); err != nil || existed {
		t.Errorf("Delete of expired = %v, %v; want false, nil", existed, err)
	}
	_, recs, err := session.Decode(fs.entry())
	if err != nil {
		t.Fatal(err)
	}
	if providers(recs) != "mistral,openai" {
		t.Errorf("entry after write = %s, want the expired record dropped", providers(recs))
	}
	// An already-expired record is refused.
	dead := rec("cohere", c)
	dead.ExpiresAt = c.now()
	if _, err := s.Put(ctx, scope, dead); !errors.Is(err, stores.ErrInvalidRecord) {
		t.Errorf("Put of an expired record: %v, want ErrInvalidRecord", err)
	}
	// Clear counts live records only.
	exp := rec("together", c)
	exp.ExpiresAt = c.now().Add(time.Second)
	if _, err := s.Put(ctx, scope, exp); err != nil {
		t.Fatal(err)
	}
	c.add(time.Second)
	if n, err := s.Clear(ctx, scope); err != nil || n != 2 {
		t.Errorf("Clear = %d, %v; want 2 live records", n, err)
	}
}

func TestOwnerChange(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(t, c)
	fs := newFake()
	alice := stores.Scope{UserID: "alice", Session: fs}
	bob := stores.Scope{UserID: "bob", Session: fs}
	anon := stores.Scope{AnonID: "alice", Session: fs} // same id, different kind of owner

	if _, err := s.Put(ctx, alice, rec("openai", c)); err != nil {
		t.Fatal(err)
	}
	for name, sc := range map[string]stores.Scope{"bob": bob, "anonymous": anon} {
		if _, err := s.Get(ctx, sc, "openai"); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("%s read alice's key: %v", name, err)
		}
		if l, err := s.List(ctx, sc); err != nil || len(l) != 0 {
			t.Errorf("%s listed %d records, %v", name, len(l), err)
		}
		if existed, err := s.Delete(ctx, sc, "openai"); err != nil || existed {
			t.Errorf("%s Delete = %v, %v", name, existed, err)
		}
	}
	// bob's Delete above replaced the entry: alice's key is gone from the session.
	if fs.has(session.DefaultKey) {
		t.Errorf("entry of another owner left in the session after a write")
	}
	if _, err := s.Put(ctx, alice, rec("openai", c)); err != nil {
		t.Fatal(err)
	}
	if replaced, err := s.Put(ctx, bob, rec("groq", c)); err != nil || replaced {
		t.Fatalf("bob Put = %v, %v", replaced, err)
	}
	owner, recs, err := session.Decode(fs.entry())
	if err != nil || owner != "u:bob" || providers(recs) != "groq" {
		t.Errorf("entry = %q %s %v; want only bob's groq", owner, providers(recs), err)
	}
	if n, err := s.Clear(ctx, alice); err != nil || n != 0 {
		t.Errorf("alice Clear of bob's entry = %d, %v; want 0", n, err)
	}
	wrong := rec("x", c)
	wrong.UserID = "alice"
	if _, err := s.Put(ctx, bob, wrong); !errors.Is(err, stores.ErrInvalidRecord) {
		t.Errorf("Put of alice's record in bob's scope: %v, want ErrInvalidRecord", err)
	}
}

func TestMalformedEntry(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	var logs bytes.Buffer
	s := newStore(t, c, session.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	scope := stores.Scope{UserID: "u", Session: nil}
	for name, v := range map[string]any{
		"garbage":        []byte("SENTINEL-not-an-entry"),
		"truncated":      mustEncode(t, "u:u", rec("openai", c))[:20],
		"future version": append([]byte{9}, mustEncode(t, "u:u", rec("openai", c))[1:]...),
		"wrong type":     42,
	} {
		t.Run(name, func(t *testing.T) {
			logs.Reset()
			fs := newFake()
			fs.Set(session.DefaultKey, v)
			scope.Session = fs
			if l, err := s.List(ctx, scope); err != nil || len(l) != 0 {
				t.Fatalf("List = %v, %v; want empty, nil", l, err)
			}
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("malformed entry not logged: %q", logs.String())
			}
			if strings.Contains(logs.String(), "SENTINEL") {
				t.Errorf("log shows the entry's contents: %q", logs.String())
			}
			if replaced, err := s.Put(ctx, scope, rec("openai", c)); err != nil || replaced {
				t.Fatalf("Put = %v, %v", replaced, err)
			}
			if _, err := s.Get(ctx, scope, "openai"); err != nil {
				t.Errorf("Get after overwrite: %v", err)
			}
		})
	}
}

func TestStringEntry(t *testing.T) {
	// A session store that serialises with JSON gives a []byte back as a
	// string; the entry still reads.
	c := newClock()
	s := newStore(t, c)
	fs := newFake()
	fs.Set(session.DefaultKey, string(mustEncode(t, "a:x", rec("openai", c))))
	if _, err := s.Get(t.Context(), stores.Scope{AnonID: "x", Session: fs}, "openai"); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := newStore(t, c, session.WithMaxBytes(300))
	scope := stores.Scope{UserID: "u"}

	t.Run("no session", func(t *testing.T) {
		if _, err := s.Put(ctx, scope, rec("openai", c)); !errors.Is(err, stores.ErrNoSession) {
			t.Errorf("Put: %v", err)
		}
		if _, err := s.Get(ctx, scope, "openai"); !errors.Is(err, stores.ErrNoSession) {
			t.Errorf("Get: %v", err)
		}
		if _, err := s.Delete(ctx, scope, "openai"); !errors.Is(err, stores.ErrNoSession) {
			t.Errorf("Delete: %v", err)
		}
		if _, err := s.List(ctx, scope); !errors.Is(err, stores.ErrNoSession) {
			t.Errorf("List: %v", err)
		}
		if _, err := s.Clear(ctx, scope); !errors.Is(err, stores.ErrNoSession) {
			t.Errorf("Clear: %v", err)
		}
	})
	t.Run("save fails", func(t *testing.T) {
		fs := newFake()
		scope := scope
		scope.Session = fs
		if _, err := s.Put(ctx, scope, rec("openai", c)); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("redis: connection refused")
		fs.saveErr = boom
		_, err1 := s.Put(ctx, scope, rec("groq", c))
		_, err2 := s.Delete(ctx, scope, "openai")
		_, err3 := s.Clear(ctx, scope)
		for i, err := range []error{err1, err2, err3} {
			if !errors.Is(err, stores.ErrUnavailable) || !errors.Is(err, boom) {
				t.Errorf("write %d: %v, want ErrUnavailable wrapping the Save error", i, err)
			}
		}
	})
	t.Run("too large", func(t *testing.T) {
		fs := newFake()
		scope := scope
		scope.Session = fs
		var err error
		n := 0
		for ; n < 20 && err == nil; n++ {
			r := rec(fmt.Sprintf("p%02d", n), c)
			r.Ciphertext = bytes.Repeat([]byte("SENTINEL"), 8)
			_, err = s.Put(ctx, scope, r)
		}
		if !errors.Is(err, stores.ErrTooLarge) {
			t.Fatalf("after %d Puts: %v, want ErrTooLarge", n, err)
		}
		if strings.Contains(err.Error(), "SENTINEL") {
			t.Errorf("error shows the ciphertext: %v", err)
		}
		if len(fs.entry()) > 300 {
			t.Errorf("entry is %d bytes, over the 300 limit", len(fs.entry()))
		}
		if l, _ := s.List(ctx, scope); len(l) != n-1 {
			t.Errorf("List has %d records, want the %d that fit", len(l), n-1)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		scope := stores.Scope{UserID: "u", Session: newFake()}
		for name, r := range map[string]stores.Record{
			"no provider":   {Ciphertext: ct("x"), CreatedAt: c.now()},
			"no ciphertext": {Provider: "openai", CreatedAt: c.now()},
			"no created":    {Provider: "openai", Ciphertext: ct("x")},
			"bad utf8":      {Provider: "open\xffai", Ciphertext: ct("x"), CreatedAt: c.now()},
			"long provider": {Provider: strings.Repeat("p", 65), Ciphertext: ct("x"), CreatedAt: c.now()},
		} {
			if _, err := s.Put(ctx, scope, r); !errors.Is(err, stores.ErrInvalidRecord) {
				t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
			}
		}
	})
	t.Run("options", func(t *testing.T) {
		for name, o := range map[string]session.Option{
			"empty key": session.WithKey(""), "nil clock": session.WithClock(nil),
			"tiny max": session.WithMaxBytes(10), "nil logger": session.WithLogger(nil),
		} {
			if _, err := session.New(o); err == nil {
				t.Errorf("%s accepted", name)
			}
		}
	})
}

func TestCustomKey(t *testing.T) {
	c := newClock()
	s := newStore(t, c, session.WithKey("my.keys"))
	fs := newFake()
	if _, err := s.Put(t.Context(), stores.Scope{AnonID: "a", Session: fs}, rec("openai", c)); err != nil {
		t.Fatal(err)
	}
	if !fs.has("my.keys") || fs.has(session.DefaultKey) {
		t.Errorf("entry not stored under my.keys: %v", fs.vals)
	}
}

// TestOverhead checks the budget: no more than ~100 bytes of
// session per key beyond the ciphertext.
func TestOverhead(t *testing.T) {
	c := newClock()
	ps := []string{"openai", "anthropic", "google", "mistral", "groq", "xai", "openrouter", "deepseek", "cohere", "huggingface"}
	var recs []stores.Record
	total := 0
	for _, p := range ps {
		r := rec(p, c)
		r.UpdatedAt = c.now().Add(time.Hour)
		r.ExpiresAt = c.now().Add(90 * 24 * time.Hour)
		r.Ciphertext = bytes.Repeat([]byte{0xAB}, 33+164) // sealed Anthropic-sized key
		r.KeyID = 0xFFFFFFFF
		recs = append(recs, r)
		total += len(r.Ciphertext)
	}
	slices.SortFunc(recs, func(a, b stores.Record) int { return strings.Compare(a.Provider, b.Provider) })
	b := mustEncode(t, "u:"+strings.Repeat("x", 36), recs...)
	per := float64(len(b)-total) / float64(len(recs))
	t.Logf("entry %d bytes for %d keys: %.1f bytes per key beyond the ciphertext (owner included)", len(b), len(recs), per)
	if per > 100 {
		t.Errorf("overhead %.1f bytes per key, budget 100", per)
	}
	one := mustEncode(t, "", recs[0])
	if n := len(one) - len(recs[0].Ciphertext); n > 100 {
		t.Errorf("a single key costs %d bytes beyond its ciphertext", n)
	}
}

// TestCookieSession runs the store inside a real gin-contrib cookie session:
// a Put in one request is read back in the next, and a full entry still
// fits the browser's 4096-byte cookie limit.
func TestCookieSession(t *testing.T) {
	gin.SetMode(gin.TestMode)
	s, err := session.New()
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(sessions.Sessions("byok", cookie.NewStore(bytes.Repeat([]byte("k"), 64), bytes.Repeat([]byte("e"), 32))))
	scope := func(c *gin.Context) stores.Scope {
		return stores.Scope{AnonID: "anon-1234567890abcdef", Session: sessions.Default(c)}
	}
	now := time.Now().UTC()
	r.POST("/put/:p/:n", func(c *gin.Context) {
		n := 0
		fmt.Sscan(c.Param("n"), &n)
		replaced, err := s.Put(c, scope(c), stores.Record{Provider: c.Param("p"),
			Ciphertext: bytes.Repeat([]byte{0xCD}, n), KeyID: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		switch {
		case errors.Is(err, stores.ErrTooLarge):
			c.Status(http.StatusRequestEntityTooLarge)
		case err != nil:
			c.String(http.StatusInternalServerError, err.Error())
		default:
			c.String(http.StatusOK, "%v", replaced)
		}
	})
	r.GET("/get/:p", func(c *gin.Context) {
		rec, err := s.Get(c, scope(c), c.Param("p"))
		if err != nil {
			c.String(http.StatusNotFound, err.Error())
			return
		}
		c.String(http.StatusOK, "%d %d", len(rec.Ciphertext), rec.KeyID)
	})
	do := func(method, path string, cookies []*http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}

	w := do(http.MethodPost, "/put/openai/200", nil)
	if w.Code != http.StatusOK || w.Body.String() != "false" {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("got %d cookies", len(cookies))
	}
	if w := do(http.MethodGet, "/get/openai", cookies); w.Code != http.StatusOK || w.Body.String() != "200 1" {
		t.Fatalf("get in the next request: %d %s", w.Code, w.Body)
	}
	if w := do(http.MethodGet, "/get/openai", nil); w.Code != http.StatusNotFound {
		t.Fatalf("get without the cookie: %d %s", w.Code, w.Body)
	}

	// Fill the entry up to the limit, one provider at a time.
	biggest := 0
	for i := 0; ; i++ {
		w := do(http.MethodPost, fmt.Sprintf("/put/p%02d/180", i), cookies)
		if w.Code == http.StatusRequestEntityTooLarge {
			break
		}
		if w.Code != http.StatusOK {
			t.Fatalf("put %d: %d %s", i, w.Code, w.Body)
		}
		cookies = w.Result().Cookies()
		biggest = max(biggest, len(cookies[0].String()))
		if i > 100 {
			t.Fatal("the size limit never applied")
		}
	}
	t.Logf("largest Set-Cookie value: %d bytes", biggest)
	if biggest >= 4096 {
		t.Errorf("a full entry makes a %d-byte cookie; browsers drop cookies over 4096", biggest)
	}
	if w := do(http.MethodGet, "/get/openai", cookies); w.Code != http.StatusOK {
		t.Fatalf("first key lost after filling: %d %s", w.Code, w.Body)
	}
}

func mustEncode(t testing.TB, owner string, recs ...stores.Record) []byte {
	t.Helper()
	b, err := session.Encode(owner, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func providers(recs []stores.Record) string {
	ps := make([]string, len(recs))
	for i, r := range recs {
		ps[i] = r.Provider
	}
	return strings.Join(ps, ",")
}

func equal(a, b stores.Record) bool {
	return a.UserID == b.UserID && a.Provider == b.Provider && bytes.Equal(a.Ciphertext, b.Ciphertext) &&
		a.KeyID == b.KeyID && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt)
}
