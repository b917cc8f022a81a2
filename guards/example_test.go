package guards_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/guards"
)

// ExampleRequireKey guards a route with the user's OpenAI key. The source
// here is a map; byok.Register supplies one over the encrypted store.
func ExampleRequireKey() {
	keys := map[string]string{"openai": "sk-example"}
	src := guards.KeySourceFunc(func(c *gin.Context, provider string) (string, error) {
		if k, ok := keys[provider]; ok {
			return k, nil
		}
		return "", guards.ErrNoKey
	})

	r := gin.New()
	r.GET("/chat", guards.RequireKey(src, guards.Options{}, "openai"), func(c *gin.Context) {
		key := guards.Key(c, "openai") // loaded once for this request
		c.String(http.StatusOK, "using a key of %d characters", len(key))
	})
	r.GET("/draw", guards.RequireKey(src, guards.Options{}, "replicate"), func(c *gin.Context) {})

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/chat", nil))
	fmt.Println(w.Code, w.Body)

	// No Replicate key: a browser is sent to the form, and back here after.
	w = httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/draw", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output:
	// 200 using a key of 10 characters
	// 303 /keys?need=replicate&next=%2Fdraw
}

// ExampleRequireHTTPS refuses plain HTTP. Tell gin which proxies may say
// "X-Forwarded-Proto: https"; gin trusts every peer until you do.
func ExampleRequireHTTPS() {
	r := gin.New()
	_ = r.SetTrustedProxies([]string{"10.0.0.0/8"})
	keys := r.Group("/keys", guards.RequireHTTPS(guards.HTTPSOptions{Mode: guards.HTTPSAlways}))
	keys.POST("/openai", func(c *gin.Context) { c.Status(http.StatusCreated) })

	for _, remote := range []string{"10.0.0.7:5000", "203.0.113.9:5000"} {
		req := httptest.NewRequest(http.MethodPost, "/keys/openai", nil)
		req.RemoteAddr = remote
		req.Header.Set("X-Forwarded-Proto", "https")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(remote, w.Code)
	}
	// Output:
	// 10.0.0.7:5000 201
	// 203.0.113.9:5000 403
}

// ExampleCrossOrigin refuses form posts from other sites.
func ExampleCrossOrigin() {
	co, err := guards.CrossOrigin(guards.CrossOriginOptions{TrustedOrigins: []string{"https://app.example.com"}})
	if err != nil {
		panic(err)
	}
	r := gin.New()
	r.POST("/keys/openai", co, func(c *gin.Context) { c.Status(http.StatusCreated) })

	for _, site := range []string{"same-origin", "cross-site"} {
		req := httptest.NewRequest(http.MethodPost, "/keys/openai", nil)
		req.Header.Set("Sec-Fetch-Site", site)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(site, w.Code)
	}
	// Output:
	// same-origin 201
	// cross-site 403
}

// ExampleRateLimit allows two key writes a minute per user.
func ExampleRateLimit() {
	rl, err := guards.RateLimit(guards.RateLimitOptions{
		Limit: 2, Window: time.Minute,
		Bucket: func(c *gin.Context) string { return c.GetHeader("X-User") },
		// Redis: rdb, to share the count between replicas.
	})
	if err != nil {
		panic(err)
	}
	r := gin.New()
	r.POST("/keys/openai", rl, func(c *gin.Context) { c.Status(http.StatusCreated) })
	for range 3 {
		req := httptest.NewRequest(http.MethodPost, "/keys/openai", nil)
		req.Header.Set("X-User", "alice")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Printf("%d retry-after=%q\n", w.Code, w.Header().Get("Retry-After"))
	}
	// Output:
	// 201 retry-after=""
	// 201 retry-after=""
	// 429 retry-after="30"
}

// ExampleNoStore marks every response of the key routes uncacheable.
func ExampleNoStore() {
	r := gin.New()
	keys := r.Group("/keys", guards.NoStore())
	keys.GET("", func(c *gin.Context) { c.String(http.StatusOK, "your keys") })

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/keys", nil))
	fmt.Println(w.Header().Get("Cache-Control"), w.Header().Get("Vary"))
	// Output: no-store Accept, HX-Request
}
