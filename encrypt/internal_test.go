package encrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
)

// fixedSecret is the master secret of the known-answer and fuzz tests.
var fixedSecret = func() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}()

func fixedKeyring(t testing.TB) *Keyring {
	t.Helper()
	m, err := DeriveKeys(fixedSecret)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKeyring(m)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealWithNonce builds a ciphertext the way the package documentation
// describes it, independently of Seal, from the raw HKDF output.
func sealWithNonce(t testing.TB, secret, nonce, plaintext, ad []byte) []byte {
	t.Helper()
	key, err := hkdf.Key(sha256.New, secret, nil, "ginbyok v1 aes-256-gcm", 32)
	if err != nil {
		t.Fatal(err)
	}
	idBytes, err := hkdf.Key(sha256.New, secret, nil, "ginbyok v1 key id", 4)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	header := append([]byte{1}, idBytes...)
	out := append(bytes.Clone(header), nonce...)
	return gcm.Seal(out, nonce, plaintext, append(bytes.Clone(header), ad...))
}

// TestFormat checks the documented layout against an independent
// construction: Open accepts it, and Seal's output opens under it.
func TestFormat(t *testing.T) {
	k := fixedKeyring(t)
	nonce := bytes.Repeat([]byte{0x42}, NonceSize)
	pt, ad := []byte("sk-test-0123456789"), []byte("owner|provider")
	ct := sealWithNonce(t, fixedSecret, nonce, pt, ad)
	if got, err := k.Open(ct, ad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open(independent ciphertext) = %q, %v", got, err)
	}
	// Without the header in the AD, the same bytes must not open.
	withoutHeader := bytes.Clone(ct[:HeaderSize+NonceSize])
	withoutHeader = k.keys[0].aead.Seal(withoutHeader, nonce, pt, ad)
	if _, err := k.Open(withoutHeader, ad); !errors.Is(err, ErrAuth) {
		t.Fatalf("Open(header not authenticated) = %v, want ErrAuth", err)
	}
	sealed, err := k.Seal(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint32(sealed[1:5]) != k.PrimaryID() {
		t.Fatal("key id is not big endian at bytes 1..4")
	}
	again := sealWithNonce(t, fixedSecret, sealed[HeaderSize:HeaderSize+NonceSize], pt, ad)
	if !bytes.Equal(again, sealed) {
		t.Fatalf("Seal output differs from the documented construction")
	}
}

func TestSubkeysDistinct(t *testing.T) {
	m, err := DeriveKeys(fixedSecret)
	if err != nil {
		t.Fatal(err)
	}
	var id [4]byte
	binary.BigEndian.PutUint32(id[:], m.id)
	keys := map[string][]byte{
		"key id":       id[:],
		"aes-256-gcm":  m.enc[:],
		"fingerprint":  m.fingerprint[:],
		"session auth": m.sessionAuth[:],
		"session enc":  m.sessionEnc[:],
		"secret":       fixedSecret,
	}
	for a, ka := range keys {
		if bytes.Equal(ka, make([]byte, len(ka))) {
			t.Errorf("%s key is all zero", a)
		}
		for b, kb := range keys {
			if a == b {
				continue
			}
			n := min(len(ka), len(kb))
			if bytes.Equal(ka[:n], kb[:n]) {
				t.Errorf("%s and %s keys share their first %d bytes", a, b, n)
			}
		}
	}
	// Session auth (64 bytes) must not be the concatenation of other keys.
	if bytes.Equal(m.sessionAuth[32:], m.sessionEnc[:]) || bytes.Equal(m.sessionAuth[32:], m.enc[:]) {
		t.Error("session auth key overlaps another key")
	}
}
