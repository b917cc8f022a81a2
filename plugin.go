// Package byok lets the users of a Gin app bring their own API keys
// (OpenAI, Anthropic, Google, …): one [Register] call mounts the pages and
// JSON routes where users add, replace and remove their keys, stores each key
// encrypted and bound to its owner, and gives the app guards
// ([Plugin.RequireKey]) and [Key] for the routes that need a key.
//
// With nothing but a secret it keeps keys in a signed, encrypted cookie
// session; [WithRedis] moves sessions to Redis, [WithDB] persists signed-in
// users' keys in PostgreSQL or SQLite. Every option, with its default, is in
// options.go.
package byok

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// Plugin is what [Register] mounted: the key routes, the key manager and the
// guards. Its methods are safe for concurrent use. Call Close when the app
// stops.
type Plugin struct {
	opts         *options
	log          *slog.Logger
	ring         *encrypt.Keyring // from WithSecret: sessions and fingerprints
	keys         *Manager
	sessions     sessions.Store // the plugin's own sessions (when the host has none)
	sql          *sqlstore.Store
	tmpl         *template.Template
	base         string // full path of the key routes, e.g. "/app/keys"
	requireHTTPS bool
	guard        *guardSet

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
	closeOnce   sync.Once

	// epochKey, set when the plugin made both its Redis sessions and the
	// hybrid store on the same Redis, names a signed-in user's epoch, read
	// in the same round trip as the plugin's own session.
	epochKey func(userID string) string
}

// Register mounts the key routes on router (an engine or a group; the prefix
// is relative to it) and returns the Plugin. It applies opts, checks them,
// and, with [WithDB], reaches the database, migrates it and checks the master
// secret. It fails with an error wrapping [ErrConfig] for a bad option, with
// encrypt's error for a short or malformed secret, with one wrapping
// [encrypt.ErrWrongSecret] for a secret that does not match the stored data,
// and with one wrapping [ErrUnavailable] for a database it cannot use.
func Register(router gin.IRouter, opts ...Option) (*Plugin, error) {
	if router == nil {
		return nil, fmt.Errorf("%w: nil router", ErrConfig)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	ring, err := encrypt.KeyringFromSecrets(o.secrets[0], o.secrets[1:]...)
	if err != nil {
		return nil, fmt.Errorf("byok: WithSecret: %w", err)
	}
	p := &Plugin{opts: o, log: o.logger, ring: ring}
	p.requireHTTPS = gin.Mode() == gin.ReleaseMode
	if o.requireHTTPS != nil {
		p.requireHTTPS = *o.requireHTTPS
	}

	var aead encrypt.AEAD = ring
	var rw rewrapper = ring
	switch {
	case o.keyring != nil:
		aead, rw = o.keyring, o.keyring
	case o.aead != nil:
		aead = o.aead
		rw, _ = o.aead.(rewrapper)
	}

	if p.sessions, err = p.sessionStore(ring); err != nil {
		return nil, err
	}
	store, err := p.keyStore(context.Background(), aead)
	if err != nil {
		return nil, err
	}
	p.keys = &Manager{p: p, aead: aead, rewrap: rw, ring: ring, store: store, providers: o.providers, byName: map[string]int{}}
	for i, pr := range o.providers {
		p.keys.byName[pr.Name] = i
	}
	if p.guard, err = p.newGuards(); err != nil {
		return nil, err
	}
	if p.tmpl, err = newTemplates(o.templates); err != nil {
		return nil, fmt.Errorf("%w: WithTemplates: %w", ErrConfig, err)
	}

	group := router.Group(o.prefix)
	p.base = strings.TrimSuffix(basePath(group), "/")
	if err := p.mount(group); err != nil {
		return nil, err
	}

	if p.sql != nil && o.cleanup > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		p.stopJanitor, p.janitorDone = cancel, make(chan struct{})
		go p.janitor(ctx, o.cleanup)
	}
	return p, nil
}

// mount adds the key routes to group. Gin panics when a route is already
// taken (Register called twice, or a host route such as /keys/:id in the
// way); that is reported as an error instead.
func (p *Plugin) mount(group *gin.RouterGroup) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: mounting the key routes at %s: %v", ErrConfig, p.base, r)
		}
	}()
	p.routes(group)
	return nil
}

