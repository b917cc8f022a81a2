package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ginbyok/byok/stores"
)

func sample() (string, []stores.Record) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	return "u:alice", []stores.Record{
		{Provider: "anthropic", Ciphertext: []byte("ct-1"), KeyID: 1, CreatedAt: t0},
		{Provider: "openai", Ciphertext: []byte("ct-2"), KeyID: 0xFFFFFFFF, CreatedAt: t0,
			UpdatedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour)},
		{Provider: "z", Ciphertext: []byte{0}, CreatedAt: time.Unix(-1, 0).UTC(), ExpiresAt: time.Unix(0, 1000).UTC()},
	}
}

func TestRoundTrip(t *testing.T) {
	owner, recs := sample()
	b, err := Encode(owner, recs)
	if err != nil {
		t.Fatal(err)
	}
	gotOwner, got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if gotOwner != owner || len(got) != len(recs) {
		t.Fatalf("Decode = %q, %d records", gotOwner, len(got))
	}
	for i := range recs {
		w, g := recs[i], got[i]
		if g.Provider != w.Provider || !bytes.Equal(g.Ciphertext, w.Ciphertext) || g.KeyID != w.KeyID ||
			!g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) ||
			g.CreatedAt.Location() != time.UTC {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
	}
	if _, _, err := Decode(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Decode(nil): %v", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	owner, recs := sample()
	for name, rs := range map[string][]stores.Record{
		"unsorted":  {recs[1], recs[0]},
		"duplicate": {recs[0], recs[0]},
		"empty ct":  {{Provider: "a", CreatedAt: time.Now()}},
		"no name":   {{Ciphertext: []byte("x"), CreatedAt: time.Now()}},
	} {
		if _, err := Encode(owner, rs); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Encode(strings.Repeat("o", maxOwner+1), recs); err == nil {
		t.Error("long owner accepted")
	}
}

// TestDecodeEveryTruncation: every proper prefix of a valid entry is
// malformed, and the error never shows entry bytes.
func TestDecodeEveryTruncation(t *testing.T) {
	owner, recs := sample()
	recs[0].Ciphertext = []byte("SENTINEL")
	b, err := Encode(owner, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) {
		_, _, err := Decode(b[:i])
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
		if strings.Contains(err.Error(), "SENTINEL") || strings.Contains(err.Error(), "alice") {
			t.Fatalf("error shows entry contents: %v", err)
		}
	}
	if _, _, err := Decode(append(b, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
}

// TestDecodeRanges: a key id must fit in 32 bits and a ciphertext length
// must stay within maxCiphertext and the bytes left.
func TestDecodeRanges(t *testing.T) {
	entry := func(ctLen, kid uint64, ct []byte) []byte {
		b := []byte{formatV1, 0, 1, 1, 'a'}
		b = binary.AppendUvarint(b, ctLen)
		b = append(b, ct...)
		b = binary.AppendUvarint(b, kid)
		return append(b, 0, 0) // flags, created
	}
	for _, tt := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"largest key id", entry(1, math.MaxUint32, []byte("x")), true},
		{"key id over 32 bits", entry(1, math.MaxUint32+1, []byte("x")), false},
		{"largest key id varint", entry(1, math.MaxUint64, []byte("x")), false},
		{"ciphertext past the end", entry(2, 1, []byte("x")), false},
		{"ciphertext over the limit", entry(maxCiphertext+1, 1, make([]byte, maxCiphertext+1)), false},
		{"ciphertext length over int", entry(math.MaxUint64, 1, []byte("x")), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, recs, err := Decode(tt.b)
			if tt.ok {
				if err != nil || len(recs) != 1 || recs[0].KeyID != math.MaxUint32 {
					t.Fatalf("Decode = %+v, %v", recs, err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode accepted it: %+v, %v", recs, err)
			}
		})
	}
}

// FuzzDecode: Decode never panics; whatever it accepts re-encodes, and the
// re-encoding decodes to the same records.
func FuzzDecode(f *testing.F) {
	owner, recs := sample()
	b, _ := Encode(owner, recs)
	f.Add(b)
	f.Add([]byte{formatV1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		owner, recs, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		again, err := Encode(owner, recs)
		if err != nil {
			t.Fatalf("decoded entry does not re-encode: %v", err)
		}
		owner2, recs2, err := Decode(again)
		if err != nil || owner2 != owner || len(recs2) != len(recs) {
			t.Fatalf("re-encoded entry decodes differently: %v", err)
		}
		for i := range recs {
			a, b := recs[i], recs2[i]
			if a.Provider != b.Provider || !bytes.Equal(a.Ciphertext, b.Ciphertext) || a.KeyID != b.KeyID ||
				!a.CreatedAt.Equal(b.CreatedAt) || !a.UpdatedAt.Equal(b.UpdatedAt) || !a.ExpiresAt.Equal(b.ExpiresAt) {
				t.Fatalf("record %d changed: %+v vs %+v", i, a, b)
			}
		}
	})
}
