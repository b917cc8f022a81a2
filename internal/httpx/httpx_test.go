package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   Kind
	}{
		{"no headers", nil, HTML},
		{"browser accept", map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, HTML},
		{"curl default", map[string]string{"Accept": "*/*"}, HTML},
		{"json", map[string]string{"Accept": "application/json"}, JSON},
		{"problem json", map[string]string{"Accept": "application/problem+json"}, JSON},
		{"vendor json", map[string]string{"Accept": "application/vnd.api+json"}, JSON},
		{"json preferred by q", map[string]string{"Accept": "text/html;q=0.5, application/json"}, JSON},
		{"html preferred by q", map[string]string{"Accept": "text/html, application/json;q=0.9"}, HTML},
		{"equal q goes html", map[string]string{"Accept": "text/html, application/json"}, HTML},
		{"json refused", map[string]string{"Accept": "application/json;q=0, */*"}, HTML},
		{"json beats wildcard", map[string]string{"Accept": "application/json, */*;q=0.1"}, JSON},
		{"malformed q is zero", map[string]string{"Accept": "application/json;q=abc"}, HTML},
		{"htmx", map[string]string{"HX-Request": "true"}, HTMX},
		{"htmx with html accept", map[string]string{"HX-Request": "true", "Accept": "text/html"}, HTMX},
		{"htmx false", map[string]string{"HX-Request": "false"}, HTML},
		{"json beats htmx", map[string]string{"HX-Request": "true", "Accept": "application/json"}, JSON},
		{"json body, no accept", map[string]string{"Content-Type": "application/json; charset=utf-8"}, JSON},
		{"json body, wildcard accept", map[string]string{"Content-Type": "application/json", "Accept": "*/*"}, JSON},
		{"json body, html accept", map[string]string{"Content-Type": "application/json", "Accept": "text/html"}, HTML},
		{"form body", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, HTML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/keys", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if got := KindOf(r); got != tt.want {
				t.Fatalf("KindOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProblemConstructors(t *testing.T) {
	tests := []struct {
		p      Problem
		code   string
		status int
	}{
		{KeyRequired("openai", "OpenAI", "/keys?need=openai"), CodeKeyRequired, 403},
		{UnknownProvider(), CodeUnknownProvider, 404},
		{InvalidKey("openai", ""), CodeInvalidKey, 422},
		{InvalidTTL([]string{"30m", "never"}), CodeInvalidTTL, 422},
		{TooLarge(1 << 20), CodeTooLarge, 413},
		{CrossOrigin(), CodeCrossOrigin, 403},
		{RateLimited(1500 * time.Millisecond), CodeRateLimited, 429},
		{HTTPSRequired(), CodeHTTPSRequired, 403},
		{StorageUnavailable(), CodeStorageUnavailable, 503},
		{BadRequest(""), CodeBadRequest, 400},
		{MethodNotAllowed(), CodeMethodNotAllowed, 405},
		{UnsupportedMediaType(), CodeUnsupportedMediaType, 415},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			p := tt.p
			if p.Code != tt.code || p.Status != tt.status {
				t.Fatalf("got %s/%d, want %s/%d", p.Code, p.Status, tt.code, tt.status)
			}
			if p.Type != TypeBase+tt.code || p.Title == "" || p.Detail == "" {
				t.Fatalf("incomplete problem: %+v", p)
			}
			w := httptest.NewRecorder()
			WriteProblem(w, p)
			if w.Code != tt.status {
				t.Fatalf("status %d", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != ProblemContentType {
				t.Fatalf("content type %q", ct)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("missing no-store")
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"type", "title", "status", "detail", "code"} {
				if _, ok := got[k]; !ok {
					t.Fatalf("JSON lacks %q: %s", k, w.Body)
				}
			}
			if _, ok := got["RetryAfter"]; ok {
				t.Fatal("RetryAfter leaked into JSON")
			}
			if tt.code == CodeRateLimited && w.Header().Get("Retry-After") != "2" {
				t.Fatalf("Retry-After = %q, want 2", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestKeyRequiredJSON(t *testing.T) {
	w := httptest.NewRecorder()
	WriteProblem(w, KeyRequired("openai", "OpenAI", "/keys?need=openai&next=%2Fchat"))
	var got struct {
		Provider string `json:"provider"`
		FormURL  string `json:"form_url"`
		Detail   string `json:"detail"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Provider != "openai" || got.FormURL != "/keys?need=openai&next=%2Fchat" || !strings.Contains(got.Detail, "OpenAI") {
		t.Fatalf("got %+v", got)
	}
}

func TestWriteProblemHTML(t *testing.T) {
	p := KeyRequired("x", `<script>alert(1)</script>`, `javascript:alert(1)`)
	for _, htmx := range []bool{false, true} {
		w := httptest.NewRecorder()
		WriteProblemHTML(w, p, htmx)
		body := w.Body.String()
		if strings.Contains(body, "<script>") {
			t.Fatalf("unescaped markup: %s", body)
		}
		if strings.Contains(body, `href="javascript:`) {
			t.Fatalf("unsafe URL kept: %s", body)
		}
		want := 403
		if htmx {
			want = 200
		}
		if w.Code != want {
			t.Fatalf("htmx=%v: status %d, want %d", htmx, w.Code, want)
		}
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("headers: %v", w.Header())
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("Vary", "Origin, accept")
	h.Set("Cache-Control", "public, max-age=60")
	SecurityHeaders(h)
	SecurityHeaders(h) // idempotent
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Fatalf("Cache-Control %q", got)
	}
	if got := strings.Join(h.Values("Vary"), ", "); got != "Origin, accept, HX-Request" {
		t.Fatalf("Vary %q", got)
	}
	if h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", h)
	}
	star := http.Header{"Vary": {"*"}}
	SecurityHeaders(star)
	if got := star.Values("Vary"); len(got) != 1 || got[0] != "*" {
		t.Fatalf("Vary * changed: %q", got)
	}
}

func TestSafeNext(t *testing.T) {
	ok := []string{
		"/", "/keys", "/chat?x=1&y=2", "/a/b/../c", "/search?q=a@b.example", "/p#frag",
		"/%E2%9C%93", "/a%20b", "/javascript:alert(1)",
	}
	bad := []string{
		"", "keys", "//evil.example", "///evil.example", `/\evil.example`, `\\evil.example`,
		"https://evil.example", "http:/evil.example", "javascript:alert(1)", "data:text/html,x",
		"/%2F%2Fevil.example", "/%2fevil.example", "/%5Cevil.example", "/%5c%5cevil.example",
		"/\tevil", "/\n/evil.example", "/%09/evil.example", "/%0d%0aSet-Cookie:x", "/%00",
		"/a b", "/@evil.example", "/user@evil.example/x", "/%40evil.example", "/%zz",
		"/é", " /keys", "/keys\x7f", "/" + strings.Repeat("a", maxNextLen),
		"//user:pass@evil.example", "/\\/evil.example",
	}
	for _, s := range ok {
		if got := SafeNext(s, "/fallback"); got != s {
			t.Errorf("SafeNext(%q) = %q, want it kept", s, got)
		}
	}
	for _, s := range bad {
		if got := SafeNext(s, "/fallback"); got != "/fallback" {
			t.Errorf("SafeNext(%q) = %q, want /fallback", s, got)
		}
	}
	if got := SafeNext("//evil.example", "https://evil.example"); got != "/" {
		t.Errorf("unsafe fallback kept: %q", got)
	}
}

// checkSameSite is the property SafeNext promises: resolved against the
// site's own URL, the result never leaves the site, even after the value is
// decoded once more.
func checkSameSite(t *testing.T, in, got string) {
	t.Helper()
	base, _ := url.Parse("https://app.example/page")
	for _, s := range []string{got, mustUnescape(got)} {
		u, err := base.Parse(s)
		if err != nil {
			t.Fatalf("SafeNext(%q) = %q does not parse: %v", in, got, err)
		}
		if u.Host != "app.example" || u.Scheme != "https" || u.User != nil {
			t.Fatalf("SafeNext(%q) = %q leaves the site: %s", in, got, u)
		}
	}
	if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
		t.Fatalf("SafeNext(%q) = %q has an unsafe shape", in, got)
	}
}

func mustUnescape(s string) string {
	d, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return d
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/keys?next=/x", "//evil", `/\evil`, "/%2F%2Fevil", "https://x", "/@x", "/%40x", "/%5C", "/a?b=c@d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SafeNext(in, "/fallback")
		checkSameSite(t, in, got)
	})
}

func FuzzKindOf(f *testing.F) {
	for _, s := range []string{"application/json", "text/html;q=0.1, application/json;q=0.2", "*/*;q=", ";;,,q=1", "a/b;q=1.0000"} {
		f.Add(s, "true")
	}
	f.Fuzz(func(t *testing.T, accept, hx string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept", accept)
		r.Header.Set("HX-Request", hx)
		k := KindOf(r)
		if k != HTML && k != HTMX && k != JSON {
			t.Fatalf("kind %v", k)
		}
	})
}
