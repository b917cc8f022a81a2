package encrypt

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// knownCiphertext is a valid ciphertext under fixedSecret, built with a fixed
// nonce so that every fuzz worker process computes the same set.
type knownCiphertext struct {
	ct, ad, pt []byte
}

func knownCiphertexts(t testing.TB) []knownCiphertext {
	var known []knownCiphertext
	for i, c := range []struct{ pt, ad string }{
		{"", ""},
		{"sk-proj-fuzz0123456789", string(AssociatedData("user-1", "openai"))},
		{strings.Repeat("k", 100), "ad"},
	} {
		nonce := bytes.Repeat([]byte{byte(i + 1)}, NonceSize)
		known = append(known, knownCiphertext{
			ct: sealWithNonce(t, fixedSecret, nonce, []byte(c.pt), []byte(c.ad)),
			ad: []byte(c.ad), pt: []byte(c.pt),
		})
	}
	return known
}

// FuzzOpen checks that Open never panics, fails only with the package's
// typed errors, and opens nothing but ciphertexts that were really sealed.
// The seed corpus is in testdata/fuzz/FuzzOpen.
func FuzzOpen(f *testing.F) {
	k := fixedKeyring(f)
	known := knownCiphertexts(f)
	for _, c := range known {
		f.Add(c.ct, c.ad)
	}
	f.Fuzz(func(t *testing.T, ciphertext, ad []byte) {
		pt, err := k.Open(ciphertext, ad)
		_, idErr := KeyID(ciphertext)
		_ = k.NeedsRewrap(ciphertext)
		if err == nil {
			found := false
			for _, c := range known {
				if bytes.Equal(c.ct, ciphertext) && bytes.Equal(c.ad, ad) {
					found = true
					if !bytes.Equal(c.pt, pt) {
						t.Fatalf("known ciphertext opened to %q, want %q", pt, c.pt)
					}
				}
			}
			if !found {
				t.Fatalf("Open accepted a ciphertext that was never sealed: %x (ad %x)", ciphertext, ad)
			}
			if idErr != nil {
				t.Fatalf("Open succeeded but KeyID failed: %v", idErr)
			}
		} else {
			if pt != nil {
				t.Fatal("Open returned plaintext with an error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrAuth) {
				t.Fatalf("Open returned an untyped error: %v", err)
			}
			if errors.Is(err, ErrMalformed) != (idErr != nil) {
				t.Fatalf("Open error %v disagrees with KeyID error %v", err, idErr)
			}
		}
		// Whatever the input, it seals and opens back, and the result
		// does not open with other associated data.
		ct, err := k.Seal(ciphertext, ad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := k.Open(ct, ad)
		if err != nil || !bytes.Equal(got, ciphertext) {
			t.Fatalf("round trip: Open(Seal(x)) = %x, %v", got, err)
		}
		if _, err := k.Open(ct, append(bytes.Clone(ad), 0)); !errors.Is(err, ErrAuth) {
			t.Fatalf("Open with extended ad = %v, want ErrAuth", err)
		}
	})
}

// FuzzParseSecret checks that ParseSecret never panics, that what it accepts
// is a strong enough secret that re-encodes to itself, and that its errors
// are fixed texts that cannot carry any part of the input.
// The seed corpus is in testdata/fuzz/FuzzParseSecret.
func FuzzParseSecret(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString(fixedSecret))
	f.Add(hex.EncodeToString(fixedSecret))
	allowed := map[string]bool{
		ErrInvalidSecret.Error():                     true,
		ErrWeakSecret.Error():                        true,
		ErrShortSecret.Error() + ": secret is empty": true,
	}
	for n := range MinSecretSize {
		allowed[fmt.Sprintf("%v: got %d bytes, need at least %d", ErrShortSecret, n, MinSecretSize)] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseSecret(s)
		if err != nil {
			if b != nil {
				t.Fatal("ParseSecret returned bytes with an error")
			}
			if !allowed[err.Error()] {
				t.Fatalf("ParseSecret error %q is not one of the fixed texts", err)
			}
			return
		}
		if checkSecret(b) != nil {
			t.Fatalf("ParseSecret accepted a secret checkSecret rejects: %v", checkSecret(b))
		}
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(b),
			base64.RawURLEncoding.EncodeToString(b),
			hex.EncodeToString(b),
		} {
			if len(enc)%2 == 0 && isHex(enc) {
				continue // documented ambiguity: read as hex
			}
			again, err := ParseSecret(enc)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("ParseSecret(re-encoded) = %x, %v; want %x", again, err, b)
			}
		}
		if _, err := DeriveKeys(b); err != nil {
			t.Fatalf("DeriveKeys rejected a parsed secret: %v", err)
		}
	})
}
