package session

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/ginbyok/byok/stores"
)

// Entry format, version 1 (all varints are encoding/binary's):
//
//	version   1 byte, 0x01
//	owner     uvarint length, bytes
//	count     uvarint
//	count records, sorted by provider, no duplicates:
//	  provider    uvarint length, bytes (1..64, UTF-8)
//	  ciphertext  uvarint length, bytes (1..65536)
//	  key id      uvarint (<= 2^32-1)
//	  flags       1 byte: bit 0 updated present, bit 1 expires present
//	  created     varint unix microseconds
//	  updated     varint unix microseconds, if flagged
//	  expires     varint unix microseconds, if flagged
//
// A record costs its ciphertext plus at most 1+64+3+5+1+30 bytes, and 10 to
// 20 plus the provider's length in practice.
const (
	formatV1      = 1
	maxProvider   = 64
	maxCiphertext = 1 << 16
	maxOwner      = 1024
	minRecord     = 1 + 1 + 1 + 1 + 1 + 1 + 1 // lengths, one byte each of provider and ciphertext, key id, flags, created

	flagUpdated = 1 << 0
	flagExpires = 1 << 1
)

// Encode returns the session entry for owner's records. recs must be valid
// (stores.Record.Validate), sorted by provider and without duplicates;
// UserID is not stored (the owner is). Times are kept to the microsecond.
func Encode(owner string, recs []stores.Record) ([]byte, error) {
	if len(owner) > maxOwner {
		return nil, fmt.Errorf("%w: owner longer than %d bytes", stores.ErrInvalidRecord, maxOwner)
	}
	n := 1 + binary.MaxVarintLen64*2 + len(owner)
	for _, r := range recs {
		n += len(r.Provider) + len(r.Ciphertext) + 6*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = append(b, formatV1)
	b = binary.AppendUvarint(b, uint64(len(owner)))
	b = append(b, owner...)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for i, r := range recs {
		switch {
		case r.Provider == "" || len(r.Provider) > maxProvider || !utf8.ValidString(r.Provider):
			return nil, fmt.Errorf("%w: provider must be 1 to %d bytes of UTF-8", stores.ErrInvalidRecord, maxProvider)
		case len(r.Ciphertext) == 0 || len(r.Ciphertext) > maxCiphertext:
			return nil, fmt.Errorf("%w: ciphertext must be 1 to %d bytes", stores.ErrInvalidRecord, maxCiphertext)
		case i > 0 && recs[i-1].Provider >= r.Provider:
			return nil, fmt.Errorf("%w: records not sorted by provider or duplicated", stores.ErrInvalidRecord)
		}
		b = binary.AppendUvarint(b, uint64(len(r.Provider)))
		b = append(b, r.Provider...)
		b = binary.AppendUvarint(b, uint64(len(r.Ciphertext)))
		b = append(b, r.Ciphertext...)
		b = binary.AppendUvarint(b, uint64(r.KeyID))
		var flags byte
		if !r.UpdatedAt.IsZero() {
			flags |= flagUpdated
		}
		if !r.ExpiresAt.IsZero() {
			flags |= flagExpires
		}
		b = append(b, flags)
		b = binary.AppendVarint(b, r.CreatedAt.UnixMicro())
		if flags&flagUpdated != 0 {
			b = binary.AppendVarint(b, r.UpdatedAt.UnixMicro())
		}
		if flags&flagExpires != 0 {
			b = binary.AppendVarint(b, r.ExpiresAt.UnixMicro())
		}
	}
	return b, nil
}

// Decode parses a session entry made by Encode. Any error wraps
// ErrMalformed and says at which byte offset parsing failed; it never
// includes the entry's contents. Records have no UserID and UTC times.
func Decode(b []byte) (owner string, recs []stores.Record, err error) {
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != formatV1 {
		return "", nil, fmt.Errorf("%w: unknown format version %d", ErrMalformed, v)
	}
	owner = string(d.bytes(maxOwner, "owner"))
	count := d.uvarint("record count")
	if d.err == nil && count > uint64(len(d.b[d.off:]))/minRecord {
		d.fail("record count larger than the entry")
	}
	if d.err != nil {
		return "", nil, d.err
	}
	recs = make([]stores.Record, 0, count)
	for i := uint64(0); i < count && d.err == nil; i++ {
		var r stores.Record
		p := d.bytes(maxProvider, "provider")
		switch {
		case d.err != nil:
		case len(p) == 0 || !utf8.Valid(p):
			d.fail("provider empty or not UTF-8")
		case len(recs) > 0 && recs[len(recs)-1].Provider >= string(p):
			d.fail("providers not sorted or duplicated")
		}
		r.Provider = string(p)
		ct := d.bytes(maxCiphertext, "ciphertext")
		if d.err == nil && len(ct) == 0 {
			d.fail("empty ciphertext")
		}
		r.Ciphertext = append([]byte(nil), ct...)
		if kid := d.uvarint("key id"); kid <= math.MaxUint32 {
			r.KeyID = uint32(kid)
		} else {
			d.fail("key id out of range")
		}
		flags := d.byte()
		if d.err == nil && flags&^(flagUpdated|flagExpires) != 0 {
			d.fail("unknown flags")
		}
		r.CreatedAt = fromMicro(d.varint("created"))
		if flags&flagUpdated != 0 {
			r.UpdatedAt = fromMicro(d.varint("updated"))
		}
		if flags&flagExpires != 0 {
			r.ExpiresAt = fromMicro(d.varint("expires"))
		}
		recs = append(recs, r)
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return "", nil, d.err
	}
	return owner, recs, nil
}

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// decoder reads b from off; after the first failure every read returns zero
// and err keeps the first failure.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrMalformed, what, d.off)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.fail("truncated")
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad " + what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.fail("bad " + what)
		return 0
	}
	d.off += n
	return v
}

// bytes reads a uvarint length and that many bytes (at most limit); the
// result aliases d.b.
func (d *decoder) bytes(limit uint64, what string) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	rest := d.b[d.off:]
	if n > limit || n > uint64(len(rest)) {
		d.fail(what + " length out of range")
		return nil
	}
	v := rest[:n] // n <= len(rest), so no conversion to int is needed
	d.off += len(v)
	return v
}
