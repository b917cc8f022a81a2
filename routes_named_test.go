package byok_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// POST {prefix} is the multi-provider form: the provider is a field.
func TestSetNamedProvider(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		body     any
		status   int
		code     string // problem code, for refusals
		provider string // provider that must then have a key
	}{
		{"form", kHTML, url.Values{"provider": {"openai"}, "api_key": {openAIKey}, "ttl": {"7d"}}, http.StatusSeeOther, "", "openai"},
		{"form with next", kHTML, url.Values{"provider": {"anthropic"}, "api_key": {anthroKey}, "next": {"/chat"}}, http.StatusSeeOther, "", "anthropic"},
		{"htmx form", kHTMX, url.Values{"provider": {"openai"}, "api_key": {openAIKey}}, http.StatusOK, "", "openai"},
		{"json", kJSON, map[string]string{"provider": "openai", "api_key": openAIKey, "ttl": "2h"}, http.StatusCreated, "", "openai"},
		{"json unknown provider", kJSON, map[string]string{"provider": "nope", "api_key": openAIKey}, http.StatusNotFound, "unknown_provider", ""},
		{"json no provider", kJSON, map[string]string{"api_key": openAIKey}, http.StatusNotFound, "unknown_provider", ""},
		{"json path trick", kJSON, map[string]string{"provider": "../openai", "api_key": openAIKey}, http.StatusNotFound, "unknown_provider", ""},
		{"json bad key", kJSON, map[string]string{"provider": "openai", "api_key": "short"}, http.StatusUnprocessableEntity, "invalid_key", ""},
		{"json malformed", kJSON, `{"provider":`, http.StatusBadRequest, "bad_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApp(t)
			r := req(tt.kind, http.MethodPost, "/keys", tt.body)
			if s, ok := tt.body.(string); ok {
				r = req(tt.kind, http.MethodPost, "/keys", s)
				r.Header.Set("Content-Type", "application/json")
			}
			w := a.do(r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.code != "" {
				var pr struct{ Code string }
				_ = json.Unmarshal(w.Body.Bytes(), &pr)
				if pr.Code != tt.code {
					t.Errorf("code %q, want %q", pr.Code, tt.code)
				}
			}
			if tt.kind == kHTML {
				want := "/keys"
				if v, ok := tt.body.(url.Values); ok && v.Get("next") != "" {
					want = v.Get("next")
				}
				if loc := w.Header().Get("Location"); loc != want {
					t.Errorf("Location %q, want %q", loc, want)
				}
			}
			info := a.do(req(kJSON, http.MethodGet, "/keys/openai", nil))
			hasOpenAI := strings.Contains(info.Body.String(), `"has_key":true`)
			if want := tt.provider == "openai"; hasOpenAI != want {
				t.Errorf("openai has_key = %v, want %v", hasOpenAI, want)
			}
			if tt.provider == "anthropic" {
				got := a.do(req(kJSON, http.MethodGet, "/keys/anthropic", nil))
				if !strings.Contains(got.Body.String(), `"has_key":true`) {
					t.Errorf("anthropic key not stored: %s", got.Body)
				}
			}
		})
	}
}
