package guards

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/internal/testenv"
)

// fakeClock is a settable clock for the in-process buckets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestNewLimiterValidates(t *testing.T) {
	for _, o := range []RateLimitOptions{
		{Limit: 0, Window: time.Minute},
		{Limit: 1, Window: 0},
		{Limit: -1, Window: time.Minute},
		{Limit: 1 << 30, Window: time.Millisecond},
		{Limit: 1, Window: time.Minute, MaxBuckets: -1},
	} {
		if _, err := NewLimiter(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
		if _, err := RateLimit(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestRateLimitInProcess(t *testing.T) {
	gin.SetMode(gin.TestMode)
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	mw, err := RateLimit(RateLimitOptions{
		Limit: 3, Window: time.Minute, Now: clock.Now,
		Bucket: func(c *gin.Context) string { return c.GetHeader("X-User") },
	})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.POST("/keys/openai", mw, func(c *gin.Context) { c.String(201, "stored") })
	post := func(user string, accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/keys/openai", nil)
		req.Header.Set("X-User", user)
		req.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	for i := range 3 {
		if w := post("alice", "application/json"); w.Code != 201 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := post("alice", "application/json")
	if w.Code != 429 || w.Header().Get("Retry-After") != "20" || !strings.Contains(w.Body.String(), `"code":"rate_limited"`) {
		t.Fatalf("4th: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if w := post("bob", "application/json"); w.Code != 201 {
		t.Fatalf("another bucket is limited: %d", w.Code)
	}
	w = post("alice", "text/html")
	if w.Code != 429 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("Retry-After") == "" {
		t.Fatalf("browser: %d %v", w.Code, w.Header())
	}
	clock.Add(20 * time.Second)
	if w := post("alice", "application/json"); w.Code != 201 {
		t.Fatalf("after the wait: %d", w.Code)
	}
	if w := post("alice", "application/json"); w.Code != 429 {
		t.Fatalf("one token per 20s: %d", w.Code)
	}
}

func TestRateLimitDefaultBucketIsClientIP(t *testing.T) {
	l, err := NewLimiter(RateLimitOptions{Limit: 1, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.POST("/x", l.Handler(), func(c *gin.Context) { c.Status(204) })
	send := func(ip string) int {
		req := httptest.NewRequest(http.MethodPost, "/x", nil)
		req.RemoteAddr = ip + ":1"
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code
	}
	if send("192.0.2.1") != 204 || send("192.0.2.1") != 429 || send("192.0.2.2") != 204 {
		t.Fatal("buckets are not per client IP")
	}
}

func TestRateLimitBoundedBuckets(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	l, err := NewLimiter(RateLimitOptions{Limit: 2, Window: time.Minute, MaxBuckets: 100, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		l.Allow(t.Context(), "id-"+strconv.Itoa(i))
	}
	if n := l.buckets(); n != 100 {
		t.Fatalf("%d buckets, want the 100 most recent", n)
	}
	clock.Add(time.Minute)
	l.Allow(t.Context(), "fresh")
	if n := l.buckets(); n != 1 {
		t.Fatalf("%d buckets after a idle window, want 1", n)
	}
}

func TestRateLimitSharedInRedis(t *testing.T) {
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t)
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	// Two replicas, each with its own client and in-process state.
	replica := func() *Limiter {
		opt, _ := redis.ParseURL(testenv.RedisURL(t))
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		l, err := NewLimiter(RateLimitOptions{Limit: 4, Window: time.Hour, Redis: c, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := replica(), replica()
	allowed := 0
	var wait time.Duration
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		ok, w := l.Allow(t.Context(), "user:42")
		if ok {
			allowed++
		} else {
			wait = w
		}
	}
	if allowed != 4 {
		t.Fatalf("%d allowed across two replicas, want 4", allowed)
	}
	if wait < 14*time.Minute || wait > 15*time.Minute {
		t.Fatalf("retry after %s, want about 15m", wait)
	}
	if ok, _ := b.Allow(t.Context(), "user:43"); !ok {
		t.Fatal("another user is limited")
	}
	if a.buckets() != 0 || b.buckets() != 0 {
		t.Fatal("in-process buckets used while Redis was up")
	}
	keys, err := rdb.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %v", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "user") || strings.Contains(k, "42") {
			t.Fatalf("bucket id stored in clear: %s", k)
		}
		ttl, _ := rdb.PTTL(t.Context(), k).Result()
		if ttl <= 0 || ttl > time.Hour+time.Second {
			t.Fatalf("%s ttl %s", k, ttl)
		}
	}
}

func TestRateLimitRedisDownFallsBack(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	var logs strings.Builder
	var mu sync.Mutex
	mw, err := RateLimit(RateLimitOptions{Limit: 2, Window: time.Hour, Redis: dead,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.POST("/x", mw, func(c *gin.Context) { c.Status(204) })
	var codes []int
	for range 4 {
		req := httptest.NewRequest(http.MethodPost, "/x", nil)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		codes = append(codes, w.Code)
	}
	if fmt.Sprint(codes) != "[204 204 429 429]" {
		t.Fatalf("codes %v: want the in-process limit, never a 5xx", codes)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "Redis failed"); n != 1 {
		t.Fatalf("%d log lines, want 1 (throttled): %s", n, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func BenchmarkRateLimitInProcess(b *testing.B) {
	l, err := NewLimiter(RateLimitOptions{Limit: 1 << 30, Window: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(context.Background(), "user:1")
	}
}

// TestRateLimitRedisRecovers stops a private Redis under the limiter, then
// starts it again: the limiter falls back, then returns to Redis.
func TestRateLimitRedisRecovers(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := srv.Client()
	l, err := NewLimiter(RateLimitOptions{Limit: 100, Window: time.Hour, Redis: c, Prefix: testenv.Prefix(t),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l.backoff = 50 * time.Millisecond
	if ok, _ := l.Allow(t.Context(), "u"); !ok || l.buckets() != 0 {
		t.Fatal("Redis not used")
	}
	srv.Stop()
	if ok, _ := l.Allow(t.Context(), "u"); !ok || l.buckets() != 1 {
		t.Fatal("no in-process fallback while Redis is down")
	}
	srv.Start()
	time.Sleep(60 * time.Millisecond) // the backoff, not a timing assertion
	if ok, _ := l.Allow(t.Context(), "v"); !ok {
		t.Fatal("refused after recovery")
	}
	if l.buckets() != 1 {
		t.Fatalf("%d in-process buckets: Redis not used again after it came back", l.buckets())
	}
	n, err := c.DBSize(t.Context()).Result()
	if err != nil || n != 1 {
		t.Fatalf("private Redis holds %d keys (%v), want the new bucket", n, err)
	}
}
