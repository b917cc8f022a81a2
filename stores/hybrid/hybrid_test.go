package hybrid_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/hybrid"
	"github.com/ginbyok/byok/stores/session"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// backend opens one shared database (a fresh one per test) that several
// replicas, each with its own pool, connect to.
type backend struct {
	name string
	open func(t testing.TB) (driverName, dsn string)
}

var backends = []backend{
	{"postgres", func(t testing.TB) (string, string) { return "postgres", testenv.PostgresURL(t) }},
	{"sqlite", func(t testing.TB) (string, string) { return "sqlite", testenv.SQLiteDSN(testenv.SQLitePath(t)) }},
}

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// replica is one application instance: its own SQL pool (counted), its own
// Redis client (counted), its own hybrid.Store.
type replica struct {
	rdb     *redis.Client // nil without Redis
	db      *sqlx.DB
	persist stores.Store
	queries *atomic.Int64
	redis   *redisCounter
	h       *hybrid.Store
}

type setup struct {
	driverName, dsn string
	prefix          string               // epoch prefix shared by the replicas
	redis           func() *redis.Client // a new client of the shared Redis; nil: no Redis
	now             func() time.Time
	opts            []hybrid.Option
}

func newSetup(t testing.TB, b backend) *setup {
	t.Helper()
	driverName, dsn := b.open(t)
	testenv.RedisURL(t) // skip early without Redis
	return &setup{
		driverName: driverName, dsn: dsn, prefix: testenv.Prefix(t) + "epoch:",
		redis: func() *redis.Client { return testenv.Redis(t) }, now: time.Now,
	}
}

func (s *setup) replica(t testing.TB) *replica {
	t.Helper()
	r := &replica{queries: new(atomic.Int64)}
	r.db = openCounting(t, s.driverName, s.dsn, r.queries)
	r.persist = newPersist(t, r.db, s.now)
	anon, err := session.New(session.WithClock(s.now))
	if err != nil {
		t.Fatal(err)
	}
	var rdb redis.UniversalClient
	if s.redis != nil {
		c := s.redis()
		r.rdb = c
		r.redis = &redisCounter{}
		c.AddHook(r.redis)
		rdb = c
	}
	opts := append([]hybrid.Option{hybrid.WithEpochPrefix(s.prefix), hybrid.WithClock(s.now)}, s.opts...)
	if r.h, err = hybrid.New(anon, r.persist, rdb, opts...); err != nil {
		t.Fatal(err)
	}
	r.queries.Store(0)
	return r
}

// reset zeroes the counters.
func (r *replica) reset() {
	r.queries.Store(0)
	if r.redis != nil {
		r.redis.take()
		r.redis.cmds.Store(0)
		r.redis.trips.Store(0)
	}
}

func user(id string, sess stores.Session) stores.Scope {
	return stores.Scope{UserID: id, Session: sess}
}

func record(provider, ct string, now time.Time) stores.Record {
	return stores.Record{Provider: provider, Ciphertext: []byte(ct), KeyID: 1, CreatedAt: now}
}

// value returns the ciphertext the scope reads for provider, or "" for
// stores.ErrNotFound.
func value(t testing.TB, h *hybrid.Store, sc stores.Scope, provider string) string {
	t.Helper()
	r, err := h.Get(context.Background(), sc, provider)
	if errors.Is(err, stores.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("Get(%s): %v", provider, err)
	}
	return string(r.Ciphertext)
}

func listed(t testing.TB, h *hybrid.Store, sc stores.Scope) []string {
	t.Helper()
	recs, err := h.List(context.Background(), sc)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	out := []string{}
	for _, r := range recs {
		out = append(out, r.Provider+"="+string(r.Ciphertext))
	}
	return out
}

func mustPut(t testing.TB, h *hybrid.Store, sc stores.Scope, rec stores.Record) {
	t.Helper()
	if _, err := h.Put(context.Background(), sc, rec); err != nil {
		t.Fatalf("Put(%s): %v", rec.Provider, err)
	}
}

