package encrypt_test

import (
	"bytes"
	"testing"

	"github.com/ginbyok/byok/encrypt"
)

var benchAD = encrypt.AssociatedData("user-123456", "openai")

func BenchmarkSeal(b *testing.B) {
	k := mustRing(b, 1)
	pt := bytes.Repeat([]byte("k"), 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := k.Seal(pt, benchAD); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := mustRing(b, 1)
	ct, err := k.Seal(bytes.Repeat([]byte("k"), 100), benchAD)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(100)
	for b.Loop() {
		if _, err := k.Open(ct, benchAD); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrap(b *testing.B) {
	old := mustRing(b, 1)
	k := mustRing(b, 2, 1)
	ct, err := old.Seal(bytes.Repeat([]byte("k"), 100), benchAD)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(100)
	for b.Loop() {
		if _, err := k.Rewrap(ct, benchAD); err != nil {
			b.Fatal(err)
		}
	}
}
