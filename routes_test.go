package byok_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/stores"
)

// checkKeyHeaders asserts the headers every key response carries.
func checkKeyHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	h := w.Header()
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("security headers missing: %v", h)
	}
	vary := strings.Join(h.Values("Vary"), ",")
	if !strings.Contains(vary, "Accept") || !strings.Contains(vary, "HX-Request") {
		t.Fatalf("Vary = %q", vary)
	}
}

func TestRoutesByKind(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			a := newApp(t)
			check := func(step string, w *httptest.ResponseRecorder, status int, contains ...string) {
				t.Helper()
				if w.Code != status {
					t.Fatalf("%s: status %d, want %d; body %s", step, w.Code, status, w.Body)
				}
				checkKeyHeaders(t, w)
				for _, s := range contains {
					if !strings.Contains(w.Body.String(), s) {
						t.Fatalf("%s: body lacks %q:\n%s", step, s, w.Body)
					}
				}
				if strings.Contains(w.Body.String(), openAIKey) || strings.Contains(w.Body.String(), openAIKey2) {
					t.Fatalf("%s: body holds the key", step)
				}
			}

			// The empty list.
			w := a.do(req(kind, http.MethodGet, "/keys", nil))
			switch kind {
			case kJSON:
				check("list", w, 200, `"keys":[`, `"provider":"openai"`, `"has_key":false`, `"provider":"anthropic"`)
			case kHTMX:
				check("list", w, 200, `id="byok-dashboard"`)
				if strings.Contains(w.Body.String(), "<html") {
					t.Fatal("htmx list is a whole page")
				}
			default:
				check("list", w, 200, "<!doctype html>", `id="byok-dashboard"`)
				if w.Header().Get("Content-Security-Policy") == "" {
					t.Fatal("page without a CSP")
				}
			}

			// Store a new key.
			w = a.do(req(kind, http.MethodPost, "/keys/openai", keyBody(kind, openAIKey, "7d")))
			switch kind {
			case kJSON:
				check("store", w, http.StatusCreated, `"has_key":true`, `"masked":"sk-…`, `"expires_at":"`)
			case kHTMX:
				check("store", w, 200, `id="byok-card-openai"`, "sk-…", `hx-swap-oob`, "OpenAI key saved")
			default:
				check("store", w, http.StatusSeeOther)
				if loc := w.Header().Get("Location"); loc != "/keys" {
					t.Fatalf("store: Location %q", loc)
				}
				if n := len(w.Header().Values("Set-Cookie")); n != 1 {
					t.Fatalf("store: %d Set-Cookie headers", n)
				}
				w = a.do(req(kind, http.MethodGet, "/keys", nil))
				check("after store", w, 200, "OpenAI key saved", "sk-…")
				w = a.do(req(kind, http.MethodGet, "/keys", nil))
				if strings.Contains(w.Body.String(), "OpenAI key saved") {
					t.Fatal("the flash shows twice")
				}
			}
			if !a.hasKey("openai") {
				t.Fatal("key not stored")
			}

			// Replace it.
			w = a.do(req(kind, http.MethodPost, "/keys/openai", keyBody(kind, openAIKey2, "")))
			switch kind {
			case kJSON:
				check("replace", w, http.StatusOK, `"has_key":true`)
			case kHTMX:
				check("replace", w, 200, "OpenAI key replaced")
			default:
				check("replace", w, http.StatusSeeOther)
			}
			info := a.info("openai")
			if m, _ := info["masked"].(string); !strings.HasSuffix(m, "9876") {
				t.Fatalf("after replace masked = %v", info["masked"])
			}

			// One provider.
			w = a.do(req(kind, http.MethodGet, "/keys/openai", nil))
			switch kind {
			case kJSON:
				check("info", w, 200, `"provider":"openai"`, `"name":"OpenAI"`, `"has_key":true`, `"created_at":"`, `"expired":false`)
				var m map[string]any
				_ = json.Unmarshal(w.Body.Bytes(), &m)
				for _, k := range []string{"provider", "name", "has_key", "masked", "created_at", "expires_at", "expired"} {
					if _, ok := m[k]; !ok {
						t.Fatalf("info lacks %q: %s", k, w.Body)
					}
				}
				if len(m) != 7 {
					t.Fatalf("info has extra fields: %s", w.Body)
				}
			case kHTMX:
				check("info", w, 200, `id="byok-card-openai"`)
			default:
				check("info", w, http.StatusSeeOther)
			}

			// Delete it.
			if kind == kHTML {
				w = a.do(req(kind, http.MethodPost, "/keys/openai/delete", url.Values{}))
			} else {
				w = a.do(req(kind, http.MethodDelete, "/keys/openai", nil))
			}
			switch kind {
			case kJSON:
				check("delete", w, http.StatusNoContent)
			case kHTMX:
				check("delete", w, 200, `id="byok-card-openai"`, "OpenAI key removed")
			default:
				check("delete", w, http.StatusSeeOther)
			}
			if a.hasKey("openai") {
				t.Fatal("key not deleted")
			}

			// Clear all.
			a.store("openai", openAIKey, "")
			a.store("anthropic", anthroKey, "")
			if kind == kHTML {
				w = a.do(req(kind, http.MethodPost, "/keys/clear", url.Values{}))
			} else {
				w = a.do(req(kind, http.MethodDelete, "/keys", nil))
			}
			switch kind {
			case kJSON:
				check("clear", w, http.StatusNoContent)
			case kHTMX:
				check("clear", w, 200, `id="byok-dashboard"`, "2 keys removed")
			default:
				check("clear", w, http.StatusSeeOther)
			}
			if a.hasKey("openai") || a.hasKey("anthropic") {
				t.Fatal("keys not cleared")
			}
		})
	}
}

