// Package session keeps a scope's encrypted keys inside its web session,
// under one compact entry, for any gin-contrib/sessions store.
//
// All records of a scope live in one session value (default name
// "byok.keys"): a []byte in a small binary format, so no gob registration is
// needed and a cookie session stays small. The entry remembers its owner
// (stores.Scope.Owner); a session whose owner changed, for example after a
// sign-in or sign-out without a fresh session, reads as empty, so one user's
// keys are never served to another.
//
// Reads never modify or save the session: expired records are skipped on
// read and dropped from the entry on the next Put, Delete or Clear, which
// call Session.Save. A malformed entry reads as empty; it is logged (without
// its contents) and replaced on the next write.
package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ginbyok/byok/stores"
)

// DefaultKey is the session entry that holds the records.
const DefaultKey = "byok.keys"

// DefaultMaxBytes is the default limit on the encoded entry. It keeps a
// gorilla/securecookie cookie session (which base64-encodes twice and adds a
// MAC) under the 4096-byte cookie limit with room for a few other values.
const DefaultMaxBytes = 2000

// ErrMalformed means the session entry could not be decoded. Stores treat
// such an entry as empty; Decode returns it.
var ErrMalformed = errors.New("session: malformed key entry")

// Store keeps records in the scope's session. It implements stores.Store.
// It holds no per-request state and is safe for concurrent use; a single
// session, as always, is not.
type Store struct {
	key      string
	now      func() time.Time
	maxBytes int
	log      *slog.Logger
}

var _ stores.Store = (*Store)(nil)

type options struct {
	key      string
	now      func() time.Time
	maxBytes int
	log      *slog.Logger
}

// Option configures a Store.
type Option func(*options) error

// WithKey sets the session entry name. Default "byok.keys"; change it only
// if that name is taken in your sessions or two plugins share one session.
func WithKey(name string) Option {
	return func(o *options) error {
		if name == "" {
			return errors.New("session: empty entry name")
		}
		o.key = name
		return nil
	}
}

// WithClock sets the clock used for expiry and for UpdatedAt when a Put
// leaves it zero. Default time.Now; tests inject a fixed clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("session: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithMaxBytes limits the encoded entry; a Put that would exceed it fails
// with stores.ErrTooLarge. Default DefaultMaxBytes (2000), which fits a
// cookie session; raise it for server-side sessions (Redis), lower it if
// your cookie session carries much else.
func WithMaxBytes(n int) Option {
	return func(o *options) error {
		if n < 64 {
			return fmt.Errorf("session: max bytes %d is below 64", n)
		}
		o.maxBytes = n
		return nil
	}
}

// WithLogger sets where malformed entries are reported (at warn level, with
// the entry's length and the reason, never its contents). Default
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("session: nil logger")
		}
		o.log = l
		return nil
	}
}

// New returns a Store configured by opts.
func New(opts ...Option) (*Store, error) {
	o := options{key: DefaultKey, now: time.Now, maxBytes: DefaultMaxBytes}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	return &Store{key: o.key, now: o.now, maxBytes: o.maxBytes, log: o.log}, nil
}

// load reads the scope's live records. raw reports whether the session held
// anything under the key (so a write knows the entry must be rewritten).
func (s *Store) load(ctx context.Context, scope stores.Scope) (recs []stores.Record, raw bool, err error) {
	if scope.Session == nil {
		return nil, false, stores.ErrNoSession
	}
	v := scope.Session.Get(s.key)
	if v == nil {
		return nil, false, nil
	}
	var b []byte
	switch v := v.(type) {
	case []byte:
		b = v
	case string: // a JSON-serialising session store turns []byte into base64 text and back into a string
		b = []byte(v)
	default:
		s.log.WarnContext(ctx, "byok: session key entry has an unexpected type; treated as empty",
			"entry", s.key, "type", fmt.Sprintf("%T", v))
		return nil, true, nil
	}
	owner, all, err := Decode(b)
	if err != nil {
		s.log.WarnContext(ctx, "byok: session key entry is malformed; treated as empty",
			"entry", s.key, "bytes", len(b), "err", err)
		return nil, true, nil
	}
	if owner != scope.Owner() {
		return nil, true, nil
	}
	now := s.now()
	recs = all[:0]
	for _, r := range all {
		if !r.Expired(now) {
			r.UserID = scope.UserID
			recs = append(recs, r)
		}
	}
	return recs, true, nil
}

