package byok_test

import (
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/encrypt"
)

// The README's quick start: one Register call, one guarded route. db and
// rdb are the app's own connections (both optional).
func ExampleRegister() {
	var (
		db  *sqlx.DB              // sqlx.Open("postgres", …) or sqlx.Open("sqlite", …)
		rdb redis.UniversalClient // redis.NewClient(…), a Sentinel or a Cluster client
	)

	r := gin.Default()
	kit, err := byok.Register(r,
		byok.WithSecret(os.Getenv("BYOK_SECRET")), // ≥ 32 random bytes: `byok keygen`
		byok.WithDB(db),     // *sqlx.DB, PostgreSQL or SQLite (optional)
		byok.WithRedis(rdb), // sessions + cross-replica revocation (optional)
		byok.WithUser(func(c *gin.Context) string { return c.GetString("user") }),
		byok.WithProviders(byok.OpenAI, byok.Anthropic, byok.Google),
	)
	if err != nil {
		log.Fatal(err) // short secret, wrong master secret, unreachable DB: said here
	}
	defer kit.Close()

	r.POST("/chat", kit.RequireKey("openai"), func(c *gin.Context) {
		key := byok.Key(c, "openai") // decrypted once per request, never logged
		_ = key
	})
}

// A route guarded by RequireKey: without a key a JSON client is told which
// key is needed and where to add it; once the user has stored one (here
// through the plugin's JSON API), the handler gets it from Key.
func ExamplePlugin_RequireKey() {
	secret, _ := encrypt.GenerateSecret()
	r := gin.New()
	kit, err := byok.Register(r,
		byok.WithSecret(secret),
		byok.WithProviders(byok.OpenAI),
		byok.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close()
	r.GET("/chat", kit.RequireKey("openai"), func(c *gin.Context) {
		c.String(http.StatusOK, "using a key of %d characters", len(byok.Key(c, "openai")))
	})

	var cookie string
	send := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Accept", "application/json")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if c := w.Result().Cookies(); len(c) > 0 {
			cookie = c[0].Name + "=" + c[0].Value
		}
		return w
	}

	w := send("GET", "/chat", "")
	var problem struct {
		Code    string `json:"code"`
		FormURL string `json:"form_url"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &problem)
	fmt.Println(w.Code, problem.Code, problem.FormURL)

	w = send("POST", "/keys/openai", `{"api_key":"sk-example-0123456789abcdefghij","ttl":"2h"}`)
	fmt.Println(w.Code)

	w = send("GET", "/chat", "")
	fmt.Println(w.Code, w.Body)
	// Output:
	// 403 key_required /keys?need=openai&next=%2Fchat
	// 201
	// 200 using a key of 31 characters
}
