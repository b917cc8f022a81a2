package reliability_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ginbyok/byok"
)

// The fuzz targets of this package drive the plugin through its public
// HTTP surface, in-process, on the embedded default without a database
// (signed, encrypted cookie sessions), so they need no services. Their seed
// corpora are in testdata/fuzz/<target>/ and run with every `go test`;
// scripts/soak.sh fuzzes each for a bounded time. The parsers below them
// have targets of their own in their packages: encrypt (FuzzOpen,
// FuzzParseSecret), stores/session (FuzzDecode), stores/redisstore
// (FuzzDecodeValues), stores/hybrid (FuzzDecodeCache), internal/httpx
// (FuzzSafeNext, FuzzKindOf) and the root package (FuzzParseTTL,
// FuzzCheckFormat, FuzzCheckKeyMessage).

// fuzzStack is the stack every fuzz target uses; checked after each input
// for a recovered panic. Its log is discarded: kept, it would grow with
// every input of a long run.
func fuzzStack(f *testing.F) *stack {
	return newStack(f, byok.WithLogger(slog.New(slog.DiscardHandler)))
}

// serve runs one request in-process and fails on a recovered panic.
func (s *stack) serve(t *testing.T, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	if p := s.panics.String(); p != "" {
		t.Fatalf("gin recovered a panic:\n%s", p)
	}
	return w
}

// postKey builds a POST of body to the provider's route.
func postKey(provider, contentType string, body []byte, accept string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/keys/"+provider, bytes.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("Accept", accept)
	return r
}

// checkKeyAnswer holds for every answer to a key write: a known status;
// a problem with a known code for a refusal; key info for a success; and
// never the key itself in the body or a header.
func checkKeyAnswer(t *testing.T, w *httptest.ResponseRecorder, key string) {
	t.Helper()
	r := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	switch w.Code {
	case http.StatusOK, http.StatusCreated:
		var info struct {
			Provider string `json:"provider"`
			HasKey   bool   `json:"has_key"`
			Masked   string `json:"masked"`
		}
		if err := json.Unmarshal(r.body, &info); err != nil || !info.HasKey || info.Provider != "openai" {
			t.Fatalf("success without key info: %s", r)
		}
		if utf8.RuneCountInString(info.Masked) > 1+max(4, utf8.RuneCountInString(strings.TrimSpace(key))/4) {
			t.Fatalf("masked %q shows more than a quarter of the key", info.Masked)
		}
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		p, ok := problemOf(r)
		if !ok || !slices.Contains([]string{"bad_request", "too_large", "invalid_key", "invalid_ttl"}, p.Code) {
			t.Fatalf("refusal that is not a known problem: %s", r)
		}
	default:
		t.Fatalf("unexpected status: %s", r)
	}
	key = strings.TrimSpace(key)
	if len(key) >= 16 && strings.ContainsAny(key, "0123456789") {
		if bytes.Contains(r.body, []byte(key)) || strings.Contains(headerText(r.header), key) {
			t.Fatalf("the answer echoes the key: %s", r)
		}
	}
}

