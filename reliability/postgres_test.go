package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
)

// keyState is what one user's keys may be, per provider, as the client saw
// its writes answered: acked is the last acknowledged value ("" for none);
// maybe holds the values of writes that failed after it, which may still
// have reached the database (a commit whose answer was lost).
type keyState struct {
	acked map[string]string
	maybe map[string][]string
}

func newKeyState() *keyState {
	return &keyState{acked: map[string]string{}, maybe: map[string][]string{}}
}

func (k *keyState) ack(provider, key string) {
	k.acked[provider] = key
	delete(k.maybe, provider)
}

func (k *keyState) failed(provider, key string) {
	k.maybe[provider] = append(k.maybe[provider], key)
}

// allows reports whether digest (sum of a key, "" for none) is a state the
// provider's key may be in.
func (k *keyState) allows(provider, digest string) bool {
	if sum(k.acked[provider]) == digest {
		return true
	}
	for _, v := range k.maybe[provider] {
		if sum(v) == digest {
			return true
		}
	}
	return false
}

// keyRow is a row of the key table, as far as these tests look.
type keyRow struct {
	UserID   string `db:"user_id"`
	Provider string `db:"provider"`
}

// TestPostgresCutDuringWrites cuts the app's connection to PostgreSQL
// (a TCP proxy in front of it) while clients store, replace and delete keys,
// and restores it later. Writes that run while it is cut must answer 503
// storage_unavailable as problem+json with a clear message; reads from a
// session whose cache is valid keep answering; afterwards every key
// acknowledged is there and opens, and every row in the table opens: nothing
// is half-written.
func TestPostgresCutDuringWrites(t *testing.T) {
	proxy := testenv.StartProxy(t, testenv.PostgresAddr(t))
	dbURL := testenv.PostgresURL(t)
	db, err := sqlx.Open("postgres", testenv.ViaProxy(dbURL, proxy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	direct, err := sqlx.Open("postgres", dbURL) // for inspection, not through the proxy
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close() })
	rdb, prefix := sharedRedis(t)
	s := newStack(t, byok.WithDB(db), byok.WithRedis(rdb), byok.WithRedisPrefix(prefix))

	const cacheUsers, writerUsers, writers = 8, 16, 4
	cuts := 1
	upTime, downTime := 700*time.Millisecond, 1500*time.Millisecond
	if soak() {
		cuts = int(runFor(0, 60*time.Second) / (4 * time.Second))
		upTime, downTime = 2*time.Second, 1500*time.Millisecond
	}

	// Users whose session cache is warm: stored and read once on device A.
	type cached struct {
		id     string
		sum    string
		device *client
	}
	cusers := make([]cached, cacheUsers)
	for i := range cusers {
		u := cached{id: fmt.Sprintf("cached-%02d", i), device: s.client(fmt.Sprintf("cached-%02d", i))}
		key := newKey("anthropic")
		u.sum = sum(key)
		if r := u.device.setKey("anthropic", key, "never"); r.status != http.StatusCreated {
			t.Fatalf("storing: %s", r)
		}
		if got, r := u.device.use("anthropic"); got != u.sum {
			t.Fatalf("reading: %s", r)
		}
		cusers[i] = u
	}

	// Writers: each user is written by one goroutine only, so "the last
	// acknowledged write" is well defined.
	states := make([]*keyState, writerUsers)
	for i := range states {
		states[i] = newKeyState()
	}
	clock := &outageClock{settle: 3 * time.Second}
	var stop atomic.Bool
	var counts counter
	var failures sync.Map
	fail := func(kind string, r response) {
		counts.inc(kind)
		failures.LoadOrStore(kind, r.String())
	}
	var details sync.Map // every 503 detail text seen
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 11))
			var mine []int
			for i := g; i < writerUsers; i += writers {
				mine = append(mine, i)
			}
			devs := map[int]*client{}
			for _, i := range mine {
				devs[i] = s.client(fmt.Sprintf("writer-%02d", i))
			}
			for !stop.Load() {
				i := mine[rng.IntN(len(mine))]
				st, dev := states[i], devs[i]
				p := providers[rng.IntN(len(providers))]
				op := rng.IntN(10)
				start := time.Now()
				var r response
				var applied func()
				var failed func()
				switch {
				case op < 6: // store or replace
					key := newKey(p)
					r = dev.setKey(p, key, "never")
					applied = func() { st.ack(p, key) }
					failed = func() { st.failed(p, key) }
					counts.inc("op.set")
				case op < 9: // delete one
					r = dev.deleteKey(p)
					applied = func() { st.ack(p, "") }
					failed = func() { st.failed(p, "") }
					counts.inc("op.delete")
				default: // clear all
					r = dev.clear()
					applied = func() {
						for _, q := range providers {
							st.ack(q, "")
						}
					}
					failed = func() {
						for _, q := range providers {
							st.failed(q, "")
						}
					}
					counts.inc("op.clear")
				}
				state := clock.state(start, time.Now())
				counts.inc("write." + state)
				ok := r.status >= 200 && r.status < 300
				switch {
				case ok:
					applied()
					counts.inc("write.acked")
				case isProblem(r, http.StatusServiceUnavailable, "storage_unavailable"):
					failed()
					counts.inc("write.503")
					pr, _ := problemOf(r)
					details.Store(pr.Detail, true)
				default:
					failed()
					fail("write.unexpected_status", r)
				}
				if state == "down" && ok {
					fail("write.acked_while_sql_cut", r)
				}
				if state == "up" && !ok {
					fail("write.failed_while_sql_up", r)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}

	// Readers of warm caches, and of cold ones, during the cuts.
	wg.Go(func() {
		for !stop.Load() {
			for _, u := range cusers {
				start := time.Now()
				got, r := u.device.use("anthropic")
				state := clock.state(start, time.Now())
				counts.inc("cached_read." + state)
				if got != u.sum {
					fail("cached_read.not_served", r)
				}
				cold := s.client(u.id)
				got, r = cold.use("anthropic")
				state = clock.state(start, time.Now())
				counts.inc("cold_read." + state)
				switch {
				case got == u.sum:
					counts.inc("cold_read.ok")
				case state != "up" && isProblem(r, http.StatusServiceUnavailable, "storage_unavailable"):
					counts.inc("cold_read.503")
				default:
					fail("cold_read.unexpected", r)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	probe := s.client("probe")
	var recoveries []time.Duration
	time.Sleep(upTime)
	for range cuts {
		proxy.Cut()
		clock.down(time.Now())
		counts.inc("fault.sql_cut")
		time.Sleep(downTime)
		clock.up(time.Now())
		proxy.Restore()
		counts.inc("fault.sql_restored")
		restored := time.Now()
		for {
			if r := probe.setKey("openai", newKey("openai"), ""); r.status/100 == 2 {
				recoveries = append(recoveries, time.Since(restored).Round(time.Millisecond))
				break
			}
			if time.Since(restored) > 15*time.Second {
				t.Fatal("writes did not recover within 15s of restoring PostgreSQL")
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(upTime + clock.settle)
	}
	stop.Store(true)
	wg.Wait()

	t.Logf("postgres cut: %d cuts of %s, %d writers over %d users, %d warm-cache users; counts: %s",
		cuts, downTime, writers, writerUsers, cacheUsers, &counts)
	t.Logf("postgres cut: first acknowledged write after each restore: %v", recoveries)
	failures.Range(func(k, v any) bool {
		t.Errorf("%s (%d times), first: %s", k, counts.get(k.(string)), v)
		return true
	})
	if counts.get("write.down") == 0 || counts.get("write.503") == 0 {
		t.Fatalf("no write ran while PostgreSQL was cut: the test proved nothing (%s)", &counts)
	}
	if counts.get("cached_read.down") == 0 || counts.get("cold_read.503") == 0 {
		t.Errorf("reads during the cut were not exercised (%s)", &counts)
	}
	details.Range(func(k, _ any) bool {
		d := k.(string)
		if !strings.Contains(d, "cannot be reached") || !strings.Contains(d, "try again") {
			t.Errorf("503 detail is not a clear message: %q", d)
		}
		t.Logf("postgres cut: 503 detail: %q", d)
		return true
	})

	// Afterwards: each writer user's keys are the last acknowledged ones
	// (or, only where a write failed after it, that write's), on a fresh
	// device, and through the manager.
	ctx := context.Background()
	var exact, uncertain, late int
	want := map[[2]string]bool{} // rows that must exist
	for i, st := range states {
		u := fmt.Sprintf("writer-%02d", i)
		dev := s.client(u)
		for _, p := range providers {
			got, r := dev.use(p)
			if got == "" && !isProblem(r, http.StatusForbidden, "key_required") {
				t.Errorf("%s/%s after the cut: %s", u, p, r)
				continue
			}
			if !st.allows(p, got) {
				t.Errorf("%s/%s after the cut holds a key that is neither the last acknowledged one nor a later attempt", u, p)
			}
			if len(st.maybe[p]) == 0 {
				exact++
			} else {
				uncertain++
			}
			if got != sum(st.acked[p]) {
				late++ // stored by a write that was answered 503
			}
			if got != "" {
				want[[2]string{u, p}] = true
				k, err := s.kit.Keys().Get(ctx, stores.Scope{UserID: u}, p)
				if err != nil || sum(k.Reveal()) != got {
					t.Errorf("%s/%s does not open through the manager: %v", u, p, err)
				}
			}
		}
	}
	// Every row of the table opens, and the rows are exactly the keys seen.
	var rows []keyRow
	if err := direct.SelectContext(ctx, &rows, "SELECT user_id, provider FROM "+byok.DefaultTable); err != nil {
		t.Fatal(err)
	}
	opened := 0
	for _, row := range rows {
		if _, err := s.kit.Keys().Get(ctx, stores.Scope{UserID: row.UserID}, row.Provider); err != nil {
			t.Errorf("row %s/%s does not open: %v", row.UserID, row.Provider, err)
			continue
		}
		opened++
		if strings.HasPrefix(row.UserID, "writer-") && !want[[2]string{row.UserID, row.Provider}] {
			t.Errorf("row %s/%s exists but the app does not serve it", row.UserID, row.Provider)
		}
	}
	writerRows := slices.DeleteFunc(slices.Clone(rows), func(r keyRow) bool { return !strings.HasPrefix(r.UserID, "writer-") })
	if len(writerRows) != len(want) {
		t.Errorf("%d writer rows in the table, %d keys served", len(writerRows), len(want))
	}
	t.Logf("postgres cut: afterwards %d user/provider states had only acknowledged writes, %d had a failed write after the "+
		"last acknowledged one; %d hold the result of a write answered 503; %d rows in the table, all %d open",
		exact, uncertain, late, len(rows), opened)
	for _, u := range cusers {
		if got, r := s.client(u.id).use("anthropic"); got != u.sum {
			t.Errorf("%s's key acknowledged before the cut: %s", u.id, r)
		}
	}
	s.healthy()
}
