package session_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/redisstore"
	"github.com/ginbyok/byok/stores/session"
)

// TestRedisSession runs the store inside a server-side session of
// stores/redisstore on real Redis: a Put, a Get and a Delete in separate
// requests, with an entry larger than a cookie could hold.
func TestRedisSession(t *testing.T) {
	gin.SetMode(gin.TestMode)
	rs, err := redisstore.NewStore(testenv.Redis(t), [][]byte{bytes.Repeat([]byte("k"), 64)},
		redisstore.WithPrefix(testenv.Prefix(t)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(session.WithMaxBytes(64 << 10))
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(sessions.Sessions("byok", rs))
	scope := func(c *gin.Context) stores.Scope { return stores.Scope{UserID: "u1", Session: sessions.Default(c)} }
	big := bytes.Repeat([]byte{0xEF}, 8000)
	r.PUT("/", func(c *gin.Context) {
		_, err := s.Put(c, scope(c), stores.Record{Provider: "openai", Ciphertext: big, CreatedAt: time.Now()})
		if err != nil {
			c.String(http.StatusInternalServerError, err.Error())
		}
	})
	r.GET("/", func(c *gin.Context) {
		rec, err := s.Get(c, scope(c), "openai")
		switch {
		case errors.Is(err, stores.ErrNotFound):
			c.Status(http.StatusNotFound)
		case err != nil:
			c.String(http.StatusInternalServerError, err.Error())
		case !bytes.Equal(rec.Ciphertext, big):
			c.String(http.StatusInternalServerError, "ciphertext changed")
		}
	})
	r.DELETE("/", func(c *gin.Context) {
		if existed, err := s.Delete(c, scope(c), "openai"); err != nil || !existed {
			c.String(http.StatusInternalServerError, "delete: %v %v", existed, err)
		}
	})
	var cookies []*http.Cookie
	do := func(method string, want int) {
		t.Helper()
		req := httptest.NewRequest(method, "/", nil)
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != want {
			t.Fatalf("%s: %d %s, want %d", method, w.Code, w.Body, want)
		}
		if cs := w.Result().Cookies(); len(cs) > 0 {
			cookies = cs
		}
	}
	do(http.MethodPut, http.StatusOK)
	do(http.MethodGet, http.StatusOK)
	do(http.MethodDelete, http.StatusOK)
	do(http.MethodGet, http.StatusNotFound)
}
