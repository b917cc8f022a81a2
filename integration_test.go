package byok_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
)

// backend is one storage configuration the plugin supports.
type backend struct {
	name string
	// opts builds the options; db and rdb are what it connected to (nil if
	// unused), for tests that look inside.
	opts func(t *testing.T) (opts []byok.Option, db *sqlx.DB, rdb redis.UniversalClient, prefix string)
}

var backends = []backend{
	{"cookie", func(t *testing.T) ([]byok.Option, *sqlx.DB, redis.UniversalClient, string) {
		return nil, nil, nil, ""
	}},
	{"sqlite", func(t *testing.T) ([]byok.Option, *sqlx.DB, redis.UniversalClient, string) {
		db := testenv.SQLite(t)
		return []byok.Option{byok.WithDB(db)}, db, nil, ""
	}},
	{"postgres", func(t *testing.T) ([]byok.Option, *sqlx.DB, redis.UniversalClient, string) {
		db := testenv.Postgres(t)
		return []byok.Option{byok.WithDB(db)}, db, nil, ""
	}},
	{"redis", func(t *testing.T) ([]byok.Option, *sqlx.DB, redis.UniversalClient, string) {
		rdb, prefix := testenv.Redis(t), testenv.Prefix(t)
		return []byok.Option{byok.WithRedis(rdb), byok.WithRedisPrefix(prefix)}, nil, rdb, prefix
	}},
	{"redis+postgres", func(t *testing.T) ([]byok.Option, *sqlx.DB, redis.UniversalClient, string) {
		rdb, prefix, db := testenv.Redis(t), testenv.Prefix(t), testenv.Postgres(t)
		return []byok.Option{byok.WithRedis(rdb), byok.WithRedisPrefix(prefix), byok.WithDB(db)}, db, rdb, prefix
	}},
	{"redis+sqlite", func(t *testing.T) ([]byok.Option, *sqlx.DB, redis.UniversalClient, string) {
		rdb, prefix, db := testenv.Redis(t), testenv.Prefix(t), testenv.SQLite(t)
		return []byok.Option{byok.WithRedis(rdb), byok.WithRedisPrefix(prefix), byok.WithDB(db)}, db, rdb, prefix
	}},
}

// browser returns a client of the same app with its own cookie jar: another
// device or browser.
func (a *app) browser() *app {
	b := *a
	b.jar, _ = cookiejar.New(nil)
	return &b
}

func TestBackends(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			opts, _, _, _ := be.opts(t)
			a := newApp(t, opts...)
			a.guarded(a.engine)

			// Anonymous visitor.
			a.store("openai", openAIKey, "")
			if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 || !strings.Contains(w.Body.String(), openAIKey) {
				t.Fatalf("anonymous guard: %d %s", w.Code, w.Body)
			}
			other := a.browser()
			if other.hasKey("openai") {
				t.Fatal("another browser sees an anonymous visitor's key")
			}

			// Signed-in user, on two browsers.
			a.setUser("alice")
			if a.hasKey("openai") {
				t.Fatal("alice sees the anonymous key of her session")
			}
			a.store("anthropic", anthroKey, "never")
			if be.name == "cookie" || be.name == "redis" {
				// Session-only storage: the key lives in this browser's session.
				return
			}
			if !other.hasKey("anthropic") {
				t.Fatal("alice's key does not follow her to another browser")
			}
			if w := other.do(req(kJSON, "GET", "/any", nil)); w.Code != 200 || !strings.Contains(w.Body.String(), anthroKey) {
				t.Fatalf("guard on the other browser: %d %s", w.Code, w.Body)
			}
			// A delete on one browser is seen by the other at once.
			if w := other.do(req(kJSON, "DELETE", "/keys/anthropic", nil)); w.Code != 204 {
				t.Fatalf("delete: %d", w.Code)
			}
			if w := a.do(req(kJSON, "GET", "/any", nil)); w.Code != 403 {
				t.Fatalf("deleted key still served to the first browser: %d %s", w.Code, w.Body)
			}
			// bob does not see alice's keys.
			a.store("openai", openAIKey2, "")
			a.setUser("bob")
			if a.hasKey("openai") {
				t.Fatal("bob sees alice's key")
			}
		})
	}
}

