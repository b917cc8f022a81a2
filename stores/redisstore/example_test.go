package redisstore_test

import (
	"log"
	"net/http"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/stores/redisstore"
)

// A Gin app keeps its sessions in Redis; signing in regenerates the
// session id so a planted id is worthless. (Needs a Redis server, so it is
// compiled but not run by go test.)
func ExampleNewStore() {
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:6379"}})
	defer rdb.Close()

	// In the app the key pairs come from encrypt.Keyring.SessionKeyPairs().
	keyPairs := [][]byte{[]byte("a 64-byte authentication key from your keyring, not a literal!!!")}
	store, err := redisstore.NewStore(rdb, keyPairs,
		redisstore.WithMaxAge(7*24*time.Hour),
		redisstore.WithDefaultOptions(sessions.Options{Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}),
	)
	if err != nil {
		log.Fatal(err)
	}

	r := gin.New()
	r.Use(sessions.Sessions("byok", store))
	r.POST("/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("uid", "user-1")
		if err := store.Regenerate(c, "byok"); err != nil { // new id, old one deleted
			c.AbortWithStatus(http.StatusServiceUnavailable)
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/me", func(c *gin.Context) {
		c.String(http.StatusOK, "%v", sessions.Default(c).Get("uid"))
	})
	_ = r.Run("127.0.0.1:8080")
}
