package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
)

// outageClock marks when faults start and end, so each request can be
// judged by the state the system was in for its whole duration.
type outageClock struct {
	mu      sync.Mutex
	windows [][2]time.Time // [down from, up again at]; the last may be open
	settle  time.Duration  // after a restore, how long a write may still fail
}

func (o *outageClock) down(at time.Time) {
	o.mu.Lock()
	o.windows = append(o.windows, [2]time.Time{at, {}})
	o.mu.Unlock()
}

func (o *outageClock) up(at time.Time) {
	o.mu.Lock()
	o.windows[len(o.windows)-1][1] = at
	o.mu.Unlock()
}

// state says what a request that ran from start to end saw: "down" if the
// whole request fell inside an outage, "up" if it fell entirely outside
// every outage and its settling time, else "edge".
func (o *outageClock) state(start, end time.Time) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.windows {
		from, to := w[0], w[1]
		open := to.IsZero()
		if !start.Before(from) && (open || end.Before(to)) {
			return "down"
		}
		settled := to.Add(o.settle)
		if end.Before(from) || (!open && start.After(settled)) {
			continue
		}
		return "edge"
	}
	return "up"
}

// writerState tracks one user's key as the writer saw it acknowledged:
// acked is the last acknowledged key; maybe holds keys of writes that
// failed after it (a write that fails may still have reached SQL).
type writerState struct {
	acked string
	maybe []string
}

func (w *writerState) allowed(s string) bool {
	if sum(w.acked) == s {
		return true
	}
	for _, k := range w.maybe {
		if sum(k) == s {
			return true
		}
	}
	return false
}