// failingStore fails every call with err.
type failingStore struct{ err error }

func (f failingStore) Put(context.Context, stores.Scope, stores.Record) (bool, error) {
	return false, f.err
}
func (f failingStore) Get(context.Context, stores.Scope, string) (stores.Record, error) {
	return stores.Record{}, f.err
}
func (f failingStore) Delete(context.Context, stores.Scope, string) (bool, error) {
	return false, f.err
}
func (f failingStore) List(context.Context, stores.Scope) ([]stores.Record, error) {
	return nil, f.err
}
func (f failingStore) Clear(context.Context, stores.Scope) (int, error) { return 0, f.err }

func TestErrorCodes(t *testing.T) {
	big := url.Values{"api_key": {strings.Repeat("a", byok.MaxBodyBytes+1)}}
	tests := []struct {
		name   string
		opts   []byok.Option
		prep   func(a *app, kind string)
		req    func(kind string) *http.Request
		code   string
		status int
	}{
		{"rate limited", []byok.Option{byok.WithRateLimit(1, time.Hour)}, func(a *app, kind string) {
			a.setUser("alice") // one bucket per user
			if w := a.do(req(kind, "POST", "/keys/openai", keyBody(kind, openAIKey, ""))); w.Code >= 400 {
				t.Fatalf("first write refused: %d", w.Code)
			}
		}, func(k string) *http.Request { return req(k, "POST", "/keys/openai/delete", nil) }, "rate_limited", 429},
		{"https required", []byok.Option{byok.WithRequireHTTPS(true)}, nil, func(k string) *http.Request {
			return req(k, "GET", "/keys", nil)
		}, "https_required", 403},
		{"https required on write", []byok.Option{byok.WithRequireHTTPS(true)}, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/openai", keyBody(k, openAIKey, ""))
		}, "https_required", 403},
		{"unknown provider get", nil, nil, func(k string) *http.Request { return req(k, "GET", "/keys/nope", nil) }, "unknown_provider", 404},
		{"unknown provider post", nil, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/nope", keyBody(k, openAIKey, ""))
		}, "unknown_provider", 404},
		{"unknown provider delete", nil, nil, func(k string) *http.Request { return req(k, "POST", "/keys/nope/delete", nil) }, "unknown_provider", 404},
		{"short key", nil, nil, func(k string) *http.Request { return req(k, "POST", "/keys/openai", keyBody(k, "sk-short", "")) }, "invalid_key", 422},
		{"wrong prefix", nil, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/anthropic", keyBody(k, openAIKey, ""))
		}, "invalid_key", 422},
		{"empty key", nil, nil, func(k string) *http.Request { return req(k, "POST", "/keys/openai", keyBody(k, "", "")) }, "invalid_key", 422},
		{"ttl not a choice", nil, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/openai", keyBody(k, openAIKey, "3d"))
		}, "invalid_ttl", 422},
		{"ttl garbage", nil, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/openai", keyBody(k, openAIKey, "soon"))
		}, "invalid_ttl", 422},
		{"too large", nil, nil, func(k string) *http.Request { return req(k, "POST", "/keys/openai", big) }, "too_large", 413},
		{"unsupported media type", nil, nil, func(k string) *http.Request {
			r := req(k, "POST", "/keys/openai", "api_key="+openAIKey)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, "unsupported_media_type", 415},
		{"bad json", nil, nil, func(k string) *http.Request {
			r := req(k, "POST", "/keys/openai", `{"api_key":`)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, "bad_request", 400},
		{"cross origin", nil, nil, func(k string) *http.Request {
			r := req(k, "POST", "/keys/openai", keyBody(k, openAIKey, ""))
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, "cross_origin", 403},
		{"cross origin by Origin", nil, nil, func(k string) *http.Request {
			r := req(k, "DELETE", "/keys", nil)
			r.Header.Set("Origin", "https://evil.example")
			return r
		}, "cross_origin", 403},
		{"storage unavailable list", []byok.Option{byok.WithStore(failingStore{stores.ErrUnavailable})}, nil, func(k string) *http.Request {
			return req(k, "GET", "/keys", nil)
		}, "storage_unavailable", 503},
		{"storage unavailable store", []byok.Option{byok.WithStore(failingStore{stores.ErrUnavailable})}, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/openai", keyBody(k, openAIKey, ""))
		}, "storage_unavailable", 503},
		{"storage unavailable clear", []byok.Option{byok.WithStore(failingStore{stores.ErrUnavailable})}, nil, func(k string) *http.Request {
			return req(k, "DELETE", "/keys", nil)
		}, "storage_unavailable", 503},
		{"session full", []byok.Option{byok.WithStore(failingStore{stores.ErrTooLarge})}, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/openai", keyBody(k, openAIKey, ""))
		}, "too_large", 413},
		{"internal", []byok.Option{byok.WithStore(failingStore{errors.New("boom")})}, nil, func(k string) *http.Request {
			return req(k, "POST", "/keys/openai", keyBody(k, openAIKey, ""))
		}, "internal", 500},
	}
	for _, tt := range tests {
		for _, kind := range kinds {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				a := newApp(t, tt.opts...)
				if tt.prep != nil {
					tt.prep(a, kind)
				}
				w := a.do(tt.req(kind))
				if tt.code == "rate_limited" && w.Header().Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
				checkKeyHeaders(t, w)
				switch kind {
				case kJSON:
					if w.Code != tt.status {
						t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
					}
					if got := problemCode(t, w); got != tt.code {
						t.Fatalf("code %q, want %q", got, tt.code)
					}
				case kHTMX:
					want := tt.status
					switch want {
					case 413, 422, 429, 503:
					default:
						want = 200
					}
					if w.Code != want {
						t.Fatalf("htmx status %d, want %d: %s", w.Code, want, w.Body)
					}
					if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("HX-Retarget") == "" {
						t.Fatalf("htmx answer: %v %s", w.Header(), w.Body)
					}
					if strings.Contains(w.Body.String(), "<html") {
						t.Fatal("htmx error is a whole page")
					}
				default:
					if w.Code != tt.status {
						t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
					}
					if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(strings.ToLower(w.Body.String()), "<!doctype html>") {
						t.Fatalf("HTML error is not a page: %v %s", w.Header(), w.Body)
					}
				}
			})
		}
	}
}

