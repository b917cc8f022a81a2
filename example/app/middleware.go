package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/html"
)

// contentSecurityPolicy is sent with every response of the app: no inline
// script or style anywhere, everything from this origin. The plugin sends
// the same policy with its own pages.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the CSP and its companions on every response.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	c.Next()
}

// requestLog logs one line per request: method, path, status and duration.
// It never logs a query's values beyond the path's, a header or a body, so
// no key or cookie reaches the log.
func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("took", time.Since(start)))
	}
}

// recoverer turns a panic into a plain 500. It logs the panic's type and
// the path, never its value, which could hold anything (a key, say).
func recoverer(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v) // net/http's way to abort a response; it handles it
				}
				log.ErrorContext(c.Request.Context(), "panic while serving a request",
					"path", c.Request.URL.Path, "type", fmt.Sprintf("%T", v))
				if !c.Writer.Written() {
					c.AbortWithStatus(http.StatusInternalServerError)
				} else {
					c.Abort()
				}
			}
		}()
		c.Next()
	}
}

// favicon answers /favicon.ico, which browsers ask for by themselves, with
// the plugin's key icon (the pages link the same file).
func favicon(c *gin.Context) {
	b, err := fs.ReadFile(html.Assets(), "favicon.svg")
	if err != nil {
		c.Status(http.StatusNotFound)
		return
	}
	c.Header("Cache-Control", "public, max-age=86400")
	c.Data(http.StatusOK, "image/svg+xml", b)
}
