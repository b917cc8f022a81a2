package session_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/session"
)

// Example keeps an anonymous visitor's sealed key in a gin-contrib cookie
// session.
func Example() {
	keys, err := session.New(session.WithMaxBytes(session.DefaultMaxBytes))
	if err != nil {
		panic(err)
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(sessions.Sessions("app", cookie.NewStore([]byte("an-hmac-key-of-32-or-64-random-bytes!!!!"))))
	r.GET("/", func(c *gin.Context) {
		scope := stores.Scope{AnonID: "visitor-42", Session: sessions.Default(c)}
		sealed := []byte("ciphertext from encrypt.Keyring.Seal")
		if _, err := keys.Put(c, scope, stores.Record{Provider: "openai", Ciphertext: sealed, CreatedAt: time.Now()}); err != nil {
			c.Status(http.StatusServiceUnavailable)
			return
		}
		rec, err := keys.Get(c, scope, "openai")
		if err != nil {
			c.Status(http.StatusNotFound)
			return
		}
		c.String(http.StatusOK, "%s: %d bytes sealed", rec.Provider, len(rec.Ciphertext))
	})
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(w.Body.String())
	// Output: openai: 36 bytes sealed
}
