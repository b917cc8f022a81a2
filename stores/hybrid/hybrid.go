// Package hybrid keeps a signed-in user's keys in SQL and caches them in the
// user's session, invalidated across sessions and replicas by a per-user
// epoch in Redis; anonymous visitors' keys live in the session only.
//
// # How it works
//
// Each signed-in user has an epoch: a random 16-byte token in Redis under
// the key epoch prefix + user id (default "byok:epoch:"). A session cache
// holds all of the user's records, read with one SQL List, tagged with the
// epoch that was read BEFORE that List.
//
// A read (Get, List) GETs the epoch (one Redis round trip), unless the
// session read it with itself in this request (an EpochSource). If the session's
// cache carries the same epoch, is younger than the maximum cache age and
// belongs to the same owner, it is served without SQL; expired records are
// dropped against the clock on every hit. Otherwise the records are listed
// from SQL and stored, tagged with the epoch just read, as the new cache
// (which saves the session). A missing epoch is created with SET NX.
//
// A write (Put, Delete, Clear) pings SQL (if the SQL store has a Ping
// method), sets a new random epoch, writes SQL, and sets a new random epoch
// again; then it refills this session's cache from SQL under the last epoch.
// The ping keeps a write attempted during a clean SQL outage from
// invalidating caches that can still be served. The first bump makes sure
// that, if Redis is
// unreachable, nothing is written: a change that other sessions could not be
// told about (a revoked key still served from their caches once Redis
// returns) is worse than a failed write, so the write fails with
// stores.ErrUnavailable. The second bump kills any cache filled while the SQL
// write was in flight; it runs even if the request's context was cancelled.
//
// Why a read that starts after a write was acknowledged never sees the old
// value: the write's second bump happened before the read's GET. Tokens are
// random, so the value the read sees was set exactly once, at or after that
// bump, and the cache tagged with it was listed from SQL after that value
// was obtained, so after the write. A reader that raced the write tagged its
// cache with an older epoch, which no longer matches. A random token (not a
// counter) means an epoch Redis lost reads as missing, a cache miss, and a
// new token can never match an old cache.
//
// # Failures
//
//   - Redis unreachable: reads go to SQL directly and leave the cache alone;
//     writes fail with stores.ErrUnavailable and write nothing.
//   - SQL unreachable: reads are served from a valid cache; a read that
//     misses, and every write, fails with stores.ErrUnavailable.
//   - If the write reached SQL but the second bump failed, the error wraps
//     both ErrNotInvalidated and stores.ErrUnavailable: retrying is right.
//   - If Redis goes back in time (restored from a snapshot, a failover that
//     lost the latest writes), an old epoch could match an old cache again:
//     the maximum cache age (WithMaxCacheAge, default 15 minutes) bounds
//     that; change the epoch prefix to invalidate every cache at once.
//
// Without Redis (a nil client) there is no cache: signed-in users are read
// from SQL on every request, which is correct, only slower.
//
// Anonymous scopes (no user id) are handed to the session store unchanged;
// SQL and Redis are never touched for them.
package hybrid

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/ginbyok/byok/stores"
)

// ErrNotInvalidated means a write reached SQL but the user's epoch could not
// be changed afterwards, so other sessions may serve their old cache until
// the next successful write or the maximum cache age. Errors wrapping it
// also wrap stores.ErrUnavailable; the caller should report a failure and
// let the user retry.
var ErrNotInvalidated = errors.New("hybrid: stored, but other sessions may not see the change yet")

// invalidateTimeout bounds the epoch bump that follows a SQL write; it runs
// on a context detached from the request's cancellation.
const invalidateTimeout = 5 * time.Second

