package guards

import (
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
)

// NoStore sets the headers every key response carries, before the handler
// runs: Cache-Control: no-store, X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer, and Vary: Accept, HX-Request (added to any
// Vary already set). Use it on the group that serves keys.
func NoStore() gin.HandlerFunc {
	return func(c *gin.Context) {
		httpx.SecurityHeaders(c.Writer.Header())
		c.Next()
	}
}
