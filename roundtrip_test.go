package byok_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores/redisstore"
)

// redisTrips is a go-redis hook that counts round trips (one per command
// or pipeline) and the commands sent, leaving out a new connection's
// handshake.
type redisTrips struct {
	mu    sync.Mutex
	trips int
	cmds  []string
}

func (h *redisTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.record([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *redisTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.record(cmds)
		return next(ctx, cmds)
	}
}

func (h *redisTrips) record(cmds []redis.Cmder) {
	var names []string
	for _, c := range cmds {
		if n := c.Name(); n != "hello" && n != "client" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips++
	h.cmds = append(h.cmds, names...)
}

// take returns the round trips and commands since the last take.
func (h *redisTrips) take() (int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, cmds := h.trips, strings.Join(h.cmds, " ")
	h.trips, h.cmds = 0, nil
	return n, cmds
}

// guardedRead sends GET path and checks the status, that the body holds
// want (if not empty), and the Redis round trips it cost.
func guardedRead(t *testing.T, a *app, hook *redisTrips, path string, code int, want string, trips int, cmds string) {
	t.Helper()
	hook.take()
	w := a.do(req(kJSON, http.MethodGet, path, nil))
	if w.Code != code || !strings.Contains(w.Body.String(), want) {
		t.Fatalf("GET %s: %d %s, want %d", path, w.Code, w.Body, code)
	}
	if n, got := hook.take(); trips >= 0 && (n != trips || got != cmds) {
		t.Errorf("GET %s: %d Redis round trips (%s), want %d (%s)", path, n, got, trips, cmds)
	}
}

// A guarded request of a signed-in user on a cache hit, with the plugin's
// own Redis session, costs ONE Redis round trip: the session and the
// user's epoch in one MGET. A revocation on another replica is still seen
// at the next request.
func TestGuardedHitOneRoundTrip(t *testing.T) {
	rdb, prefix, db := testenv.Redis(t), testenv.Prefix(t), testenv.SQLite(t)
	hook := &redisTrips{}
	rdb.AddHook(hook)
	opts := []byok.Option{byok.WithRedis(rdb), byok.WithRedisPrefix(prefix), byok.WithDB(db)}
	r1, r2 := newApp(t, opts...), newApp(t, opts...)
	r1.guarded(r1.engine)
	r2.guarded(r2.engine)
	r1.setUser("alice")
	r2.setUser("alice")
	r1.store("openai", openAIKey, "")

	guardedRead(t, r1, hook, "/chat", 200, openAIKey, -1, "") // the session refills its cache
	guardedRead(t, r1, hook, "/chat", 200, openAIKey, 1, "mget")
	guardedRead(t, r1, hook, "/chat", 200, openAIKey, 1, "mget")
	// Two guarded providers: the first read uses the epoch read with the
	// session, the second asks Redis again.
	r1.store("anthropic", anthroKey, "")
	guardedRead(t, r1, hook, "/both", 200, anthroKey, 2, "mget get")

	// Another browser of alice's, on the other replica, deletes the key:
	// the first browser's next request on replica 1 is refused.
	other := r2.browser()
	if w := other.do(req(kJSON, http.MethodDelete, "/keys/openai", nil)); w.Code != 204 {
		t.Fatalf("delete on replica 2: %d %s", w.Code, w.Body)
	}
	guardedRead(t, r1, hook, "/chat", 403, "", -1, "")
	guardedRead(t, r1, hook, "/chat", 403, "", 1, "mget")
	// And a new key stored there is served at the next request.
	other.store("openai", openAIKey2, "")
	guardedRead(t, r1, hook, "/chat", 200, openAIKey2, -1, "")
	guardedRead(t, r1, hook, "/chat", 200, openAIKey2, 1, "mget")

	// An epoch gone from Redis (expired, or Redis lost it) reads as a miss,
	// as a GET answering nil did: SET NX, SQL, then hits again.
	keys, err := rdb.Keys(t.Context(), prefix+"epoch:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("epoch keys %v, %v", keys, err)
	}
	if err := rdb.Del(t.Context(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	guardedRead(t, r1, hook, "/chat", 200, openAIKey2, 3, "mget set set")
	guardedRead(t, r1, hook, "/chat", 200, openAIKey2, 1, "mget")

	// Anonymous visitors have no epoch: one GET of the session, as before.
	anon := r1.browser()
	anon.setUser("")
	defer anon.setUser("alice")
	anon.store("openai", openAIKey, "")
	guardedRead(t, anon, hook, "/chat", 200, openAIKey, 1, "get")
}

// When the host owns the session (its own sessions middleware, here on
// Redis too), nothing changes: the host's GET of its session, then the
// epoch's GET.
func TestGuardedHitHostSession(t *testing.T) {
	rdb, prefix, db := testenv.Redis(t), testenv.Prefix(t), testenv.SQLite(t)
	hook := &redisTrips{}
	rdb.AddHook(hook)
	hostStore, err := redisstore.NewStore(rdb, [][]byte{[]byte("host-auth-key-0123456789abcdef0123456789abcdef")},
		redisstore.WithPrefix(prefix+"host:"))
	if err != nil {
		t.Fatal(err)
	}
	a := newAppWith(t, func(r *gin.Engine) gin.IRouter {
		r.Use(sessions.Sessions("host", hostStore))
		return r
	}, byok.WithRedis(rdb), byok.WithRedisPrefix(prefix), byok.WithDB(db))
	a.guarded(a.engine)
	a.setUser("alice")
	a.store("openai", openAIKey, "")
	guardedRead(t, a, hook, "/chat", 200, openAIKey, -1, "")
	guardedRead(t, a, hook, "/chat", 200, openAIKey, 2, "get get")
}
