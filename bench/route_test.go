package bench_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores/hybrid"
	"github.com/ginbyok/byok/stores/redisstore"
)

// staleStep moves the clock past hybrid's maximum cache age, so the next
// read finds the session's cache too old and refills it from SQL, as it
// would after another session changed the user's keys.
const staleStep = hybrid.DefaultMaxCacheAge + time.Minute

// cookieKey signs the host's gin-contrib cookie sessions.
var cookieKey = []byte("bench-cookie-auth-key-0123456789abcdef0123456789abcdef")

// BenchmarkRoute measures one JSON route of a host app twice: unguarded, and
// behind RequireKey with the handler reading byok.Key. Both routes load the
// host's session (its sessions middleware reads the signed-in user's id), so
// guarded/unguarded isolates what the plugin adds:
//
//   - cookie: gin-contrib's cookie store, no database; the sealed key lives
//     in the session cookie. Guarded adds decoding the plugin's entry and one
//     AES-GCM open.
//   - own_redis: the app has no session of its own (it knows the user from
//     a header here; a signed cookie or a token in real life, as in the
//     example app); the plugin keeps its own session in Redis and keys in
//     PostgreSQL. unguarded_nosession reads no session at all; unguarded
//     loads the plugin's session (kit.Scope), as a route of such an app
//     that reads its session would; guarded_hit is served from the session
//     cache, whose epoch is read in the same round trip as the session.
//   - redis: this module's redisstore on real Redis, keys persisted in real
//     PostgreSQL (the hybrid store). guarded_hit is served from the session
//     cache (one extra Redis GET, the user's epoch; no SQL). guarded_miss
//     finds the cache stale (the clock moves past the maximum cache age
//     before every request) and refills it: the epoch GET, one SQL query and
//     one session SET.
//
// Each iteration sends a fresh clone of the request with the session cookie.
// redis-cmds/op counts every command of the app's Redis client; cpu-ns/op
// is the CPU time of this process per request and redis-cpu-ns/op that of
// the app's private Redis server, which, unlike wall time, hardly move when
// other work shares the machine (PostgreSQL's is not counted). One
// goroutine sends the requests, so ns/op is a request's latency, Redis and
// PostgreSQL round trips included; [BenchmarkRouteParallel] measures
// throughput.
//
// Run: . /tmp/byok-dev.env && go test -run '^$' -bench 'Route$' -benchmem ./bench
func BenchmarkRoute(b *testing.B) {
	routeCases(b, func(a *hostApp, b *testing.B, r *http.Request, before func()) { a.serve(b, r, before) })
}

// BenchmarkRouteParallel is [BenchmarkRoute] with 8 goroutines per CPU
// sending requests at once, as a server under load: ns/op is wall time over
// requests served, the inverse of throughput, so the ratio of guarded to
// unguarded is the ratio the load test's requests/s should show.
//
// Run: . /tmp/byok-dev.env && go test -run '^$' -bench RouteParallel -benchmem ./bench
func BenchmarkRouteParallel(b *testing.B) {
	routeCases(b, func(a *hostApp, b *testing.B, r *http.Request, before func()) { a.serveParallel(b, r, 8, before) })
}

// routeCases builds the cookie and redis apps and runs serve on each route.
func routeCases(b *testing.B, serve func(a *hostApp, b *testing.B, r *http.Request, before func())) {
	b.Run("cookie", func(b *testing.B) {
		a := newHostApp(b, cookie.NewStore(cookieKey), nil)
		a.login(b, "bench-user")
		a.storeKey(b, apiKey)
		c := a.cookies()
		open, guarded := request("/open", c), request("/guarded", c)
		a.check(b, open, false)
		a.check(b, guarded, true)
		b.Run("unguarded", func(b *testing.B) { serve(a, b, open, nil) })
		b.Run("guarded", func(b *testing.B) { serve(a, b, guarded, nil) })
	})

	b.Run("own_redis", func(b *testing.B) {
		a := newRedisApp(b, &clock{}, nil, "", false)
		a.login(b, "bench-user")
		a.storeKey(b, apiKey)
		bare, session, guarded := a.request("/open"), a.request("/session"), a.request("/guarded")
		a.check(b, bare, false)
		a.check(b, session, false)
		a.check(b, guarded, true)
		b.Run("unguarded_nosession", func(b *testing.B) { serve(a, b, bare, nil) })
		b.Run("unguarded", func(b *testing.B) { serve(a, b, session, nil) })
		b.Run("guarded_hit", func(b *testing.B) { serve(a, b, guarded, nil) })
	})

	b.Run("redis", func(b *testing.B) {
		clk := &clock{}
		a := newRedisApp(b, clk, nil, "", true)
		a.login(b, "bench-user")
		a.storeKey(b, apiKey)
		c := a.cookies()
		open, guarded := request("/open", c), request("/guarded", c)
		a.check(b, open, false)
		a.check(b, guarded, true)
		b.Run("unguarded", func(b *testing.B) { serve(a, b, open, nil) })
		b.Run("guarded_hit", func(b *testing.B) { serve(a, b, guarded, nil) })
		b.Run("guarded_miss", func(b *testing.B) {
			serve(a, b, guarded, func() { clk.advance(staleStep) })
		})
	})
}

// newRedisApp is a host app with redisstore sessions (hostSession), or none
// of its own (the plugin then keeps its session in Redis), and the plugin
// on the same client of a private Redis server (whose CPU time is then the
// app's alone), under a unique key prefix,
// with keys in db (nil: a fresh PostgreSQL database) sealed under secret
// ("": a fresh one).
func newRedisApp(tb testing.TB, clk *clock, db *sqlx.DB, secret string, hostSession bool) *hostApp {
	tb.Helper()
	rdb := privateRedis(tb)
	counter := &redisCounter{}
	rdb.AddHook(counter)
	prefix := testenv.Prefix(tb)
	tb.Cleanup(func() { deletePrefix(rdb, prefix) })
	var store sessions.Store
	if hostSession {
		s, err := redisstore.NewStore(rdb, [][]byte{cookieKey}, redisstore.WithPrefix(prefix+"sess:"),
			redisstore.WithDefaultOptions(sessions.Options{Path: "/", HttpOnly: true}))
		if err != nil {
			tb.Fatal(err)
		}
		store = s
	}
	if db == nil {
		db = testenv.Postgres(tb)
	}
	opts := []byok.Option{byok.WithRedis(rdb), byok.WithRedisPrefix(prefix), byok.WithDB(db), clk.option()}
	if secret != "" {
		opts = append(opts, byok.WithSecret(secret))
	}
	a := newHostApp(tb, store, counter, opts...)
	a.rdb = rdb
	return a
}

// deletePrefix deletes every Redis key that starts with prefix.
func deletePrefix(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			rdb.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Del(ctx, keys...)
	}
}
