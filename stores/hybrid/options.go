package hybrid

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrInvalidConfig means New was given a nil store or an invalid option.
var ErrInvalidConfig = errors.New("hybrid: invalid configuration")

// Defaults of the options.
const (
	// DefaultEpochPrefix is the Redis key prefix of the per-user epochs.
	DefaultEpochPrefix = "byok:epoch:"
	// DefaultCacheKey is the session entry that holds a signed-in user's cache.
	DefaultCacheKey = "byok.cache"
	// DefaultEpochTTL is how long an epoch lives in Redis after its last change.
	DefaultEpochTTL = 30 * 24 * time.Hour
	// DefaultMaxCacheAge is how long a session cache may be served at most.
	DefaultMaxCacheAge = 15 * time.Minute
	// DefaultMaxCacheBytes limits the encoded cache entry; like
	// session.DefaultMaxBytes it keeps a cookie session under 4096 bytes.
	DefaultMaxCacheBytes = 2000
)

type options struct {
	prefix        string
	cacheKey      string
	now           func() time.Time
	log           *slog.Logger
	epochTTL      time.Duration
	maxCacheAge   time.Duration
	maxCacheBytes int
}

// Option configures a Store.
type Option func(*options) error

// WithEpochPrefix sets the Redis key prefix of the per-user epochs; the key
// of a user is the prefix followed by the user id. Default "byok:epoch:".
// Change it when several applications share one Redis, and to invalidate
// every session cache at once (for example after restoring Redis from a
// backup; see the package documentation).
func WithEpochPrefix(prefix string) Option {
	return func(o *options) error {
		if prefix == "" {
			return fmt.Errorf("%w: empty epoch prefix", ErrInvalidConfig)
		}
		o.prefix = prefix
		return nil
	}
}

// WithCacheKey sets the session entry that holds a signed-in user's cache.
// Default "byok.cache". It must differ from the entry the anonymous store
// uses (session.DefaultKey, "byok.keys").
func WithCacheKey(name string) Option {
	return func(o *options) error {
		if name == "" {
			return fmt.Errorf("%w: empty cache key", ErrInvalidConfig)
		}
		o.cacheKey = name
		return nil
	}
}

// WithClock sets the clock used to drop expired records from the cache and
// to age caches. Default time.Now; tests inject their own.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidConfig)
		}
		o.now = now
		return nil
	}
}

// WithLogger sets where Redis failures (rate-limited, at warn level) and
// failed session saves are reported. Log lines never carry key material.
// Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidConfig)
		}
		o.log = l
		return nil
	}
}

// WithEpochTTL sets how long a user's epoch lives in Redis after it was
// last set; 0 keeps epochs forever. Default 30 days. An epoch that expired
// reads as missing, which only costs one cache miss, so the TTL just keeps
// Redis from collecting an epoch for every user who ever signed in.
func WithEpochTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || (d > 0 && d < time.Second) {
			return fmt.Errorf("%w: epoch TTL %v is not 0 or at least 1s", ErrInvalidConfig, d)
		}
		o.epochTTL = d
		return nil
	}
}

// WithMaxCacheAge bounds how long a session cache is served before it is
// reloaded from SQL even though its epoch still matches. Default 15
// minutes. The epoch alone is enough while Redis keeps its data; the age
// bound limits the harm if Redis ever goes back in time (restored from a
// snapshot, or a failover to a replica that missed the last writes).
func WithMaxCacheAge(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: max cache age %v is not positive", ErrInvalidConfig, d)
		}
		o.maxCacheAge = d
		return nil
	}
}

// WithMaxCacheBytes limits the encoded session cache. A user whose records
// do not fit is served from SQL on every read (correct, just slower).
// Default 2000, which fits a cookie session; raise it for server-side
// (Redis) sessions.
func WithMaxCacheBytes(n int) Option {
	return func(o *options) error {
		if n < 64 {
			return fmt.Errorf("%w: max cache bytes %d is below 64", ErrInvalidConfig, n)
		}
		o.maxCacheBytes = n
		return nil
	}
}