// basePath returns the full path of a router group.
func basePath(r gin.IRoutes) string {
	if b, ok := r.(interface{ BasePath() string }); ok {
		return b.BasePath()
	}
	return ""
}

// Close stops the janitor and waits for it. It does not close the database
// or Redis client, which belong to the caller. It is safe to call twice.
func (p *Plugin) Close() error {
	p.closeOnce.Do(func() {
		if p.stopJanitor != nil {
			p.stopJanitor()
			<-p.janitorDone
		}
	})
	return nil
}

// Keys returns the key manager, for code that works with an explicit scope
// and context, such as a background job acting for a signed-in user
// (stores.Scope{UserID: id}).
func (p *Plugin) Keys() *Manager { return p.keys }

// Prefix returns the full path the key routes are mounted at, such as
// "/keys", or "/app/keys" on a group "/app".
func (p *Plugin) Prefix() string { return p.base }

// Cleanup deletes every expired key from the database now, as the janitor
// does on its interval, and returns how many it deleted. Without [WithDB] it
// does nothing.
func (p *Plugin) Cleanup(ctx context.Context) int {
	if p.sql == nil {
		return 0
	}
	return p.sweep(ctx)
}

// Scope returns the owner of the request's keys: the signed-in user
// ([WithUser]), else the anonymous visitor's id kept in the session (none
// before their first key), with the request's session.
func (p *Plugin) Scope(c *gin.Context) stores.Scope { return p.scope(c, false) }

// Set validates and stores the request's key for provider, with the
// lifetime ttl: 0 for the default ([WithTTL]), [Never], or a positive
// duration. Errors wrap [ErrUnknownProvider], [ErrInvalidKey],
// [ErrInvalidTTL], [ErrTooLarge] or [ErrUnavailable].
func (p *Plugin) Set(c *gin.Context, provider, key string, ttl time.Duration) error {
	_, _, err := p.keys.Set(c.Request.Context(), p.scope(c, true), provider, key, ttl)
	return err
}

// Get returns the request's key for provider, opened; it prints as
// "[REDACTED]" (call Reveal for the key). A missing, expired or unreadable
// key is an error wrapping [ErrNotFound].
func (p *Plugin) Get(c *gin.Context, provider string) (encrypt.Redacted, error) {
	return p.keys.Get(c.Request.Context(), p.scope(c, false), provider)
}

// Has reports whether the request has a live, readable key for provider.
// A storage failure counts as no key (and is logged).
func (p *Plugin) Has(c *gin.Context, provider string) bool {
	ok, err := p.keys.Has(c.Request.Context(), p.scope(c, false), provider)
	if err != nil && !errors.Is(err, ErrUnknownProvider) {
		p.log.WarnContext(c.Request.Context(), "byok: checking for a key failed", "provider", provider, "err", err)
	}
	return ok
}

// Info describes the request's key for provider, never the key itself.
func (p *Plugin) Info(c *gin.Context, provider string) (KeyInfo, error) {
	return p.keys.Info(c.Request.Context(), p.scope(c, false), provider)
}

// List describes the request's key for every configured provider, in order.
func (p *Plugin) List(c *gin.Context) ([]KeyInfo, error) {
	return p.keys.List(c.Request.Context(), p.scope(c, false))
}

// Delete removes the request's key for provider. Deleting a key that is not
// there is not an error.
func (p *Plugin) Delete(c *gin.Context, provider string) error {
	_, err := p.keys.Delete(c.Request.Context(), p.scope(c, false), provider)
	return err
}

// Clear removes all of the request's keys and returns how many there were.
func (p *Plugin) Clear(c *gin.Context) (int, error) {
	return p.keys.Clear(c.Request.Context(), p.scope(c, false))
}

// now is the clock in UTC, to the microsecond: what SQL stores, so a
// key's times read the same from every store.
func (p *Plugin) now() time.Time { return p.opts.clock().UTC().Truncate(time.Microsecond) }