// TestCacheHitCost proves the cost of a cache hit: no SQL statement and one
// Redis command (GET of the epoch), counted on the client by a go-redis
// hook, on the database driver by a counting connector, and on a private
// redis-server by INFO commandstats.
func TestCacheHitCost(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			st := newSetup(t, b)
			rs := testenv.StartRedis(t)
			st.redis = rs.Client
			r := st.replica(t)
			admin := rs.Client()
			sess := newSession()
			sc := user("alice", sess)
			mustPut(t, r.h, sc, record("openai", "ct-1", time.Now()))
			mustPut(t, r.h, sc, record("anthropic", "ct-2", time.Now()))

			// Another browser of the same user: first read misses.
			other := user("alice", newSession())
			r.reset()
			if got := value(t, r.h, other, "openai"); got != "ct-1" {
				t.Fatalf("miss read %q", got)
			}
			missQ, missR := r.queries.Load(), r.redis.take()
			t.Logf("%s cache miss: %d SQL statements, Redis commands %v", b.name, missQ, missR)
			if missQ != 1 || !slices.Equal(missR, []string{"get"}) {
				t.Errorf("miss cost %d SQL statements and Redis %v, want 1 and [get]", missQ, missR)
			}

			for _, tc := range []struct {
				name string
				read func() error
			}{
				{"Get", func() error { _, err := r.h.Get(ctx, sc, "openai"); return err }},
				{"Get absent", func() error {
					_, err := r.h.Get(ctx, sc, "mistral")
					if errors.Is(err, stores.ErrNotFound) {
						return nil
					}
					return fmt.Errorf("get absent = %w, want ErrNotFound", err)
				}},
				{"List", func() error { _, err := r.h.List(ctx, sc); return err }},
				{"Get other session", func() error { _, err := r.h.Get(ctx, other, "anthropic"); return err }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if err := admin.ConfigResetStat(ctx).Err(); err != nil {
						t.Fatal(err)
					}
					r.reset()
					hits := r.h.Stats().Hits
					if err := tc.read(); err != nil {
						t.Fatal(err)
					}
					q, cmds := r.queries.Load(), r.redis.take()
					server := serverCommands(t, admin)
					t.Logf("%s cache hit (%s): %d SQL statements; Redis client hook %v; redis-server commandstats %v",
						b.name, tc.name, q, cmds, server)
					if q != 0 {
						t.Errorf("cache hit ran %d SQL statements", q)
					}
					if !slices.Equal(cmds, []string{"get"}) {
						t.Errorf("cache hit sent Redis commands %v, want exactly [get]", cmds)
					}
					if !slices.Equal(server, []string{"get=1"}) {
						t.Errorf("redis-server saw %v, want [get=1]", server)
					}
					if r.h.Stats().Hits != hits+1 {
						t.Errorf("Stats.Hits did not count the hit")
					}
				})
			}
		})
	}
}

// serverCommands returns "name=calls" for every command the server ran since
// CONFIG RESETSTAT, except the CONFIG and INFO calls of the test itself.
func serverCommands(t testing.TB, admin *redis.Client) []string {
	t.Helper()
	info, err := admin.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if strings.HasPrefix(name, "config") || name == "info" {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		out = append(out, name+"="+calls)
	}
	slices.Sort(out)
	return out
}

// TestTwoReplicas: two application instances share Redis and SQL; a change
// made by a session on one is seen by another session, on the other, at its
// very next read.
func TestTwoReplicas(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newSetup(t, b)
			r1, r2 := st.replica(t), st.replica(t)
			a, a2, bb := user("u1", newSession()), user("u1", newSession()), user("u1", newSession())
			now := time.Now()
			type step struct {
				name  string
				write func()
				want  []string // what every session lists next
			}
			steps := []step{
				{"put on A", func() { mustPut(t, r1.h, a, record("openai", "v1", now)) }, []string{"openai=v1"}},
				{"replace on A", func() { mustPut(t, r1.h, a, record("openai", "v2", now)) }, []string{"openai=v2"}},
				{"put on B", func() { mustPut(t, r2.h, bb, record("anthropic", "w1", now)) }, []string{"anthropic=w1", "openai=v2"}},
				{"delete on A", func() {
					if ok, err := r1.h.Delete(t.Context(), a, "openai"); err != nil || !ok {
						t.Fatalf("Delete = %v, %v", ok, err)
					}
				}, []string{"anthropic=w1"}},
				{"replace on B", func() { mustPut(t, r2.h, bb, record("anthropic", "w2", now)) }, []string{"anthropic=w2"}},
				{"clear on A", func() {
					if n, err := r1.h.Clear(t.Context(), a); err != nil || n != 1 {
						t.Fatalf("Clear = %d, %v", n, err)
					}
				}, []string{}},
			}
			for _, s := range steps {
				// Warm every session's cache, so the next read would be
				// served stale if invalidation did not work.
				for _, v := range []struct {
					h  *hybrid.Store
					sc stores.Scope
				}{{r1.h, a}, {r1.h, a2}, {r2.h, bb}} {
					listed(t, v.h, v.sc)
				}
				s.write()
				for _, v := range []struct {
					name string
					r    *replica
					sc   stores.Scope
				}{{"A", r1, a}, {"A2 (replica 1)", r1, a2}, {"B (replica 2)", r2, bb}} {
					if got := listed(t, v.r.h, v.sc); !slices.Equal(got, s.want) {
						t.Errorf("after %s, session %s lists %v, want %v", s.name, v.name, got, s.want)
					}
					// And a second read is a cache hit with the same answer.
					v.r.reset()
					if got := listed(t, v.r.h, v.sc); !slices.Equal(got, s.want) || v.r.queries.Load() != 0 {
						t.Errorf("after %s, session %s second read %v with %d queries", s.name, v.name, got, v.r.queries.Load())
					}
				}
			}
		})
	}
}