func TestInvalidKeyDetail(t *testing.T) {
	a := newApp(t)
	w := a.do(req(kJSON, "POST", "/keys/anthropic", keyBody(kJSON, openAIKey, "")))
	var p struct{ Detail, Provider string }
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if p.Provider != "anthropic" || !strings.Contains(p.Detail, `"sk-ant-"`) {
		t.Fatalf("problem %+v", p)
	}
	if strings.Contains(w.Body.String(), openAIKey) {
		t.Fatal("the key is echoed")
	}
	// The form is shown again with the message under the field, and the key
	// is not put back into the input.
	w = a.do(req(kHTML, "POST", "/keys/anthropic", keyBody(kHTML, openAIKey, "")))
	if w.Code != 422 || !strings.Contains(w.Body.String(), `&#34;sk-ant-&#34;`) || strings.Contains(w.Body.String(), openAIKey) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestAssets(t *testing.T) {
	a := newApp(t)
	w := a.do(httptest.NewRequest(http.MethodGet, "/keys/assets/byok.js?v=1", nil))
	if w.Code != 200 || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Fatalf("content type %q", ct)
	}
	for _, p := range []string{"/keys/assets/", "/keys/assets/nope.js", "/keys/assets/../plugin.go", "/keys/assets/%2e%2e/x"} {
		if w := a.do(httptest.NewRequest(http.MethodGet, p, nil)); w.Code != 404 {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
}

func TestOpenRedirect(t *testing.T) {
	bad := []string{
		"https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example", "/%2F%2Fevil.example",
		"javascript:alert(1)", "http:/evil.example", "/@evil.example", " //evil.example", "/%0d%0aSet-Cookie:x=1",
	}
	a := newApp(t)
	for _, next := range bad {
		t.Run(next, func(t *testing.T) {
			for _, r := range []*http.Request{
				req(kHTML, "POST", "/keys/openai", url.Values{"api_key": {openAIKey}, "next": {next}}),
				req(kHTML, "POST", "/keys/openai?next="+url.QueryEscape(next), url.Values{"api_key": {openAIKey}}),
				req(kHTML, "POST", "/keys/openai/delete", url.Values{"next": {next}}),
				req(kHTML, "POST", "/keys/clear", url.Values{"next": {next}}),
			} {
				w := a.do(r)
				if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/keys" {
					t.Fatalf("%s %s: %d Location %q", r.Method, r.URL, w.Code, w.Header().Get("Location"))
				}
			}
			// The page does not carry an unsafe next into its forms.
			w := a.do(req(kHTML, "GET", "/keys?next="+url.QueryEscape(next), nil))
			if strings.Contains(w.Body.String(), "evil.example") {
				t.Fatalf("unsafe next in page: %s", w.Body)
			}
		})
	}
	w := a.do(req(kHTML, "POST", "/keys/openai", url.Values{"api_key": {openAIKey}, "next": {"/chat?x=1"}}))
	if w.Header().Get("Location") != "/chat?x=1" {
		t.Fatalf("safe next: Location %q", w.Header().Get("Location"))
	}
}

func TestDeleteAndClearBothWays(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			a := newApp(t)
			for _, r := range []func() *http.Request{
				func() *http.Request { return req(kind, http.MethodDelete, "/keys/openai", nil) },
				func() *http.Request { return req(kind, http.MethodPost, "/keys/openai/delete", url.Values{}) },
			} {
				a.store("openai", openAIKey, "")
				if w := a.do(r()); w.Code >= 400 {
					t.Fatalf("delete: %d %s", w.Code, w.Body)
				}
				if a.hasKey("openai") {
					t.Fatal("not deleted")
				}
			}
			for _, r := range []func() *http.Request{
				func() *http.Request { return req(kind, http.MethodDelete, "/keys", nil) },
				func() *http.Request { return req(kind, http.MethodPost, "/keys/clear", url.Values{}) },
			} {
				a.store("openai", openAIKey, "")
				a.store("anthropic", anthroKey, "")
				if w := a.do(r()); w.Code >= 400 {
					t.Fatalf("clear: %d %s", w.Code, w.Body)
				}
				if a.hasKey("openai") || a.hasKey("anthropic") {
					t.Fatal("not cleared")
				}
			}
			// Deleting what is not there is fine.
			if w := a.do(req(kind, http.MethodDelete, "/keys/openai", nil)); w.Code >= 400 {
				t.Fatalf("delete of nothing: %d", w.Code)
			}
		})
	}
}

