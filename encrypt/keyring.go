package encrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
)

// Version is the first byte of every ciphertext sealed by a [Keyring].
const Version byte = 1

// Sizes of the parts of a ciphertext.
const (
	// HeaderSize is the length of the version byte and the key id.
	HeaderSize = 1 + 4
	// NonceSize is the length of the random GCM nonce after the header.
	NonceSize = 12
	// TagSize is the length of the GCM authentication tag at the end.
	TagSize = 16
	// Overhead is how much longer a ciphertext is than its plaintext.
	Overhead = HeaderSize + NonceSize + TagSize
)

// AEAD is authenticated encryption with associated data. Its method set is
// that of tink's AEAD primitive, so a tink primitive or a KMS envelope AEAD
// can be used wherever a [Keyring] is. [Keyring] implements it.
type AEAD interface {
	// Encrypt encrypts and authenticates plaintext, authenticates
	// associatedData, and returns the ciphertext.
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	// Decrypt authenticates ciphertext and associatedData and returns the
	// plaintext, or an error if either was altered.
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

type keyEntry struct {
	id   uint32
	aead cipher.AEAD
	key  *MasterKey
}

// A Keyring seals with AES-256-GCM under its primary key and opens with any
// of its keys, chosen by the key id in the ciphertext header. The GCM
// instances are built once, by [NewKeyring]. A Keyring is safe for
// concurrent use and formats without its keys.
type Keyring struct {
	keys []keyEntry // keys[0] is the primary
}

var _ AEAD = (*Keyring)(nil)

// NewKeyring returns a keyring that seals under primary and opens values
// sealed under primary or any of previous. It returns [ErrDuplicateKeyID] if
// two keys have the same id and [ErrNoKey] for a nil key.
func NewKeyring(primary *MasterKey, previous ...*MasterKey) (*Keyring, error) {
	k := &Keyring{keys: make([]keyEntry, 0, 1+len(previous))}
	for i, m := range append([]*MasterKey{primary}, previous...) {
		if m == nil || !m.derived {
			return nil, fmt.Errorf("%w (key %d)", ErrNoKey, i)
		}
		for _, e := range k.keys {
			if e.id == m.id {
				return nil, fmt.Errorf("%w: %08x", ErrDuplicateKeyID, m.id)
			}
		}
		block, err := aes.NewCipher(m.enc[:])
		if err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		k.keys = append(k.keys, keyEntry{id: m.id, aead: gcm, key: m})
	}
	return k, nil
}

// KeyringFromSecrets parses the current master secret and any previous ones
// with [ParseSecret], derives their keys with [DeriveKeys] and returns a
// keyring whose primary is the current secret's key. Errors say which secret
// (current, or previous by position) failed, never what it was.
func KeyringFromSecrets(current string, previous ...string) (*Keyring, error) {
	keys := make([]*MasterKey, 0, 1+len(previous))
	for i, s := range append([]string{current}, previous...) {
		name := "current secret"
		if i > 0 {
			name = fmt.Sprintf("previous secret %d", i)
		}
		b, err := ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, name)
		}
		m, err := DeriveKeys(b)
		clear(b)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, name)
		}
		keys = append(keys, m)
	}
	return NewKeyring(keys[0], keys[1:]...)
}

// Seal encrypts and authenticates plaintext and authenticates ad and the
// header under the primary key with a fresh random nonce. It returns
//
//	Version | key id (4, big endian) | nonce (12) | ciphertext | tag (16)
//
// in one allocation. The same ad must be given to [Keyring.Open].
func (k *Keyring) Seal(plaintext, ad []byte) ([]byte, error) {
	if len(k.keys) == 0 {
		return nil, ErrNoKey
	}
	p := &k.keys[0]
	n := HeaderSize + NonceSize
	size := n + len(plaintext) + TagSize
	// One allocation holds the ciphertext and, past its end, the
	// authenticated data header||ad; the returned slice's capacity is capped
	// so the scratch part is unreachable.
	buf := make([]byte, size+HeaderSize+len(ad))
	buf[0] = Version
	binary.BigEndian.PutUint32(buf[1:HeaderSize], p.id)
	nonce := buf[HeaderSize:n]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encrypt: reading nonce: %w", err)
	}
	fullAD := buf[size:]
	copy(fullAD, buf[:HeaderSize])
	copy(fullAD[HeaderSize:], ad)
	p.aead.Seal(buf[:n], nonce, plaintext, fullAD) //nolint:gosec // G407 false positive: nonce comes from crypto/rand above
	return buf[:size:size], nil
}

// Open authenticates ciphertext and ad and returns the plaintext in a new
// slice. It returns an error wrapping [ErrMalformed] for an empty, truncated
// or unknown-version ciphertext, [ErrUnknownKey] when the key id is not in
// the keyring, and [ErrAuth] when authentication fails.
func (k *Keyring) Open(ciphertext, ad []byte) ([]byte, error) {
	e, err := k.entryFor(ciphertext)
	if err != nil {
		return nil, err
	}
	n := HeaderSize + NonceSize
	ptLen := len(ciphertext) - Overhead
	buf := make([]byte, ptLen+HeaderSize+len(ad))
	fullAD := buf[ptLen:]
	copy(fullAD, ciphertext[:HeaderSize])
	copy(fullAD[HeaderSize:], ad)
	pt, err := e.aead.Open(buf[:0:ptLen], ciphertext[HeaderSize:n], ciphertext[n:], fullAD)
	if err != nil {
		return nil, ErrAuth
	}
	return pt, nil
}

