// Package redisstore is a gin-contrib/sessions Store that keeps session data
// in Redis through go-redis v9, behind a signed random session id.
//
// Any redis.UniversalClient works: a single node, Sentinel (failover) or
// Cluster. The cookie carries only a 32-byte random id and its HMAC; the
// values live in Redis under prefix+id, in a compact encoding that needs no
// gob registration for strings, []byte, bools, ints, int64s, float64s,
// time.Times and lists of them (flashes). Loading a session is one GET (or,
// with LoadWith, one MGET or pipeline that also reads other keys the caller
// needs in the same request) and saving one SET with a TTL.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/stores"
)

// Errors returned by the store. Compare with errors.Is.
var (
	// ErrNoClient means NewStore was given a nil Redis client.
	ErrNoClient = errors.New("redisstore: nil redis client")
	// ErrNoKeys means NewStore was given no key pairs.
	ErrNoKeys = errors.New("redisstore: no key pairs")
	// ErrShortKey means an authentication key is shorter than 32 bytes.
	ErrShortKey = errors.New("redisstore: authentication key too short")
	// ErrInvalidOption means an Option was given a value out of range.
	ErrInvalidOption = errors.New("redisstore: invalid option")
	// ErrInvalidCookie means the request carried a session cookie that is
	// malformed or not signed by any of the store's keys; the request gets a
	// new, empty session.
	ErrInvalidCookie = errors.New("redisstore: invalid session cookie")
	// ErrCorrupt means the value stored in Redis could not be decoded; the
	// request gets a new, empty session.
	ErrCorrupt = errors.New("redisstore: corrupt session data")
	// ErrUnsupportedType means a session key or value cannot be encoded:
	// keys must be string, int or int64; values of other types than the
	// native ones go through gob and must be registered with gob.Register.
	ErrUnsupportedType = errors.New("redisstore: unsupported session type")
	// ErrTooLarge means the encoded session exceeds the store's maximum
	// length; nothing was written. It wraps stores.ErrTooLarge.
	ErrTooLarge = fmt.Errorf("redisstore: session too large: %w", stores.ErrTooLarge)
)

// Store is a gin-contrib/sessions Store backed by Redis. It is safe for
// concurrent use; create it once with NewStore.
type Store struct {
	client    redis.UniversalClient
	signers   []*signer
	prefix    string
	maxLength int
	options   atomic.Pointer[gsessions.Options]
}

var _ sessions.Store = (*Store)(nil)

// NewStore returns a Store that keeps sessions in Redis through client.
//
// keyPairs are gorilla/securecookie-style pairs (authentication key,
// encryption key, ...), as encrypt.Keyring.SessionKeyPairs returns them.
// Cookies are signed with the first pair's authentication key and accepted
// under any pair's, so keys can be rotated by putting the new pair first.
// Each authentication key must have at least 32 bytes; encryption keys are
// not used, because the cookie carries nothing but a random id.
func NewStore(client redis.UniversalClient, keyPairs [][]byte, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, ErrNoClient
	}
	signers, err := newSigners(keyPairs)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Store{client: client, signers: signers, prefix: o.prefix, maxLength: o.maxLength}
	s.options.Store(o.cookie.ToGorillaOptions())
	return s, nil
}

// Options replaces the cookie options of sessions created from now on. It
// implements sessions.Store.
func (s *Store) Options(opts sessions.Options) {
	s.options.Store(opts.ToGorillaOptions())
}

// Get returns the named session of the request, loading it at most once per
// request (gorilla/sessions' registry caches it). It implements
// sessions.Store.
func (s *Store) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return gsessions.GetRegistry(r).Get(s, name)
}

// New loads the named session from the request's cookie, or returns a new
// empty session. The session is never nil. The error is non-nil when the
// cookie is forged or malformed (ErrInvalidCookie), the stored value cannot
// be decoded (ErrCorrupt) or Redis fails (stores.ErrUnavailable); in each
// case the session is a new, empty one with no id, so saving it creates a
// new session and never overwrites the one that could not be read. A cookie
// whose data has expired from Redis also gives a new session, without error.
// It implements sessions.Store.
func (s *Store) New(r *http.Request, name string) (*gsessions.Session, error) {
	sess, _, err := s.load(r, name, nil)
	return sess, err
}

