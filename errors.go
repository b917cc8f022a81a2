package byok

import (
	"errors"

	"github.com/ginbyok/byok/stores"
)

// Errors returned by [Register] and by the key manager. Compare with
// errors.Is. No error ever contains a key or a secret.
var (
	// ErrConfig means an option was missing, malformed or in conflict with
	// another; Register returns it wrapped with the option's name.
	ErrConfig = errors.New("byok: bad configuration")
	// ErrUnknownProvider means the provider name is not one the plugin was
	// configured with ([WithProviders]).
	ErrUnknownProvider = errors.New("byok: unknown provider")
	// ErrInvalidKey means a key failed the provider's length and charset
	// check, the [WithValidator] function, or the live check
	// ([WithLiveCheck]); the wrapped text says why, never what the key was.
	ErrInvalidKey = errors.New("byok: invalid key")
	// ErrInvalidTTL means a lifetime could not be read or is not one of the
	// allowed choices ([WithTTLChoices]).
	ErrInvalidTTL = errors.New("byok: invalid ttl")
	// ErrNoOwner means the scope names neither a user nor an anonymous
	// visitor, so there is nobody to store a key for.
	ErrNoOwner = errors.New("byok: scope names no owner")
	// ErrNotSignedIn means an operation for a signed-in user, such as
	// [Plugin.AdoptAnonymousKeys], found none: [WithUser] returned "" (or is
	// not set).
	ErrNotSignedIn = errors.New("byok: no signed-in user")
	// ErrUnreadable means a stored key did not open (a wrong or retired
	// secret, or a ciphertext moved from another owner or provider). Such
	// an error also matches [ErrNotFound]: the key counts as missing, and it
	// is never deleted for failing to open.
	ErrUnreadable = errors.New("byok: stored key does not open")

	// ErrNotFound is [stores.ErrNotFound]: the scope has no live key for the
	// provider.
	ErrNotFound = stores.ErrNotFound
	// ErrUnavailable is [stores.ErrUnavailable]: the storage could not be
	// reached or failed; nothing was written.
	ErrUnavailable = stores.ErrUnavailable
	// ErrTooLarge is [stores.ErrTooLarge]: storing the key would exceed a
	// size limit (a cookie session holds about 4 KB).
	ErrTooLarge = stores.ErrTooLarge
)
