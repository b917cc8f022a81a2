// Package stores defines what every key store holds and promises: the Record,
// the Scope that owns it, the Store interface and the errors stores return.
//
// It does not import gin. A session is seen through the small Session
// interface, which gin-contrib/sessions' sessions.Session already satisfies.
package stores

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by stores. Compare with errors.Is; stores wrap them with
// context but never with key material.
var (
	// ErrNotFound means the scope has no live (unexpired) key for the provider.
	ErrNotFound = errors.New("stores: key not found")
	// ErrUnavailable means the backing service (SQL, Redis) could not be
	// reached or failed; nothing was written.
	ErrUnavailable = errors.New("stores: storage unavailable")
	// ErrNoSession means a session-backed store was called with a Scope
	// that carries no Session.
	ErrNoSession = errors.New("stores: no session in scope")
	// ErrInvalidRecord means a Record failed validation (empty provider,
	// empty ciphertext, times out of order).
	ErrInvalidRecord = errors.New("stores: invalid record")
	// ErrTooLarge means storing the record would exceed a size limit.
	ErrTooLarge = errors.New("stores: too large")
)

// Session is the part of a web session a store needs. gin-contrib/sessions'
// sessions.Session satisfies it.
type Session interface {
	Get(key any) any
	Set(key, val any)
	Delete(key any)
	Save() error
}

// Scope says whose keys an operation touches. A signed-in user has a UserID;
// an anonymous visitor has only an AnonID, a random id kept in the session
// that survives session-id regeneration. Session is the current request's
// session, if any; session-backed stores and caches need it, SQL ignores it.
type Scope struct {
	UserID  string
	AnonID  string
	Session Session
}

// Anonymous reports whether the scope has no signed-in user.
func (s Scope) Anonymous() bool { return s.UserID == "" }

// Owner is the stable string that names the owner of a key: "u:" and the
// user id for a signed-in user, "a:" and the anonymous id otherwise, or ""
// when the scope names nobody. It is bound into every ciphertext's
// associated data, so a ciphertext copied to another owner does not open.
func (s Scope) Owner() string {
	switch {
	case s.UserID != "":
		return "u:" + s.UserID
	case s.AnonID != "":
		return "a:" + s.AnonID
	default:
		return ""
	}
}

// Record is one stored key: always ciphertext, never plaintext. Times are
// UTC. A zero ExpiresAt means the key never expires.
type Record struct {
	UserID     string    // owner's user id; empty for anonymous (session) records
	Provider   string    // provider name, e.g. "openai"
	Ciphertext []byte    // sealed key, as produced by encrypt
	KeyID      uint32    // id of the encryption key that sealed it (0 if unknown)
	CreatedAt  time.Time // when this key value was first stored
	UpdatedAt  time.Time // when the record was last written (replace, rewrap)
	ExpiresAt  time.Time // zero: never expires
}

// Expired reports whether the record has an expiry at or before now.
func (r Record) Expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// Validate checks the fields every store relies on.
func (r Record) Validate() error {
	switch {
	case r.Provider == "":
		return fmt.Errorf("%w: empty provider", ErrInvalidRecord)
	case len(r.Ciphertext) == 0:
		return fmt.Errorf("%w: empty ciphertext", ErrInvalidRecord)
	case r.CreatedAt.IsZero():
		return fmt.Errorf("%w: zero created time", ErrInvalidRecord)
	}
	return nil
}

// Store keeps records per scope and provider. Every method takes the
// request's context first. Get and List never return expired records.
//
// Put stores or replaces the record for (scope, rec.Provider) and reports
// whether an existing live record was replaced. Delete reports whether a
// record existed. Clear removes every record of the scope and returns how
// many it removed.
type Store interface {
	Put(ctx context.Context, scope Scope, rec Record) (replaced bool, err error)
	Get(ctx context.Context, scope Scope, provider string) (Record, error)
	Delete(ctx context.Context, scope Scope, provider string) (existed bool, err error)
	List(ctx context.Context, scope Scope) ([]Record, error)
	Clear(ctx context.Context, scope Scope) (removed int, err error)
}
