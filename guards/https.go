package guards

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
)

// HTTPSMode says when RequireHTTPS refuses plain-HTTP requests.
type HTTPSMode int

const (
	// HTTPSInRelease requires HTTPS when gin runs in release mode
	// (gin.Mode() == gin.ReleaseMode at the time the guard is built), and
	// lets everything through in debug and test modes.
	HTTPSInRelease HTTPSMode = iota
	// HTTPSAlways requires HTTPS whatever gin's mode.
	HTTPSAlways
	// HTTPSNever turns the guard off.
	HTTPSNever
)

// HTTPSOptions configure RequireHTTPS.
type HTTPSOptions struct {
	// Mode says when HTTPS is required. Default HTTPSInRelease.
	Mode HTTPSMode
	// Render renders the https_required problem for browsers and htmx;
	// nil means a minimal built-in page.
	Render RenderFunc
}

// RequireHTTPS refuses requests that did not come over HTTPS with 403
// https_required, when opts.Mode says HTTPS is required. See IsHTTPS for
// how a request behind a proxy is judged: configure the engine's trusted
// proxies (engine.SetTrustedProxies) to match your deployment, because gin
// trusts every peer until you do.
func RequireHTTPS(opts HTTPSOptions) gin.HandlerFunc {
	on := opts.Mode == HTTPSAlways || (opts.Mode == HTTPSInRelease && gin.Mode() == gin.ReleaseMode)
	if !on {
		return func(c *gin.Context) { c.Next() }
	}
	return func(c *gin.Context) {
		if IsHTTPS(c) {
			c.Next()
			return
		}
		deny(c, httpx.HTTPSRequired(), opts.Render)
	}
}

// probeIP is a documentation address (RFC 5737) used to ask gin whether it
// takes forwarded addresses from the current peer.
const probeIP = "192.0.2.254"

// IsHTTPS reports whether the request reached the client-facing server over
// TLS: either this server terminated TLS (c.Request.TLS != nil), or the
// request came through a proxy gin trusts and that proxy says so with
// X-Forwarded-Proto: https (the first value, if it lists several).
//
// "A proxy gin trusts" is decided by gin's own logic, which has no direct
// accessor: when c.ClientIP() differs from c.RemoteIP(), gin has taken the
// client address from a forwarded header (or a trusted platform header), so
// it trusts the peer; otherwise IsHTTPS asks gin once more with a probe
// request from the same peer carrying X-Forwarded-For and X-Real-IP set to
// a documentation address, and trusts the peer if gin's answer is that
// address. Engine.SetTrustedProxies, ForwardedByClientIP, RemoteIPHeaders
// and TrustedPlatform therefore all apply as they do for ClientIP. Nothing
// is ever decided from the Host header or the URL.
func IsHTTPS(c *gin.Context) bool {
	if c.Request.TLS != nil {
		return true
	}
	proto, _, _ := strings.Cut(c.Request.Header.Get("X-Forwarded-Proto"), ",")
	if !strings.EqualFold(strings.TrimSpace(proto), "https") {
		return false
	}
	return fromTrustedProxy(c)
}

// fromTrustedProxy reports whether gin trusts the forwarding headers of the
// peer that sent c's request.
func fromTrustedProxy(c *gin.Context) bool {
	remote := c.RemoteIP()
	if remote == "" {
		return false
	}
	if client := c.ClientIP(); client != "" && client != remote {
		return true
	}
	if remote == probeIP {
		return false
	}
	orig := c.Request
	probe := new(http.Request)
	*probe = *orig
	probe.Header = http.Header{"X-Forwarded-For": {probeIP}, "X-Real-Ip": {probeIP}}
	c.Request = probe
	got := c.ClientIP()
	c.Request = orig
	return got == probeIP
}
