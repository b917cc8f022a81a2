package bench_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/example/app"
	"github.com/ginbyok/byok/internal/testenv"
)

// BenchmarkExampleApp is scripts/load.sh in one process: the example app
// (example/app.New) with sessions in a private Redis and keys in a fresh
// PostgreSQL database, a signed-in user with a key, and many goroutines
// sending GET /demo/openai (guarded; JSON) or GET /favicon.ico (the same
// middleware, no plugin) with the user's cookies. The app logs every
// request, as it does in the load test, here to io.Discard. redis-cmds/op
// is read from the server's command statistics.
//
// Run: . /tmp/byok-dev.env && go test -run '^$' -bench ExampleApp -benchmem ./bench
func BenchmarkExampleApp(b *testing.B) {
	rdb := privateRedis(b)
	srvURL := "redis://" + rdb.Options().Addr + "/0"
	handler, release, err := app.New(context.Background(), app.Config{
		Secret:      newSecret(b),
		RedisURL:    srvURL,
		DatabaseURL: testenv.PostgresURL(b),
		DataDir:     b.TempDir(),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(release)

	jar := map[string]string{}
	cookies := func() string {
		var parts []string
		for n, v := range jar {
			parts = append(parts, n+"="+v)
		}
		return strings.Join(parts, "; ")
	}
	send := func(r *http.Request) *httptest.ResponseRecorder {
		r.Header.Set("Cookie", cookies())
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		for _, c := range w.Result().Cookies() {
			jar[c.Name] = c.Value
		}
		return w
	}
	login := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"user": {"bench-user"}}.Encode()))
	login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if w := send(login); w.Code != http.StatusSeeOther {
		b.Fatalf("login: %d", w.Code)
	}
	body, _ := json.Marshal(map[string]string{"api_key": apiKey, "ttl": "never"})
	store := httptest.NewRequest(http.MethodPost, "/keys/"+provider, strings.NewReader(string(body)))
	store.Header.Set("Content-Type", "application/json")
	store.Header.Set("Accept", "application/json")
	if w := send(store); w.Code != http.StatusCreated {
		b.Fatalf("storing the key: %d %s", w.Code, w.Body)
	}
	demo := httptest.NewRequest(http.MethodGet, "/demo/"+provider, nil)
	demo.Header.Set("Accept", "application/json")
	var got demoAnswer
	if w := send(demo); w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &got) != nil || got.Masked != encrypt.Mask(apiKey) {
		b.Fatalf("demo: %d %s", w.Code, w.Body)
	}

	for _, path := range []string{"/favicon.ico", "/demo/" + provider} {
		name := "unguarded_favicon"
		if strings.HasPrefix(path, "/demo/") {
			name = "guarded_demo"
		}
		r := request(path, cookies())
		b.Run(name, func(b *testing.B) {
			var failed atomic.Int64
			calls0 := redisCalls(rdb)
			cpu := cpuMeter{rdb: rdb}
			cpu.start()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					w.code = 0
					handler.ServeHTTP(w, r.Clone(ctx))
					if w.code != http.StatusOK {
						failed.Add(1)
					}
				}
			})
			cpu.report(b)
			b.ReportMetric(float64(redisCalls(rdb)-calls0)/float64(b.N), "redis-cmds/op")
			if n := failed.Load(); n > 0 {
				b.Fatalf("%s: %d requests failed", path, n)
			}
		})
	}
}

// redisCalls returns how many commands the Redis server has run, INFO
// (which the benchmarks send to read it) aside.
func redisCalls(rdb redis.UniversalClient) int64 {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		return 0
	}
	var total int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_info:") {
			continue
		}
		_, rest, _ := strings.Cut(line, "calls=")
		n, _, _ := strings.Cut(rest, ",")
		v, err := strconv.ParseInt(n, 10, 64)
		if err == nil {
			total += v
		}
	}
	return total
}
