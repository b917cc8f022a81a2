package bench_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/internal/testenv"
)

// While other work shares the CPUs, wall time per request swings by half or
// more from one run to the next; the CPU time a request costs does not.
// When the app is CPU-bound, as under load on two cores, throughput is the
// cores divided by the CPU time per request, app and Redis together, so
// the ratio of two routes' CPU costs is the ratio of their throughputs.

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// privateRedis starts a Redis server of the benchmark's own, so that its
// CPU time counts this benchmark's commands alone, and returns a client.
func privateRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	srv := testenv.StartRedis(tb)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	tb.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("private redis: %v", err)
	}
	return rdb
}

// redisCPU returns the CPU time (user and system) the Redis server has used,
// from INFO cpu.
func redisCPU(rdb redis.UniversalClient) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		name, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && (name == "used_cpu_sys" || name == "used_cpu_user") {
			f, err := strconv.ParseFloat(val, 64)
			if err == nil {
				total += f
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// cpuMeter measures the CPU time of a benchmark loop: this process's and,
// with rdb set, the private Redis server's.
type cpuMeter struct {
	rdb         redis.UniversalClient
	proc, redis time.Duration
}

// start records the CPU times before the loop.
func (m *cpuMeter) start() {
	m.proc = processCPU()
	if m.rdb != nil {
		m.redis = redisCPU(m.rdb)
	}
}

// report adds cpu-ns/op (this process) and redis-cpu-ns/op to b's results.
func (m *cpuMeter) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(processCPU()-m.proc)/n, "cpu-ns/op")
	if m.rdb != nil {
		b.ReportMetric(float64(redisCPU(m.rdb)-m.redis)/n, "redis-cpu-ns/op")
	}
}