// TestStaleReads runs 1,000 delete/replace rounds alternating between two
// replicas; after each acknowledged write, both sessions (each with a warm
// cache) must read the new state. It reports the number of stale reads,
// which must be 0.
func TestStaleReads(t *testing.T) {
	const rounds = 1000
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newSetup(t, b)
			reps := []*replica{st.replica(t), st.replica(t)}
			sess := []stores.Scope{user("u1", newSession()), user("u1", newSession())}
			ctx := t.Context()
			want, stale, reads := "", 0, 0
			now := time.Now()
			for i := range rounds {
				w := i % 2
				for j := range reps { // warm both caches
					if got := value(t, reps[j].h, sess[j], "openai"); got != want {
						t.Fatalf("round %d: warm read on replica %d = %q, want %q", i, j+1, got, want)
					}
				}
				if i%3 == 2 {
					if _, err := reps[w].h.Delete(ctx, sess[w], "openai"); err != nil {
						t.Fatal(err)
					}
					want = ""
				} else {
					want = fmt.Sprintf("v%d", i)
					mustPut(t, reps[w].h, sess[w], record("openai", want, now))
				}
				for j := range reps {
					reads++
					if got := value(t, reps[j].h, sess[j], "openai"); got != want {
						stale++
						t.Errorf("round %d: replica %d read %q after the write of %q on replica %d", i, j+1, got, want, w+1)
					}
				}
			}
			s1, s2 := reps[0].h.Stats(), reps[1].h.Stats()
			t.Logf("%s: %d rounds, %d reads after acknowledged writes, %d stale; hits %d, misses %d",
				b.name, rounds, reads, stale, s1.Hits+s2.Hits, s1.Misses+s2.Misses)
			if s1.Hits+s2.Hits < rounds {
				t.Errorf("only %d cache hits: the cache was not exercised", s1.Hits+s2.Hits)
			}
		})
	}
}

// TestConcurrentReadsNeverOlder: readers on both replicas race a writer; a
// read that starts after a write was acknowledged never returns an older
// version.
func TestConcurrentReadsNeverOlder(t *testing.T) {
	const versions = 300
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newSetup(t, b)
			reps := []*replica{st.replica(t), st.replica(t)}
			ctx := t.Context()
			var acked atomic.Int64
			var stale, reads atomic.Int64
			done := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					r := reps[i%2]
					sc := user("u1", newSession())
					for {
						select {
						case <-done:
							return
						default:
						}
						before := acked.Load()
						rec, err := r.h.Get(ctx, sc, "openai")
						if errors.Is(err, stores.ErrNotFound) {
							if before > 0 {
								stale.Add(1)
							}
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						reads.Add(1)
						var v int64
						fmt.Sscanf(string(rec.Ciphertext), "v%d", &v)
						if v < before {
							stale.Add(1)
						}
					}
				})
			}
			w := user("u1", newSession())
			for v := int64(1); v <= versions; v++ {
				mustPut(t, reps[v%2].h, w, record("openai", fmt.Sprintf("v%d", v), time.Now()))
				acked.Store(v)
			}
			close(done)
			wg.Wait()
			s1, s2 := reps[0].h.Stats(), reps[1].h.Stats()
			t.Logf("%s: %d writes, %d concurrent reads, %d older than the last acknowledged write; hits %d, misses %d",
				b.name, versions, reads.Load(), stale.Load(), s1.Hits+s2.Hits, s1.Misses+s2.Misses)
			if stale.Load() != 0 {
				t.Errorf("%d stale reads", stale.Load())
			}
		})
	}
}