// entryFor checks the header of ciphertext and returns the key that sealed it.
func (k *Keyring) entryFor(ciphertext []byte) (*keyEntry, error) {
	id, err := KeyID(ciphertext)
	if err != nil {
		return nil, err
	}
	for i := range k.keys {
		if k.keys[i].id == id {
			return &k.keys[i], nil
		}
	}
	return nil, fmt.Errorf("%w (key id %08x)", ErrUnknownKey, id)
}

// Encrypt is [Keyring.Seal], under the name the [AEAD] interface uses.
func (k *Keyring) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return k.Seal(plaintext, associatedData)
}

// Decrypt is [Keyring.Open], under the name the [AEAD] interface uses.
func (k *Keyring) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	return k.Open(ciphertext, associatedData)
}

// KeyID returns the id of the key that sealed ciphertext, read from its
// header. It returns an error wrapping [ErrMalformed] if ciphertext is too
// short to be sealed by a [Keyring] or has an unknown version. It does not
// authenticate ciphertext.
func KeyID(ciphertext []byte) (uint32, error) {
	switch {
	case len(ciphertext) == 0:
		return 0, fmt.Errorf("%w: empty", ErrMalformed)
	case ciphertext[0] != Version:
		return 0, fmt.Errorf("%w: unknown version %d", ErrMalformed, ciphertext[0])
	case len(ciphertext) < Overhead:
		return 0, fmt.Errorf("%w: %d bytes, shorter than the %d-byte minimum", ErrMalformed, len(ciphertext), Overhead)
	}
	return binary.BigEndian.Uint32(ciphertext[1:HeaderSize]), nil
}

// NeedsRewrap reports whether ciphertext is well formed and was sealed under
// a key other than the primary, so [Keyring.Rewrap] should seal it again.
func (k *Keyring) NeedsRewrap(ciphertext []byte) bool {
	id, err := KeyID(ciphertext)
	return err == nil && len(k.keys) > 0 && id != k.keys[0].id
}

// Rewrap opens ciphertext with whichever key sealed it and seals the
// plaintext again under the primary key with a fresh nonce and the same ad.
// It returns the errors of [Keyring.Open]. The intermediate plaintext is
// cleared before Rewrap returns.
func (k *Keyring) Rewrap(ciphertext, ad []byte) ([]byte, error) {
	pt, err := k.Open(ciphertext, ad)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return k.Seal(pt, ad)
}

// PrimaryID returns the key id of the primary key, the one Seal uses.
// It is 0 for a zero Keyring.
func (k *Keyring) PrimaryID() uint32 {
	if len(k.keys) == 0 {
		return 0
	}
	return k.keys[0].id
}

// Primary returns the primary key, or nil for a zero Keyring.
func (k *Keyring) Primary() *MasterKey {
	if len(k.keys) == 0 {
		return nil
	}
	return k.keys[0].key
}

// SessionKeyPairs returns the session keys in the form
// gorilla/securecookie.CodecsFromPairs takes: the primary's authentication
// and encryption keys, then those of each previous key in order, so cookies
// signed before a rotation still verify. The slices are fresh copies.
func (k *Keyring) SessionKeyPairs() [][]byte {
	pairs := make([][]byte, 0, 2*len(k.keys))
	for _, e := range k.keys {
		auth, enc := e.key.SessionKeys()
		pairs = append(pairs, auth, enc)
	}
	return pairs
}

// Fingerprint returns a short identifier of key for logs and audit records:
// the first 8 bytes of HMAC-SHA256 of key under the primary's fingerprint
// subkey, as 16 lowercase hex digits. Without the master secret it cannot be
// computed or reversed; it changes when the primary key changes. A zero
// Keyring returns "".
func (k *Keyring) Fingerprint(key string) string {
	if len(k.keys) == 0 {
		return ""
	}
	mac := hmac.New(sha256.New, k.keys[0].key.fingerprint[:])
	mac.Write([]byte(key))
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0])[:8])
}

// String describes k by its key ids only.
func (k *Keyring) String() string {
	var b strings.Builder
	b.WriteString("encrypt.Keyring{primary: ")
	for i, e := range k.keys {
		if i == 1 {
			b.WriteString(", previous: ")
		} else if i > 1 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%08x", e.id)
	}
	b.WriteString("}")
	return b.String()
}

// GoString is like String, so %#v does not print the keys.
func (k *Keyring) GoString() string { return k.String() }

// Format writes [Keyring.String] for every verb, so no verb prints the keys.
func (k *Keyring) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue logs k by its key ids only.
func (k *Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }
