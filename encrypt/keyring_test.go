package encrypt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ginbyok/byok/encrypt"
)

// testSecret returns a fixed, distinct, valid master secret for index i.
func testSecret(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "encrypt test secret %d", i))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func mustKey(t testing.TB, i int) *encrypt.MasterKey {
	t.Helper()
	b, err := encrypt.ParseSecret(testSecret(i))
	if err != nil {
		t.Fatal(err)
	}
	m, err := encrypt.DeriveKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustRing(t testing.TB, current int, previous ...int) *encrypt.Keyring {
	t.Helper()
	prev := make([]string, len(previous))
	for i, p := range previous {
		prev[i] = testSecret(p)
	}
	k, err := encrypt.KeyringFromSecrets(testSecret(current), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sentinelKey is a fake provider key; no test output or error may contain it.
const sentinelKey = "sk-proj-SENTINEL0123456789abcdefghijklmnopqrstuvwxyzSENTINEL"

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustRing(t, 1)
	tests := []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty plaintext", nil, encrypt.AssociatedData("u1", "openai")},
		{"api key", []byte(sentinelKey), encrypt.AssociatedData("u1", "openai")},
		{"nil ad", []byte("value"), nil},
		{"long ad", []byte("value"), bytes.Repeat([]byte("a"), 4096)},
		{"large plaintext", bytes.Repeat([]byte{0xab}, 1<<16), []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := k.Seal(tt.plaintext, tt.ad)
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != len(tt.plaintext)+encrypt.Overhead || cap(ct) != len(ct) {
				t.Fatalf("len %d cap %d, want both %d", len(ct), cap(ct), len(tt.plaintext)+encrypt.Overhead)
			}
			if ct[0] != encrypt.Version {
				t.Fatalf("version byte %d", ct[0])
			}
			if id, err := encrypt.KeyID(ct); err != nil || id != k.PrimaryID() {
				t.Fatalf("KeyID = %08x, %v; want %08x", id, err, k.PrimaryID())
			}
			if len(tt.plaintext) > 0 && bytes.Contains(ct, tt.plaintext) {
				t.Fatal("ciphertext contains the plaintext")
			}
			got, err := k.Open(ct, tt.ad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Open = %q, want %q", got, tt.plaintext)
			}
			// The AEAD names give the same results.
			ct2, err := k.Encrypt(tt.plaintext, tt.ad)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(ct, ct2) {
				t.Fatal("two seals gave the same ciphertext: nonce reused")
			}
			if got, err := k.Decrypt(ct2, tt.ad); err != nil || !bytes.Equal(got, tt.plaintext) {
				t.Fatalf("Decrypt = %q, %v", got, err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	k := mustRing(t, 1)
	other := mustRing(t, 2)
	ad := encrypt.AssociatedData("user-1", "openai")
	ct, err := k.Seal([]byte(sentinelKey), ad)
	if err != nil {
		t.Fatal(err)
	}
	otherCT, err := other.Seal([]byte(sentinelKey), ad)
	if err != nil {
		t.Fatal(err)
	}
	badVersion := bytes.Clone(ct)
	badVersion[0] = 2
	tests := []struct {
		name string
		ct   []byte
		ad   []byte
		want error
	}{
		{"nil", nil, ad, encrypt.ErrMalformed},
		{"empty", []byte{}, ad, encrypt.ErrMalformed},
		{"version only", []byte{encrypt.Version}, ad, encrypt.ErrMalformed},
		{"header only", ct[:encrypt.HeaderSize], ad, encrypt.ErrMalformed},
		{"one short of minimum", ct[:encrypt.Overhead-1], ad, encrypt.ErrMalformed},
		{"truncated tag", ct[:len(ct)-1], ad, encrypt.ErrAuth},
		{"minimum length, wrong tag", ct[:encrypt.Overhead], ad, encrypt.ErrAuth},
		{"unknown version", badVersion, ad, encrypt.ErrMalformed},
		{"wrong key", otherCT, ad, encrypt.ErrUnknownKey},
		{"wrong owner", ct, encrypt.AssociatedData("user-2", "openai"), encrypt.ErrAuth},
		{"wrong provider", ct, encrypt.AssociatedData("user-1", "anthropic"), encrypt.ErrAuth},
		{"nil ad", ct, nil, encrypt.ErrAuth},
		{"extra byte", append(bytes.Clone(ct), 0), ad, encrypt.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := k.Open(tt.ct, tt.ad)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if pt != nil {
				t.Fatalf("Open returned plaintext %q with error", pt)
			}
			if strings.Contains(err.Error(), sentinelKey) || strings.Contains(err.Error(), "SENTINEL") {
				t.Fatalf("error contains key material: %v", err)
			}
		})
	}
}

func TestEveryByteFlipFails(t *testing.T) {
	// Key 2 is in the ring too, so a flipped key id may name a real key.
	k := mustRing(t, 1, 2)
	ad := encrypt.AssociatedData("user-1", "openai")
	ct, err := k.Seal(bytes.Repeat([]byte("k"), 100), ad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ct {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			t.Run(fmt.Sprintf("byte %d xor %02x", i, mask), func(t *testing.T) {
				bad := bytes.Clone(ct)
				bad[i] ^= mask
				_, err := k.Open(bad, ad)
				var want error
				switch {
				case i == 0:
					want = encrypt.ErrMalformed
				case i < encrypt.HeaderSize:
					want = encrypt.ErrUnknownKey
				default:
					want = encrypt.ErrAuth
				}
				if !errors.Is(err, want) {
					t.Fatalf("Open error = %v, want %v", err, want)
				}
			})
		}
	}
}

func TestEveryBitFlipFails(t *testing.T) {
	k := mustRing(t, 1)
	ad := []byte("ad")
	ct, err := k.Seal([]byte("value"), ad)
	if err != nil {
		t.Fatal(err)
	}
	// The version byte, a key id byte, a nonce byte, a body byte and the last tag byte.
	for _, i := range []int{0, 3, encrypt.HeaderSize + 5, encrypt.HeaderSize + encrypt.NonceSize, len(ct) - 1} {
		for bit := range 8 {
			bad := bytes.Clone(ct)
			bad[i] ^= 1 << bit
			_, err := k.Open(bad, ad)
			if !errors.Is(err, encrypt.ErrMalformed) && !errors.Is(err, encrypt.ErrUnknownKey) && !errors.Is(err, encrypt.ErrAuth) {
				t.Errorf("byte %d bit %d: Open error = %v, want a typed error", i, bit, err)
			}
		}
	}
}

// TestHeaderIsAuthenticated moves a ciphertext body under another key's id
// in the same ring: the id picks the other key, and the header is part of the
// authenticated data, so it must not open.
func TestHeaderIsAuthenticated(t *testing.T) {
	k := mustRing(t, 1, 2)
	prev := mustRing(t, 2)
	ct, err := k.Seal([]byte("value"), nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(ct)
	copy(bad[1:encrypt.HeaderSize], []byte{byte(prev.PrimaryID() >> 24), byte(prev.PrimaryID() >> 16), byte(prev.PrimaryID() >> 8), byte(prev.PrimaryID())})
	if _, err := k.Open(bad, nil); !errors.Is(err, encrypt.ErrAuth) {
		t.Fatalf("Open with swapped key id = %v, want ErrAuth", err)
	}
}

func TestRotation(t *testing.T) {
	old := mustRing(t, 1)
	ad := encrypt.AssociatedData("user-1", "openai")
	ct, err := old.Seal([]byte(sentinelKey), ad)
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustRing(t, 2, 1)
	if rotated.PrimaryID() == old.PrimaryID() {
		t.Fatal("different secrets gave the same key id")
	}
	got, err := rotated.Open(ct, ad)
	if err != nil || string(got) != sentinelKey {
		t.Fatalf("Open under previous key = %q, %v", got, err)
	}
	if !rotated.NeedsRewrap(ct) {
		t.Fatal("NeedsRewrap = false for a value sealed under a previous key")
	}
	if old.NeedsRewrap(ct) {
		t.Fatal("NeedsRewrap = true for a value sealed under the primary")
	}
	re, err := rotated.Rewrap(ct, ad)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := encrypt.KeyID(re); id != rotated.PrimaryID() {
		t.Fatalf("rewrapped key id %08x, want primary %08x", id, rotated.PrimaryID())
	}
	if rotated.NeedsRewrap(re) {
		t.Fatal("NeedsRewrap = true after Rewrap")
	}
	got, err = rotated.Open(re, ad)
	if err != nil || string(got) != sentinelKey {
		t.Fatalf("Open after Rewrap = %q, %v", got, err)
	}
	// The old keyring alone cannot read the rewrapped value.
	if _, err := old.Open(re, ad); !errors.Is(err, encrypt.ErrUnknownKey) {
		t.Fatalf("old keyring Open(rewrapped) = %v, want ErrUnknownKey", err)
	}
	// Rewrap with the wrong ad fails and returns nothing.
	if re, err := rotated.Rewrap(ct, []byte("other")); !errors.Is(err, encrypt.ErrAuth) || re != nil {
		t.Fatalf("Rewrap with wrong ad = %x, %v", re, err)
	}
	// Malformed input never needs a rewrap.
	for _, bad := range [][]byte{nil, {encrypt.Version}, {9, 0, 0, 0, 0}} {
		if rotated.NeedsRewrap(bad) {
			t.Fatalf("NeedsRewrap(%x) = true", bad)
		}
	}
}

func TestNewKeyringErrors(t *testing.T) {
	a, b := mustKey(t, 1), mustKey(t, 2)
	tests := []struct {
		name     string
		primary  *encrypt.MasterKey
		previous []*encrypt.MasterKey
		want     error
	}{
		{"same key twice", a, []*encrypt.MasterKey{a}, encrypt.ErrDuplicateKeyID},
		{"same secret twice", a, []*encrypt.MasterKey{b, mustKey(t, 1)}, encrypt.ErrDuplicateKeyID},
		{"nil primary", nil, nil, encrypt.ErrNoKey},
		{"nil previous", a, []*encrypt.MasterKey{nil}, encrypt.ErrNoKey},
		{"zero key", &encrypt.MasterKey{}, nil, encrypt.ErrNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := encrypt.NewKeyring(tt.primary, tt.previous...)
			if !errors.Is(err, tt.want) || k != nil {
				t.Fatalf("NewKeyring = %v, %v; want %v", k, err, tt.want)
			}
		})
	}
	if _, err := encrypt.KeyringFromSecrets(testSecret(1), testSecret(2), testSecret(1)); !errors.Is(err, encrypt.ErrDuplicateKeyID) {
		t.Fatalf("KeyringFromSecrets with a repeated secret = %v", err)
	}
	_, err := encrypt.KeyringFromSecrets(testSecret(1), "not a secret!")
	if !errors.Is(err, encrypt.ErrInvalidSecret) || !strings.Contains(err.Error(), "previous secret 1") {
		t.Fatalf("KeyringFromSecrets with a bad previous secret = %v", err)
	}
	if strings.Contains(err.Error(), "not a secret") {
		t.Fatalf("error contains the secret: %v", err)
	}
}

func TestZeroKeyring(t *testing.T) {
	var k encrypt.Keyring
	if _, err := k.Seal([]byte("x"), nil); !errors.Is(err, encrypt.ErrNoKey) {
		t.Fatalf("Seal on zero Keyring = %v", err)
	}
	if _, err := k.Open(make([]byte, encrypt.Overhead), nil); err == nil {
		t.Fatal("Open on zero Keyring succeeded")
	}
	if k.NeedsRewrap([]byte{encrypt.Version, 0, 0, 0, 0}) || k.PrimaryID() != 0 || k.Primary() != nil || k.Fingerprint("x") != "" {
		t.Fatal("zero Keyring methods did not return zero values")
	}
}

func TestConcurrentUse(t *testing.T) {
	k := mustRing(t, 1, 2)
	ad := []byte("ad")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				pt := fmt.Appendf(nil, "g%d-%d", g, i)
				ct, err := k.Seal(pt, ad)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := k.Open(ct, ad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open = %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestKeyIDAndFormatting(t *testing.T) {
	k := mustRing(t, 1, 2)
	m := k.Primary()
	if m.ID() != k.PrimaryID() {
		t.Fatal("Primary().ID() != PrimaryID()")
	}
	// The same secret gives the same id on another "replica".
	if mustKey(t, 1).ID() != m.ID() {
		t.Fatal("key id is not deterministic")
	}
	auth, enc := m.SessionKeys()
	for _, v := range []any{m, *m, k, *k} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range [][]byte{auth, enc} {
				if strings.Contains(out, string(secret)) || strings.Contains(out, fmt.Sprintf("%x", secret[:8])) {
					t.Fatalf("%s of %T prints key material: %s", verb, v, out)
				}
			}
		}
	}
	if got := fmt.Sprint(k); !strings.Contains(got, fmt.Sprintf("%08x", k.PrimaryID())) {
		t.Fatalf("Keyring prints %q, want its key ids", got)
	}
}

func TestSessionKeyPairs(t *testing.T) {
	k := mustRing(t, 1, 2, 3)
	pairs := k.SessionKeyPairs()
	if len(pairs) != 6 {
		t.Fatalf("%d keys, want 6", len(pairs))
	}
	seen := map[string]bool{}
	for i, p := range pairs {
		want := 64
		if i%2 == 1 {
			want = 32
		}
		if len(p) != want {
			t.Fatalf("pair key %d has %d bytes, want %d", i, len(p), want)
		}
		if seen[string(p)] {
			t.Fatalf("pair key %d repeats an earlier key", i)
		}
		seen[string(p)] = true
	}
	auth, enc := k.Primary().SessionKeys()
	if !bytes.Equal(pairs[0], auth) || !bytes.Equal(pairs[1], enc) {
		t.Fatal("first pair is not the primary's session keys")
	}
	pairs[0][0] ^= 1 // callers get copies
	if again := k.SessionKeyPairs(); bytes.Equal(again[0], pairs[0]) {
		t.Fatal("SessionKeyPairs returned the keyring's own storage")
	}
}

func TestFingerprint(t *testing.T) {
	k := mustRing(t, 1)
	fp := k.Fingerprint(sentinelKey)
	if len(fp) != 16 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Fatalf("Fingerprint = %q, want 16 hex digits", fp)
	}
	if fp != mustRing(t, 1, 2).Fingerprint(sentinelKey) {
		t.Fatal("same primary gave a different fingerprint")
	}
	if fp == k.Fingerprint(sentinelKey+"x") {
		t.Fatal("different keys gave the same fingerprint")
	}
	if fp == mustRing(t, 2).Fingerprint(sentinelKey) {
		t.Fatal("different secrets gave the same fingerprint")
	}
	plain := sha256.Sum256([]byte(sentinelKey))
	if strings.HasPrefix(fmt.Sprintf("%x", plain), fp) {
		t.Fatal("Fingerprint is a bare hash")
	}
}
