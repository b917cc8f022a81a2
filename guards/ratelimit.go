package guards

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/ginbyok/byok/internal/httpx"
)

// RateLimitOptions configure a Limiter: Limit requests per Window for each
// bucket, with bursts of up to Limit.
type RateLimitOptions struct {
	// Limit is how many requests a bucket may make per Window (and in one
	// burst). Required, > 0.
	Limit int
	// Window is the period Limit applies to. Required, > 0.
	Window time.Duration
	// Bucket picks the bucket of a request: the user id, or the session of
	// an anonymous visitor. "" (or nil Bucket) means the client IP.
	Bucket func(c *gin.Context) string
	// Redis, if set, shares the buckets between every replica using it
	// (one EVALSHA per request). If Redis fails, the in-process buckets
	// take over, and Redis is tried again 5s later: a Redis failure is
	// never a 5xx (each replica then counts on its own).
	Redis redis.UniversalClient
	// Prefix starts every Redis key. Default "byok:rl:". Bucket ids are
	// hashed, so a session id used as a bucket never appears in Redis.
	Prefix string
	// RedisTimeout bounds each Redis call. Default 250ms.
	RedisTimeout time.Duration
	// MaxBuckets bounds the in-process buckets; the least recently used
	// are dropped beyond it. Default 10000.
	MaxBuckets int
	// Logger receives Redis failures (at most one line per 10s). Default
	// slog.Default().
	Logger *slog.Logger
	// Render renders the rate_limited problem for browsers and htmx; nil
	// means a minimal built-in page.
	Render RenderFunc
	// Now replaces time.Now for the in-process buckets, for tests.
	Now func() time.Time
}

// Limiter is a per-bucket rate limiter: GCRA in Redis when configured,
// token buckets in process otherwise (and as the fallback).
type Limiter struct {
	opts    RateLimitOptions
	local   *localBuckets
	script  *redis.Script
	period  time.Duration // emission interval: Window / Limit
	lastLog atomic.Int64
	// downUntil (unix nanoseconds) skips Redis for a while after it failed,
	// so a dead Redis does not add RedisTimeout to every request.
	downUntil atomic.Int64
	backoff   time.Duration
}

// redisBackoff is how long Redis is skipped after a failure.
const redisBackoff = 5 * time.Second

// ErrRateLimitConfig is returned by NewLimiter for unusable options.
var ErrRateLimitConfig = errors.New("guards: bad rate limit")

// NewLimiter checks opts and returns a Limiter.
func NewLimiter(opts RateLimitOptions) (*Limiter, error) {
	if opts.Limit <= 0 || opts.Window <= 0 {
		return nil, fmt.Errorf("%w: need Limit > 0 and Window > 0, got %d per %s", ErrRateLimitConfig, opts.Limit, opts.Window)
	}
	if opts.Window/time.Duration(opts.Limit) < time.Microsecond {
		return nil, fmt.Errorf("%w: %d per %s is finer than 1µs", ErrRateLimitConfig, opts.Limit, opts.Window)
	}
	if opts.MaxBuckets < 0 || opts.RedisTimeout < 0 {
		return nil, fmt.Errorf("%w: negative MaxBuckets or RedisTimeout", ErrRateLimitConfig)
	}
	if opts.Prefix == "" {
		opts.Prefix = "byok:rl:"
	}
	if opts.RedisTimeout == 0 {
		opts.RedisTimeout = 250 * time.Millisecond
	}
	if opts.MaxBuckets == 0 {
		opts.MaxBuckets = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	period := opts.Window / time.Duration(opts.Limit)
	l := &Limiter{
		opts:    opts,
		period:  period,
		backoff: redisBackoff,
		local: &localBuckets{
			max: opts.MaxBuckets, idle: opts.Window,
			every: rate.Every(period), burst: opts.Limit,
			m: make(map[string]*list.Element), ll: list.New(),
		},
	}
	if opts.Redis != nil {
		l.script = redis.NewScript(gcraScript)
	}
	return l, nil
}

// RateLimit returns middleware that lets each bucket make opts.Limit
// requests per opts.Window and answers the rest with 429 rate_limited and
// Retry-After. Put it on the routes that write keys.
func RateLimit(opts RateLimitOptions) (gin.HandlerFunc, error) {
	l, err := NewLimiter(opts)
	if err != nil {
		return nil, err
	}
	return l.Handler(), nil
}

// Handler is the Limiter as gin middleware; see RateLimit.
func (l *Limiter) Handler() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := ""
		if l.opts.Bucket != nil {
			id = l.opts.Bucket(c)
		}
		if id == "" {
			id = "ip:" + c.ClientIP()
		}
		ok, wait := l.Allow(c.Request.Context(), id)
		if !ok {
			deny(c, httpx.RateLimited(wait), l.opts.Render)
			return
		}
		c.Next()
	}
}