// Store is a stores.Store for signed-in users (SQL plus a session cache)
// and anonymous visitors (session only). It is safe for concurrent use.
type Store struct {
	anon          stores.Store
	persist       stores.Store
	rdb           redis.UniversalClient
	prefix        string
	cacheKey      string
	now           func() time.Time
	log           *slog.Logger
	epochTTL      time.Duration
	maxCacheAge   time.Duration
	maxCacheBytes int

	warn                                      rate.Sometimes
	hits, misses, direct, redisErrs, saveErrs atomic.Uint64
}

var _ stores.Store = (*Store)(nil)

// Stats counts what the Store did since it was created.
type Stats struct {
	Hits        uint64 // signed-in reads served from a session cache, without SQL
	Misses      uint64 // signed-in reads that listed from SQL and refilled the cache
	Direct      uint64 // signed-in reads sent to SQL without a cache (no Redis, no session, Redis failing)
	RedisErrors uint64 // failed Redis commands
	SaveErrors  uint64 // failed session saves after a cache refill
}

// New returns a Store. anon keeps anonymous visitors' keys (a
// *session.Store); persist is the SQL store, the truth for signed-in users
// (a *sqlstore.Store); rdb holds the epochs and may be nil, which turns the
// session cache off.
func New(anon, persist stores.Store, rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if isNil(anon) {
		return nil, fmt.Errorf("%w: nil anonymous (session) store", ErrInvalidConfig)
	}
	if isNil(persist) {
		return nil, fmt.Errorf("%w: nil persistent (SQL) store", ErrInvalidConfig)
	}
	o := options{
		prefix: DefaultEpochPrefix, cacheKey: DefaultCacheKey, now: time.Now,
		epochTTL: DefaultEpochTTL, maxCacheAge: DefaultMaxCacheAge, maxCacheBytes: DefaultMaxCacheBytes,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if isNil(rdb) {
		rdb = nil
	}
	return &Store{
		anon: anon, persist: persist, rdb: rdb, prefix: o.prefix, cacheKey: o.cacheKey,
		now: o.now, log: o.log, epochTTL: o.epochTTL, maxCacheAge: o.maxCacheAge,
		maxCacheBytes: o.maxCacheBytes,
		warn:          rate.Sometimes{First: 1, Interval: 30 * time.Second},
	}, nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// Stats returns the Store's counters.
func (s *Store) Stats() Stats {
	return Stats{Hits: s.hits.Load(), Misses: s.misses.Load(), Direct: s.direct.Load(),
		RedisErrors: s.redisErrs.Load(), SaveErrors: s.saveErrs.Load()}
}

// EpochKey returns the Redis key that holds userID's epoch.
func (s *Store) EpochKey(userID string) string { return s.prefix + userID }

// Get returns the scope's live record for provider, or stores.ErrNotFound.
func (s *Store) Get(ctx context.Context, scope stores.Scope, provider string) (stores.Record, error) {
	if scope.Anonymous() {
		return s.anon.Get(ctx, scope, provider)
	}
	recs, ok, err := s.view(ctx, scope)
	if err != nil {
		return stores.Record{}, err
	}
	if !ok {
		return s.persist.Get(ctx, scope, provider)
	}
	for _, r := range recs {
		if r.Provider == provider {
			return r, nil
		}
	}
	return stores.Record{}, stores.ErrNotFound
}

// List returns the scope's live records ordered by provider.
func (s *Store) List(ctx context.Context, scope stores.Scope) ([]stores.Record, error) {
	if scope.Anonymous() {
		return s.anon.List(ctx, scope)
	}
	recs, ok, err := s.view(ctx, scope)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.persist.List(ctx, scope)
	}
	return recs, nil
}

// view returns a signed-in user's live records from a valid session cache
// or, on a miss, from one SQL List that refills the cache. ok is false when
// no cache can be used (no Redis, no session, Redis failing): the caller
// then asks SQL directly and the session is left alone.
func (s *Store) view(ctx context.Context, scope stores.Scope) (recs []stores.Record, ok bool, err error) {
	if s.rdb == nil || scope.Session == nil {
		s.direct.Add(1)
		return nil, false, nil
	}
	key := s.EpochKey(scope.UserID)
	epoch, err := s.readEpoch(ctx, scope.Session, key)
	switch {
	case err == nil:
	case errors.Is(err, redis.Nil):
		epoch = ""
	default:
		s.redisFailed(ctx, "read", err)
		s.direct.Add(1)
		return nil, false, nil
	}
	now := s.now().UTC()
	if epoch != "" {
		if e, ok := s.loadCache(ctx, scope); ok && e.epoch == epoch && now.Sub(e.filled) < s.maxCacheAge {
			s.hits.Add(1)
			return live(e.recs, scope.UserID, now), true, nil
		}
	} else if epoch, err = s.ensureEpoch(ctx, key); err != nil {
		s.redisFailed(ctx, "read", err)
		s.direct.Add(1)
		return nil, false, nil
	}
	s.misses.Add(1)
	all, err := s.persist.List(ctx, scope)
	if err != nil {
		return nil, true, err
	}
	recs = live(all, scope.UserID, now)
	s.storeCache(ctx, scope, epoch, now, recs)
	return recs, true, nil
}

// EpochSource is implemented by a session that read epoch keys together
// with itself, in the same Redis round trip, in the current request (the
// plugin's own Redis session does, through redisstore.Store.LoadWith). A
// read then uses that value instead of its own GET: same request, same
// guarantee, one round trip fewer. A session that holds a value read in an
// earlier request must never implement it: a revocation would be missed.
type EpochSource interface {
	// Epoch returns the value of the Redis key read with the session in
	// this request; found is false when the key did not exist. ok is false
	// when the key was not read (or was forgotten): the Store then GETs it.
	Epoch(key string) (epoch string, found, ok bool)
	// ForgetEpoch drops the value read for key. The Store calls it when it
	// uses the value (it serves one read) and before it changes that epoch,
	// so later reads in the request ask Redis.
	ForgetEpoch(key string)
}

// readEpoch returns the epoch at key: the value sess read with itself in
// this request if it is an EpochSource that has it (once: the value is
// forgotten as it is used), else one GET. A missing epoch is redis.Nil
// either way.
func (s *Store) readEpoch(ctx context.Context, sess stores.Session, key string) (string, error) {
	if src, ok := sess.(EpochSource); ok {
		if epoch, found, ok := src.Epoch(key); ok {
			// One read only: a later read in the same request may start
			// after another replica's write was acknowledged, so it asks
			// Redis, as every read did before.
			src.ForgetEpoch(key)
			if !found {
				return "", redis.Nil
			}
			return epoch, nil
		}
	}
	return s.rdb.Get(ctx, key).Result()
}

// forgetEpoch tells sess, if it read the epoch at key with itself, that the
// value is about to change.
func forgetEpoch(sess stores.Session, key string) {
	if src, ok := sess.(EpochSource); ok {
		src.ForgetEpoch(key)
	}
}

// live returns the unexpired records of recs, sorted by provider, as a new
// slice owned by the caller.
func live(recs []stores.Record, userID string, now time.Time) []stores.Record {
	out := make([]stores.Record, 0, len(recs))
	for _, r := range recs {
		if !r.Expired(now) {
			r.UserID = userID
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b stores.Record) int { return cmp.Compare(a.Provider, b.Provider) })
	return out
}

// loadCache decodes the session's cache entry if it belongs to the scope.
func (s *Store) loadCache(ctx context.Context, scope stores.Scope) (cacheEntry, bool) {
	var b []byte
	switch v := scope.Session.Get(s.cacheKey).(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return cacheEntry{}, false
	}
	e, err := decodeCache(b)
	if err != nil {
		s.log.DebugContext(ctx, "byok: session cache is malformed; treated as a miss", "entry", s.cacheKey, "bytes", len(b), "err", err)
		return cacheEntry{}, false
	}
	return e, e.owner == scope.Owner()
}

// storeCache stores recs (live, sorted) as the session's cache under epoch
// and saves the session. Records that do not fit leave no cache at all.
func (s *Store) storeCache(ctx context.Context, scope stores.Scope, epoch string, now time.Time, recs []stores.Record) {
	b, err := encodeCache(cacheEntry{epoch: epoch, filled: now, owner: scope.Owner(), recs: recs})
	switch {
	case err == nil && len(b) <= s.maxCacheBytes:
		scope.Session.Set(s.cacheKey, b)
	case scope.Session.Get(s.cacheKey) == nil:
		return
	default:
		s.log.DebugContext(ctx, "byok: records not cached in the session", "bytes", len(b), "limit", s.maxCacheBytes, "err", err)
		scope.Session.Delete(s.cacheKey)
	}
	s.save(ctx, scope.Session)
}

func (s *Store) save(ctx context.Context, sess stores.Session) {
	if err := sess.Save(); err != nil {
		s.saveErrs.Add(1)
		s.log.WarnContext(ctx, "byok: saving the session cache failed", "err", err)
	}
}

// DropCache removes a signed-in user's cache from sess and saves it. Call it
// when a user signs out but the session lives on, so that no ciphertext of
// theirs stays in it. (Another user's read would not be served from it
// anyway: the cache is bound to its owner.)
func (s *Store) DropCache(ctx context.Context, sess stores.Session) error {
	if sess == nil {
		return stores.ErrNoSession
	}
	if sess.Get(s.cacheKey) == nil {
		return nil
	}
	sess.Delete(s.cacheKey)
	if err := sess.Save(); err != nil {
		return fmt.Errorf("%w: saving session: %w", stores.ErrUnavailable, err)
	}
	return nil
}

// Invalidate changes userID's epoch, so every session cache of that user
// is reloaded from SQL at its next read. Call it after changing the user's
// rows without this Store (an admin tool, a bulk import, a rewrap during
// key rotation). Without Redis there is no cache and it does nothing. It
// fails with stores.ErrUnavailable when Redis does not answer.
func (s *Store) Invalidate(ctx context.Context, userID string) error {
	if s.rdb == nil {
		return nil
	}
	if userID == "" {
		return fmt.Errorf("%w: empty user id", stores.ErrInvalidRecord)
	}
	if _, err := s.bump(ctx, s.EpochKey(userID)); err != nil {
		return fmt.Errorf("%w: redis: %w", stores.ErrUnavailable, err)
	}
	return nil
}

// newEpoch returns a fresh random epoch token.
func newEpoch() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return string(b[:])
}

