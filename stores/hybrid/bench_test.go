package hybrid_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ginbyok/byok/stores/hybrid"
)

// BenchmarkGet measures a signed-in Get on real Redis and PostgreSQL:
// cache_hit (one Redis GET, no SQL), cache_miss (the session's cache is gone:
// GET, one SQL List, encode and store the cache) and, for reference, sql_only
// (no Redis: one SQL query per read). sql/op and redis-cmds/op are counted
// by the counting driver and the go-redis hook.
func BenchmarkGet(b *testing.B) {
	st := newSetup(b, backends[0])
	r := st.replica(b)
	sc := user("bench", newSession())
	ct := strings.Repeat("c", 120) // about the size of a sealed API key
	for _, p := range []string{"anthropic", "mistral", "openai"} {
		mustPut(b, r.h, sc, record(p, ct, time.Now()))
	}
	st.redis = nil
	direct := st.replica(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		r      *replica
		before func()
	}{
		{"cache_hit", r, func() {}},
		{"cache_miss", r, func() { sc.Session.Delete(hybrid.DefaultCacheKey) }},
		{"sql_only", direct, func() {}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := bc.r.h.Get(ctx, sc, "openai"); err != nil { // warm the pools
				b.Fatal(err)
			}
			bc.r.reset()
			b.ReportAllocs()
			for b.Loop() {
				bc.before()
				if _, err := bc.r.h.Get(ctx, sc, "openai"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bc.r.queries.Load())/float64(b.N), "sql/op")
			if bc.r.redis != nil {
				b.ReportMetric(float64(bc.r.redis.cmds.Load())/float64(b.N), "redis-cmds/op")
			}
		})
	}
}
