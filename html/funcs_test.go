package html

import (
	"testing"
	"time"
)

var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func TestAgo(t *testing.T) {
	tests := []struct {
		age  time.Duration
		want string
	}{
		{-time.Hour, "just now"}, // clock skew: a time after now
		{0, "just now"},
		{59 * time.Second, "just now"},
		{60 * time.Second, "1 minute ago"},
		{119 * time.Second, "1 minute ago"},
		{2 * time.Minute, "2 minutes ago"},
		{59*time.Minute + 59*time.Second, "59 minutes ago"},
		{60 * time.Minute, "1 hour ago"},
		{119 * time.Minute, "1 hour ago"},
		{2 * time.Hour, "2 hours ago"},
		{3 * time.Hour, "3 hours ago"},
		{23*time.Hour + 59*time.Minute + 59*time.Second, "23 hours ago"},
		{24 * time.Hour, "1 day ago"},
		{47 * time.Hour, "1 day ago"},
		{48 * time.Hour, "2 days ago"},
		{29 * day, "29 days ago"},
		{30 * day, "1 month ago"},
		{59 * day, "1 month ago"},
		{60 * day, "2 months ago"},
		{364 * day, "12 months ago"},
		{365 * day, "1 year ago"},
		{3 * 365 * day, "3 years ago"},
	}
	for _, tt := range tests {
		t.Run(tt.age.String(), func(t *testing.T) {
			if got := Ago(now.Add(-tt.age), now); got != tt.want {
				t.Errorf("Ago(now-%v) = %q, want %q", tt.age, got, tt.want)
			}
		})
	}
}

func TestAddedUpdated(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t, now time.Time) string
		at   time.Time
		want string
	}{
		{"added zero", Added, time.Time{}, ""},
		{"added now", Added, now, "added just now"},
		{"added 3h", Added, now.Add(-3 * time.Hour), "added 3 hours ago"},
		{"added 1m", Added, now.Add(-time.Minute), "added 1 minute ago"},
		{"updated zero", Updated, time.Time{}, ""},
		{"updated 5m", Updated, now.Add(-5 * time.Minute), "updated 5 minutes ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.at, now); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExpires(t *testing.T) {
	tests := []struct {
		name string
		left time.Duration // time until expiry; ignored when zero is set
		zero bool
		want string
	}{
		{"zero time", 0, true, "never expires"},
		{"in the past", -time.Second, false, "expired"},
		{"exactly now", 0, false, "expired"},
		{"1s", time.Second, false, "expires in less than a minute"},
		{"59s", 59 * time.Second, false, "expires in less than a minute"},
		{"60s", 60 * time.Second, false, "expires in 1 minute"},
		{"89s", 89 * time.Second, false, "expires in 1 minute"},
		{"90s", 90 * time.Second, false, "expires in 2 minutes"},
		{"59m29s", 59*time.Minute + 29*time.Second, false, "expires in 59 minutes"},
		{"59m30s", 59*time.Minute + 30*time.Second, false, "expires in 1 hour"},
		{"59m59s", 59*time.Minute + 59*time.Second, false, "expires in 1 hour"},
		{"60m", 60 * time.Minute, false, "expires in 1 hour"},
		{"89m", 89 * time.Minute, false, "expires in 1 hour"},
		{"90m", 90 * time.Minute, false, "expires in 2 hours"},
		{"12h minus 1s", 12*time.Hour - time.Second, false, "expires in 12 hours"},
		{"23h29m", 23*time.Hour + 29*time.Minute, false, "expires in 23 hours"},
		{"23h30m", 23*time.Hour + 30*time.Minute, false, "expires in 1 day"},
		{"23h59m", 23*time.Hour + 59*time.Minute, false, "expires in 1 day"},
		{"24h", 24 * time.Hour, false, "expires in 1 day"},
		{"24h minus 1s (fresh 24h key)", 24*time.Hour - time.Second, false, "expires in 1 day"},
		{"35h59m", 35*time.Hour + 59*time.Minute, false, "expires in 1 day"},
		{"36h", 36 * time.Hour, false, "expires in 2 days"},
		{"45h", 45 * time.Hour, false, "expires in 2 days"},
		{"7d minus 1s (fresh 7d key)", 7*day - time.Second, false, "expires in 7 days"},
		{"30d", 30 * day, false, "expires in 30 days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := now.Add(tt.left)
			if tt.zero {
				at = time.Time{}
			}
			if got := Expires(at, now); got != tt.want {
				t.Errorf("Expires(now+%v) = %q, want %q", tt.left, got, tt.want)
			}
		})
	}
}

// TestNeverSixty walks every second of the first two hours and checks that
// neither text ever says "60 minutes" (the original's bug) and that both
// change unit exactly once at the hour.
func TestNeverSixty(t *testing.T) {
	for s := range 2 * 3600 {
		d := time.Duration(s) * time.Second
		for _, got := range []string{Ago(now.Add(-d), now), Expires(now.Add(d), now)} {
			if got == "60 minutes ago" || got == "expires in 60 minutes" || got == "24 hours ago" {
				t.Fatalf("at %v: %q", d, got)
			}
		}
	}
}

func TestISOAndDate(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 3, 14, 16, 9, 26, 0, paris)
	if got, want := ISO(at), "2026-03-14T15:09:26Z"; got != want {
		t.Errorf("ISO = %q, want %q", got, want)
	}
	if got, want := Date(at), "14 Mar 2026, 15:09 UTC"; got != want {
		t.Errorf("Date = %q, want %q", got, want)
	}
	if ISO(time.Time{}) != "" || Date(time.Time{}) != "" {
		t.Error("zero time should format as empty")
	}
}

func TestFuncMapNames(t *testing.T) {
	for name := range FuncMap() {
		if len(name) < 5 || name[:4] != "byok" {
			t.Errorf("func %q is not namespaced with byok", name)
		}
	}
}