// ensureEpoch creates the epoch at key if it is missing and returns the
// value that ended up there.
func (s *Store) ensureEpoch(ctx context.Context, key string) (string, error) {
	for range 3 {
		tok := newEpoch()
		set, err := s.rdb.SetNX(ctx, key, tok, s.epochTTL).Result()
		if err != nil {
			return "", err
		}
		if set {
			return tok, nil
		}
		v, err := s.rdb.Get(ctx, key).Result()
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, redis.Nil) {
			return "", err
		}
	}
	return "", errors.New("hybrid: epoch keeps vanishing")
}

// bump sets a new epoch at key and returns it.
func (s *Store) bump(ctx context.Context, key string) (string, error) {
	tok := newEpoch()
	if err := s.rdb.Set(ctx, key, tok, s.epochTTL).Err(); err != nil {
		return "", err
	}
	return tok, nil
}

func (s *Store) redisFailed(ctx context.Context, op string, err error) {
	s.redisErrs.Add(1)
	if ctx.Err() != nil {
		return
	}
	s.warn.Do(func() {
		s.log.WarnContext(ctx, "byok: redis is failing; signed-in reads go to SQL and writes fail until it answers",
			"op", op, "err", err)
	})
}

// pinger is implemented by SQL stores that can check their connection
// (sqlstore.Store).
type pinger interface {
	Ping(ctx context.Context) error
}

