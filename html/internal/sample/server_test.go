package sample

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestServerDemo: the demo page names a known provider and 404s for any
// other path value, so the request is never echoed.
func TestServerDemo(t *testing.T) {
	h, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path   string
		status int
		body   string
	}{
		{"/demo/openai", http.StatusOK, "demo page for openai"},
		{"/demo/%3Cscript%3E", http.StatusNotFound, ""},
	} {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if w.Code != tt.status || (tt.body != "" && w.Body.String() != tt.body) || strings.Contains(w.Body.String(), "<script>") {
				t.Fatalf("GET %s = %d %q", tt.path, w.Code, w.Body.String())
			}
		})
	}
}

// TestServerRedirect: after a save, the form's next is followed only when
// it is a same-site path; anything else goes to /keys.
func TestServerRedirect(t *testing.T) {
	h, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ next, want string }{
		{"/demo/openai?model=gpt-4o", "/demo/openai?model=gpt-4o"},
		{"", "/keys"},
		{"https://evil.example/", "/keys"},
		{"//evil.example/", "/keys"},
		{`/\evil.example/`, "/keys"},
		{"/%2F%2Fevil.example", "/keys"},
	} {
		t.Run(tt.next, func(t *testing.T) {
			form := url.Values{"api_key": {"gsk_ABCDEFGHIJKLMNOPQRSTUVWXYZ"}, "next": {tt.next}}
			r := httptest.NewRequest(http.MethodPost, "/keys/groq", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tt.want {
				t.Fatalf("POST next=%q = %d, Location %q; want %q", tt.next, w.Code, w.Header().Get("Location"), tt.want)
			}
		})
	}
}