// TestConcurrentUpsert: 50 goroutines on each of two replicas put the same
// key; no error, one row, and every session then reads what SQL holds.
func TestConcurrentUpsert(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newSetup(t, b)
			reps := []*replica{st.replica(t), st.replica(t)}
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			scopes := make([]stores.Scope, 100)
			for i := range 100 {
				scopes[i] = user("u1", newSession())
				wg.Go(func() {
					_, err := reps[i%2].h.Put(t.Context(), scopes[i], record("openai", fmt.Sprintf("g%d", i), time.Now()))
					if err != nil {
						errs <- fmt.Errorf("goroutine %d: %w", i, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			var rows int
			if err := reps[0].db.Get(&rows, reps[0].db.Rebind("SELECT count(*) FROM byok_keys WHERE user_id = ?"), "u1"); err != nil {
				t.Fatal(err)
			}
			if rows != 1 {
				t.Fatalf("%d rows, want 1", rows)
			}
			truth, err := reps[0].persist.Get(t.Context(), user("u1", nil), "openai")
			if err != nil {
				t.Fatal(err)
			}
			for i, sc := range scopes {
				if got := value(t, reps[i%2].h, sc, "openai"); got != string(truth.Ciphertext) {
					t.Errorf("session %d reads %q, SQL holds %q", i, got, truth.Ciphertext)
				}
			}
		})
	}
}

// TestExpiry: a cached record past its expiry is not served, by the cache
// (no SQL) or by SQL.
func TestExpiry(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newSetup(t, b)
			clk := newClock()
			st.now = clk.Now
			r := st.replica(t)
			sc := user("u1", newSession())
			t0 := clk.Now()
			exp := record("openai", "short", t0)
			exp.ExpiresAt = t0.Add(time.Hour)
			mustPut(t, r.h, sc, exp)
			mustPut(t, r.h, sc, record("anthropic", "long", t0))
			if got := listed(t, r.h, sc); !slices.Equal(got, []string{"anthropic=long", "openai=short"}) {
				t.Fatalf("before expiry: %v", got)
			}
			clk.Add(time.Hour - time.Microsecond)
			if got := value(t, r.h, sc, "openai"); got != "short" {
				t.Fatalf("just before expiry: %q", got)
			}
			clk.Add(time.Microsecond)
			r.reset()
			if got := value(t, r.h, sc, "openai"); got != "" {
				t.Errorf("expired record served from cache: %q", got)
			}
			if got := listed(t, r.h, sc); !slices.Equal(got, []string{"anthropic=long"}) {
				t.Errorf("after expiry the cache lists %v", got)
			}
			if q := r.queries.Load(); q != 0 {
				t.Errorf("expiry check on a hit ran %d SQL statements", q)
			}
			// A fresh session (a miss) gets the same answer from SQL.
			if got := listed(t, r.h, user("u1", newSession())); !slices.Equal(got, []string{"anthropic=long"}) {
				t.Errorf("after expiry SQL lists %v", got)
			}
			// The janitor deletes the expired row behind the caches' back
			// (no epoch change); caches never served it anyway.
			if n, err := r.persist.(*sqlstore.Store).DeleteExpired(t.Context(), 0); err != nil || n != 1 {
				t.Fatalf("DeleteExpired = %d, %v", n, err)
			}
			if got := listed(t, r.h, sc); !slices.Equal(got, []string{"anthropic=long"}) {
				t.Errorf("after the janitor the cache lists %v", got)
			}
		})
	}
}

// TestMaxCacheAge: a cache older than WithMaxCacheAge is reloaded even
// though its epoch matches.
func TestMaxCacheAge(t *testing.T) {
	st := newSetup(t, backends[1])
	clk := newClock()
	st.now = clk.Now
	st.opts = []hybrid.Option{hybrid.WithMaxCacheAge(time.Minute)}
	r := st.replica(t)
	sc := user("u1", newSession())
	mustPut(t, r.h, sc, record("openai", "v1", clk.Now()))
	r.reset()
	value(t, r.h, sc, "openai")
	if q := r.queries.Load(); q != 0 {
		t.Fatalf("fresh cache ran %d statements", q)
	}
	clk.Add(time.Minute)
	value(t, r.h, sc, "openai")
	if q := r.queries.Load(); q != 1 {
		t.Fatalf("old cache ran %d statements, want 1 (a reload)", q)
	}
	r.reset()
	value(t, r.h, sc, "openai")
	if q := r.queries.Load(); q != 0 {
		t.Fatalf("reloaded cache ran %d statements", q)
	}
}

