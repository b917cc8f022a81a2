package hybrid_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/redisstore"
)

// TestWithGinSessions runs the store behind real gin-contrib sessions (the
// project's Redis session store and gin-contrib's cookie store), with two
// browsers on two replicas: the cache survives the session's round trip, a
// hit costs the session load plus one Redis GET and no SQL, and a delete in
// one browser is seen by the other's next request.
func TestWithGinSessions(t *testing.T) {
	pairs := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}
	for _, tc := range []struct {
		name     string
		store    func(t *testing.T, st *setup) sessions.Store
		hitRedis []string // Redis commands of a cache hit, session load included
	}{
		{"redisstore", func(t *testing.T, st *setup) sessions.Store {
			s, err := redisstore.NewStore(st.redis(), pairs, redisstore.WithPrefix(st.prefix+"sess:"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, []string{"get", "get"}},
		{"cookie", func(t *testing.T, st *setup) sessions.Store { return cookie.NewStore(pairs...) }, []string{"get"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gin.SetMode(gin.TestMode)
			st := newSetup(t, backends[0])
			var reps []*replica
			var servers []*httptest.Server
			for range 2 {
				r := st.replica(t)
				// The session store shares the replica's counted Redis client.
				sst := tc.store(t, &setup{prefix: st.prefix, redis: func() *redis.Client { return r.rdb }})
				e := gin.New()
				e.Use(sessions.Sessions("byok", sst))
				scope := func(c *gin.Context) stores.Scope {
					return stores.Scope{UserID: "u1", Session: sessions.Default(c)}
				}
				e.GET("/key", func(c *gin.Context) {
					rec, err := r.h.Get(c.Request.Context(), scope(c), "openai")
					switch {
					case errors.Is(err, stores.ErrNotFound):
						c.String(http.StatusNotFound, "")
					case err != nil:
						c.String(http.StatusInternalServerError, err.Error())
					default:
						c.String(http.StatusOK, string(rec.Ciphertext))
					}
				})
				e.PUT("/key", func(c *gin.Context) {
					_, err := r.h.Put(c.Request.Context(), scope(c), record("openai", c.Query("v"), time.Now()))
					if err != nil {
						c.String(http.StatusInternalServerError, err.Error())
						return
					}
					c.Status(http.StatusNoContent)
				})
				e.DELETE("/key", func(c *gin.Context) {
					if _, err := r.h.Delete(c.Request.Context(), scope(c), "openai"); err != nil {
						c.String(http.StatusInternalServerError, err.Error())
						return
					}
					c.Status(http.StatusNoContent)
				})
				srv := httptest.NewServer(e)
				t.Cleanup(srv.Close)
				reps, servers = append(reps, r), append(servers, srv)
			}
			browser := func() *http.Client {
				jar, _ := cookiejar.New(nil)
				return &http.Client{Jar: jar}
			}
			a, b := browser(), browser()
			do := func(c *http.Client, srv *httptest.Server, method, path string) (int, string) {
				t.Helper()
				req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body bytes.Buffer
				_, _ = body.ReadFrom(resp.Body)
				return resp.StatusCode, body.String()
			}

			if code, body := do(a, servers[0], "PUT", "/key?v=v1"); code != http.StatusNoContent {
				t.Fatalf("PUT = %d %s", code, body)
			}
			if code, body := do(b, servers[1], "GET", "/key"); code != 200 || body != "v1" {
				t.Fatalf("B GET = %d %q (miss)", code, body)
			}
			reps[1].reset()
			if code, body := do(b, servers[1], "GET", "/key"); code != 200 || body != "v1" {
				t.Fatalf("B GET = %d %q (hit)", code, body)
			}
			q, cmds := reps[1].queries.Load(), reps[1].redis.take()
			t.Logf("%s: cache hit through a real session: %d SQL statements, Redis %v", tc.name, q, cmds)
			if q != 0 || !slices.Equal(cmds, tc.hitRedis) {
				t.Errorf("hit cost %d SQL statements and Redis %v, want 0 and %v", q, cmds, tc.hitRedis)
			}
			if code, body := do(a, servers[0], "DELETE", "/key"); code != http.StatusNoContent {
				t.Fatalf("DELETE = %d %s", code, body)
			}
			if code, body := do(b, servers[1], "GET", "/key"); code != http.StatusNotFound {
				t.Errorf("B GET after A's delete = %d %q, want 404", code, body)
			}
			if code, _ := do(a, servers[0], "GET", "/key"); code != http.StatusNotFound {
				t.Errorf("A GET after its delete = %d, want 404", code)
			}
		})
	}
}