// TestRedisKilledUnderLoad kills the app's private Redis (SIGKILL) while
// JSON clients of signed-in users read their keys through a guarded route
// and others replace theirs, then starts it again. Every read of a user
// whose key is persisted must keep answering 200 with the right key from
// PostgreSQL; writes must answer 503 storage_unavailable while Redis is down
// (the hybrid store refuses a change it could not announce) and succeed
// again after the restart, with no restart of the app.
func TestRedisKilledUnderLoad(t *testing.T) {
	rs := testenv.StartRedis(t)
	db := testenv.Postgres(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, PoolTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := testenv.Prefix(t)
	// A generous write limit, so that the Redis-shared limiter (and its
	// in-process fallback while Redis is down) runs on every write.
	s := newStack(t, byok.WithRedis(rdb), byok.WithRedisPrefix(prefix), byok.WithDB(db),
		byok.WithRateLimit(100000, time.Minute))

	const readerUsers, writerUsers, readers = 24, 6, 10
	cycles := 1
	upTime, downTime := 1500*time.Millisecond, 2*time.Second
	if soak() {
		cycles = int(runFor(0, 60*time.Second) / (5 * time.Second))
		upTime, downTime = 3*time.Second, 2*time.Second
	}

	// Persisted keys: each reader user has one, stored while Redis is up,
	// and two devices.
	type reader struct {
		id      string
		sum     string
		devices [2]*client
	}
	rusers := make([]reader, readerUsers)
	for i := range rusers {
		u := reader{id: fmt.Sprintf("reader-%02d", i)}
		key := newKey("openai")
		u.sum = sum(key)
		for d := range u.devices {
			u.devices[d] = s.client(u.id)
		}
		if r := u.devices[0].setKey("openai", key, "never"); r.status != http.StatusCreated {
			t.Fatalf("storing %s's key: %s", u.id, r)
		}
		rusers[i] = u
	}
	wstate := make([]*writerState, writerUsers)
	for i := range wstate {
		key := newKey("openai")
		if r := s.client(fmt.Sprintf("writer-%02d", i)).setKey("openai", key, "never"); r.status != http.StatusCreated {
			t.Fatalf("storing writer %d's key: %s", i, r)
		}
		wstate[i] = &writerState{acked: key}
	}

	// go-redis, after failed dials, answers from its last dial error and
	// redials in the background about once a second: allow two seconds
	// after the restart before a write must succeed.
	clock := &outageClock{settle: 2 * time.Second}
	var stop atomic.Bool
	var counts counter
	var lat latencies
	var failures sync.Map // first failure per kind, for the report
	fail := func(kind string, r response) {
		counts.inc(kind)
		failures.LoadOrStore(kind, r.String())
	}
	var wg sync.WaitGroup

	for g := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for !stop.Load() {
				u := rusers[rng.IntN(len(rusers))]
				start := time.Now()
				got, r := u.devices[rng.IntN(2)].use("openai")
				end := time.Now()
				st := clock.state(start, end)
				counts.inc("read." + st)
				lat.add("read."+st, end.Sub(start))
				switch {
				case r.status >= 500 || r.err != nil:
					fail("read.5xx_or_error", r)
				case got != u.sum:
					fail("read.wrong_answer", r)
				default:
					counts.inc("read.ok")
				}
			}
		})
	}
	var firstWriteAfter sync.Map // restart index -> time to first acked write
	for i, w := range wstate {
		wg.Go(func() {
			dev := s.client(fmt.Sprintf("writer-%02d", i))
			other := s.client(dev.user)
			for !stop.Load() {
				key := newKey("openai")
				start := time.Now()
				r := dev.setKey("openai", key, "never")
				end := time.Now()
				st := clock.state(start, end)
				counts.inc("write." + st)
				ok := r.status == http.StatusOK || r.status == http.StatusCreated
				switch {
				case ok:
					w.acked, w.maybe = key, nil
					counts.inc("write.acked")
					clock.mu.Lock()
					for n, win := range clock.windows {
						if !win[1].IsZero() && start.After(win[1]) {
							firstWriteAfter.LoadOrStore(n, end.Sub(win[1]))
						}
					}
					clock.mu.Unlock()
				case isProblem(r, http.StatusServiceUnavailable, "storage_unavailable"):
					w.maybe = append(w.maybe, key)
					counts.inc("write.503")
				default:
					w.maybe = append(w.maybe, key)
					fail("write.unexpected", r)
				}
				if st == "up" && !ok {
					fail("write.failed_while_up", r)
				}
				if st == "down" && ok {
					fail("write.acked_while_redis_down", r)
				}
				// The writer's own reads, from another device: the key is the
				// last acknowledged one (or one whose write failed late).
				got, rr := other.use("openai")
				counts.inc("writer_read")
				if rr.status >= 500 || rr.err != nil {
					fail("writer_read.5xx_or_error", rr)
				} else if !w.allowed(got) {
					fail("writer_read.not_last_acked", rr)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}

	time.Sleep(upTime)
	for c := range cycles {
		rs.Stop()
		clock.down(time.Now())
		counts.inc("fault.redis_killed")
		time.Sleep(downTime)
		clock.up(time.Now())
		rs.Start()
		counts.inc("fault.redis_restarted")
		t.Logf("cycle %d: redis killed for %s and restarted", c+1, downTime)
		time.Sleep(upTime + clock.settle)
	}
	stop.Store(true)
	wg.Wait()

	t.Logf("redis outage: %d kill/restart cycles, %d readers over %d users, %d writers; counts: %s; go-redis log lines: %d",
		cycles, readers, readerUsers, writerUsers, &counts, redisLog.n.Load())
	t.Logf("redis outage: latencies: %s", &lat)
	firstWriteAfter.Range(func(k, v any) bool {
		t.Logf("redis outage: restart %d: first acknowledged write %s after the restart", k.(int)+1, v.(time.Duration).Round(time.Millisecond))
		return true
	})
	failures.Range(func(k, v any) bool {
		t.Errorf("%s (%d times), first: %s", k, counts.get(k.(string)), v)
		return true
	})
	if counts.get("read.down") == 0 || counts.get("write.down") == 0 {
		t.Fatalf("no request ran while Redis was down: the test proved nothing (%s)", &counts)
	}
	if counts.get("write.503") == 0 {
		t.Error("no write was refused while Redis was down")
	}

	// A write answered 503 may still have been stored (Redis died between
	// its SQL write and the epoch bump that follows): count those.
	late := 0
	for i, w := range wstate {
		got, r := s.client(fmt.Sprintf("writer-%02d", i)).use("openai")
		switch {
		case !w.allowed(got):
			t.Errorf("writer %d after the outage holds neither the last acknowledged key nor a later attempt: %s", i, r)
		case got != sum(w.acked):
			late++
		}
	}
	t.Logf("redis outage: writers whose final key came from a write answered 503: %d of %d", late, len(wstate))

	// Recovery, without restarting the app: every writer can write again,
	// and the app uses Redis again (epochs and sessions are back in it).
	for i, w := range wstate {
		dev := s.client(fmt.Sprintf("writer-%02d", i))
		key := newKey("openai")
		if r := dev.setKey("openai", key, "never"); r.status != http.StatusOK {
			t.Errorf("write after recovery: %s", r)
			continue
		}
		w.acked, w.maybe = key, nil
		if got, r := dev.use("openai"); got != sum(key) {
			t.Errorf("read after recovery: %s", r)
		}
	}
	ctx := context.Background()
	for _, pat := range []string{prefix + "epoch:*", prefix + "sess:*"} {
		keys, err := rdb.Keys(ctx, pat).Result()
		if err != nil || len(keys) == 0 {
			t.Errorf("after the restart Redis holds no %s keys (%v): the app did not go back to Redis", pat, err)
		}
	}
	// Final state, read from SQL by the manager: every key is there and opens.
	for _, u := range rusers {
		k, err := s.kit.Keys().Get(ctx, stores.Scope{UserID: u.id}, "openai")
		if err != nil || sum(k.Reveal()) != u.sum {
			t.Errorf("%s's key after the outage: %v", u.id, err)
		}
	}
	s.healthy()
}
