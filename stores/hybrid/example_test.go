package hybrid_test

import (
	"context"
	"errors"
	"log"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/hybrid"
	"github.com/ginbyok/byok/stores/session"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// Example wires the hybrid store: SQL for signed-in users, the session for
// anonymous visitors and as the signed-in users' cache, Redis for the
// epochs. A handler builds the scope from the request's session.
func Example() {
	ctx := context.Background()
	db, err := sqlx.Open("postgres", "postgres://byok@localhost/byok?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	sqlStore, err := sqlstore.New(db)
	if err != nil {
		log.Fatal(err)
	}
	if err := sqlStore.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	sessStore, err := session.New()
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	keys, err := hybrid.New(sessStore, sqlStore, rdb)
	if err != nil {
		log.Fatal(err)
	}

	getKey := func(c *gin.Context) {
		scope := stores.Scope{UserID: c.GetString("user_id"), Session: sessions.Default(c)}
		rec, err := keys.Get(c.Request.Context(), scope, "openai")
		switch {
		case errors.Is(err, stores.ErrNotFound):
			c.Status(http.StatusNotFound)
		case errors.Is(err, stores.ErrUnavailable):
			c.Status(http.StatusServiceUnavailable)
		case err != nil:
			c.Status(http.StatusInternalServerError)
		default:
			_ = rec // open rec.Ciphertext with the keyring, use the key
			c.Status(http.StatusNoContent)
		}
	}
	_ = getKey
}
