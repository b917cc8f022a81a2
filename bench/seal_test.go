package bench_test

import (
	"testing"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
)

// BenchmarkSealOpen seals and opens a 164-character API key the way the
// plugin does on every store and every guarded request: through the AEAD
// interface of a keyring derived from a master secret, with the associated
// data (label, owner, provider) built for each call. encrypt's own
// BenchmarkSeal and BenchmarkOpen measure the keyring alone on a 100-byte
// value.
//
// Run: go test -run '^$' -bench SealOpen -benchmem ./bench
func BenchmarkSealOpen(b *testing.B) {
	ring, err := encrypt.KeyringFromSecrets(newSecret(b))
	if err != nil {
		b.Fatal(err)
	}
	var aead encrypt.AEAD = ring
	owner := stores.Scope{UserID: "user-123456"}.Owner()
	key := []byte(apiKey)
	ct, err := aead.Encrypt(key, encrypt.AssociatedData(owner, provider))
	if err != nil {
		b.Fatal(err)
	}

	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(key)))
		for b.Loop() {
			if _, err := aead.Encrypt(key, encrypt.AssociatedData(owner, provider)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(key)))
		for b.Loop() {
			pt, err := aead.Decrypt(ct, encrypt.AssociatedData(owner, provider))
			if err != nil || len(pt) != len(key) {
				b.Fatal("open failed", err)
			}
		}
	})
}
