package reliability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
)

// replicaUser is one user of the concurrency test: the last acknowledged
// key per provider ("" none), the key most recently deleted per provider,
// and two devices (cookie jars), each of which talks to either replica.
type replicaUser struct {
	mu      sync.Mutex // serializes this user's requests: "last acknowledged" is then well defined
	id      string
	key     map[string]string
	deleted map[string]string
	devices [2]*client
}

// TestTwoReplicasConcurrentClients runs two replicas of the app (two
// Register calls, two Redis clients, two PostgreSQL pools, one database and
// one Redis) and 50 clients that store, replace, delete and read keys for
// 100 users through random devices and replicas for a bounded time. Each
// user's requests are serialized on the client side. Every read after an
// acknowledged write, on any replica and any device, must see that write;
// no read after an acknowledged delete may return the deleted key; and
// afterwards each user's state equals the last acknowledged write.
func TestTwoReplicasConcurrentClients(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	_, prefix := sharedRedis(t)
	replica := func() *stack {
		db, err := sqlx.Open("postgres", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		opt, err := redis.ParseURL(testenv.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { _ = rdb.Close() })
		return newStack(t, byok.WithDB(db), byok.WithRedis(rdb), byok.WithRedisPrefix(prefix))
	}
	// Both replicas start at once: migrations and the check value race.
	var reps [2]*stack
	var startWG sync.WaitGroup
	for i := range reps {
		startWG.Go(func() { reps[i] = replica() })
	}
	startWG.Wait()
	if t.Failed() {
		t.FailNow()
	}

	const nUsers, nClients = 100, 50
	dur := runFor(5*time.Second, 60*time.Second)
	users := make([]*replicaUser, nUsers)
	for i := range users {
		u := &replicaUser{id: fmt.Sprintf("user-%03d", i), key: map[string]string{}, deleted: map[string]string{}}
		for d := range u.devices {
			u.devices[d] = reps[0].client(u.id)
		}
		users[i] = u
	}

	var counts counter
	var failures sync.Map
	fail := func(kind string, detail string) {
		counts.inc(kind)
		failures.LoadOrStore(kind, detail)
	}
	// check reads the user's key for p through a random device and replica
	// and compares it with what was acknowledged. Called with u.mu held.
	check := func(rng *rand.Rand, u *replicaUser, p, after string) {
		dev := u.devices[rng.IntN(2)].on(reps[rng.IntN(2)])
		want := u.key[p]
		var got string
		if rng.IntN(2) == 0 {
			var r response
			got, r = dev.use(p)
			counts.inc("read.guarded")
			if got == "" && !isProblem(r, http.StatusForbidden, "key_required") {
				fail("read.error", r.String())
				return
			}
			if got != "" && got == sum(u.deleted[p]) && want != u.deleted[p] {
				fail("read.deleted_key_returned", fmt.Sprintf("%s/%s after %s", u.id, p, after))
			}
			if got != sum(want) {
				fail("read.stale", fmt.Sprintf("%s/%s after %s: got %q want %q", u.id, p, after, got, sum(want)))
			}
			return
		}
		r := dev.do("GET", "/keys/"+p, nil)
		counts.inc("read.info")
		var info struct {
			HasKey bool   `json:"has_key"`
			Masked string `json:"masked"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &info) != nil {
			fail("read.error", r.String())
			return
		}
		if info.HasKey != (want != "") {
			if !info.HasKey || u.deleted[p] == "" || !strings.HasSuffix(info.Masked, u.deleted[p][len(u.deleted[p])-4:]) {
				fail("read.stale", fmt.Sprintf("%s/%s after %s: has_key %v", u.id, p, after, info.HasKey))
			} else {
				fail("read.deleted_key_returned", fmt.Sprintf("%s/%s after %s: %s", u.id, p, after, info.Masked))
			}
			return
		}
		if want != "" && !strings.HasSuffix(info.Masked, want[len(want)-4:]) {
			fail("read.stale", fmt.Sprintf("%s/%s after %s: masked %q, want …%s", u.id, p, after, info.Masked, want[len(want)-4:]))
		}
	}

	var stop atomic.Bool
	var ops atomic.Int64
	var wg sync.WaitGroup
	for g := range nClients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for !stop.Load() {
				u := users[rng.IntN(len(users))]
				p := providers[rng.IntN(len(providers))]
				u.mu.Lock()
				dev := u.devices[rng.IntN(2)].on(reps[rng.IntN(2)])
				switch op := rng.IntN(10); {
				case op < 5: // store, or replace
					key := newKey(p)
					r := dev.setKey(p, key, "")
					want := http.StatusCreated
					if u.key[p] != "" {
						want = http.StatusOK
					}
					switch r.status {
					case want:
						u.key[p] = key
						counts.inc("write.set.acked")
						check(rng, u, p, "set")
					case http.StatusOK, http.StatusCreated:
						// Acknowledged, but "replaced" disagrees with the
						// last acknowledged state: a lost or ghost write.
						u.key[p] = key
						fail("write.set.wrong_replaced_flag", fmt.Sprintf("%s/%s: %d, want %d", u.id, p, r.status, want))
					default:
						fail("write.set.failed", r.String())
					}
				case op < 8: // delete
					r := dev.deleteKey(p)
					if r.status != http.StatusNoContent {
						fail("write.delete.failed", r.String())
						break
					}
					if u.key[p] != "" {
						u.deleted[p] = u.key[p]
					}
					u.key[p] = ""
					counts.inc("write.delete.acked")
					check(rng, u, p, "delete")
				default: // read only
					check(rng, u, p, "read")
				}
				ops.Add(1)
				u.mu.Unlock()
			}
		})
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()

	// Afterwards, from fresh devices on both replicas and from the manager:
	// each user's state is the last acknowledged write.
	ctx := context.Background()
	finalChecks := 0
	for _, u := range users {
		for _, p := range providers {
			for _, rep := range reps {
				got, r := rep.client(u.id).use(p)
				finalChecks++
				if got != sum(u.key[p]) {
					fail("final.mismatch", fmt.Sprintf("%s/%s: %s", u.id, p, r))
				}
			}
			k, err := reps[1].kit.Keys().Get(ctx, stores.Scope{UserID: u.id}, p)
			switch {
			case u.key[p] == "" && !errors.Is(err, byok.ErrNotFound):
				fail("final.manager", fmt.Sprintf("%s/%s: want none, got err %v", u.id, p, err))
			case u.key[p] != "" && (err != nil || k.Reveal() != u.key[p]):
				fail("final.manager", fmt.Sprintf("%s/%s: %v", u.id, p, err))
			}
		}
	}
	t.Logf("replicas: 2 replicas, %d clients, %d users, %s: %d operations (%.0f/s); %d final checks; counts: %s",
		nClients, nUsers, dur, ops.Load(), float64(ops.Load())/dur.Seconds(), finalChecks, &counts)
	failures.Range(func(k, v any) bool {
		t.Errorf("%s (%d times), first: %s", k, counts.get(k.(string)), v)
		return true
	})
	if counts.get("write.delete.acked") == 0 || counts.get("write.set.acked") == 0 {
		t.Fatalf("too few operations to prove anything: %s", &counts)
	}
	t.Logf("replicas: reads after an acknowledged delete that returned the deleted key: %d; stale reads: %d",
		counts.get("read.deleted_key_returned"), counts.get("read.stale"))
	for _, rep := range reps {
		rep.healthy()
	}
}
