package byok_test

import (
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
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

// A host's sign-in and sign-out. Signing in, the host puts the user where
// WithUser reads it, then, if the visitor agreed, makes the keys they saved
// as a guest their own; signing out, it forgets the plugin's session, so a
// shared browser keeps nothing.
func ExamplePlugin_AdoptAnonymousKeys() {
	secret, _ := encrypt.GenerateSecret()
	r := gin.New()
	// The host's own sign-in cookie (a demo: sign it in a real app).
	r.Use(func(c *gin.Context) {
		if ck, err := c.Cookie("user"); err == nil {
			c.Set("user", ck)
		}
	})
	kit, err := byok.Register(r,
		byok.WithSecret(secret),
		byok.WithUser(func(c *gin.Context) string { return c.GetString("user") }),
		byok.WithProviders(byok.OpenAI),
		byok.WithLogger(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close()

	r.POST("/login", func(c *gin.Context) {
		user := c.PostForm("user") // once the password checks out
		c.SetCookie("user", user, 3600, "/", "", false, true)
		c.Set("user", user) // WithUser sees the user in this request already
		if c.PostForm("keep_keys") == "on" {
			n, err := kit.AdoptAnonymousKeys(c)
			if err != nil {
				log.Print(err) // the keys stay the guest's; sign-in goes on
			}
			fmt.Println("keys adopted:", n)
		}
		c.Redirect(http.StatusSeeOther, "/")
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := kit.ForgetSession(c); err != nil {
			log.Print(err)
		}
		c.SetCookie("user", "", -1, "/", "", false, true)
		c.Redirect(http.StatusSeeOther, "/")
	})

	jar, _ := cookiejar.New(nil)
	site, _ := url.Parse("http://app.example/")
	send := func(method, path, ctype, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://app.example"+path, strings.NewReader(body))
		req.Header.Set("Accept", "application/json")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for _, c := range jar.Cookies(site) {
			req.AddCookie(c)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		jar.SetCookies(site, w.Result().Cookies())
		return w
	}
	hasKey := func() bool {
		var info struct {
			HasKey bool `json:"has_key"`
		}
		_ = json.Unmarshal(send("GET", "/keys/openai", "", "").Body.Bytes(), &info)
		return info.HasKey
	}

	send("POST", "/keys/openai", "application/json", `{"api_key":"sk-example-0123456789abcdefghij"}`)
	send("POST", "/login", "application/x-www-form-urlencoded", "user=ada&keep_keys=on")
	fmt.Println("ada has the key:", hasKey())
	send("POST", "/logout", "", "")
	fmt.Println("the guest after sign-out has a key:", hasKey())
	// Output:
	// keys adopted: 1
	// ada has the key: true
	// the guest after sign-out has a key: false
}
