// Package encrypt seals provider API keys with AES-256-GCM under a rotating
// keyring derived from a master secret.
//
// A [Keyring] holds one primary key, which seals, and any number of previous
// keys, which still open. Every ciphertext starts with a five-byte header,
// [Version] and the four-byte big-endian id of the key that sealed it,
// followed by a 12-byte random nonce and the GCM output:
//
//	version (1) | key id (4) | nonce (12) | ciphertext | tag (16)
//
// The header is authenticated together with the caller's associated data, so
// changing any byte of a ciphertext makes [Keyring.Open] fail. Callers bind a
// ciphertext to its place with [AssociatedData]: a value copied to another
// owner or provider does not open.
//
// Keys come from a master secret of at least [MinSecretSize] random bytes
// (see [GenerateSecret] and [ParseSecret]). [DeriveKeys] expands the secret
// with HKDF-SHA256 into independent subkeys, one per purpose: the key id, the
// encryption key, the fingerprint key and the session signing and encryption
// keys. Replicas given the same secret derive the same keys and key id.
//
// Rotation is lazy: a keyring built from the new secret and the old ones
// opens everything, [Keyring.NeedsRewrap] tells which values were sealed under
// an old key and [Keyring.Rewrap] seals them again under the primary.
//
// A check value ([NewCheckValue], [VerifyCheckValue]) stored beside the data
// tells a wrong master secret from missing data, so a service can refuse to
// start instead of treating every key as unreadable.
//
// [AEAD] has the method set of tink's AEAD primitive, so a tink primitive or a
// KMS envelope AEAD can stand in for a [Keyring].
//
// For display and logs, [Mask] shows a recognisable part of a key,
// [Keyring.Fingerprint] gives a keyed, non-reversible identifier, and
// [Redacted] holds a key that prints as "[REDACTED]" however it is formatted.
//
// Errors returned by this package never contain key material or secrets.
package encrypt