// Fetched is the value of one extra key that LoadWith read together with
// the session.
type Fetched struct {
	// Value is the key's value when Found.
	Value string
	// Found is false when the key does not exist (where a GET answers nil).
	Found bool
}

// LoadWith loads the named session like New and reads the extra keys in the
// same Redis round trip: one MGET on a single node (*redis.Client, which
// includes Sentinel's failover client), a pipeline of GETs on any other
// client (Cluster and Ring, whose keys may live on different nodes).
//
// fetched holds one entry per key, in order, or is nil when the keys were
// not read: no extra keys, no valid session cookie (nothing is read from
// Redis then), or Redis failed; the caller reads them itself in that case.
// The session and error are those New would give.
//
// Unlike Get, LoadWith does not go through gorilla/sessions' per-request
// registry: the caller keeps the session for the rest of the request and
// saves it with its Save method.
func (s *Store) LoadWith(r *http.Request, name string, keys ...string) (sess *gsessions.Session, fetched []Fetched, err error) {
	return s.load(r, name, keys)
}

// load reads the session named by the request's cookie and, in the same
// round trip, the extra keys.
func (s *Store) load(r *http.Request, name string, extra []string) (*gsessions.Session, []Fetched, error) {
	sess := gsessions.NewSession(s, name)
	opts := *s.options.Load()
	sess.Options = &opts
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil, nil
	}
	id, ok := verifyCookie(s.signers, name, c.Value)
	if !ok {
		return sess, nil, ErrInvalidCookie
	}
	data, found, fetched, err := s.fetch(r.Context(), s.prefix+id, extra)
	if err != nil {
		return sess, nil, fmt.Errorf("redisstore: load session: %w: %w", stores.ErrUnavailable, err)
	}
	if !found {
		return sess, fetched, nil
	}
	values, err := decodeValues(data)
	if err != nil {
		return sess, fetched, err
	}
	sess.ID, sess.Values, sess.IsNew = id, values, false
	return sess, fetched, nil
}

// fetch GETs key and the extra keys in one round trip. err is about key;
// fetched is nil when there were no extra keys or one of them failed.
func (s *Store) fetch(ctx context.Context, key string, extra []string) (data string, found bool, fetched []Fetched, err error) {
	if len(extra) == 0 {
		data, err = s.client.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return "", false, nil, nil
		}
		return data, err == nil, nil, err
	}
	if c, ok := s.client.(*redis.Client); ok {
		// One node holds every key: one MGET. A missing key (or one of
		// another type) answers nil.
		vals, err := c.MGet(ctx, append([]string{key}, extra...)...).Result()
		if err != nil {
			return "", false, nil, err
		}
		if len(vals) != 1+len(extra) {
			return "", false, nil, fmt.Errorf("MGET of %d keys answered %d values", 1+len(extra), len(vals))
		}
		fetched = make([]Fetched, len(extra))
		for i, v := range vals[1:] {
			fetched[i].Value, fetched[i].Found = v.(string)
		}
		data, found = vals[0].(string)
		return data, found, fetched, nil
	}
	// Cluster, Ring or an unknown client: the keys may live on different
	// nodes, and a pipeline is right on every client.
	cmds := make([]*redis.StringCmd, 1+len(extra))
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds[0] = p.Get(ctx, key)
		for i, k := range extra {
			cmds[1+i] = p.Get(ctx, k)
		}
		return nil
	})
	fetched = make([]Fetched, len(extra))
	for i, cmd := range cmds[1:] {
		v, err := cmd.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			fetched = nil
			break
		}
		fetched[i] = Fetched{Value: v, Found: err == nil}
	}
	data, err = cmds[0].Result()
	if errors.Is(err, redis.Nil) {
		return "", false, fetched, nil
	}
	if err != nil {
		return "", false, nil, err
	}
	return data, true, fetched, nil
}

