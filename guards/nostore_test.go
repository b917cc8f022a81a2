package guards_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/guards"
)

func TestNoStore(t *testing.T) {
	r := gin.New()
	g := r.Group("/keys", guards.NoStore())
	g.GET("", func(c *gin.Context) {
		c.Header("Vary", "Origin")
		c.String(200, "page")
	})
	g.GET("/vary", func(c *gin.Context) {
		c.Writer.Header().Add("Vary", "Cookie")
		c.String(200, "x")
	})
	w := serve(r, http.MethodGet, "/keys/vary", browserClient)
	h := w.Header()
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("headers %v", h)
	}
	if got := strings.Join(h.Values("Vary"), ", "); got != "Accept, HX-Request, Cookie" {
		t.Fatalf("Vary %q", got)
	}
	// A handler that sets Vary replaces it: that is the handler's choice,
	// made after the guard; the other headers stay.
	w = serve(r, http.MethodGet, "/keys", browserClient)
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", w.Header())
	}
}
