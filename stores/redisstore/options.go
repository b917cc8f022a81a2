package redisstore

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-contrib/sessions"
)

// Defaults of the store's options.
const (
	// DefaultPrefix starts every Redis key the store writes.
	DefaultPrefix = "byok:sess:"
	// DefaultTTL is how long Redis keeps a session whose cookie has no
	// Max-Age (MaxAge 0, a browser-session cookie), counted from its last
	// save.
	DefaultTTL = 24 * time.Hour
	// DefaultMaxLength is the largest encoded session, in bytes, that Save
	// accepts.
	DefaultMaxLength = 64 << 10
)

// Option configures a Store. NewStore applies all options in order, then
// validates the result once and reports the first problem as an error
// wrapping ErrInvalidOption.
type Option func(*options) error

type options struct {
	prefix    string
	maxAge    time.Duration
	maxAgeSet bool
	maxLength int
	cookie    sessions.Options
}

func defaultOptions() options {
	return options{
		prefix:    DefaultPrefix,
		maxLength: DefaultMaxLength,
		cookie: sessions.Options{
			Path:     "/",
			HttpOnly: true,
			SameSite: http.SameSiteLaxMode,
		},
	}
}

// WithPrefix sets the prefix of every Redis key the store reads and writes
// (default "byok:sess:"). Change it to share one Redis between apps or
// environments. It must not be empty.
func WithPrefix(p string) Option {
	return func(o *options) error {
		o.prefix = p
		return nil
	}
}

// WithMaxAge sets the lifetime of a session: the cookie's Max-Age and the
// Redis TTL, renewed on every save. It overrides the MaxAge given to
// WithDefaultOptions, whatever the order.
//
// The default, 0, gives browser-session cookies (no Max-Age: gone when the
// browser closes) and keeps their data in Redis for DefaultTTL (24h) after
// the last save. The same 24h applies to any session whose MaxAge is 0. d is
// counted in whole seconds and must be 0 or at least one second.
func WithMaxAge(d time.Duration) Option {
	return func(o *options) error {
		o.maxAge, o.maxAgeSet = d, true
		return nil
	}
}

// WithMaxLength sets the largest encoded session, in bytes, that Save will
// write (default 64 KiB); a larger one makes Save fail with ErrTooLarge and
// writes nothing. It must be positive.
func WithMaxLength(n int) Option {
	return func(o *options) error {
		o.maxLength = n
		return nil
	}
}

// WithDefaultOptions replaces the cookie options new sessions start with
// (default: Path "/", HttpOnly, SameSite Lax, not Secure, MaxAge 0). Set
// Secure in production, where the site is served over HTTPS. MaxAge must not
// be negative; WithMaxAge, if given, overrides it. Store.Options changes
// them later.
func WithDefaultOptions(opts sessions.Options) Option {
	return func(o *options) error {
		o.cookie = opts
		return nil
	}
}

// validate checks the options once, after all were applied, and settles
// the cookie's MaxAge.
func (o *options) validate() error {
	if o.prefix == "" {
		return fmt.Errorf("%w: empty key prefix", ErrInvalidOption)
	}
	if o.maxAge < 0 || (o.maxAge > 0 && o.maxAge < time.Second) {
		return fmt.Errorf("%w: max age %v: want 0 or at least 1s", ErrInvalidOption, o.maxAge)
	}
	if o.maxLength <= 0 {
		return fmt.Errorf("%w: max length %d: want > 0", ErrInvalidOption, o.maxLength)
	}
	if o.maxAgeSet {
		o.cookie.MaxAge = int(o.maxAge / time.Second)
	}
	if o.cookie.MaxAge < 0 {
		return fmt.Errorf("%w: default MaxAge %d would delete every session", ErrInvalidOption, o.cookie.MaxAge)
	}
	return nil
}
