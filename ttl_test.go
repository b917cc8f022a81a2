package byok_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ginbyok/byok"
)

func TestParseTTL(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"never", byok.Never, true},
		{" NEVER ", byok.Never, true},
		{"30m", 30 * time.Minute, true},
		{"2h", 2 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"24h", day, true},
		{"1d", day, true},
		{"7d", 7 * day, true},
		{"30d", 30 * day, true},
		{"3650d", 3650 * day, true},
		{"3651d", 0, false},
		{"", 0, false},
		{"0", 0, false},
		{"0s", 0, false},
		{"-1h", 0, false},
		{"-1d", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"7days", 0, false},
		{"forever", 0, false},
		{"99999999999999999999d", 0, false},
		{"2562047h", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := byok.ParseTTL(tt.in)
			if !tt.ok {
				if !errors.Is(err, byok.ErrInvalidTTL) {
					t.Fatalf("ParseTTL(%q) = %v, %v; want ErrInvalidTTL", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseTTL(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatTTL(t *testing.T) {
	for _, d := range byok.DefaultTTLChoices() {
		s := byok.FormatTTL(d)
		back, err := byok.ParseTTL(s)
		if err != nil || back != d {
			t.Errorf("FormatTTL(%v) = %q, which parses to %v, %v", d, s, back, err)
		}
	}
	want := map[time.Duration]string{
		byok.Never: "never", 30 * time.Minute: "30m", 24 * time.Hour: "24h",
		48 * time.Hour: "2d", 90 * time.Second: "1m30s", 7 * 24 * time.Hour: "7d",
	}
	for d, s := range want {
		if got := byok.FormatTTL(d); got != s {
			t.Errorf("FormatTTL(%v) = %q, want %q", d, got, s)
		}
	}
}

func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"never", "30m", "7d", "1h30m", "-1d", "9999999d", "1e9h", ".5h", "0d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := byok.ParseTTL(s)
		if err != nil {
			if !errors.Is(err, byok.ErrInvalidTTL) {
				t.Fatalf("error %v does not wrap ErrInvalidTTL", err)
			}
			return
		}
		if d != byok.Never && (d <= 0 || d > 3650*24*time.Hour) {
			t.Fatalf("ParseTTL(%q) = %v: out of range", s, d)
		}
		back, err := byok.ParseTTL(byok.FormatTTL(d))
		if err != nil || back != d {
			t.Fatalf("round trip of %v via %q: %v, %v", d, byok.FormatTTL(d), back, err)
		}
	})
}