// TestRedisDown stops Redis in the middle: reads are served from SQL
// without touching the cache, writes fail with ErrUnavailable and write
// nothing; after the restart (Redis comes back empty) no stale cache is
// served.
func TestRedisDown(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			st := newSetup(t, b)
			rs := testenv.StartRedis(t)
			st.redis = rs.Client
			r1, r2 := st.replica(t), st.replica(t)
			a, bb := user("u1", newSession()), user("u1", newSession())
			now := time.Now()
			mustPut(t, r1.h, a, record("openai", "v1", now))
			if got := value(t, r2.h, bb, "openai"); got != "v1" {
				t.Fatalf("B reads %q", got)
			}
			cached := bb.Session.Get(hybrid.DefaultCacheKey)

			rs.Stop()
			r2.reset()
			if got := value(t, r2.h, bb, "openai"); got != "v1" {
				t.Errorf("Redis down: B reads %q, want v1 from SQL", got)
			}
			if q := r2.queries.Load(); q != 1 {
				t.Errorf("Redis down: read ran %d SQL statements, want 1", q)
			}
			if !bytes.Equal(bb.Session.Get(hybrid.DefaultCacheKey).([]byte), cached.([]byte)) {
				t.Error("Redis down: the read changed the session cache")
			}
			if got := listed(t, r2.h, bb); !slices.Equal(got, []string{"openai=v1"}) {
				t.Errorf("Redis down: B lists %v", got)
			}
			if s := r2.h.Stats(); s.Direct < 2 || s.RedisErrors < 2 {
				t.Errorf("Redis down: stats %+v", s)
			}

			writes := []struct {
				name string
				do   func() error
			}{
				{"Put", func() error { _, err := r1.h.Put(ctx, a, record("openai", "v2", now)); return err }},
				{"Put new", func() error { _, err := r1.h.Put(ctx, a, record("mistral", "m", now)); return err }},
				{"Delete", func() error { _, err := r1.h.Delete(ctx, a, "openai"); return err }},
				{"Clear", func() error { _, err := r1.h.Clear(ctx, a); return err }},
			}
			for _, w := range writes {
				r1.reset()
				if err := w.do(); !errors.Is(err, stores.ErrUnavailable) {
					t.Errorf("Redis down: %s = %v, want ErrUnavailable", w.name, err)
				}
				if sql, _ := r1.persist.List(ctx, a); len(sql) != 1 || string(sql[0].Ciphertext) != "v1" {
					t.Errorf("Redis down: after a failed %s SQL holds %v", w.name, sql)
				}
			}

			// Something changes SQL while Redis is away (an operator, the
			// janitor, `byok rotate`): B's old cache must not come back.
			if _, err := r1.persist.Put(ctx, a, record("openai", "v3", now)); err != nil {
				t.Fatal(err)
			}
			rs.Start()
			for _, v := range []struct {
				name string
				h    *hybrid.Store
				sc   stores.Scope
			}{{"A", r1.h, a}, {"B", r2.h, bb}} {
				if got := value(t, v.h, v.sc, "openai"); got != "v3" {
					t.Errorf("Redis back: %s reads %q, want v3 (no stale cache)", v.name, got)
				}
			}
			mustPut(t, r1.h, a, record("openai", "v4", now))
			if got := value(t, r2.h, bb, "openai"); got != "v4" {
				t.Errorf("Redis back: B reads %q after a write, want v4", got)
			}
		})
	}
}

// TestSQLDown cuts PostgreSQL away behind a proxy: a Put fails with
// ErrUnavailable and valid caches keep serving reads.
func TestSQLDown(t *testing.T) {
	ctx := t.Context()
	testenv.RedisURL(t)
	proxy := testenv.StartProxy(t, testenv.PostgresAddr(t))
	st := &setup{
		driverName: "postgres", dsn: testenv.ViaProxy(testenv.PostgresURL(t), proxy),
		prefix: testenv.Prefix(t), redis: func() *redis.Client { return testenv.Redis(t) }, now: time.Now,
	}
	r1, r2 := st.replica(t), st.replica(t)
	a, bb := user("u1", newSession()), user("u1", newSession())
	now := time.Now()
	mustPut(t, r1.h, a, record("openai", "v1", now))
	mustPut(t, r1.h, a, record("anthropic", "w1", now))
	if got := listed(t, r2.h, bb); len(got) != 2 {
		t.Fatalf("B lists %v", got)
	}

	proxy.Cut()
	for _, v := range []struct {
		name string
		h    *hybrid.Store
		sc   stores.Scope
	}{{"A", r1.h, a}, {"B", r2.h, bb}} {
		if got := value(t, v.h, v.sc, "openai"); got != "v1" {
			t.Errorf("SQL down: %s reads %q, want v1 from its cache", v.name, got)
		}
		if got := listed(t, v.h, v.sc); !slices.Equal(got, []string{"anthropic=w1", "openai=v1"}) {
			t.Errorf("SQL down: %s lists %v", v.name, got)
		}
	}
	for _, w := range []struct {
		name string
		do   func() error
	}{
		{"Put", func() error { _, err := r1.h.Put(ctx, a, record("openai", "v2", now)); return err }},
		{"Delete", func() error { _, err := r1.h.Delete(ctx, a, "openai"); return err }},
		{"Clear", func() error { _, err := r2.h.Clear(ctx, bb); return err }},
	} {
		if err := w.do(); !errors.Is(err, stores.ErrUnavailable) {
			t.Errorf("SQL down: %s = %v, want ErrUnavailable", w.name, err)
		}
	}
	// The failed writes did not invalidate the caches: still served.
	if got := value(t, r2.h, bb, "openai"); got != "v1" {
		t.Errorf("SQL down, after failed writes: B reads %q, want v1 from its cache", got)
	}
	// A session without a cache cannot be served.
	if _, err := r2.h.Get(ctx, user("u1", newSession()), "openai"); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("SQL down: a cold session's Get = %v, want ErrUnavailable", err)
	}

	proxy.Restore()
	var err error
	for range 50 { // the pool notices the cut connections and redials
		if _, err = r1.h.Put(ctx, a, record("openai", "v2", now)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("SQL back: Put = %v", err)
	}
	if got := value(t, r2.h, bb, "openai"); got != "v2" {
		t.Errorf("SQL back: B reads %q, want v2", got)
	}
}

