package hybrid

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ginbyok/byok/stores"
)

func sampleEntry() cacheEntry {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)
	return cacheEntry{
		epoch:  "0123456789abcdef",
		filled: t0,
		owner:  "u:alice",
		recs: []stores.Record{
			{Provider: "anthropic", Ciphertext: []byte{1, 2, 3}, KeyID: 7, CreatedAt: t0, UpdatedAt: t0.Add(time.Second)},
			{Provider: "openai", Ciphertext: bytes.Repeat([]byte{9}, 80), KeyID: 1 << 31, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		},
	}
}

func TestCacheRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    cacheEntry
	}{
		{"two records", sampleEntry()},
		{"no records", cacheEntry{epoch: "e", filled: time.Unix(0, 0).UTC(), owner: "u:bob"}},
		{"long epoch", cacheEntry{epoch: strings.Repeat("x", maxEpoch), filled: time.Unix(1, 0).UTC(), owner: "u:c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeCache(tc.e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeCache(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.epoch != tc.e.epoch || !got.filled.Equal(tc.e.filled) || got.owner != tc.e.owner || len(got.recs) != len(tc.e.recs) {
				t.Fatalf("decoded %+v, want %+v", got, tc.e)
			}
			for i, r := range got.recs {
				w := tc.e.recs[i]
				if r.Provider != w.Provider || !bytes.Equal(r.Ciphertext, w.Ciphertext) || r.KeyID != w.KeyID ||
					!r.CreatedAt.Equal(w.CreatedAt) || !r.UpdatedAt.Equal(w.UpdatedAt) || !r.ExpiresAt.Equal(w.ExpiresAt) {
					t.Errorf("record %d = %+v, want %+v", i, r, w)
				}
			}
		})
	}
}

// TestCacheCompact keeps the cache within ~100 bytes per record beyond the
// ciphertext, as the issue asks of session storage.
func TestCacheCompact(t *testing.T) {
	e := sampleEntry()
	b, err := encodeCache(e)
	if err != nil {
		t.Fatal(err)
	}
	overhead := len(b) - len(e.recs[0].Ciphertext) - len(e.recs[1].Ciphertext)
	if overhead > 100*len(e.recs) {
		t.Errorf("cache overhead %d bytes for %d records", overhead, len(e.recs))
	}
	t.Logf("cache entry: %d bytes, %d beyond the ciphertexts, for %d records", len(b), overhead, len(e.recs))
}

func TestCacheRejects(t *testing.T) {
	good, err := encodeCache(sampleEntry())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad version", append([]byte{2}, good[1:]...)},
		{"zero epoch", []byte{1, 0}},
		{"epoch too long", append([]byte{1, maxEpoch + 1}, bytes.Repeat([]byte{'x'}, maxEpoch+1)...)},
		{"truncated epoch", good[:5]},
		{"truncated time", good[:1+1+16]},
		{"truncated records", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeCache(tc.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decodeCache = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := encodeCache(cacheEntry{owner: "u:x"}); err == nil {
		t.Error("encodeCache with an empty epoch succeeded")
	}
}

// FuzzDecodeCache: decoding never panics, errors wrap ErrMalformed, and
// whatever decodes re-encodes to an entry that decodes to the same thing
// (the record part tolerates non-minimal varints, so bytes may shrink once).
func FuzzDecodeCache(f *testing.F) {
	good, err := encodeCache(sampleEntry())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{1, 1, 'e', 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeCache(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again, err := encodeCache(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := decodeCache(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		third, err := encodeCache(e2)
		if err != nil || !bytes.Equal(third, again) || len(again) > len(b) {
			t.Fatalf("encoding not stable: %x -> %x -> %x (%v)", b, again, third, err)
		}
		if e2.epoch != e.epoch || !e2.filled.Equal(e.filled) || e2.owner != e.owner || len(e2.recs) != len(e.recs) {
			t.Fatalf("round trip changed the entry")
		}
	})
}
