package bench_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/internal/testenv"
)

// BenchmarkRedisRoundTrips prices what a guarded request on Redis sessions
// pays beyond the session read: the session GET alone (what an unguarded
// route costs), the session GET followed by the epoch GET (what the hybrid
// cache hit does today), and the two fetched in one round trip, as a
// pipeline or one MGET (what fusing the plugin's session load with the epoch
// check would cost). Values are the sizes the plugin stores: a 600-byte
// session holding the cache, a 16-byte epoch. Many goroutines at once, as in
// a server under load, so ns/op is the inverse of throughput; cpu-ns/op and
// redis-cpu-ns/op are the CPU time of the client process and of the
// (private) Redis server per operation.
//
// Run: . /tmp/byok-dev.env && go test -run '^$' -bench RedisRoundTrips ./bench
func BenchmarkRedisRoundTrips(b *testing.B) {
	rdb := privateRedis(b)
	prefix := testenv.Prefix(b)
	ctx := context.Background()
	sess, epoch := prefix+"sess:abc", prefix+"epoch:bench-user"
	if err := rdb.Set(ctx, sess, bytes.Repeat([]byte{'s'}, 600), 0).Err(); err != nil {
		b.Fatal(err)
	}
	if err := rdb.Set(ctx, epoch, bytes.Repeat([]byte{'e'}, 16), 0).Err(); err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"session_get", func(ctx context.Context) error { return rdb.Get(ctx, sess).Err() }},
		{"session_then_epoch", func(ctx context.Context) error {
			if err := rdb.Get(ctx, sess).Err(); err != nil {
				return err
			}
			return rdb.Get(ctx, epoch).Err()
		}},
		{"pipelined", func(ctx context.Context) error {
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, sess)
				p.Get(ctx, epoch)
				return nil
			})
			return err
		}},
		{"mget", func(ctx context.Context) error { return rdb.MGet(ctx, sess, epoch).Err() }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cpu := cpuMeter{rdb: rdb}
			cpu.start()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := c.op(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu.report(b)
		})
	}
}