// write runs op (a SQL write for scope's user) between two epoch bumps and
// refills the session's cache afterwards.
func (s *Store) write(ctx context.Context, scope stores.Scope, op func(context.Context) error) error {
	if s.rdb == nil {
		return op(ctx)
	}
	if p, ok := s.persist.(pinger); ok {
		// A clean SQL outage fails here, before the bump below would
		// invalidate caches that could still be served meanwhile.
		if err := p.Ping(ctx); err != nil {
			return fmt.Errorf("%w: SQL: %w", stores.ErrUnavailable, err)
		}
	}
	key := s.EpochKey(scope.UserID)
	forgetEpoch(scope.Session, key)
	if _, err := s.bump(ctx, key); err != nil {
		s.redisFailed(ctx, "write", err)
		return fmt.Errorf("%w: redis cannot invalidate other sessions' caches, so nothing was written: %w", stores.ErrUnavailable, err)
	}
	opErr := op(ctx)
	// Bump again even if op failed (a commit whose reply was lost may have
	// landed) or the request was cancelled meanwhile.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), invalidateTimeout)
	defer cancel()
	epoch, err := s.bump(bctx, key)
	if err != nil {
		s.redisErrs.Add(1)
		s.log.ErrorContext(ctx, "byok: redis failed right after a SQL write; other sessions may serve stale keys until the next write or the cache age limit",
			"err", err, "write_err", opErr)
		if opErr != nil {
			return opErr
		}
		return fmt.Errorf("%w; %w: redis: %w", ErrNotInvalidated, stores.ErrUnavailable, err)
	}
	if opErr != nil {
		return opErr
	}
	if scope.Session != nil {
		s.refill(ctx, scope, epoch)
	}
	return nil
}