func TestKeyShapeAndBodyLimits(t *testing.T) {
	a := newApp(t)
	for _, key := range []string{
		"sk-has space-0123456789abcdef", "sk-tab\t0123456789abcdefghij", "sk-newline\n0123456789abcdef",
		"sk-ünïcødé-0123456789abcdefgh", "sk-nul\x00-0123456789abcdefghij", "sk-" + strings.Repeat("a", 600),
		"sk-<script>alert(1)</script>aaaa", strings.Repeat("a", 5000),
	} {
		w := a.do(req(kJSON, http.MethodPost, "/keys/openai", keyBody(kJSON, key, "")))
		if w.Code != 422 || problemCode(t, w) != "invalid_key" {
			t.Fatalf("key %.20q: %d %s", key, w.Code, w.Body)
		}
	}
	// Surrounding white space (a paste) is trimmed.
	a.store("openai", "  "+openAIKey+"\r\n", "")
	if m, _ := a.info("openai")["masked"].(string); !strings.HasSuffix(m, "mnop") {
		t.Fatalf("masked %q", m)
	}
	// A body over 1 MiB without a Content-Length (chunked) is cut off too.
	for _, body := range []any{
		url.Values{"api_key": {strings.Repeat("a", byok.MaxBodyBytes)}},
		map[string]string{"api_key": strings.Repeat("a", byok.MaxBodyBytes)},
	} {
		r := req(kJSON, http.MethodPost, "/keys/openai", body)
		r.ContentLength = -1
		w := a.do(r)
		if w.Code != 413 || problemCode(t, w) != "too_large" {
			t.Fatalf("chunked large body: %d %s", w.Code, w.Body)
		}
	}
}
