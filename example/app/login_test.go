package app

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ginbyok/byok/encrypt"
)

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := encrypt.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignerVerify(t *testing.T) {
	cur, old, other := newSecret(t), newSecret(t), newSecret(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := newSigner(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	oldOnly, err := newSigner(old)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := newSigner(other)
	if err != nil {
		t.Fatal(err)
	}
	good := s.sign("alice", now.Add(time.Hour))
	parts := strings.Split(good, ".")
	forged := func(user string) string {
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(user)) + "." + parts[2] + "." + parts[3]
	}

	tests := []struct {
		name  string
		value string
		at    time.Time
		want  string // "" = refused
	}{
		{"valid", good, now, "alice"},
		{"one second before expiry", good, now.Add(time.Hour - time.Second), "alice"},
		{"at expiry", good, now.Add(time.Hour), ""},
		{"signed under a previous secret", oldOnly.sign("bob", now.Add(time.Hour)), now, "bob"},
		{"signed under another secret", stranger.sign("alice", now.Add(time.Hour)), now, ""},
		{"user swapped", forged("admin"), now, ""},
		{"expiry pushed back", parts[0] + "." + parts[1] + ".9999999999." + parts[3], now, ""},
		{"mac cut short", parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[3][:10], now, ""},
		{"wrong version", "v2." + strings.Join(parts[1:], "."), now, ""},
		{"too few parts", "v1.YWxpY2U.123", now, ""},
		{"bad base64", "v1.!!!." + parts[2] + "." + parts[3], now, ""},
		{"empty", "", now, ""},
		{"signed bad user", s.sign("a b", now.Add(time.Hour)), now, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.verify(tt.value, tt.at)
			if ok != (tt.want != "") || got != tt.want {
				t.Fatalf("verify = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

func TestSignerKeyIsNotTheSecret(t *testing.T) {
	sec := newSecret(t)
	s, err := newSigner(sec)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := encrypt.ParseSecret(sec)
	if err != nil {
		t.Fatal(err)
	}
	if string(s.keys[0]) == string(raw) {
		t.Fatal("the cookie key is the master secret itself, not a derived key")
	}
	v := s.sign("alice", time.Now().Add(time.Hour))
	if strings.Contains(v, sec) {
		t.Fatal("the cookie holds the secret")
	}
}

func TestCheckUser(t *testing.T) {
	tests := []struct {
		user string
		ok   bool
	}{
		{"alice", true},
		{"A.b-c_d@e", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"a b", false},
		{"é", false},
		{"a/b", false},
		{"<x>", false},
	}
	for _, tt := range tests {
		if err := checkUser(tt.user); (err == nil) != tt.ok {
			t.Errorf("checkUser(%q) = %v, want ok %v", tt.user, err, tt.ok)
		}
	}
}

func FuzzSignerVerify(f *testing.F) {
	s, err := newSigner("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Add(s.sign("alice", now.Add(time.Hour)))
	f.Add("v1.YWxpY2U.1772370000.AAAA")
	f.Add("")
	f.Add("v1....")
	f.Fuzz(func(t *testing.T, v string) {
		user, ok := s.verify(v, now)
		if ok && checkUser(user) != nil {
			t.Fatalf("verify accepted an invalid user %q", user)
		}
		if ok && v != s.sign(user, time.Unix(mustExp(t, v), 0)) {
			t.Fatalf("verify accepted %q, which sign would not write", v)
		}
	})
}

// mustExp reads the expiry field of a cookie value verify accepted.
func mustExp(t *testing.T, v string) int64 {
	t.Helper()
	var e int64
	for _, r := range strings.Split(v, ".")[2] {
		e = e*10 + int64(r-'0')
	}
	return e
}