func TestRedisSessionRevocation(t *testing.T) {
	rdb, prefix := testenv.Redis(t), testenv.Prefix(t)
	a := newApp(t, byok.WithRedis(rdb), byok.WithRedisPrefix(prefix))
	a.guarded(a.engine)
	a.store("openai", openAIKey, "")
	stolen := a.jar.Cookies(base)
	if w := a.do(req(kJSON, "DELETE", "/keys/openai", nil)); w.Code != 204 {
		t.Fatalf("delete: %d", w.Code)
	}
	// Replaying the cookie from before the delete does not bring the key
	// back: the session lives in Redis.
	r := req(kJSON, "GET", "/chat", nil)
	for _, c := range stolen {
		r.AddCookie(c)
	}
	thief := a.browser()
	if w := thief.do(r); w.Code != 403 {
		t.Fatalf("replayed cookie: %d %s", w.Code, w.Body)
	}
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no session keys under the test prefix: %v %v", keys, err)
	}
}

func TestRegisterErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []byok.Option
		want error
	}{
		{"no secret", []byok.Option{}, byok.ErrConfig},
		{"short secret", []byok.Option{byok.WithSecret("c2hvcnQ=")}, encrypt.ErrShortSecret},
		{"empty secret", []byok.Option{byok.WithSecret("")}, encrypt.ErrShortSecret},
		{"weak secret", []byok.Option{byok.WithSecret(strings.Repeat("00", 32))}, encrypt.ErrWeakSecret},
		{"not base64", []byok.Option{byok.WithSecret("!!!!not a secret at all, not base64!!!!!!!!")}, encrypt.ErrInvalidSecret},
		{"short previous secret", []byok.Option{byok.WithSecret(secretA, "c2hvcnQ=")}, encrypt.ErrShortSecret},
		{"same secret twice", []byok.Option{byok.WithSecret(secretA, secretA)}, encrypt.ErrDuplicateKeyID},
		{"prefix trailing slash", []byok.Option{byok.WithPrefix("/keys/")}, byok.ErrConfig},
		{"prefix relative", []byok.Option{byok.WithPrefix("keys")}, byok.ErrConfig},
		{"prefix root", []byok.Option{byok.WithPrefix("/")}, byok.ErrConfig},
		{"prefix param", []byok.Option{byok.WithPrefix("/:user/keys")}, byok.ErrConfig},
		{"prefix dotdot", []byok.Option{byok.WithPrefix("/a/../keys")}, byok.ErrConfig},
		{"prefix space", []byok.Option{byok.WithPrefix("/my keys")}, byok.ErrConfig},
		{"ttl not a choice", []byok.Option{byok.WithTTL(3 * time.Hour)}, byok.ErrConfig},
		{"ttl negative", []byok.Option{byok.WithTTL(-2 * time.Hour)}, byok.ErrConfig},
		{"ttl never not allowed", []byok.Option{byok.WithTTL(byok.Never), byok.WithTTLChoices(time.Hour)}, byok.ErrConfig},
		{"default ttl not in custom choices", []byok.Option{byok.WithTTLChoices(time.Hour, 2*time.Hour)}, byok.ErrConfig},
		{"duplicate ttl choice", []byok.Option{byok.WithTTLChoices(time.Hour, 60*time.Minute)}, byok.ErrConfig},
		{"no ttl choices", []byok.Option{byok.WithTTLChoices()}, byok.ErrConfig},
		{"duplicate provider", []byok.Option{byok.WithProviders(byok.OpenAI, byok.Anthropic, byok.OpenAI)}, byok.ErrConfig},
		{"no providers", []byok.Option{byok.WithProviders()}, byok.ErrConfig},
		{"reserved provider name", []byok.Option{byok.WithProviders(byok.Provider{Name: "clear", DisplayName: "Clear"})}, byok.ErrConfig},
		{"invalid provider", []byok.Option{byok.WithProviders(byok.Provider{Name: "Open AI", DisplayName: "x"})}, byok.ErrInvalidProvider},
		{"keyring and aead", []byok.Option{byok.WithKeyring(mustKeyring(t, secretB)), byok.WithAEAD(mustKeyring(t, secretB))}, byok.ErrConfig},
		{"store and db", []byok.Option{byok.WithStore(failingStore{}), byok.WithDB(sqlx.NewDb(nil, "sqlite"))}, byok.ErrConfig},
		{"table without db", []byok.Option{byok.WithTable("keys")}, byok.ErrConfig},
		{"bad trusted origin", []byok.Option{byok.WithTrustedOrigins("not an origin")}, byok.ErrConfig},
		{"bad rate limit", []byok.Option{byok.WithRateLimit(5, 0)}, byok.ErrConfig},
		{"bad cleanup interval", []byok.Option{byok.WithCleanupInterval(time.Millisecond)}, byok.ErrConfig},
		{"bad session name", []byok.Option{byok.WithSessionName("a b")}, byok.ErrConfig},
		{"nil logger", []byok.Option{byok.WithLogger(nil)}, byok.ErrConfig},
		{"nil user func", []byok.Option{byok.WithUser(nil)}, byok.ErrConfig},
		{"nil store", []byok.Option{byok.WithStore((*failingStore)(nil))}, byok.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{t: t, logs: &syncBuffer{}, shared: &shared{}}
			opts := tt.opts
			if !strings.Contains(tt.name, "secret") {
				opts = append([]byok.Option{byok.WithSecret(secretA)}, opts...)
			}
			opts = append([]byok.Option{byok.WithLogger(discardLogger(a))}, opts...)
			p, err := byok.Register(ginEngine(), opts...)
			if err == nil {
				_ = p.Close()
				t.Fatal("Register succeeded")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v does not wrap %v", err, tt.want)
			}
			if strings.Contains(err.Error(), secretA) {
				t.Fatal("the error holds the secret")
			}
		})
	}
	if _, err := byok.Register(nil, byok.WithSecret(secretA)); !errors.Is(err, byok.ErrConfig) {
		t.Fatalf("nil router: %v", err)
	}
	// Routes already taken.
	r := ginEngine()
	if _, err := byok.Register(r, byok.WithSecret(secretA)); err != nil {
		t.Fatal(err)
	}
	if _, err := byok.Register(r, byok.WithSecret(secretA)); !errors.Is(err, byok.ErrConfig) {
		t.Fatalf("second Register on one router: %v", err)
	}
	r = ginEngine()
	r.GET("/keys/:id/delete", func(*gin.Context) {})
	if _, err := byok.Register(r, byok.WithSecret(secretA)); !errors.Is(err, byok.ErrConfig) {
		t.Fatalf("conflicting host route: %v", err)
	}
	// Optional services left unset (nil) mean none.
	var noRedis *redis.Client
	a := newApp(t, byok.WithDB(nil), byok.WithRedis(noRedis))
	a.store("openai", openAIKey, "")
	if !a.hasKey("openai") {
		t.Fatal("nil DB and Redis: key not kept in the session")
	}
}

