package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/encrypt"
)

func init() { gin.SetMode(gin.ReleaseMode) }

const (
	// provider is the provider every benchmark guards.
	provider = "openai"
	// sessionName is the host app's session cookie.
	sessionName = "app"
	// uidKey is where the host app keeps the signed-in user in its session.
	uidKey = "uid"
)

// apiKey is a well-formed OpenAI project key of a realistic length (164
// characters). It is not a real key.
var apiKey = "sk-proj-" + strings.Repeat("A1b2C3d4e5F6", 13)

// quiet discards the plugin's logs.
var quiet = slog.New(slog.DiscardHandler)

// clock is real time plus an offset the benchmarks move forward, to make a
// session cache older than hybrid's maximum cache age on demand.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) option() byok.Option     { return byok.WithClock(c.now) }

// newSecret returns a fresh master secret.
func newSecret(tb testing.TB) string {
	tb.Helper()
	s, err := encrypt.GenerateSecret()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// redisCounter is a go-redis hook that counts the commands a client sends.
type redisCounter struct{ n atomic.Int64 }

func (h *redisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// hostApp is a Gin app the way a host writes one: the gin-contrib sessions
// middleware on every route, the signed-in user's id in the session (read
// by a middleware and handed to the plugin through WithUser), and one
// handler mounted twice, at /open and, behind RequireKey, at /guarded. The
// difference between the two routes is therefore the plugin's guard alone;
// the session load is in both.
type hostApp struct {
	engine *gin.Engine
	kit    *byok.Plugin
	// noSession: the app has no session of its own; user is then sent as
	// the X-User header.
	noSession bool
	user      string
	redis     *redisCounter         // commands sent through the app's Redis client, if any
	rdb       redis.UniversalClient // the app's private Redis server, if any, for its CPU time
	jar       map[string]string
}

// demoAnswer is what the handler returns, like the example app's
// /demo/{provider}.
type demoAnswer struct {
	Provider string `json:"provider"`
	Masked   string `json:"masked"`
}

// newHostApp builds the app on the session store and plugin options given.
// With a nil store the app has no session of its own: it takes the user
// from an X-User header (standing in for a signed cookie or a token, as in
// the example app) and the plugin keeps its own session.
func newHostApp(tb testing.TB, store sessions.Store, counter *redisCounter, opts ...byok.Option) *hostApp {
	tb.Helper()
	a := &hostApp{engine: gin.New(), redis: counter, jar: map[string]string{}}
	if store != nil {
		a.engine.Use(sessions.Sessions(sessionName, store))
		a.engine.Use(func(c *gin.Context) {
			if uid, ok := sessions.Default(c).Get(uidKey).(string); ok {
				c.Set(uidKey, uid)
			}
			c.Next()
		})
	} else {
		a.noSession = true
		a.engine.Use(func(c *gin.Context) {
			if uid := c.GetHeader("X-User"); uid != "" {
				c.Set(uidKey, uid)
			}
			c.Next()
		})
	}
	base := []byok.Option{
		byok.WithSecret(newSecret(tb)),
		byok.WithUser(func(c *gin.Context) string { return c.GetString(uidKey) }),
		byok.WithProviders(byok.OpenAI, byok.Anthropic),
		byok.WithLogger(quiet),
		byok.WithRequireHTTPS(false),
		byok.WithRateLimit(0, 0),
		byok.WithCleanupInterval(0),
	}
	kit, err := byok.Register(a.engine, append(base, opts...)...)
	if err != nil {
		tb.Fatalf("Register: %v", err)
	}
	tb.Cleanup(func() { _ = kit.Close() })
	a.kit = kit

	a.engine.POST("/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set(uidKey, c.PostForm("user"))
		if err := s.Save(); err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	demo := func(c *gin.Context) {
		c.JSON(http.StatusOK, demoAnswer{Provider: provider, Masked: encrypt.Mask(byok.Key(c, provider))})
	}
	a.engine.GET("/open", demo)
	a.engine.GET("/guarded", kit.RequireKey(provider), demo)
	// /session is /open for an app whose session is the plugin's: it loads
	// that session (kit.Scope), as any route of such an app that reads its
	// session would, and answers the same.
	a.engine.GET("/session", func(c *gin.Context) { _ = kit.Scope(c); demo(c) })
	return a
}

// login signs user in and returns the session cookie header.
func (a *hostApp) login(tb testing.TB, user string) string {
	tb.Helper()
	if a.noSession {
		a.user = user
		return a.cookies()
	}
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"user": {user}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if w := a.do(r); w.Code != http.StatusNoContent {
		tb.Fatalf("login: %d %s", w.Code, w.Body)
	}
	return a.cookies()
}

// storeKey stores key for the signed-in user through POST /keys/openai.
func (a *hostApp) storeKey(tb testing.TB, key string) {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"api_key": key, "ttl": "never"})
	r := httptest.NewRequest(http.MethodPost, a.kit.Prefix()+"/"+provider, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json")
	if w := a.do(r); w.Code != http.StatusCreated && w.Code != http.StatusOK {
		tb.Fatalf("storing the key: %d %s", w.Code, w.Body)
	}
}

// do sends r with the jar's cookies (and the user) and keeps the cookies
// the response sets.
func (a *hostApp) do(r *http.Request) *httptest.ResponseRecorder {
	if c := a.cookies(); c != "" {
		r.Header.Set("Cookie", c)
	}
	if a.user != "" {
		r.Header.Set("X-User", a.user)
	}
	w := httptest.NewRecorder()
	a.engine.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(a.jar, c.Name)
		} else {
			a.jar[c.Name] = c.Value
		}
	}
	return w
}

