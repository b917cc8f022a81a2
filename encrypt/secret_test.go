package encrypt_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/ginbyok/byok/encrypt"
)

func TestParseSecret(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i*37 + 11)
	}
	long := append(bytes.Clone(raw), raw...)
	short := raw[:31]
	tests := []struct {
		name string
		in   string
		want []byte
		err  error
	}{
		{"std padded", base64.StdEncoding.EncodeToString(raw), raw, nil},
		{"std raw", base64.RawStdEncoding.EncodeToString(raw), raw, nil},
		{"url padded", base64.URLEncoding.EncodeToString(raw), raw, nil},
		{"url raw", base64.RawURLEncoding.EncodeToString(raw), raw, nil},
		{"hex lower", hex.EncodeToString(raw), raw, nil},
		{"hex upper", strings.ToUpper(hex.EncodeToString(raw)), raw, nil},
		{"surrounding space", " \t" + base64.StdEncoding.EncodeToString(raw) + "\n", raw, nil},
		{"64 bytes", base64.StdEncoding.EncodeToString(long), long, nil},
		{"empty", "", nil, encrypt.ErrShortSecret},
		{"blank", "  \n", nil, encrypt.ErrShortSecret},
		{"31 bytes base64", base64.StdEncoding.EncodeToString(short), nil, encrypt.ErrShortSecret},
		{"31 bytes hex", hex.EncodeToString(short), nil, encrypt.ErrShortSecret},
		{"all zero", hex.EncodeToString(make([]byte, 32)), nil, encrypt.ErrWeakSecret},
		{"all one byte", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 48)), nil, encrypt.ErrWeakSecret},
		{"short pattern", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("abc"), 16)), nil, encrypt.ErrWeakSecret},
		{"not base64", "this is not a secret!", nil, encrypt.ErrInvalidSecret},
		{"bad padding", base64.StdEncoding.EncodeToString(raw) + "=", nil, encrypt.ErrInvalidSecret},
		{"inner space", base64.StdEncoding.EncodeToString(raw)[:20] + " " + base64.StdEncoding.EncodeToString(raw)[20:], nil, encrypt.ErrInvalidSecret},
		{"mixed alphabets", "+" + base64.RawURLEncoding.EncodeToString(raw)[1:42] + "_", nil, encrypt.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encrypt.ParseSecret(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("ParseSecret error = %v, want %v", err, tt.err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("ParseSecret = %x, want %x", got, tt.want)
			}
			if err != nil && len(strings.TrimSpace(tt.in)) > 0 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Fatalf("error contains the secret: %v", err)
			}
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		s, err := encrypt.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 44 || seen[s] {
			t.Fatalf("GenerateSecret = %d chars, repeated %v", len(s), seen[s])
		}
		seen[s] = true
		b, err := encrypt.ParseSecret(s)
		if err != nil || len(b) != encrypt.MinSecretSize {
			t.Fatalf("ParseSecret(GenerateSecret()) = %d bytes, %v", len(b), err)
		}
		if _, err := encrypt.KeyringFromSecrets(s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeriveKeys(t *testing.T) {
	secret, _ := encrypt.ParseSecret(testSecret(1))
	tests := []struct {
		name   string
		secret []byte
		err    error
	}{
		{"valid", secret, nil},
		{"nil", nil, encrypt.ErrShortSecret},
		{"31 bytes", secret[:31], encrypt.ErrShortSecret},
		{"zeros", make([]byte, 32), encrypt.ErrWeakSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := encrypt.DeriveKeys(tt.secret)
			if !errors.Is(err, tt.err) || (err == nil) != (m != nil) {
				t.Fatalf("DeriveKeys = %v, %v; want error %v", m, err, tt.err)
			}
		})
	}
	a, _ := encrypt.DeriveKeys(secret)
	b, _ := encrypt.DeriveKeys(secret)
	aAuth, aEnc := a.SessionKeys()
	bAuth, bEnc := b.SessionKeys()
	if a.ID() != b.ID() || !bytes.Equal(aAuth, bAuth) || !bytes.Equal(aEnc, bEnc) {
		t.Fatal("DeriveKeys is not deterministic")
	}
	if len(aAuth) != 64 || len(aEnc) != 32 {
		t.Fatalf("session keys of %d and %d bytes, want 64 and 32", len(aAuth), len(aEnc))
	}
}

func TestAssociatedData(t *testing.T) {
	tests := []struct{ a, b [2]string }{
		{[2]string{"ab", "c"}, [2]string{"a", "bc"}},
		{[2]string{"", "ab"}, [2]string{"ab", ""}},
		{[2]string{"u1", "openai"}, [2]string{"u2", "openai"}},
		{[2]string{"u1", "openai"}, [2]string{"u1", "anthropic"}},
		{[2]string{"user:1", ""}, [2]string{"user", ":1"}},
	}
	for _, tt := range tests {
		t.Run(tt.a[0]+"|"+tt.a[1]+" vs "+tt.b[0]+"|"+tt.b[1], func(t *testing.T) {
			x := encrypt.AssociatedData(tt.a[0], tt.a[1])
			y := encrypt.AssociatedData(tt.b[0], tt.b[1])
			if bytes.Equal(x, y) {
				t.Fatalf("AssociatedData%q == AssociatedData%q", tt.a, tt.b)
			}
			if !bytes.HasPrefix(x, []byte("ginbyok/key/v1")) {
				t.Fatalf("AssociatedData%q = %q lacks the label", tt.a, x)
			}
			if !bytes.Equal(x, encrypt.AssociatedData(tt.a[0], tt.a[1])) {
				t.Fatal("AssociatedData is not deterministic")
			}
		})
	}
	// A value sealed for one owner does not open for another.
	k := mustRing(t, 1)
	ct, _ := k.Seal([]byte(sentinelKey), encrypt.AssociatedData("ab", "c"))
	if _, err := k.Open(ct, encrypt.AssociatedData("a", "bc")); !errors.Is(err, encrypt.ErrAuth) {
		t.Fatalf("Open with shifted owner/provider = %v, want ErrAuth", err)
	}
}

func TestCheckValue(t *testing.T) {
	right := mustRing(t, 1)
	cv, err := encrypt.NewCheckValue(right)
	if err != nil {
		t.Fatal(err)
	}
	tamperedCV := bytes.Clone(cv)
	tamperedCV[len(tamperedCV)-1] ^= 1
	// A check value holding another plaintext, sealed with the check AD by hand
	// through a wrapper that rewrites the plaintext.
	otherPT, err := encrypt.NewCheckValue(plaintextSwap{right})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		a     encrypt.AEAD
		cv    []byte
		also  error
		wrong bool
	}{
		{"right secret", right, cv, nil, false},
		{"rotated ring still verifies", mustRing(t, 2, 1), cv, nil, false},
		{"wrong secret", mustRing(t, 2), cv, encrypt.ErrUnknownKey, true},
		{"same id, wrong key", sameIDOtherKey{right, mustRing(t, 2)}, cv, encrypt.ErrAuth, true},
		{"tampered", right, tamperedCV, encrypt.ErrAuth, true},
		{"empty", right, nil, encrypt.ErrMalformed, true},
		{"unexpected plaintext", right, otherPT, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := encrypt.VerifyCheckValue(tt.a, tt.cv)
			if tt.wrong != errors.Is(err, encrypt.ErrWrongSecret) {
				t.Fatalf("VerifyCheckValue = %v, want ErrWrongSecret: %v", err, tt.wrong)
			}
			if !tt.wrong && err != nil {
				t.Fatal(err)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("VerifyCheckValue = %v, want it to wrap %v too", err, tt.also)
			}
		})
	}
}

// plaintextSwap seals a different plaintext than asked, with the same AD.
type plaintextSwap struct{ *encrypt.Keyring }

func (p plaintextSwap) Encrypt(_, ad []byte) ([]byte, error) {
	return p.Keyring.Encrypt([]byte("some other plaintext"), ad)
}

// sameIDOtherKey opens with key b but presents the ciphertext as if b had
// sealed it, so the failure is the tag check, not the key id.
type sameIDOtherKey struct{ a, b *encrypt.Keyring }

func (s sameIDOtherKey) Encrypt(pt, ad []byte) ([]byte, error) { return s.b.Encrypt(pt, ad) }
func (s sameIDOtherKey) Decrypt(ct, ad []byte) ([]byte, error) {
	if len(ct) >= encrypt.HeaderSize {
		ct = bytes.Clone(ct)
		id := s.b.PrimaryID()
		ct[1], ct[2], ct[3], ct[4] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
	}
	return s.b.Decrypt(ct, ad)
}