// failingWrites fails every write after reaching SQL, as a commit whose
// reply was lost would: the outcome is unknown to the caller.
type failingWrites struct {
	stores.Store
	fail atomic.Bool
}

var errLost = fmt.Errorf("%w: connection lost during commit", stores.ErrUnavailable)

func (f *failingWrites) Put(ctx context.Context, sc stores.Scope, r stores.Record) (bool, error) {
	ok, err := f.Store.Put(ctx, sc, r)
	if f.fail.Load() {
		return false, errLost
	}
	return ok, err
}

// TestAmbiguousWriteInvalidates: a write that reached SQL but reported an
// error still changes the epoch, so no cache keeps the old value.
func TestAmbiguousWriteInvalidates(t *testing.T) {
	st := newSetup(t, backends[0])
	r := st.replica(t)
	fw := &failingWrites{Store: r.persist}
	anon, _ := session.New()
	rdb := testenv.Redis(t)
	h, err := hybrid.New(anon, fw, rdb, hybrid.WithEpochPrefix(st.prefix))
	if err != nil {
		t.Fatal(err)
	}
	a, bb := user("u1", newSession()), user("u1", newSession())
	mustPut(t, h, a, record("openai", "v1", time.Now()))
	if got := value(t, h, bb, "openai"); got != "v1" {
		t.Fatalf("B reads %q", got)
	}
	fw.fail.Store(true)
	if _, err := h.Put(t.Context(), a, record("openai", "v2", time.Now())); !errors.Is(err, errLost) {
		t.Fatalf("Put = %v, want the SQL error", err)
	}
	if got := value(t, h, bb, "openai"); got != "v2" {
		t.Errorf("after an ambiguous write B reads %q, want v2 (what SQL holds)", got)
	}
}

// TestAnonymous: an anonymous scope lives in the session only; SQL and
// Redis are never touched.
func TestAnonymous(t *testing.T) {
	ctx := t.Context()
	st := newSetup(t, backends[0])
	r := st.replica(t)
	sess := newSession()
	sc := stores.Scope{AnonID: "anon-1", Session: sess}
	r.reset()
	mustPut(t, r.h, sc, record("openai", "a1", time.Now()))
	if got := value(t, r.h, sc, "openai"); got != "a1" {
		t.Errorf("Get = %q", got)
	}
	if got := listed(t, r.h, sc); !slices.Equal(got, []string{"openai=a1"}) {
		t.Errorf("List = %v", got)
	}
	if sess.Get(session.DefaultKey) == nil || sess.Get(hybrid.DefaultCacheKey) != nil {
		t.Error("anonymous record not in the session store's entry")
	}
	if ok, err := r.h.Delete(ctx, sc, "openai"); err != nil || !ok {
		t.Errorf("Delete = %v, %v", ok, err)
	}
	mustPut(t, r.h, sc, record("openai", "a2", time.Now()))
	if n, err := r.h.Clear(ctx, sc); err != nil || n != 1 {
		t.Errorf("Clear = %d, %v", n, err)
	}
	if q, cmds := r.queries.Load(), r.redis.take(); q != 0 || len(cmds) != 0 {
		t.Errorf("anonymous scope ran %d SQL statements and Redis %v", q, cmds)
	}
	if _, err := r.h.Get(ctx, stores.Scope{AnonID: "x"}, "openai"); !errors.Is(err, stores.ErrNoSession) {
		t.Errorf("anonymous without a session: %v, want ErrNoSession", err)
	}
}