// Save writes the session to Redis with one SET (with a TTL: the session's
// MaxAge, or DefaultTTL when MaxAge is 0) and sets the cookie. A session
// without an id gets a new random one. A negative MaxAge deletes the session
// from Redis and expires the cookie. It implements sessions.Store.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, sess *gsessions.Session) error {
	opts := s.sessionOptions(sess)
	if opts.MaxAge < 0 {
		if sess.ID != "" {
			if err := s.client.Del(r.Context(), s.prefix+sess.ID).Err(); err != nil {
				return fmt.Errorf("redisstore: delete session: %w: %w", stores.ErrUnavailable, err)
			}
			sess.ID = ""
		}
		http.SetCookie(w, gsessions.NewCookie(sess.Name(), "", opts))
		return nil
	}
	data, err := s.encode(sess)
	if err != nil {
		return err
	}
	if sess.ID == "" {
		sess.ID = newID()
	}
	if err := s.client.Set(r.Context(), s.prefix+sess.ID, data, ttl(opts)).Err(); err != nil {
		return fmt.Errorf("redisstore: save session: %w: %w", stores.ErrUnavailable, err)
	}
	http.SetCookie(w, gsessions.NewCookie(sess.Name(), signCookie(s.signers[0], sess.Name(), sess.ID), opts))
	return nil
}

// Regenerate gives the request's named session a new id, against session
// fixation: call it when privileges change (sign-in, sign-out). The values
// are saved under the new id, the old id is deleted from Redis, and the new
// cookie is set. The session is the same object sessions.Default(c) uses, so
// later Get/Set/Save calls go to the new id.
func (s *Store) Regenerate(c *gin.Context, name string) error {
	sess, err := s.Get(c.Request, name)
	if sess == nil {
		return fmt.Errorf("redisstore: regenerate: %w", err)
	}
	return s.RegenerateID(c.Writer, c.Request, sess)
}

// RegenerateID is Regenerate for plain net/http: it saves sess under a new
// id and deletes the old one in one pipelined round trip, then sets the
// cookie. On error the session keeps its old id and no cookie is written.
func (s *Store) RegenerateID(w http.ResponseWriter, r *http.Request, sess *gsessions.Session) error {
	opts := s.sessionOptions(sess)
	if opts.MaxAge < 0 {
		return s.Save(r, w, sess)
	}
	data, err := s.encode(sess)
	if err != nil {
		return err
	}
	oldID, newKey := sess.ID, newID()
	_, err = s.client.Pipelined(r.Context(), func(p redis.Pipeliner) error {
		p.Set(r.Context(), s.prefix+newKey, data, ttl(opts))
		if oldID != "" {
			p.Del(r.Context(), s.prefix+oldID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: regenerate session: %w: %w", stores.ErrUnavailable, err)
	}
	sess.ID, sess.IsNew = newKey, false
	http.SetCookie(w, gsessions.NewCookie(sess.Name(), signCookie(s.signers[0], sess.Name(), newKey), opts))
	return nil
}

// sessionOptions returns the session's options, or the store's when the
// session has none (one not made by this store).
func (s *Store) sessionOptions(sess *gsessions.Session) *gsessions.Options {
	if sess.Options == nil {
		opts := *s.options.Load()
		sess.Options = &opts
	}
	return sess.Options
}

func (s *Store) encode(sess *gsessions.Session) ([]byte, error) {
	data, err := encodeValues(sess.Values)
	if err != nil {
		return nil, fmt.Errorf("redisstore: encode session: %w", err)
	}
	if len(data) > s.maxLength {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrTooLarge, len(data), s.maxLength)
	}
	return data, nil
}

// ttl is how long Redis keeps a session: its MaxAge, or DefaultTTL for a
// browser-session cookie (MaxAge 0).
func ttl(opts *gsessions.Options) time.Duration {
	if opts.MaxAge > 0 {
		return time.Duration(opts.MaxAge) * time.Second
	}
	return DefaultTTL
}
