package guards_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/guards"
)

func TestCrossOrigin(t *testing.T) {
	mw, err := guards.CrossOrigin(guards.CrossOriginOptions{TrustedOrigins: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(mw)
	r.Any("/keys/openai", func(c *gin.Context) { c.String(200, "ok") })

	tests := []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"cross-site POST", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site (other subdomain) DELETE", "DELETE", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"foreign Origin, old browser", "POST", map[string]string{"Origin": "https://evil.example"}, 403},
		{"foreign Origin with cross-site", "PUT", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
		{"same-origin POST", "POST", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://keys.example"}, 200},
		{"same host Origin, old browser", "POST", map[string]string{"Origin": "https://keys.example"}, 200},
		{"user typed it", "POST", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"trusted origin", "POST", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example.com"}, 200},
		{"cross-site GET is safe", "GET", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 200},
		{"no browser headers (API client)", "POST", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "https://keys.example/keys/openai", nil)
			req.Header.Set("Accept", "application/json")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if tt.want == 403 && (w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(w.Body.String(), `"code":"cross_origin"`)) {
				t.Fatalf("answer %v %s", w.Header(), w.Body)
			}
		})
	}
}

func TestCrossOriginRenderAndErrors(t *testing.T) {
	mw, err := guards.CrossOrigin(guards.CrossOriginOptions{Render: func(c *gin.Context, p guards.Problem) {
		c.String(p.Status, "custom %s", p.Code)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.POST("/x", mw, func(c *gin.Context) { c.String(200, "ok") })
	w := serve(r, http.MethodPost, "/x", browserClient, "Sec-Fetch-Site", "cross-site")
	if w.Code != 403 || w.Body.String() != "custom cross_origin" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "https://app.example.com?q", "*"} {
		if _, err := guards.CrossOrigin(guards.CrossOriginOptions{TrustedOrigins: []string{bad}}); err == nil {
			t.Errorf("trusted origin %q accepted", bad)
		}
	}
}