// FuzzKeyBodyJSON posts arbitrary bytes as a JSON key body.
func FuzzKeyBodyJSON(f *testing.F) {
	s := fuzzStack(f)
	f.Add([]byte(`{"api_key":"sk-rel-0123456789abcdefghij"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v struct {
			APIKey string `json:"api_key"`
		}
		_ = json.Unmarshal(body, &v)
		w := s.serve(t, postKey("openai", "application/json", body, "application/json"))
		checkKeyAnswer(t, w, v.APIKey)
	})
}

// FuzzKeyBodyForm posts arbitrary bytes as a url-encoded form.
func FuzzKeyBodyForm(f *testing.F) {
	s := fuzzStack(f)
	f.Add([]byte("api_key=sk-rel-0123456789abcdefghij&ttl=24h"))
	f.Fuzz(func(t *testing.T, body []byte) {
		vals, _ := url.ParseQuery(string(body))
		w := s.serve(t, postKey("openai", "application/x-www-form-urlencoded", body, "application/json"))
		checkKeyAnswer(t, w, vals.Get("api_key"))
	})
}

// FuzzKeyFields sends the same api_key, ttl and next as a JSON client and
// as a browser form. Both must agree on whether the key is stored; the
// browser's redirect must stay on this site; neither echoes the key.
func FuzzKeyFields(f *testing.F) {
	s := fuzzStack(f)
	f.Add("sk-rel-0123456789abcdefghij", "24h", "/chat")
	f.Fuzz(func(t *testing.T, key, ttl, next string) {
		m := map[string]string{"api_key": key, "next": next}
		form := url.Values{"api_key": {key}, "next": {next}}
		if ttl != "" {
			m["ttl"] = ttl
			form.Set("ttl", ttl)
		}
		jb, _ := json.Marshal(m)
		jw := s.serve(t, postKey("openai", "application/json", jb, "application/json"))
		// JSON replaces invalid UTF-8 with U+FFFD; judge the key as sent.
		var sent struct {
			APIKey string `json:"api_key"`
		}
		_ = json.Unmarshal(jb, &sent)
		checkKeyAnswer(t, jw, sent.APIKey)

		fw := s.serve(t, postKey("openai", "application/x-www-form-urlencoded", []byte(form.Encode()), "text/html"))
		stored := fw.Code == http.StatusSeeOther
		if (jw.Code/100 == 2) != stored && utf8.ValidString(key) && utf8.ValidString(ttl) {
			t.Fatalf("JSON answered %d, the form %d, for the same fields", jw.Code, fw.Code)
		}
		if stored {
			loc := fw.Header().Get("Location")
			if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") ||
				strings.ContainsAny(loc, "\\\r\n\t\x00") {
				t.Fatalf("redirect after storing leaves the site: next %q → Location %q", next, loc)
			}
			if u, err := url.Parse(loc); err != nil || u.Scheme != "" || u.Host != "" {
				t.Fatalf("redirect after storing leaves the site: next %q → Location %q", next, loc)
			}
		} else if fw.Code >= 500 || fw.Code < 400 {
			t.Fatalf("form answered %d", fw.Code)
		}
		if k := strings.TrimSpace(key); len(k) >= 16 && strings.ContainsAny(k, "0123456789") &&
			(strings.Contains(fw.Body.String(), k) || strings.Contains(headerText(fw.Header()), k)) {
			t.Fatal("the form answer echoes the key")
		}
	})
}

// FuzzSessionCookie sends an arbitrary value as the plugin's session
// cookie. A forged cookie is an empty session: the list answers 200 with
// no key, the guarded route refuses with key_required, and a key can be
// stored.
func FuzzSessionCookie(f *testing.F) {
	s := fuzzStack(f)
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, value string) {
		withCookie := func(r *http.Request) *http.Request {
			r.Header.Set("Cookie", "byok="+value)
			r.Header.Set("Accept", "application/json")
			return r
		}
		w := s.serve(t, withCookie(httptest.NewRequest(http.MethodGet, "/keys", nil)))
		if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"has_key":true`) {
			t.Fatalf("list with a forged cookie: %d %s", w.Code, w.Body)
		}
		w = s.serve(t, withCookie(httptest.NewRequest(http.MethodGet, "/use/openai", nil)))
		if !isProblem(response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}, http.StatusForbidden, "key_required") {
			t.Fatalf("guarded route with a forged cookie: %d %s", w.Code, w.Body)
		}
		r := withCookie(postKey("openai", "application/json", []byte(`{"api_key":"sk-rel-0123456789abcdefghij"}`), "application/json"))
		if w = s.serve(t, r); w.Code != http.StatusCreated {
			t.Fatalf("store with a forged cookie: %d %s", w.Code, w.Body)
		}
	})
}

// FuzzProviderPath posts a valid key to /keys/<name> for an arbitrary name
// (path-escaped, so slashes and dots arrive as the router sees them).
// Only the configured names store a key (and only the plugin's own routes,
// their delete and clear, answer 2xx); every other name is refused without
// a 5xx.
func FuzzProviderPath(f *testing.F) {
	s := fuzzStack(f)
	f.Add("openai")
	body := []byte(`{"api_key":"sk-ant-rel-0123456789abcdefghijklmnopqrstuvwxyz"}`)
	f.Fuzz(func(t *testing.T, name string) {
		u := &url.URL{Path: "/keys/" + name}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.URL, r.RequestURI = u, u.RequestURI()
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json")
		w := s.serve(t, r)
		switch {
		case w.Code >= 500:
			t.Fatalf("POST %s: %d %s", u, w.Code, w.Body)
		case w.Code/100 == 2 && !slices.Contains([]string{"openai", "anthropic", "openai/delete", "anthropic/delete", "clear"}, name):
			t.Fatalf("POST %s stored or deleted a key: %d %s", u, w.Code, w.Body)
		case w.Code == http.StatusNotFound:
			if p, ok := problemOf(response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}); ok && p.Code != "unknown_provider" {
				t.Fatalf("POST %s: 404 with code %q", u, p.Code)
			}
		}
	})
}
