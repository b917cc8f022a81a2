package hybrid_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/stores/hybrid"
)

// requestSession is a session that reads the user's epoch together with
// itself at the start of each request, as the plugin's own Redis session
// does (redisstore.Store.LoadWith): begin plays that start.
type requestSession struct {
	*memSession
	mu     sync.Mutex
	epochs map[string]prefetched
}

type prefetched struct {
	val   string
	found bool
}

var _ hybrid.EpochSource = (*requestSession)(nil)

func newRequestSession() *requestSession {
	return &requestSession{memSession: newSession(), epochs: map[string]prefetched{}}
}

// begin starts a request: it reads key with admin (a client the replicas'
// counters do not see), as the session load would.
func (s *requestSession) begin(t testing.TB, admin *redis.Client, key string) {
	t.Helper()
	v, err := admin.Get(context.Background(), key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epochs[key] = prefetched{val: v, found: err == nil}
}

func (s *requestSession) Epoch(key string) (string, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.epochs[key]
	return p.val, p.found, ok
}

func (s *requestSession) ForgetEpoch(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.epochs, key)
}

func (s *requestSession) has(key string) bool {
	_, _, ok := s.Epoch(key)
	return ok
}

// TestPrefetchedEpoch: a read takes the epoch the session read with itself
// instead of its own GET, once; a missing one (found false) behaves as a
// GET answering nil; a write forgets it; without one, the old path runs.
func TestPrefetchedEpoch(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			st := newSetup(t, b)
			r := st.replica(t)
			admin := st.redis()
			sess := newRequestSession()
			sc := user("alice", sess)
			key := r.h.EpochKey("alice")
			mustPut(t, r.h, sc, record("openai", "ct-1", time.Now()))

			read := func(step string, wantVal string, wantQ int64, wantCmds []string) {
				t.Helper()
				r.reset()
				if got := value(t, r.h, sc, "openai"); got != wantVal {
					t.Errorf("%s: read %q, want %q", step, got, wantVal)
				}
				q, cmds := r.queries.Load(), r.redis.take()
				if q != wantQ || !slices.Equal(cmds, wantCmds) {
					t.Errorf("%s: %d SQL statements, Redis %v; want %d and %v", step, q, cmds, wantQ, wantCmds)
				}
			}

			sess.begin(t, admin, key)
			hits := r.h.Stats().Hits
			read("hit with a prefetched epoch", "ct-1", 0, nil)
			if r.h.Stats().Hits != hits+1 {
				t.Error("the prefetched read was not a cache hit")
			}
			if sess.has(key) {
				t.Error("the prefetched epoch was not forgotten after one read")
			}
			read("second read of the request", "ct-1", 0, []string{"get"})
			read("not prefetched", "ct-1", 0, []string{"get"})

			// A prefetched epoch that differs from the cache's: a miss.
			sess.mu.Lock()
			sess.epochs[key] = prefetched{val: "another epoch", found: true}
			sess.mu.Unlock()
			read("prefetched epoch not matching", "ct-1", 1, nil)

			// Missing epoch: found false does what a GET answering nil does
			// (SET NX, then SQL), minus the GET.
			if err := admin.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			read("missing epoch, not prefetched", "ct-1", 1, []string{"get", "set"})
			if err := admin.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			sess.begin(t, admin, key)
			if _, found, _ := sess.Epoch(key); found {
				t.Fatal("begin found a deleted epoch")
			}
			read("missing epoch, prefetched", "ct-1", 1, []string{"set"})
			read("after the refill", "ct-1", 0, []string{"get"})

			// A write forgets the prefetched value before it changes the epoch.
			for _, w := range []struct {
				name  string
				write func() error
			}{
				{"Put", func() error { _, err := r.h.Put(ctx, sc, record("openai", "ct-2", time.Now())); return err }},
				{"Delete", func() error { _, err := r.h.Delete(ctx, sc, "anthropic"); return err }},
				{"Clear", func() error { _, err := r.h.Clear(ctx, user("alice", newSession())); return err }},
			} {
				sess.begin(t, admin, key)
				if err := w.write(); err != nil {
					t.Fatalf("%s: %v", w.name, err)
				}
				if w.name != "Clear" && sess.has(key) {
					t.Errorf("%s kept the prefetched epoch", w.name)
				}
			}
			sess.ForgetEpoch(key)
			// Clear through another session emptied the store.
			read("after Clear", "", 1, []string{"get"})
		})
	}
}

// TestStaleReadsPrefetched is TestStaleReads with sessions that read the
// epoch with themselves at the start of each request: after each
// acknowledged write on one replica, the next request of a session on
// either replica reads the new state, and no read sends its own GET.
func TestStaleReadsPrefetched(t *testing.T) {
	const rounds = 300
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := newSetup(t, b)
			admin := st.redis()
			reps := []*replica{st.replica(t), st.replica(t)}
			sess := []*requestSession{newRequestSession(), newRequestSession()}
			key := reps[0].h.EpochKey("u1")
			ctx := t.Context()
			want, stale := "", 0
			now := time.Now()
			request := func(j int) string {
				t.Helper()
				sess[j].begin(t, admin, key)
				reps[j].redis.take()
				got := value(t, reps[j].h, user("u1", sess[j]), "openai")
				if cmds := reps[j].redis.take(); slices.Contains(cmds, "get") {
					t.Fatalf("a read with a prefetched epoch sent %v", cmds)
				}
				return got
			}
			for i := range rounds {
				w := i % 2
				for j := range reps { // warm both caches
					if got := request(j); got != want {
						t.Fatalf("round %d: warm read on replica %d = %q, want %q", i, j+1, got, want)
					}
				}
				sc := user("u1", sess[w])
				if i%3 == 2 {
					if _, err := reps[w].h.Delete(ctx, sc, "openai"); err != nil {
						t.Fatal(err)
					}
					want = ""
				} else {
					want = fmt.Sprintf("v%d", i)
					mustPut(t, reps[w].h, sc, record("openai", want, now))
				}
				for j := range reps {
					if got := request(j); got != want {
						stale++
						t.Errorf("round %d: replica %d read %q after the write of %q on replica %d", i, j+1, got, want, w+1)
					}
				}
			}
			s1, s2 := reps[0].h.Stats(), reps[1].h.Stats()
			t.Logf("%s: %d rounds, %d stale; hits %d, misses %d", b.name, rounds, stale, s1.Hits+s2.Hits, s1.Misses+s2.Misses)
			if s1.Hits+s2.Hits < rounds {
				t.Errorf("only %d cache hits: the cache was not exercised", s1.Hits+s2.Hits)
			}
		})
	}
}