func mustKeyring(t testing.TB, secrets ...string) *encrypt.Keyring {
	t.Helper()
	k, err := encrypt.KeyringFromSecrets(secrets[0], secrets[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRegisterUnreachableDB(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", fmt.Sprintf("postgres://byok@127.0.0.1:%d/byok?sslmode=disable&connect_timeout=2", port))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = byok.Register(ginEngine(), byok.WithSecret(secretA), byok.WithDB(db))
	if !errors.Is(err, byok.ErrUnavailable) || !strings.Contains(err.Error(), "reaching the database") {
		t.Fatalf("Register: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRegisterBadTable(t *testing.T) {
	db := testenv.SQLite(t)
	_, err := byok.Register(ginEngine(), byok.WithSecret(secretA), byok.WithDB(db), byok.WithTable("keys; drop table x"))
	if !errors.Is(err, byok.ErrConfig) {
		t.Fatalf("Register: %v", err)
	}
}

// TestWrongSecretAndRotation: a database written under secret A refuses a
// start with secret B (and deletes nothing), accepts (B, A), serves the old
// keys, re-seals them under B when read, and then starts with B alone.
func TestWrongSecretAndRotation(t *testing.T) {
	for _, be := range []string{"sqlite", "postgres"} {
		t.Run(be, func(t *testing.T) {
			var db *sqlx.DB
			if be == "sqlite" {
				db = testenv.SQLite(t)
			} else {
				db = testenv.Postgres(t)
			}
			a := newApp(t, byok.WithDB(db))
			a.setUser("alice")
			a.store("openai", openAIKey, "")
			a.store("anthropic", anthroKey, "7d")
			before := a.info("anthropic")
			_ = a.p.Close()
			rows := countRows(t, db)

			_, err := byok.Register(ginEngine(), byok.WithSecret(secretB), byok.WithDB(db), byok.WithLogger(discardLogger(a)))
			if !errors.Is(err, encrypt.ErrWrongSecret) {
				t.Fatalf("Register with a wrong secret: %v", err)
			}
			if n := countRows(t, db); n != rows {
				t.Fatalf("rows %d → %d after a wrong secret", rows, n)
			}

			rotated := newApp(t, byok.WithSecret(secretB, secretA), byok.WithDB(db))
			rotated.setUser("alice")
			idB := mustKeyring(t, secretB).PrimaryID()
			if ids := keyIDs(t, db); slices.Contains(ids, int64(idB)) {
				t.Fatalf("rows sealed under B before any read: %v", ids)
			}
			rotated.guarded(rotated.engine)
			if w := rotated.do(req(kJSON, "GET", "/both", nil)); w.Code != 200 || !strings.Contains(w.Body.String(), openAIKey) {
				t.Fatalf("old keys after rotation: %d %s", w.Code, w.Body)
			}
			for _, id := range keyIDs(t, db) {
				if id != int64(idB) {
					t.Fatalf("a row is still sealed under the old key: %v", keyIDs(t, db))
				}
			}
			after := rotated.info("anthropic")
			if after["created_at"] != before["created_at"] || after["expires_at"] != before["expires_at"] {
				t.Fatalf("rewrap changed times: %v → %v", before, after)
			}
			_ = rotated.p.Close()

			// Every row and the check value are under B now: B alone starts.
			onlyB := newApp(t, byok.WithSecret(secretB), byok.WithDB(db))
			onlyB.setUser("alice")
			if !onlyB.hasKey("openai") || !onlyB.hasKey("anthropic") {
				t.Fatal("keys lost after dropping the old secret")
			}
		})
	}
}

func countRows(t testing.TB, db *sqlx.DB) int {
	t.Helper()
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM byok_keys"); err != nil {
		t.Fatal(err)
	}
	return n
}

func keyIDs(t testing.TB, db *sqlx.DB) []int64 {
	t.Helper()
	var ids []int64
	if err := db.Select(&ids, "SELECT key_id FROM byok_keys ORDER BY provider"); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestTenantIsolation: a user never gets another user's key, even when the
// other's ciphertext is copied into their own row.
func TestTenantIsolation(t *testing.T) {
	for _, be := range []string{"sqlite", "postgres"} {
		t.Run(be, func(t *testing.T) {
			var db *sqlx.DB
			if be == "sqlite" {
				db = testenv.SQLite(t)
			} else {
				db = testenv.Postgres(t)
			}
			a := newApp(t, byok.WithDB(db))
			a.guarded(a.engine)
			a.setUser("bob")
			a.store("openai", openAIKey2, "")
			a.setUser("alice")
			if a.hasKey("openai") {
				t.Fatal("alice sees bob's key")
			}
			a.store("openai", openAIKey, "")

			// Copy bob's ciphertext over alice's.
			q := db.Rebind("UPDATE byok_keys SET ciphertext = (SELECT ciphertext FROM byok_keys WHERE user_id = ? AND provider = ?) WHERE user_id = ? AND provider = ?")
			if _, err := db.Exec(q, "bob", "openai", "alice", "openai"); err != nil {
				t.Fatal(err)
			}
			// And bob's anthropic row under alice's name, another provider
			// moved too.
			a.setUser("bob")
			a.store("anthropic", anthroKey, "")
			q = db.Rebind("UPDATE byok_keys SET user_id = ? WHERE user_id = ? AND provider = ?")
			if _, err := db.Exec(q, "alice", "bob", "anthropic"); err != nil {
				t.Fatal(err)
			}
			a.setUser("alice")
			for _, kind := range kinds {
				w := a.do(req(kind, "GET", "/chat", nil))
				if w.Code == 200 || strings.Contains(w.Body.String(), openAIKey2) {
					t.Fatalf("%s: alice got through with bob's ciphertext: %d %s", kind, w.Code, w.Body)
				}
			}
			if w := a.do(req(kJSON, "GET", "/any", nil)); w.Code == 200 {
				t.Fatalf("alice got bob's anthropic key: %s", w.Body)
			}
			if a.hasKey("openai") || a.hasKey("anthropic") {
				t.Fatal("a moved ciphertext is listed as alice's key")
			}
			if !strings.Contains(a.logs.String(), "key.decrypt_failed") || !slices.Contains(a.auditActions(), byok.EventKeyDecryptFailed) {
				t.Fatal("no key.decrypt_failed event")
			}
			if n := countRows(t, db); n != 3 {
				t.Fatalf("rows = %d: an unreadable row was deleted", n)
			}
			// The manager says the same, outside any request.
			_, err := a.p.Keys().Get(context.Background(), stores.Scope{UserID: "alice"}, "openai")
			if !errors.Is(err, byok.ErrUnreadable) || !errors.Is(err, byok.ErrNotFound) {
				t.Fatalf("Get: %v", err)
			}
			// Replacing the unreadable key works.
			a.store("openai", openAIKey, "")
			if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 || !strings.Contains(w.Body.String(), openAIKey) {
				t.Fatalf("after replacing: %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestManagerOutsideRequest uses the manager from code with an explicit
// scope, as a background job would.
func TestManagerOutsideRequest(t *testing.T) {
	db := testenv.SQLite(t)
	a := newApp(t, byok.WithDB(db))
	ctx := context.Background()
	m := a.p.Keys()
	alice := stores.Scope{UserID: "alice"}
	info, replaced, err := m.Set(ctx, alice, "openai", "  "+openAIKey+"\n", 2*time.Hour)
	if err != nil || replaced || !info.HasKey || info.Masked == "" {
		t.Fatalf("Set: %+v %v %v", info, replaced, err)
	}
	key, err := m.Get(ctx, alice, "openai")
	if err != nil || key.Reveal() != openAIKey {
		t.Fatalf("Get: %v", err)
	}
	if s := fmt.Sprintf("%v %s %+v", key, key, key); strings.Contains(s, openAIKey) {
		t.Fatalf("Redacted prints the key: %s", s)
	}
	if ok, err := m.Has(ctx, alice, "anthropic"); ok || err != nil {
		t.Fatalf("Has(anthropic) = %v, %v", ok, err)
	}
	if _, _, err := m.Set(ctx, alice, "openai", openAIKey, -5*time.Minute); !errors.Is(err, byok.ErrInvalidTTL) {
		t.Fatalf("negative ttl: %v", err)
	}
	if _, _, err := m.Set(ctx, stores.Scope{}, "openai", openAIKey, 0); !errors.Is(err, byok.ErrNoOwner) {
		t.Fatalf("no owner: %v", err)
	}
	if _, _, err := m.Set(ctx, alice, "nope", openAIKey, 0); !errors.Is(err, byok.ErrUnknownProvider) {
		t.Fatalf("unknown provider: %v", err)
	}
	if _, _, err := m.Set(ctx, alice, "anthropic", openAIKey, 0); !errors.Is(err, byok.ErrInvalidKey) || strings.Contains(err.Error(), openAIKey) {
		t.Fatalf("invalid key: %v", err)
	}
	list, err := m.List(ctx, alice)
	if err != nil || len(list) != 2 || !list[0].HasKey || list[1].HasKey {
		t.Fatalf("List: %+v %v", list, err)
	}
	// The user sees it over HTTP.
	a.setUser("alice")
	if !a.hasKey("openai") {
		t.Fatal("a key set from code is not seen over HTTP")
	}
	if n, err := m.Clear(ctx, alice); n != 1 || err != nil {
		t.Fatalf("Clear: %d %v", n, err)
	}
	if existed, err := m.Delete(ctx, alice, "openai"); existed || err != nil {
		t.Fatalf("Delete after Clear: %v %v", existed, err)
	}
}

func TestJanitor(t *testing.T) {
	db := testenv.SQLite(t)
	clk := newClock()
	a := newApp(t, byok.WithDB(db), byok.WithClock(clk.Now), byok.WithCleanupInterval(time.Second))
	a.setUser("alice")
	a.store("openai", openAIKey, "30m")
	a.store("anthropic", anthroKey, "never")
	if n := a.p.Cleanup(context.Background()); n != 0 {
		t.Fatalf("Cleanup deleted %d live keys", n)
	}
	clk.Add(31 * time.Minute)
	if n := a.p.Cleanup(context.Background()); n != 1 {
		t.Fatalf("Cleanup deleted %d, want 1", n)
	}
	if countRows(t, db) != 1 || !slices.Contains(a.auditActions(), byok.EventKeyExpired) {
		t.Fatalf("rows %d, events %v", countRows(t, db), a.auditActions())
	}
	done := make(chan struct{})
	go func() { _ = a.p.Close(); _ = a.p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the janitor")
	}
}

func TestAuditEvents(t *testing.T) {
	a := newApp(t)
	a.guarded(a.engine)
	a.do(req(kJSON, "GET", "/chat", nil))
	a.store("openai", openAIKey, "")
	a.store("openai", openAIKey2, "")
	a.do(req(kJSON, "DELETE", "/keys/openai", nil))
	a.store("anthropic", anthroKey, "")
	a.do(req(kJSON, "DELETE", "/keys", nil))
	want := []string{
		byok.EventGuardDenied,
		byok.EventKeyValidated, byok.EventKeySet,
		byok.EventKeyValidated, byok.EventKeyReplaced,
		byok.EventKeyDeleted,
		byok.EventKeyValidated, byok.EventKeySet,
		byok.EventKeyCleared,
	}
	if got := a.auditActions(); !slices.Equal(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		if e.Time.IsZero() || e.Time.Location() != time.UTC || e.Owner == "" && e.Action != byok.EventGuardDenied {
			t.Fatalf("event %+v", e)
		}
		switch e.Action {
		case byok.EventKeySet, byok.EventKeyReplaced, byok.EventKeyValidated:
			if len(e.Fingerprint) != 16 || e.Provider == "" {
				t.Fatalf("event without fingerprint: %+v", e)
			}
		case byok.EventKeyCleared:
			if e.Count != 1 {
				t.Fatalf("cleared count %d", e.Count)
			}
		}
	}
	fp := a.events[1].Fingerprint
	if a.events[3].Fingerprint == fp || a.events[2].Fingerprint != fp {
		t.Fatal("fingerprints do not tell keys apart")
	}
}

// TestRateLimitAcrossReplicas: with Redis, two replicas share one write
// allowance per user.
func TestRateLimitAcrossReplicas(t *testing.T) {
	rdb, prefix := testenv.Redis(t), testenv.Prefix(t)
	opts := []byok.Option{byok.WithRedis(rdb), byok.WithRedisPrefix(prefix), byok.WithRateLimit(3, time.Hour)}
	a, b := newApp(t, opts...), newApp(t, opts...)
	a.setUser("alice")
	b.setUser("alice")
	for i, rep := range []*app{a, b, a} {
		if w := rep.do(req(kJSON, "POST", "/keys/openai", keyBody(kJSON, openAIKey, ""))); w.Code >= 400 {
			t.Fatalf("write %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := b.do(req(kJSON, "DELETE", "/keys/openai", nil))
	if w.Code != 429 || problemCode(t, w) != "rate_limited" {
		t.Fatalf("fourth write across replicas: %d %s", w.Code, w.Body)
	}
	// Reads are not limited, and another user has their own allowance.
	if w := b.do(req(kJSON, "GET", "/keys", nil)); w.Code != 200 {
		t.Fatalf("read: %d", w.Code)
	}
	b.setUser("bob")
	if w := b.do(req(kJSON, "POST", "/keys/openai", keyBody(kJSON, openAIKey, ""))); w.Code >= 400 {
		t.Fatalf("bob: %d", w.Code)
	}
}

// TestRedisDown: with Redis stopped, signed-in users still read their keys
// from SQL, and writes fail with 503 storage_unavailable, writing nothing.
func TestRedisDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	db := testenv.SQLite(t)
	a := newApp(t, byok.WithRedis(srv.Client()), byok.WithDB(db))
	a.guarded(a.engine)
	a.setUser("alice")
	a.store("openai", openAIKey, "")
	srv.Stop()
	if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 || !strings.Contains(w.Body.String(), openAIKey) {
		t.Fatalf("read with Redis down: %d %s", w.Code, w.Body)
	}
	for _, kind := range kinds {
		w := a.do(req(kind, "POST", "/keys/openai", keyBody(kind, openAIKey2, "")))
		if w.Code != 503 {
			t.Fatalf("%s: write with Redis down: %d %s", kind, w.Code, w.Body)
		}
		if kind == kJSON && problemCode(t, w) != "storage_unavailable" {
			t.Fatal("wrong code")
		}
	}
	srv.Start()
	if m, _ := a.info("openai")["masked"].(string); !strings.HasSuffix(m, "mnop") {
		t.Fatalf("a failed write changed the key: %q", m)
	}
}