// refill lists the user's records after a write and caches them under
// epoch, the value of the write's last bump; if listing fails the session's
// cache is removed instead, so no deleted ciphertext stays in the session.
func (s *Store) refill(ctx context.Context, scope stores.Scope, epoch string) {
	now := s.now().UTC()
	all, err := s.persist.List(ctx, scope)
	if err != nil {
		if scope.Session.Get(s.cacheKey) != nil {
			scope.Session.Delete(s.cacheKey)
			s.save(ctx, scope.Session)
		}
		return
	}
	s.storeCache(ctx, scope, epoch, now, live(all, scope.UserID, now))
}

// Put stores or replaces the scope's record for rec.Provider and reports
// whether a live record was replaced. For a signed-in user it fails with
// stores.ErrUnavailable, writing nothing, when Redis or SQL is unreachable.
func (s *Store) Put(ctx context.Context, scope stores.Scope, rec stores.Record) (bool, error) {
	if scope.Anonymous() {
		return s.anon.Put(ctx, scope, rec)
	}
	if err := rec.Validate(); err != nil {
		return false, err
	}
	var replaced bool
	err := s.write(ctx, scope, func(ctx context.Context) (err error) {
		replaced, err = s.persist.Put(ctx, scope, rec)
		return err
	})
	return replaced, err
}

// Delete removes the scope's record for provider and reports whether a live
// one existed. Every other session of the user sees the deletion on its
// next read.
func (s *Store) Delete(ctx context.Context, scope stores.Scope, provider string) (bool, error) {
	if scope.Anonymous() {
		return s.anon.Delete(ctx, scope, provider)
	}
	var existed bool
	err := s.write(ctx, scope, func(ctx context.Context) (err error) {
		existed, err = s.persist.Delete(ctx, scope, provider)
		return err
	})
	return existed, err
}

// Clear removes every record of the scope and returns how many it removed.
func (s *Store) Clear(ctx context.Context, scope stores.Scope) (int, error) {
	if scope.Anonymous() {
		return s.anon.Clear(ctx, scope)
	}
	var n int
	err := s.write(ctx, scope, func(ctx context.Context) (err error) {
		n, err = s.persist.Clear(ctx, scope)
		return err
	})
	return n, err
}
