package encrypt

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
)

// MinSecretSize is the minimum length in bytes of a master secret.
const MinSecretSize = 32

// minDistinctBytes is the number of distinct byte values below which a
// secret is rejected as weak. A uniformly random 32-byte secret has fewer
// than 8 distinct values with probability below 2^-150.
const minDistinctBytes = 8

// HKDF info labels, one per derived key. Changing one changes every key.
const (
	infoKeyID       = "ginbyok v1 key id"
	infoAESGCM      = "ginbyok v1 aes-256-gcm"
	infoFingerprint = "ginbyok v1 fingerprint"
	infoSessionAuth = "ginbyok v1 session auth"
	infoSessionEnc  = "ginbyok v1 session enc"
)

// Sizes of the derived keys.
const (
	encKeySize         = 32 // AES-256
	fingerprintKeySize = 32 // HMAC-SHA256
	sessionAuthSize    = 64 // HMAC-SHA256 for gorilla/securecookie
	sessionEncSize     = 32 // AES-256 for gorilla/securecookie
)

// GenerateSecret returns a new master secret: [MinSecretSize] bytes from
// crypto/rand, encoded as padded standard base64 (44 characters), the form
// [ParseSecret] reads.
func GenerateSecret() (string, error) {
	b := make([]byte, MinSecretSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("encrypt: reading random bytes: %w", err)
	}
	s := base64.StdEncoding.EncodeToString(b)
	clear(b)
	return s, nil
}

// ParseSecret decodes a master secret written as hexadecimal or as base64
// (standard or URL alphabet, padded or not), after trimming surrounding white
// space. A string made only of an even number of hexadecimal digits is read
// as hex; anything else as base64.
//
// It returns an error wrapping [ErrInvalidSecret] when s is neither encoding,
// [ErrShortSecret] when it decodes to fewer than [MinSecretSize] bytes and
// [ErrWeakSecret] when the bytes are plainly not random. Errors never contain
// any part of s.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: secret is empty", ErrShortSecret)
	}
	b, ok := decodeSecret(s)
	if !ok {
		return nil, ErrInvalidSecret
	}
	if err := checkSecret(b); err != nil {
		clear(b)
		return nil, err
	}
	return b, nil
}

func decodeSecret(s string) ([]byte, bool) {
	if len(s)%2 == 0 && isHex(s) {
		b, err := hex.DecodeString(s)
		return b, err == nil
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// checkSecret reports whether b is long enough and not obviously non-random.
func checkSecret(b []byte) error {
	if len(b) < MinSecretSize {
		return fmt.Errorf("%w: got %d bytes, need at least %d", ErrShortSecret, len(b), MinSecretSize)
	}
	var seen [256]bool
	distinct := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	if distinct < minDistinctBytes {
		return ErrWeakSecret
	}
	return nil
}

// A MasterKey holds the keys derived from one master secret. It does not keep
// the secret. Create one with [DeriveKeys]; the zero value is not usable.
// A MasterKey is safe for concurrent use and formats without its keys.
type MasterKey struct {
	id          uint32
	enc         [encKeySize]byte
	fingerprint [fingerprintKeySize]byte
	sessionAuth [sessionAuthSize]byte
	sessionEnc  [sessionEncSize]byte
	derived     bool
}

// DeriveKeys derives a [MasterKey] from a master secret with HKDF-SHA256,
// using a distinct info label for each subkey, so that the key id, the
// encryption key, the fingerprint key and the session keys are independent.
// The same secret always gives the same keys.
//
// The secret must be at least [MinSecretSize] bytes ([ErrShortSecret]) and
// not plainly non-random, such as a run of one byte ([ErrWeakSecret]).
func DeriveKeys(secret []byte) (*MasterKey, error) {
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	m := &MasterKey{derived: true}
	id, err := hkdf.Key(sha256.New, secret, nil, infoKeyID, 4)
	if err != nil {
		return nil, fmt.Errorf("encrypt: deriving key id: %w", err)
	}
	m.id = binary.BigEndian.Uint32(id)
	for _, d := range []struct {
		info string
		dst  []byte
	}{
		{infoAESGCM, m.enc[:]},
		{infoFingerprint, m.fingerprint[:]},
		{infoSessionAuth, m.sessionAuth[:]},
		{infoSessionEnc, m.sessionEnc[:]},
	} {
		k, err := hkdf.Key(sha256.New, secret, nil, d.info, len(d.dst))
		if err != nil {
			return nil, fmt.Errorf("encrypt: deriving %s key: %w", d.info, err)
		}
		copy(d.dst, k)
		clear(k)
	}
	return m, nil
}

// ID returns the key id, derived from the secret, that marks every
// ciphertext sealed under this key. Replicas with the same secret agree on it.
func (m *MasterKey) ID() uint32 { return m.id }

// SessionKeys returns fresh copies of the session keys: a 64-byte HMAC key
// for signing and a 32-byte AES key for encrypting cookies and session ids,
// in the order gorilla/securecookie takes them.
func (m *MasterKey) SessionKeys() (auth, enc []byte) {
	return append([]byte(nil), m.sessionAuth[:]...), append([]byte(nil), m.sessionEnc[:]...)
}

// String returns a description of m that names its key id only.
func (m MasterKey) String() string { return fmt.Sprintf("encrypt.MasterKey{id: %08x}", m.id) }

// GoString is like String, so %#v does not print the keys.
func (m MasterKey) GoString() string { return m.String() }

// Format writes [MasterKey.String] for every verb, so no verb prints the keys.
func (m MasterKey) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(m.String())) }

// LogValue logs m as its key id only.
func (m MasterKey) LogValue() slog.Value { return slog.StringValue(m.String()) }
