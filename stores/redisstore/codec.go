package redisstore

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"math"
	"time"
)

// The stored value is a compact binary encoding of a session's Values:
//
//	value  = version(1 byte = 1) count(uvarint) { key elem }
//	key    = 's' string | 'i' int | 'I' int64
//	elem   = scalar | 'L' count(uvarint) { scalar }     (a []interface{}, e.g. flashes)
//	scalar = 'n'                                        nil
//	       | 's' len(uvarint) bytes                     string
//	       | 'b' len(uvarint) bytes                     []byte
//	       | '0' | '1'                                  bool
//	       | 'i' zigzag varint                          int
//	       | 'I' zigzag varint                          int64
//	       | 'F' 8 bytes, big endian IEEE 754           float64
//	       | 'T' len(uvarint) time.MarshalBinary        time.Time
//	       | 'G' len(uvarint) gob of an interface{}     anything else (gob.Register it)
//
// Keys are restricted to strings and integers so that a decoded key is always
// usable as a map key.

const codecVersion = 1

const (
	tagNil    = 'n'
	tagString = 's'
	tagBytes  = 'b'
	tagFalse  = '0'
	tagTrue   = '1'
	tagInt    = 'i'
	tagInt64  = 'I'
	tagFloat  = 'F'
	tagTime   = 'T'
	tagList   = 'L'
	tagGob    = 'G'
)

// encodeValues encodes a session's values; the result starts with the
// format version.
func encodeValues(values map[any]any) ([]byte, error) {
	buf := make([]byte, 0, 64)
	buf = append(buf, codecVersion)
	buf = binary.AppendUvarint(buf, uint64(len(values)))
	var err error
	for k, v := range values {
		if buf, err = appendKey(buf, k); err != nil {
			return nil, err
		}
		if buf, err = appendElem(buf, v); err != nil {
			return nil, fmt.Errorf("value of %s: %w", describeKey(k), err)
		}
	}
	return buf, nil
}

func describeKey(k any) string {
	switch k := k.(type) {
	case string:
		return fmt.Sprintf("key %q", k)
	case int, int64:
		return fmt.Sprintf("key %d", k)
	}
	return fmt.Sprintf("key of type %T", k)
}

func appendKey(buf []byte, k any) ([]byte, error) {
	switch k := k.(type) {
	case string:
		return appendString(append(buf, tagString), k), nil
	case int:
		return binary.AppendVarint(append(buf, tagInt), int64(k)), nil
	case int64:
		return binary.AppendVarint(append(buf, tagInt64), k), nil
	}
	return nil, fmt.Errorf("%w: session key of type %T (want string, int or int64)", ErrUnsupportedType, k)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendElem(buf []byte, v any) ([]byte, error) {
	list, ok := v.([]any)
	if !ok {
		return appendScalar(buf, v)
	}
	buf = append(buf, tagList)
	buf = binary.AppendUvarint(buf, uint64(len(list)))
	var err error
	for _, e := range list {
		if buf, err = appendScalar(buf, e); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func appendScalar(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, tagNil), nil
	case string:
		return appendString(append(buf, tagString), v), nil
	case []byte:
		buf = binary.AppendUvarint(append(buf, tagBytes), uint64(len(v)))
		return append(buf, v...), nil
	case bool:
		if v {
			return append(buf, tagTrue), nil
		}
		return append(buf, tagFalse), nil
	case int:
		return binary.AppendVarint(append(buf, tagInt), int64(v)), nil
	case int64:
		return binary.AppendVarint(append(buf, tagInt64), v), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(buf, tagFloat), math.Float64bits(v)), nil
	case time.Time:
		b, err := v.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedType, err)
		}
		buf = binary.AppendUvarint(append(buf, tagTime), uint64(len(b)))
		return append(buf, b...), nil
	}
	// Anything else (a nested list included) goes through gob, which needs
	// the concrete type registered with gob.Register.
	var g bytes.Buffer
	if err := gob.NewEncoder(&g).Encode(&v); err != nil {
		return nil, fmt.Errorf("%w: %T: %w", ErrUnsupportedType, v, err)
	}
	gb := g.Bytes()
	buf = binary.AppendUvarint(append(buf, tagGob), uint64(len(gb)))
	return append(buf, gb...), nil
}

// decodeValues parses a stored value. It works on the string Redis returns,
// so string keys and values share its memory instead of being copied. Any
// malformed input gives an error wrapping ErrCorrupt, never a panic.
func decodeValues(data string) (map[any]any, error) {
	d := decoder{s: data}
	values, err := d.values()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return values, nil
}