// save writes recs as the scope's entry (or removes it when empty) and saves
// the session.
func (s *Store) save(scope stores.Scope, recs []stores.Record) error {
	if len(recs) == 0 {
		scope.Session.Delete(s.key)
	} else {
		b, err := Encode(scope.Owner(), recs)
		if err != nil {
			return err
		}
		if len(b) > s.maxBytes {
			return fmt.Errorf("%w: session key entry would be %d bytes, limit %d", stores.ErrTooLarge, len(b), s.maxBytes)
		}
		scope.Session.Set(s.key, b)
	}
	if err := scope.Session.Save(); err != nil {
		return fmt.Errorf("%w: saving session: %w", stores.ErrUnavailable, err)
	}
	return nil
}

// Put stores rec for (scope, rec.Provider), replacing any record there, and
// saves the session. It reports whether a live record was replaced. A zero
// UpdatedAt is set to the clock's now; times are kept to the microsecond.
func (s *Store) Put(ctx context.Context, scope stores.Scope, rec stores.Record) (bool, error) {
	if err := s.check(scope, rec); err != nil {
		return false, err
	}
	recs, _, err := s.load(ctx, scope)
	if err != nil {
		return false, err
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = s.now()
	}
	rec = normalize(rec)
	rec.UserID = scope.UserID
	i, found := slices.BinarySearchFunc(recs, rec.Provider, byProvider)
	next := slices.Clone(recs)
	if found {
		next[i] = rec
	} else {
		next = slices.Insert(next, i, rec)
	}
	if err := s.save(scope, next); err != nil {
		return false, err
	}
	return found, nil
}

func (s *Store) check(scope stores.Scope, rec stores.Record) error {
	if scope.Session == nil {
		return stores.ErrNoSession
	}
	if err := rec.Validate(); err != nil {
		return err
	}
	if rec.UserID != "" && rec.UserID != scope.UserID {
		return fmt.Errorf("%w: record user id differs from the scope's", stores.ErrInvalidRecord)
	}
	if !utf8.ValidString(rec.Provider) || len(rec.Provider) > maxProvider {
		return fmt.Errorf("%w: provider is not short valid UTF-8", stores.ErrInvalidRecord)
	}
	if rec.Expired(s.now()) {
		return fmt.Errorf("%w: already expired", stores.ErrInvalidRecord)
	}
	return nil
}

// Get returns the scope's live record for provider, or stores.ErrNotFound.
func (s *Store) Get(ctx context.Context, scope stores.Scope, provider string) (stores.Record, error) {
	recs, _, err := s.load(ctx, scope)
	if err != nil {
		return stores.Record{}, err
	}
	if i, ok := slices.BinarySearchFunc(recs, provider, byProvider); ok {
		return recs[i], nil
	}
	return stores.Record{}, stores.ErrNotFound
}

// Delete removes the scope's record for provider and saves the session if
// the entry changed. It reports whether a live record existed.
func (s *Store) Delete(ctx context.Context, scope stores.Scope, provider string) (bool, error) {
	recs, raw, err := s.load(ctx, scope)
	if err != nil {
		return false, err
	}
	i, found := slices.BinarySearchFunc(recs, provider, byProvider)
	if found {
		recs = slices.Delete(slices.Clone(recs), i, i+1)
	}
	if !found && !s.stale(scope, recs, raw) {
		return false, nil
	}
	if err := s.save(scope, recs); err != nil {
		return false, err
	}
	return found, nil
}

// stale reports whether the stored entry differs from what recs would
// encode to (expired records, another owner, a malformed entry).
func (s *Store) stale(scope stores.Scope, recs []stores.Record, raw bool) bool {
	if !raw {
		return false
	}
	old, _ := scope.Session.Get(s.key).([]byte)
	if len(recs) == 0 {
		return true
	}
	b, err := Encode(scope.Owner(), recs)
	return err != nil || !bytes.Equal(b, old)
}

// List returns the scope's live records ordered by provider.
func (s *Store) List(ctx context.Context, scope stores.Scope) ([]stores.Record, error) {
	recs, _, err := s.load(ctx, scope)
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// Clear removes every record of the scope, saves the session if there was
// an entry, and returns how many live records it removed.
func (s *Store) Clear(ctx context.Context, scope stores.Scope) (int, error) {
	recs, raw, err := s.load(ctx, scope)
	if err != nil {
		return 0, err
	}
	if !raw {
		return 0, nil
	}
	if err := s.save(scope, nil); err != nil {
		return 0, err
	}
	return len(recs), nil
}

func byProvider(r stores.Record, p string) int { return strings.Compare(r.Provider, p) }

// normalize converts times to UTC at microsecond precision, as they will
// read back.
func normalize(r stores.Record) stores.Record {
	r.CreatedAt = fromMicro(r.CreatedAt.UnixMicro())
	if !r.UpdatedAt.IsZero() {
		r.UpdatedAt = fromMicro(r.UpdatedAt.UnixMicro())
	}
	if !r.ExpiresAt.IsZero() {
		r.ExpiresAt = fromMicro(r.ExpiresAt.UnixMicro())
	}
	return r
}
