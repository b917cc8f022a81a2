package encrypt

import "errors"

// Errors returned by this package. Compare with [errors.Is]; the returned
// errors may wrap them with detail that never includes key material.
var (
	// ErrShortSecret means a master secret has fewer than MinSecretSize bytes.
	ErrShortSecret = errors.New("encrypt: master secret too short")
	// ErrWeakSecret means a master secret is plainly not random, such as a
	// run of one repeated byte.
	ErrWeakSecret = errors.New("encrypt: master secret is not random (too few distinct bytes)")
	// ErrInvalidSecret means a master secret is neither base64 nor hex.
	ErrInvalidSecret = errors.New("encrypt: master secret is not valid base64 or hex")
	// ErrMalformed means a ciphertext is empty, truncated or of an unknown version.
	ErrMalformed = errors.New("encrypt: malformed ciphertext")
	// ErrUnknownKey means a ciphertext names a key id that is not in the keyring.
	ErrUnknownKey = errors.New("encrypt: ciphertext sealed under a key not in the keyring")
	// ErrAuth means a ciphertext failed authentication: it was altered, sealed
	// under another key, or opened with different associated data.
	ErrAuth = errors.New("encrypt: message authentication failed")
	// ErrWrongSecret means a check value does not open: the master secret is
	// not the one the stored data was sealed under.
	ErrWrongSecret = errors.New("encrypt: master secret does not match the stored check value")
	// ErrDuplicateKeyID means two keys in a keyring have the same key id,
	// usually because the same secret was listed twice.
	ErrDuplicateKeyID = errors.New("encrypt: duplicate key id in keyring")
	// ErrNoKey means a keyring was given a nil or zero MasterKey instead of
	// one from DeriveKeys.
	ErrNoKey = errors.New("encrypt: master key missing or not made by DeriveKeys")
)