type decoder struct {
	s   string
	off int
}

type formatError string

func (e formatError) Error() string { return string(e) }

const (
	errTruncated  = formatError("truncated")
	errBadVarint  = formatError("bad varint")
	errTrailing   = formatError("trailing bytes")
	errBadVersion = formatError("unknown format version")
)

func (d *decoder) values() (map[any]any, error) {
	if d.off >= len(d.s) {
		return nil, errTruncated
	}
	if d.s[d.off] != codecVersion {
		return nil, errBadVersion
	}
	d.off++
	n, err := d.count()
	if err != nil {
		return nil, err
	}
	values := make(map[any]any, n)
	for range n {
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		v, err := d.elem()
		if err != nil {
			return nil, err
		}
		values[k] = v
	}
	if d.off != len(d.s) {
		return nil, errTrailing
	}
	return values, nil
}

// count reads an element count and bounds it by the bytes left (every
// element takes at least one byte), so a forged count cannot make us
// allocate more than the input's size. The bound also keeps the count
// within int (and within math.MaxInt32: Redis values are at most 512 MiB).
func (d *decoder) count() (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.s[d.off:])) || n > math.MaxInt32 {
		return 0, errTruncated
	}
	return int(n), nil
}

func (d *decoder) uvarint() (uint64, error) {
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.off >= len(d.s) {
			return 0, errTruncated
		}
		b := d.s[d.off]
		d.off++
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, errBadVarint
			}
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, errBadVarint
}

func (d *decoder) varint() (int64, error) {
	ux, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, nil
}

func (d *decoder) tag() (byte, error) {
	if d.off >= len(d.s) {
		return 0, errTruncated
	}
	t := d.s[d.off]
	d.off++
	return t, nil
}

// chunk reads a length-prefixed run of bytes.
func (d *decoder) chunk() (string, error) {
	n, err := d.count()
	if err != nil {
		return "", err
	}
	s := d.s[d.off : d.off+n]
	d.off += n
	return s, nil
}

func (d *decoder) key() (any, error) {
	t, err := d.tag()
	if err != nil {
		return nil, err
	}
	switch t {
	case tagString:
		return d.chunk()
	case tagInt:
		x, err := d.varint()
		if err != nil || int64(int(x)) != x {
			return nil, formatError("bad int key")
		}
		return int(x), nil
	case tagInt64:
		return d.varint()
	}
	return nil, formatError(fmt.Sprintf("bad key tag %q", t))
}

func (d *decoder) elem() (any, error) {
	if d.off < len(d.s) && d.s[d.off] == tagList {
		d.off++
		n, err := d.count()
		if err != nil {
			return nil, err
		}
		list := make([]any, n)
		for i := range list {
			if list[i], err = d.scalar(); err != nil {
				return nil, err
			}
		}
		return list, nil
	}
	return d.scalar()
}

func (d *decoder) scalar() (any, error) {
	t, err := d.tag()
	if err != nil {
		return nil, err
	}
	switch t {
	case tagNil:
		return nil, nil
	case tagString:
		return d.chunk()
	case tagBytes:
		s, err := d.chunk()
		if err != nil {
			return nil, err
		}
		return []byte(s), nil
	case tagFalse:
		return false, nil
	case tagTrue:
		return true, nil
	case tagInt:
		x, err := d.varint()
		if err != nil {
			return nil, err
		}
		if int64(int(x)) != x {
			return nil, formatError("int out of range")
		}
		return int(x), nil
	case tagInt64:
		return d.varint()
	case tagFloat:
		if len(d.s)-d.off < 8 {
			return nil, errTruncated
		}
		var u uint64
		for i := range 8 {
			u = u<<8 | uint64(d.s[d.off+i])
		}
		d.off += 8
		return math.Float64frombits(u), nil
	case tagTime:
		s, err := d.chunk()
		if err != nil {
			return nil, err
		}
		var tm time.Time
		if err := tm.UnmarshalBinary([]byte(s)); err != nil {
			return nil, formatError("bad time: " + err.Error())
		}
		return tm, nil
	case tagGob:
		s, err := d.chunk()
		if err != nil {
			return nil, err
		}
		var v any
		if err := gob.NewDecoder(bytes.NewReader([]byte(s))).Decode(&v); err != nil {
			return nil, formatError("bad gob value: " + err.Error())
		}
		return v, nil
	}
	return nil, formatError(fmt.Sprintf("bad value tag %q", t))
}
