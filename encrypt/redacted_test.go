package encrypt_test

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ginbyok/byok/encrypt"
)

func TestRedacted(t *testing.T) {
	r := encrypt.Redacted(sentinelKey)
	if r.Reveal() != sentinelKey {
		t.Fatal("Reveal did not return the secret")
	}
	type holder struct {
		Key encrypt.Redacted
		Ptr *encrypt.Redacted
	}
	h := holder{Key: r, Ptr: &r}
	tests := []struct {
		name string
		out  func() (string, error)
		want string
	}{
		{"String", func() (string, error) { return r.String(), nil }, "[REDACTED]"},
		{"GoString", func() (string, error) { return r.GoString(), nil }, "[REDACTED]"},
		{"%v", func() (string, error) { return fmt.Sprintf("%v", r), nil }, "[REDACTED]"},
		{"%+v", func() (string, error) { return fmt.Sprintf("%+v", r), nil }, "[REDACTED]"},
		{"%s", func() (string, error) { return fmt.Sprintf("%s", r), nil }, "[REDACTED]"},
		{"%q", func() (string, error) { return fmt.Sprintf("%q", r), nil }, "[REDACTED]"},
		{"%#v", func() (string, error) { return fmt.Sprintf("%#v", r), nil }, "[REDACTED]"},
		{"%x", func() (string, error) { return fmt.Sprintf("%x", r), nil }, "[REDACTED]"},
		{"%X", func() (string, error) { return fmt.Sprintf("%X", r), nil }, "[REDACTED]"},
		{"%10.3s", func() (string, error) { return fmt.Sprintf("%10.3s", r), nil }, "[REDACTED]"},
		{"%d", func() (string, error) { return fmt.Sprintf("%d", r), nil }, "[REDACTED]"},
		{"Sprint", func() (string, error) { return fmt.Sprint(r), nil }, "[REDACTED]"},
		{"Errorf", func() (string, error) { return fmt.Errorf("key %v", r).Error(), nil }, "key [REDACTED]"},
		{"struct %+v", func() (string, error) { return fmt.Sprintf("%+v", h), nil }, ""},
		{"struct %#v", func() (string, error) { return fmt.Sprintf("%#v", h), nil }, ""},
		{"pointer", func() (string, error) { return fmt.Sprintf("%v %s", &r, &r), nil }, "[REDACTED] [REDACTED]"},
		{"MarshalJSON", func() (string, error) { b, err := r.MarshalJSON(); return string(b), err }, `"[REDACTED]"`},
		{"json struct", func() (string, error) { b, err := json.Marshal(h); return string(b), err }, `{"Key":"[REDACTED]","Ptr":"[REDACTED]"}`},
		{"json map", func() (string, error) {
			b, err := json.Marshal(map[string]encrypt.Redacted{"k": r})
			return string(b), err
		}, `{"k":"[REDACTED]"}`},
		{"MarshalText", func() (string, error) { b, err := r.MarshalText(); return string(b), err }, "[REDACTED]"},
		{"xml", func() (string, error) { b, err := xml.Marshal(h); return string(b), err }, ""},
		{"gob", func() (string, error) {
			var buf bytes.Buffer
			err := gob.NewEncoder(&buf).Encode(h)
			return buf.String(), err
		}, ""},
		{"LogValue", func() (string, error) { return r.LogValue().String(), nil }, "[REDACTED]"},
		{"slog text", func() (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("saved", "key", r, "group", h)
			return buf.String(), nil
		}, ""},
		{"slog json", func() (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("saved", "key", r, "struct", h)
			return buf.String(), nil
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.out()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, "SENTINEL") || strings.Contains(got, fmt.Sprintf("%x", sentinelKey[:8])) {
				t.Fatalf("output reveals the key: %s", got)
			}
			if !strings.Contains(got, "[REDACTED]") {
				t.Fatalf("output %q lacks [REDACTED]", got)
			}
			if tt.want != "" && got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
