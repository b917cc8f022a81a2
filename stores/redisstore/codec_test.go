package redisstore

import (
	"encoding/gob"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gobPoint is a host-app type: it is stored through the gob fallback and
// must be registered.
type gobPoint struct{ X, Y int }

// unregistered is never registered with gob.
type unregistered struct{ A int }

func init() { gob.Register(gobPoint{}) }

func TestCodecRoundTrip(t *testing.T) {
	when := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	zoned := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("", 2*3600))
	cases := []struct {
		name   string
		values map[any]any
	}{
		{"empty", map[any]any{}},
		{"string", map[any]any{"uid": "user-1", "": ""}},
		{"bytes", map[any]any{"blob": []byte{0, 1, 2, 255}, "empty": []byte{}}},
		{"bool", map[any]any{"t": true, "f": false}},
		{"int", map[any]any{"n": 42, "neg": -7, "max": math.MaxInt, "min": math.MinInt}},
		{"int64", map[any]any{"n": int64(42), "min": int64(math.MinInt64)}},
		{"float64", map[any]any{"pi": math.Pi, "inf": math.Inf(-1), "zero": 0.0}},
		{"time", map[any]any{"utc": when, "zoned": zoned}},
		{"nil", map[any]any{"nothing": nil}},
		{"int keys", map[any]any{1: "one", int64(2): "two"}},
		{"flashes", map[any]any{"_flash": []any{"saved", 3, true}, "_errors": []any{}}},
		{"gob fallback", map[any]any{"point": gobPoint{1, 2}, "strings": []string{"a", "b"}, "u8": uint8(9), "nested": []any{[]any{"x"}}}},
		{"large", map[any]any{"big": strings.Repeat("x", 70000)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := encodeValues(tc.values)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := decodeValues(string(data))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(got) != len(tc.values) {
				t.Fatalf("decoded %d values, want %d", len(got), len(tc.values))
			}
			for k, want := range tc.values {
				g, ok := got[k]
				if !ok {
					t.Fatalf("key %#v missing", k)
				}
				if wt, isTime := want.(time.Time); isTime {
					gt, ok := g.(time.Time)
					if !ok || !gt.Equal(wt) {
						t.Fatalf("%v: got %#v, want %v", k, g, wt)
					}
					_, wantOff := wt.Zone()
					if _, off := gt.Zone(); off != wantOff {
						t.Fatalf("%v: zone offset %d, want %d", k, off, wantOff)
					}
					continue
				}
				if !reflect.DeepEqual(g, want) || reflect.TypeOf(g) != reflect.TypeOf(want) {
					t.Fatalf("%v: got %#v (%T), want %#v (%T)", k, g, g, want, want)
				}
			}
		})
	}
}

func TestCodecIsCompact(t *testing.T) {
	data, err := encodeValues(map[any]any{"uid": "user-12345", "blob": make([]byte, 150)})
	if err != nil {
		t.Fatal(err)
	}
	// version + count + (tag+len+3+tag+len+10) + (tag+len+4+tag+2len+150)
	if len(data) > 180 {
		t.Errorf("encoded %d bytes, want at most 180", len(data))
	}
}

func TestCodecRejectsUnsupported(t *testing.T) {
	cases := []struct {
		name   string
		values map[any]any
	}{
		{"bool key", map[any]any{true: "x"}},
		{"struct key", map[any]any{gobPoint{}: "x"}},
		{"float key", map[any]any{1.5: "x"}},
		{"unregistered value type", map[any]any{"k": unregistered{1}}},
		{"unregistered type in a list", map[any]any{"k": []any{"ok", unregistered{1}}}},
		{"channel", map[any]any{"k": make(chan int)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := encodeValues(tc.values); !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("encode: err = %v, want ErrUnsupportedType", err)
			}
		})
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	cases := map[string]string{
		"empty":               "",
		"unknown version":     "\x02\x00",
		"missing count":       "\x01",
		"count beyond input":  "\x01\xff\xff\xff\xff\x0f",
		"truncated key":       "\x01\x01s\x05ab",
		"missing value":       "\x01\x01s\x01k",
		"bad key tag":         "\x01\x01b\x01ks\x01v",
		"list as key":         "\x01\x01L\x00s\x01v",
		"bad value tag":       "\x01\x01s\x01kZ",
		"list in list":        "\x01\x01s\x01kL\x01L\x00",
		"list count too big":  "\x01\x01s\x01kL\x09s\x00",
		"short float":         "\x01\x01s\x01kF\x00\x00",
		"bad time":            "\x01\x01s\x01kT\x02\x01\x02",
		"bad gob":             "\x01\x01s\x01kG\x03abc",
		"trailing bytes":      "\x01\x00x",
		"overlong varint":     "\x01\x01s\x01ki\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
		"duplicate-free junk": "not a session at all",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if v, err := decodeValues(in); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode(%q) = %v, %v; want ErrCorrupt", in, v, err)
			}
		})
	}
}

// FuzzDecodeValues feeds arbitrary bytes to the decoder: it must return
// values or an ErrCorrupt error, never panic, and whatever it accepts must
// encode and decode again.
func FuzzDecodeValues(f *testing.F) {
	for _, values := range []map[any]any{
		{},
		{"uid": "u1", "blob": []byte("0123456789")},
		{"_flash": []any{"hello", 1, false}},
		{"n": 1, "m": int64(-2), "f": 1.5, "b": true, "z": nil},
		{"t": time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600))},
		{"p": gobPoint{3, 4}},
		{7: "int key", int64(8): "int64 key"},
	} {
		data, err := encodeValues(values)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\x01\x01s\x01kL\x01L\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		values, err := decodeValues(string(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := encodeValues(values)
		if err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
		back, err := decodeValues(string(again))
		if err != nil {
			t.Fatalf("re-encoded values do not decode: %v", err)
		}
		if len(back) != len(values) {
			t.Fatalf("round trip kept %d of %d values", len(back), len(values))
		}
	})
}
