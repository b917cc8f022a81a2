package stores_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ginbyok/byok/stores"
)

func TestScopeOwner(t *testing.T) {
	tests := []struct {
		scope     stores.Scope
		owner     string
		anonymous bool
	}{
		{stores.Scope{UserID: "ada"}, "u:ada", false},
		{stores.Scope{UserID: "ada", AnonID: "x"}, "u:ada", false},
		{stores.Scope{AnonID: "x"}, "a:x", true},
		{stores.Scope{}, "", true},
		// A user id that looks like an anonymous owner stays a user.
		{stores.Scope{UserID: "a:x"}, "u:a:x", false},
	}
	for _, tt := range tests {
		if got := tt.scope.Owner(); got != tt.owner {
			t.Errorf("%+v.Owner() = %q, want %q", tt.scope, got, tt.owner)
		}
		if got := tt.scope.Anonymous(); got != tt.anonymous {
			t.Errorf("%+v.Anonymous() = %v, want %v", tt.scope, got, tt.anonymous)
		}
	}
}

func TestRecordExpired(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires time.Time
		want    bool
	}{
		{"never", time.Time{}, false},
		{"future", now.Add(time.Second), false},
		{"exactly now", now, true},
		{"past", now.Add(-time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (stores.Record{ExpiresAt: tt.expires}).Expired(now); got != tt.want {
				t.Errorf("Expired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecordValidate(t *testing.T) {
	ok := stores.Record{Provider: "openai", Ciphertext: []byte{1}, CreatedAt: time.Now()}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	tests := []struct {
		name string
		edit func(*stores.Record)
	}{
		{"no provider", func(r *stores.Record) { r.Provider = "" }},
		{"no ciphertext", func(r *stores.Record) { r.Ciphertext = nil }},
		{"no created time", func(r *stores.Record) { r.CreatedAt = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			if err := r.Validate(); !errors.Is(err, stores.ErrInvalidRecord) {
				t.Errorf("Validate = %v, want ErrInvalidRecord", err)
			}
		})
	}
}