// Allow takes one request from bucket id's allowance. It reports whether
// the request may go ahead and, if not, how long until one may.
func (l *Limiter) Allow(ctx context.Context, id string) (bool, time.Duration) {
	if l.script != nil && time.Now().UnixNano() >= l.downUntil.Load() {
		ok, wait, err := l.allowRedis(ctx, id)
		if err == nil {
			return ok, wait
		}
		if ctx.Err() == nil { // the request's own end is not Redis' fault
			l.downUntil.Store(time.Now().Add(l.backoff).UnixNano())
			l.logRedis(ctx, err)
		}
	}
	return l.local.allow(id, l.opts.Now())
}

// gcraScript is the generic cell rate algorithm: the key holds the
// theoretical arrival time (TAT) in microseconds of Redis' own clock, so
// replicas need no clock agreement. ARGV[1] is the emission interval and
// ARGV[2] the burst tolerance, both in microseconds. It returns {1, 0} when
// allowed, or {0, microseconds to wait}.
const gcraScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local wait = tat - now - tau
if wait > 0 then return {0, wait} end
local newtat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', newtat), 'PX', math.ceil((newtat - now) / 1000) + 1)
return {1, 0}
`

func (l *Limiter) allowRedis(ctx context.Context, id string) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.RedisTimeout)
	defer cancel()
	sum := sha256.Sum256([]byte(id))
	key := l.opts.Prefix + hex.EncodeToString(sum[:16])
	interval := l.period.Microseconds()
	tau := interval * int64(l.opts.Limit-1)
	res, err := l.script.Run(ctx, l.opts.Redis, []string{key}, interval, tau).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("guards: rate limit script returned %d values", len(res))
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}

func (l *Limiter) logRedis(ctx context.Context, err error) {
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(10*time.Second) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.opts.Logger.WarnContext(ctx, "byok: rate limit: Redis failed, using in-process buckets", "err", err)
}

// localBuckets are token buckets in an LRU map, so their number stays
// bounded however many ids arrive. A bucket idle for a whole window is full
// again and is dropped as a new one would start full.
type localBuckets struct {
	mu    sync.Mutex
	m     map[string]*list.Element
	ll    *list.List // front: most recently used
	max   int
	idle  time.Duration
	every rate.Limit
	burst int
}

type bucket struct {
	id   string
	lim  *rate.Limiter
	last time.Time
}

func (b *localBuckets) allow(id string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(now)
	var bk *bucket
	if e, ok := b.m[id]; ok {
		bk = e.Value.(*bucket)
		b.ll.MoveToFront(e)
	} else {
		bk = &bucket{id: id, lim: rate.NewLimiter(b.every, b.burst)}
		b.m[id] = b.ll.PushFront(bk)
		for b.ll.Len() > b.max {
			old := b.ll.Back()
			b.ll.Remove(old)
			delete(b.m, old.Value.(*bucket).id)
		}
	}
	bk.last = now
	r := bk.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, b.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// prune drops buckets unused for a whole window, oldest first.
func (b *localBuckets) prune(now time.Time) {
	for e := b.ll.Back(); e != nil; e = b.ll.Back() {
		bk := e.Value.(*bucket)
		if now.Sub(bk.last) < b.idle {
			return
		}
		b.ll.Remove(e)
		delete(b.m, bk.id)
	}
}

// buckets reports how many in-process buckets exist, for tests.
func (l *Limiter) buckets() int {
	l.local.mu.Lock()
	defer l.local.mu.Unlock()
	return l.local.ll.Len()
}
