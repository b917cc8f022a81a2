// Package guards is gin middleware that protects routes and key endpoints:
// RequireKey and RequireAnyKey for routes that need a user's API key,
// RequireHTTPS, CrossOrigin (net/http's CrossOriginProtection), RateLimit
// for key writes, and NoStore for the security headers of key responses.
//
// Each guard answers a refused request in the client's terms: a problem+json
// body for JSON clients, and a page (or, for htmx, a fragment) for
// browsers, rendered by the caller's Render function when one is given.
package guards

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
)

// Problem is the RFC 9457 problem a guard answers with; its Code is one of
// the stable codes (key_required, https_required, cross_origin,
// rate_limited, storage_unavailable).
type Problem = httpx.Problem

// RenderFunc renders a refused request's problem for a browser or htmx
// client (JSON clients always get problem+json). It must write the status
// and body; the guard has already set the security headers and
// Retry-After. If it writes nothing, the guard falls back to a minimal
// escaped page, or, for htmx, an alert fragment with status 200.
type RenderFunc = func(c *gin.Context, p Problem)

// deny answers c with p in the client's terms and aborts the chain.
func deny(c *gin.Context, p Problem, render RenderFunc) {
	kind := httpx.KindOf(c.Request)
	if kind != httpx.JSON && render != nil {
		h := c.Writer.Header()
		httpx.SecurityHeaders(h)
		if p.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
		}
		render(c, p)
		if c.Writer.Written() {
			c.Abort()
			return
		}
	}
	if kind == httpx.JSON {
		httpx.WriteProblem(c.Writer, p)
	} else {
		httpx.WriteProblemHTML(c.Writer, p, kind == httpx.HTMX)
	}
	c.Abort()
}

// misconfigured is the answer of a guard built with unusable arguments: it
// fails closed with 500, and says why in the log, not the response.
func misconfigured() Problem {
	return Problem{
		Type: httpx.TypeBase + "internal", Code: "internal", Status: http.StatusInternalServerError,
		Title: "Server misconfigured", Detail: "This page cannot check for API keys right now.",
	}
}
