package redisstore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"sync"
)

// The cookie holds "<id>.<mac>": id is 32 random bytes and mac is
// HMAC-SHA256(k, name || 0x00 || id), both unpadded base64url (43 characters
// each). k is derived from a caller's authentication key with a fixed label,
// so the same key pair can also serve gorilla/securecookie elsewhere without
// one format ever validating as the other. The id is random and secret-free,
// so it is signed, not encrypted: there is nothing in it to hide, and
// verifying it costs one HMAC instead of securecookie's
// base64+HMAC+timestamp+AES+gob.

const (
	idBytes     = 32
	idLen       = 43 // base64.RawURLEncoding.EncodedLen(idBytes)
	macLen      = 43 // base64.RawURLEncoding.EncodedLen(sha256.Size)
	cookieLen   = idLen + 1 + macLen
	minKeyBytes = 32
	keyLabel    = "byok/redisstore/session-id-mac/v1"
)

var b64 = base64.RawURLEncoding

// signer computes MACs under one derived key. Hash states are pooled:
// hmac.New allocates two SHA-256 states and precomputes the padded keys.
type signer struct {
	pool sync.Pool // of *macState
}

type macState struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newSigner(authKey []byte) *signer {
	kdf := hmac.New(sha256.New, authKey)
	kdf.Write([]byte(keyLabel))
	key := kdf.Sum(nil)
	s := &signer{}
	s.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 128)}
	}
	return s
}

// newSigners derives one signer per key pair's authentication key; the
// first signs, all verify. Encryption keys (odd positions) are not used.
func newSigners(keyPairs [][]byte) ([]*signer, error) {
	if len(keyPairs) == 0 {
		return nil, ErrNoKeys
	}
	var out []*signer
	for i := 0; i < len(keyPairs); i += 2 {
		if len(keyPairs[i]) < minKeyBytes {
			// The error names the position, never the key.
			return nil, fmt.Errorf("%w: key pair %d: authentication key has %d bytes, want at least %d",
				ErrShortKey, i/2, len(keyPairs[i]), minKeyBytes)
		}
		out = append(out, newSigner(keyPairs[i]))
	}
	return out, nil
}

// mac writes base64url(HMAC(name || 0 || id)) into dst.
func (s *signer) mac(dst *[macLen]byte, name, id string) {
	st := s.pool.Get().(*macState)
	st.h.Reset()
	st.buf = append(append(append(st.buf[:0], name...), 0), id...)
	st.h.Write(st.buf)
	sum := st.h.Sum(st.sum[:0])
	b64.Encode(dst[:], sum)
	s.pool.Put(st)
}

// signCookie returns the cookie value for a session id.
func signCookie(s *signer, name, id string) string {
	var m [macLen]byte
	s.mac(&m, name, id)
	b := make([]byte, 0, cookieLen)
	b = append(b, id...)
	b = append(b, '.')
	b = append(b, m[:]...)
	return string(b)
}

// verifyCookie returns the session id a cookie value carries if any signer
// vouches for it. The comparison is constant-time.
func verifyCookie(signers []*signer, name, value string) (string, bool) {
	if len(value) != cookieLen || value[idLen] != '.' {
		return "", false
	}
	id, got := value[:idLen], value[idLen+1:]
	var want [macLen]byte
	for _, s := range signers {
		s.mac(&want, name, id)
		var diff byte
		for i := range macLen {
			diff |= want[i] ^ got[i]
		}
		if subtle.ConstantTimeByteEq(diff, 0) == 1 {
			return id, true
		}
	}
	return "", false
}

// newID returns 32 bytes from crypto/rand, base64url encoded.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program rather than return short)
	return b64.EncodeToString(b[:])
}