// TestWithoutRedis: with no Redis there is no cache; every read goes to
// SQL, so changes are still seen at once.
func TestWithoutRedis(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newSetup(t, b)
			st.redis = nil
			r1, r2 := st.replica(t), st.replica(t)
			a, bb := user("u1", newSession()), user("u1", newSession())
			mustPut(t, r1.h, a, record("openai", "v1", time.Now()))
			for i := range 3 {
				r2.reset()
				if got := value(t, r2.h, bb, "openai"); got != "v1" {
					t.Fatalf("read %d: %q", i, got)
				}
				if q := r2.queries.Load(); q != 1 {
					t.Errorf("read %d ran %d statements, want 1", i, q)
				}
			}
			if _, err := r1.h.Delete(t.Context(), a, "openai"); err != nil {
				t.Fatal(err)
			}
			if got := value(t, r2.h, bb, "openai"); got != "" {
				t.Errorf("after delete B reads %q", got)
			}
			if bb.Session.Get(hybrid.DefaultCacheKey) != nil || a.Session.Get(hybrid.DefaultCacheKey) != nil {
				t.Error("a cache was stored without Redis")
			}
		})
	}
}

// TestCacheBoundToOwner: a session that changes users never serves the
// previous user's cache, even under the same epoch.
func TestCacheBoundToOwner(t *testing.T) {
	st := newSetup(t, backends[1])
	r := st.replica(t)
	sess := newSession()
	mustPut(t, r.h, user("alice", sess), record("openai", "alice-ct", time.Now()))
	// Give bob the same epoch value as alice, the worst case.
	rdb := testenv.Redis(t)
	ep, err := rdb.Get(t.Context(), r.h.EpochKey("alice")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(t.Context(), r.h.EpochKey("bob"), ep, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got := value(t, r.h, user("bob", sess), "openai"); got != "" {
		t.Errorf("bob reads alice's key %q", got)
	}
	if err := r.h.DropCache(t.Context(), sess); err != nil {
		t.Fatal(err)
	}
	if sess.Get(hybrid.DefaultCacheKey) != nil {
		t.Error("DropCache left the cache")
	}
}

// TestCacheTooLarge: records that do not fit the cache limit are served
// from SQL on every read, and no partial cache is kept.
func TestCacheTooLarge(t *testing.T) {
	st := newSetup(t, backends[1])
	st.opts = []hybrid.Option{hybrid.WithMaxCacheBytes(100)}
	r := st.replica(t)
	sc := user("u1", newSession())
	mustPut(t, r.h, sc, record("openai", "small", time.Now()))
	if sc.Session.Get(hybrid.DefaultCacheKey) == nil {
		t.Fatal("small record not cached")
	}
	mustPut(t, r.h, sc, record("anthropic", strings.Repeat("x", 200), time.Now()))
	if sc.Session.Get(hybrid.DefaultCacheKey) != nil {
		t.Fatal("oversized cache kept")
	}
	r.reset()
	if got := value(t, r.h, sc, "openai"); got != "small" {
		t.Fatalf("read %q", got)
	}
	if q := r.queries.Load(); q != 1 {
		t.Errorf("read ran %d statements, want 1", q)
	}
}

// TestMalformedCache: a damaged session entry is a miss, not an error.
func TestMalformedCache(t *testing.T) {
	st := newSetup(t, backends[1])
	r := st.replica(t)
	sc := user("u1", newSession())
	mustPut(t, r.h, sc, record("openai", "v1", time.Now()))
	for _, bad := range []any{[]byte{1, 2, 3}, "junk", 42} {
		sc.Session.Set(hybrid.DefaultCacheKey, bad)
		if got := value(t, r.h, sc, "openai"); got != "v1" {
			t.Errorf("with cache %v: read %q", bad, got)
		}
		if _, ok := sc.Session.Get(hybrid.DefaultCacheKey).([]byte); !ok {
			t.Errorf("with cache %v: not replaced", bad)
		}
	}
}

// TestNoKeyMaterialLeaks puts a sentinel ciphertext through every path,
// failures included, and looks for it in logs, errors and Redis.
func TestNoKeyMaterialLeaks(t *testing.T) {
	const sentinel = "SENTINEL-7f3a9c-CIPHERTEXT"
	ctx := t.Context()
	var logs bytes.Buffer
	st := newSetup(t, backends[1])
	rs := testenv.StartRedis(t)
	st.redis = rs.Client
	st.opts = []hybrid.Option{hybrid.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	r := st.replica(t)
	sc := user("u1", newSession())
	var errs []error
	keep := func(_ any, err error) { errs = append(errs, err) }
	keep(r.h.Put(ctx, sc, record("openai", sentinel, time.Now())))
	keep(r.h.Get(ctx, sc, "openai"))
	sc.Session.Set(hybrid.DefaultCacheKey, append([]byte{1, 16}, sentinel...))
	keep(r.h.Get(ctx, sc, "openai"))
	keys, err := rs.Client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		v, _ := rs.Client().Get(ctx, k).Result()
		if strings.Contains(k+v, sentinel) {
			t.Errorf("Redis key %q holds the sentinel", k)
		}
	}
	rs.Stop()
	keep(r.h.Get(ctx, sc, "openai"))
	keep(r.h.Put(ctx, sc, record("openai", sentinel, time.Now())))
	keep(r.h.Delete(ctx, sc, "openai"))
	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), sentinel) {
			t.Errorf("error carries the sentinel: %v", err)
		}
	}
	if strings.Contains(logs.String(), sentinel) {
		t.Errorf("logs carry the sentinel:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "redis") {
		t.Errorf("Redis failure not logged:\n%s", logs.String())
	}
}

