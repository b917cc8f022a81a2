package byok

import (
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/guards"
)

// guardSet holds the request guards of the key routes.
type guardSet struct {
	https       gin.HandlerFunc // nil when HTTPS is not required
	crossOrigin gin.HandlerFunc
	rate        gin.HandlerFunc // nil when there is no write limit
}

// newGuards builds the key routes' guards from the options.
func (p *Plugin) newGuards() (*guardSet, error) {
	g := &guardSet{}
	if p.requireHTTPS {
		g.https = guards.RequireHTTPS(guards.HTTPSOptions{Mode: guards.HTTPSAlways, Render: p.problemPage})
	}
	co, err := guards.CrossOrigin(guards.CrossOriginOptions{TrustedOrigins: p.opts.origins, Render: p.problemPage})
	if err != nil {
		return nil, fmt.Errorf("%w: WithTrustedOrigins: %w", ErrConfig, err)
	}
	g.crossOrigin = co
	if p.opts.rateN > 0 {
		var rdb redis.UniversalClient
		if p.opts.redis != nil {
			rdb = p.opts.redis
		}
		rl, err := guards.RateLimit(guards.RateLimitOptions{
			Limit:  p.opts.rateN,
			Window: p.opts.rateWindow,
			Bucket: func(c *gin.Context) string { return p.scope(c, false).Owner() },
			Redis:  rdb,
			Prefix: p.opts.redisPrefix + "rl:",
			Logger: p.log,
			Render: p.problemPage,
			Now:    p.opts.clock,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: WithRateLimit: %w", ErrConfig, err)
		}
		g.rate = rl
	}
	return g, nil
}

// Key returns the plaintext key for provider that [Plugin.RequireKey] or
// [Plugin.RequireAnyKey] opened for this request, or "" when none did. It
// is decrypted once per request, by the guard. Never log it.
func Key(c *gin.Context, provider string) string { return guards.Key(c, provider) }

// RequireKey returns middleware that lets a request through only when its
// user (or anonymous session) has a live key for every one of providers,
// and opens each once for [Key]. When one is missing, expired or unreadable,
// a JSON client gets 403 key_required naming the provider and the URL of
// its form, an htmx request gets HX-Redirect to the form, and a browser a
// 303 to it; the form brings the user back afterwards. Each refusal is
// audited as guard.denied.
//
// It works on any route of the engine, inside or outside the plugin's
// prefix, with or without the host's sessions middleware. Naming a provider
// that is not configured is a mistake: such a guard logs it and refuses
// every request with 500.
func (p *Plugin) RequireKey(providers ...string) gin.HandlerFunc {
	return p.require(guards.RequireKey, providers)
}

// RequireAnyKey is [Plugin.RequireKey] satisfied by a key for at least one
// of providers, tried in order; [Key] gives "" for the ones not opened.
// When none is there, the form asks for all of them.
func (p *Plugin) RequireAnyKey(providers ...string) gin.HandlerFunc {
	return p.require(guards.RequireAnyKey, providers)
}

func (p *Plugin) require(build func(guards.KeySource, guards.Options, ...string) gin.HandlerFunc, providers []string) gin.HandlerFunc {
	for _, name := range providers {
		if _, ok := p.keys.Provider(name); !ok {
			p.log.Error("byok: a key guard names a provider that is not configured; it refuses every request", "provider", name)
			return func(c *gin.Context) {
				p.log.ErrorContext(c.Request.Context(), "byok: key guard misconfigured", "provider", name)
				p.fail(c, kindOf(c), internalProblem(), "", "")
			}
		}
	}
	return build(guards.KeySourceFunc(p.loadKey), guards.Options{
		Prefix:      p.base,
		OnDenied:    p.denied,
		DisplayName: p.displayName,
		Render:      p.problemPage,
		Logger:      p.log,
	}, providers...)
}

// loadKey is the guards' KeySource: the request's key for provider, opened.
func (p *Plugin) loadKey(c *gin.Context, provider string) (string, error) {
	key, _, err := p.keys.get(c.Request.Context(), p.scope(c, false), provider)
	return key, err
}

// denied audits a guard's refusal.
func (p *Plugin) denied(c *gin.Context, providers []string) {
	sc := p.scope(c, false)
	for _, name := range providers {
		p.audit(c.Request.Context(), AuditEvent{Action: EventGuardDenied, UserID: sc.UserID, Owner: sc.Owner(), Provider: name, Reason: "no live key"})
	}
}

// displayName is a provider's human name.
func (p *Plugin) displayName(name string) string {
	if pr, ok := p.keys.Provider(name); ok && pr.DisplayName != "" {
		return pr.DisplayName
	}
	return name
}