// cookies returns the jar as a Cookie header.
func (a *hostApp) cookies() string {
	names := make([]string, 0, len(a.jar))
	for n := range a.jar {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + a.jar[n]
	}
	return strings.Join(parts, "; ")
}

// request returns a GET of path with the Cookie header cookie, asking for
// JSON, to be cloned for every iteration.
func request(path, cookie string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Accept", "application/json")
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

// request returns a GET of path as the signed-in user, with the jar's
// cookies.
func (a *hostApp) request(path string) *http.Request {
	r := request(path, a.cookies())
	if a.user != "" {
		r.Header.Set("X-User", a.user)
	}
	return r
}

// check sends r once and fails unless the answer is 200 with the masked
// key (guarded) or the mask of no key (open).
func (a *hostApp) check(tb testing.TB, r *http.Request, wantKey bool) http.Header {
	tb.Helper()
	w := httptest.NewRecorder()
	a.engine.ServeHTTP(w, r.Clone(context.Background()))
	var got demoAnswer
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil {
		tb.Fatalf("%s: %d %s", r.URL.Path, w.Code, w.Body)
	}
	want := encrypt.Mask("")
	if wantKey {
		want = encrypt.Mask(apiKey)
	}
	if got.Masked != want {
		tb.Fatalf("%s: masked %q, want %q", r.URL.Path, got.Masked, want)
	}
	return w.Header()
}

// discardWriter is a reusable ResponseWriter, so a benchmark measures the
// route and not a recorder's buffers.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// serve runs r (a fresh clone each iteration: gorilla caches the session per
// request) through the app until the benchmark ends; before, if set, runs
// first in each iteration. It reports the CPU time per request (cpu-ns/op,
// and redis-cpu-ns/op for the app's Redis server) and the Redis commands
// per request.
func (a *hostApp) serve(b *testing.B, r *http.Request, before func()) {
	ctx := context.Background()
	w := &discardWriter{h: http.Header{}}
	var n0 int64
	if a.redis != nil {
		n0 = a.redis.n.Load()
	}
	cpu := cpuMeter{rdb: a.rdb}
	cpu.start()
	b.ReportAllocs()
	for b.Loop() {
		if before != nil {
			before()
		}
		clear(w.h)
		w.code = 0
		a.engine.ServeHTTP(w, r.Clone(ctx))
		if w.code != http.StatusOK {
			b.Fatalf("%s answered %d", r.URL.Path, w.code)
		}
	}
	cpu.report(b)
	if a.redis != nil {
		b.ReportMetric(float64(a.redis.n.Load()-n0)/float64(b.N), "redis-cmds/op")
	}
}

// serveParallel is serve from many goroutines at once (parallelism × GOMAXPROCS),
// like a server under load: ns/op is then wall time per request, the
// inverse of throughput, and a Redis round trip costs its CPU rather than
// its latency.
func (a *hostApp) serveParallel(b *testing.B, r *http.Request, parallelism int, before func()) {
	var n0 int64
	if a.redis != nil {
		n0 = a.redis.n.Load()
	}
	var failed atomic.Int64
	cpu := cpuMeter{rdb: a.rdb}
	cpu.start()
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			if before != nil {
				before()
			}
			clear(w.h)
			w.code = 0
			a.engine.ServeHTTP(w, r.Clone(ctx))
			if w.code != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	cpu.report(b)
	if n := failed.Load(); n > 0 {
		b.Fatalf("%s: %d requests failed", r.URL.Path, n)
	}
	if a.redis != nil {
		b.ReportMetric(float64(a.redis.n.Load()-n0)/float64(b.N), "redis-cmds/op")
	}
}