func TestNewValidates(t *testing.T) {
	anon, _ := session.New()
	var nilStore *session.Store
	persist := &failingWrites{Store: anon}
	for _, tc := range []struct {
		name    string
		anon    stores.Store
		persist stores.Store
		opts    []hybrid.Option
	}{
		{"nil anon", nil, persist, nil},
		{"typed nil anon", nilStore, persist, nil},
		{"nil persist", anon, nil, nil},
		{"empty prefix", anon, persist, []hybrid.Option{hybrid.WithEpochPrefix("")}},
		{"empty cache key", anon, persist, []hybrid.Option{hybrid.WithCacheKey("")}},
		{"nil clock", anon, persist, []hybrid.Option{hybrid.WithClock(nil)}},
		{"nil logger", anon, persist, []hybrid.Option{hybrid.WithLogger(nil)}},
		{"negative TTL", anon, persist, []hybrid.Option{hybrid.WithEpochTTL(-time.Second)}},
		{"sub-second TTL", anon, persist, []hybrid.Option{hybrid.WithEpochTTL(time.Millisecond)}},
		{"zero cache age", anon, persist, []hybrid.Option{hybrid.WithMaxCacheAge(0)}},
		{"tiny cache", anon, persist, []hybrid.Option{hybrid.WithMaxCacheBytes(10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := hybrid.New(tc.anon, tc.persist, nil, tc.opts...); !errors.Is(err, hybrid.ErrInvalidConfig) || h != nil {
				t.Fatalf("New = %v, %v; want an error", h, err)
			}
		})
	}
	var nilClient *redis.Client
	if _, err := hybrid.New(anon, persist, nilClient, hybrid.WithEpochTTL(0)); err != nil {
		t.Errorf("typed nil Redis client: %v (want: no cache)", err)
	}
}

// TestInvalidate: a change made to SQL without the Store is served from the
// caches until Invalidate, then seen by every session.
func TestInvalidate(t *testing.T) {
	st := newSetup(t, backends[0])
	r1, r2 := st.replica(t), st.replica(t)
	a, bb := user("u1", newSession()), user("u1", newSession())
	mustPut(t, r1.h, a, record("openai", "v1", time.Now()))
	if got := value(t, r2.h, bb, "openai"); got != "v1" {
		t.Fatalf("B reads %q", got)
	}
	if _, err := r1.persist.Put(t.Context(), a, record("openai", "rewrapped", time.Now())); err != nil {
		t.Fatal(err)
	}
	if got := value(t, r2.h, bb, "openai"); got != "v1" {
		t.Fatalf("before Invalidate B reads %q, want its cached v1 (else this test proves nothing)", got)
	}
	if err := r1.h.Invalidate(t.Context(), "u1"); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]struct {
		h  *hybrid.Store
		sc stores.Scope
	}{"A": {r1.h, a}, "B": {r2.h, bb}} {
		if got := value(t, v.h, v.sc, "openai"); got != "rewrapped" {
			t.Errorf("after Invalidate %s reads %q", name, got)
		}
	}
	if err := r1.h.Invalidate(t.Context(), ""); !errors.Is(err, stores.ErrInvalidRecord) {
		t.Errorf("Invalidate(\"\") = %v", err)
	}
}
