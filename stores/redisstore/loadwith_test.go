package redisstore_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/redisstore"
)

// otherClient is a client of a type the store does not know: it must fall
// back to a pipeline, as it does for Cluster and Ring, where the keys may
// live on different nodes.
type otherClient struct{ *redis.Client }

// clientKinds are the two ways LoadWith reads: one MGET on a single node,
// a pipeline of GETs elsewhere.
var clientKinds = []struct {
	name string
	wrap func(*redis.Client) redis.UniversalClient
	cmds string // what one LoadWith of the session and two keys sends
	one  string // and of the session and one key
}{
	{"single node", func(c *redis.Client) redis.UniversalClient { return c }, "mget", "mget"},
	{"other client", func(c *redis.Client) redis.UniversalClient { return otherClient{c} }, "get get get", "get get"},
}

func loadWith(s *redisstore.Store, c *http.Cookie, keys ...string) (map[any]any, []redisstore.Fetched, error) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if c != nil {
		req.AddCookie(c)
	}
	sess, fetched, err := s.LoadWith(req, cookieName, keys...)
	if sess == nil {
		panic("LoadWith returned a nil session")
	}
	return sess.Values, fetched, err
}

// LoadWith reads the session and the extra keys in ONE round trip, and
// tells a missing key from a present one.
func TestLoadWith(t *testing.T) {
	for _, kind := range clientKinds {
		t.Run(kind.name, func(t *testing.T) {
			rdb := testenv.Redis(t)
			hook := &roundTrips{}
			rdb.AddHook(hook)
			s, prefix := newStore(t, kind.wrap(rdb), keysA)
			present, missing := prefix+"x:present", prefix+"x:missing"
			if err := rdb.Set(t.Context(), present, "epoch\x00\xff", 0).Err(); err != nil {
				t.Fatal(err)
			}
			c := saveDirect(t, s, map[any]any{"uid": "u1"})
			hook.take()
			check := func(step string, wantTrips int, wantCmds string) {
				t.Helper()
				if n, cmds := hook.take(); n != wantTrips || cmds != wantCmds {
					t.Errorf("%s: %d round trips (%s), want %d (%s)", step, n, cmds, wantTrips, wantCmds)
				}
			}

			vals, fetched, err := loadWith(s, c, present, missing)
			if err != nil || vals["uid"] != "u1" {
				t.Fatalf("session: %v %v", vals, err)
			}
			want := []redisstore.Fetched{{Value: "epoch\x00\xff", Found: true}, {}}
			if len(fetched) != 2 || fetched[0] != want[0] || fetched[1] != want[1] {
				t.Fatalf("fetched %+v, want %+v", fetched, want)
			}
			check("session and two keys", 1, kind.cmds)

			vals, fetched, err = loadWith(s, c)
			if err != nil || vals["uid"] != "u1" || fetched != nil {
				t.Fatalf("no extra keys: %v %v %v", vals, fetched, err)
			}
			check("no extra keys", 1, "get")

			// No cookie, or a forged one: nothing is read, the caller reads
			// the keys itself.
			if _, fetched, err := loadWith(s, nil, present); err != nil || fetched != nil {
				t.Errorf("no cookie: fetched %v, err %v", fetched, err)
			}
			forged := &http.Cookie{Name: cookieName, Value: c.Value[:43] + "." + c.Value[:43]}
			if _, fetched, err := loadWith(s, forged, present); !errors.Is(err, redisstore.ErrInvalidCookie) || fetched != nil {
				t.Errorf("forged cookie: fetched %v, err %v", fetched, err)
			}
			check("no or forged cookie", 0, "")

			// A session gone from Redis: a new session, the keys still read.
			if err := rdb.Del(t.Context(), prefix+idOf(t, c)).Err(); err != nil {
				t.Fatal(err)
			}
			hook.take()
			vals, fetched, err = loadWith(s, c, present)
			if err != nil || len(vals) != 0 || len(fetched) != 1 || fetched[0] != want[0] {
				t.Fatalf("expired session: %v %+v %v", vals, fetched, err)
			}
			check("expired session", 1, kind.one)
		})
	}
}

// With Redis down, LoadWith fails as New does and reads no key.
func TestLoadWithRedisDown(t *testing.T) {
	for _, kind := range clientKinds {
		t.Run(kind.name, func(t *testing.T) {
			srv := testenv.StartRedis(t)
			s, prefix := newStore(t, kind.wrap(srv.Client()), keysA)
			c := saveDirect(t, s, map[any]any{"uid": "u1"})
			srv.Stop()
			vals, fetched, err := loadWith(s, c, prefix+"x")
			if !errors.Is(err, stores.ErrUnavailable) || fetched != nil || len(vals) != 0 {
				t.Fatalf("down: %v %v %v", vals, fetched, err)
			}
		})
	}
}
