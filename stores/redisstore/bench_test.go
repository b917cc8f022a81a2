package redisstore_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	gcredis "github.com/gin-contrib/sessions/redis"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/internal/testenv"
)

// discardWriter is a reusable ResponseWriter, so the benchmark measures the
// session, not a recorder's allocations.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkReadSession reads an existing session holding a user id and a
// 150-byte []byte through gin and sessions.Sessions, with a fresh request
// each iteration (gorilla caches the session per request), from:
//
//   - redisstore: this package, on go-redis v9;
//   - gincontrib: github.com/gin-contrib/sessions/redis (boj/redistore on
//     redigo, securecookie id, gob values), on the same Redis;
//   - cookie: github.com/gin-contrib/sessions/cookie (no Redis at all).
//
// Run: . /tmp/byok-dev.env && go test -run '^$' -bench ReadSession -benchmem ./stores/redisstore
func BenchmarkReadSession(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	url := testenv.RedisURL(b)
	opt, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	blob := bytes.Repeat([]byte{0xab}, 150)

	stores := []struct {
		name string
		make func(b *testing.B) sessions.Store
	}{
		{"redisstore", func(b *testing.B) sessions.Store {
			rdb := redis.NewClient(opt)
			b.Cleanup(func() { _ = rdb.Close() })
			s, _ := newStore(b, rdb, keysA)
			return s
		}},
		{"gincontrib", func(b *testing.B) sessions.Store {
			s, err := gcredis.NewStore(10, "tcp", opt.Addr, opt.Username, opt.Password, keysA...)
			if err != nil {
				b.Fatal(err)
			}
			prefix := testenv.Prefix(b)
			if err := gcredis.SetKeyPrefix(s, prefix); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				rdb := redis.NewClient(opt)
				deletePrefix(rdb, prefix)
				_ = rdb.Close()
				if rs, err := gcredis.GetRedisStore(s); err == nil {
					_ = rs.Close()
				}
			})
			return s
		}},
		{"cookie", func(b *testing.B) sessions.Store { return cookie.NewStore(keysA...) }},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			r := gin.New()
			r.Use(sessions.Sessions(cookieName, st.make(b)))
			r.GET("/seed", func(c *gin.Context) {
				s := sessions.Default(c)
				s.Set("uid", "user-12345")
				s.Set("blob", blob)
				if err := s.Save(); err != nil {
					b.Errorf("seed: %v", err)
				}
			})
			var misses int
			r.GET("/read", func(c *gin.Context) {
				s := sessions.Default(c)
				uid, _ := s.Get("uid").(string)
				bl, _ := s.Get("blob").([]byte)
				if uid != "user-12345" || len(bl) != len(blob) {
					misses++
				}
				c.Status(http.StatusNoContent)
			})
			seed := httptest.NewRecorder()
			r.ServeHTTP(seed, httptest.NewRequest(http.MethodGet, "/seed", nil))
			base := httptest.NewRequest(http.MethodGet, "/read", nil)
			for _, c := range seed.Result().Cookies() {
				base.AddCookie(c)
			}
			w := &discardWriter{h: http.Header{}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				r.ServeHTTP(w, base.Clone(ctx))
			}
			if misses > 0 {
				b.Fatalf("%d reads did not see the session", misses)
			}
		})
	}
}
