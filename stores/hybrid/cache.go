package hybrid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/session"
)

// Cache entry format, version 1:
//
//	version  1 byte, 0x01
//	epoch    length (1 byte, 1..64), bytes: the user's epoch when the
//	         records were read from SQL
//	filled   varint (minimal) unix microseconds: when they were read
//	records  the rest: a stores/session entry (session.Encode) whose owner
//	         is the scope's Owner ("u:" + user id)
//
// The cache binds the user through the owner, so a session that changes
// hands never serves one user's records to another.
const (
	cacheV1  = 1
	maxEpoch = 64
)

// ErrMalformed means a session cache entry could not be decoded. The Store
// treats such an entry as a cache miss.
var ErrMalformed = errors.New("hybrid: malformed cache entry")

// cacheEntry is a decoded session cache.
type cacheEntry struct {
	epoch  string
	filled time.Time
	owner  string
	recs   []stores.Record // sorted by provider
}

// encodeCache returns the session value for e. e.recs must be sorted by
// provider, valid and without duplicates.
func encodeCache(e cacheEntry) ([]byte, error) {
	if len(e.epoch) == 0 || len(e.epoch) > maxEpoch {
		return nil, fmt.Errorf("hybrid: epoch must be 1 to %d bytes", maxEpoch)
	}
	payload, err := session.Encode(e.owner, e.recs)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+1+len(e.epoch)+binary.MaxVarintLen64+len(payload))
	b = append(b, cacheV1)
	b = binary.AppendUvarint(b, uint64(len(e.epoch)))
	b = append(b, e.epoch...)
	b = binary.AppendVarint(b, e.filled.UnixMicro())
	return append(b, payload...), nil
}

// decodeCache parses a value made by encodeCache. Errors wrap ErrMalformed
// and never include the entry's contents.
func decodeCache(b []byte) (cacheEntry, error) {
	if len(b) == 0 || b[0] != cacheV1 {
		return cacheEntry{}, fmt.Errorf("%w: unknown version", ErrMalformed)
	}
	// The epoch's length is at most 64, so its uvarint is one byte.
	if len(b) < 2 || b[1] == 0 || b[1] > maxEpoch || int(b[1]) > len(b)-2 {
		return cacheEntry{}, fmt.Errorf("%w: bad epoch at byte 1", ErrMalformed)
	}
	off := 2 + int(b[1])
	epoch := string(b[2:off])
	us, k := binary.Varint(b[off:])
	if k <= 0 || k != len(binary.AppendVarint(nil, us)) {
		return cacheEntry{}, fmt.Errorf("%w: bad fill time at byte %d", ErrMalformed, off)
	}
	off += k
	owner, recs, err := session.Decode(b[off:])
	if err != nil {
		return cacheEntry{}, fmt.Errorf("%w: records: %w", ErrMalformed, err)
	}
	return cacheEntry{epoch: epoch, filled: time.UnixMicro(us).UTC(), owner: owner, recs: recs}, nil
}
