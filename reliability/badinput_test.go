package reliability_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/internal/testenv"
)

// hostNotFound marks a request that matches none of the plugin's routes:
// the host's router answers 404 itself (gin's plain "404 page not found"),
// so there is no problem code to check, only that nothing was stored.
const hostNotFound = "(host 404)"

// badCase is one row of the hostile-input table.
type badCase struct {
	name   string
	user   string // "" anonymous
	method string
	path   string
	body   func() io.Reader
	header []string
	want   int
	code   string // the problem code; "" for a success; hostNotFound
	// check, when set, looks further (for example at what was stored).
	check func(t *testing.T, c *client, r response)
}

func jsonBody(v any) func() io.Reader {
	return func() io.Reader {
		b, _ := json.Marshal(v)
		return bytes.NewReader(b)
	}
}

func rawBody(s string) func() io.Reader {
	return func() io.Reader { return strings.NewReader(s) }
}

func formBody(pairs ...string) func() io.Reader {
	return func() io.Reader {
		v := url.Values{}
		for i := 0; i+1 < len(pairs); i += 2 {
			v.Add(pairs[i], pairs[i+1])
		}
		return strings.NewReader(v.Encode())
	}
}

// chunked hides a body's length, so it is sent chunked, without a
// Content-Length the server could refuse up front.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

var (
	okKey    = "sk-rel-" + strings.Repeat("a1B2", 8) // a well-formed OpenAI key
	okKey2   = "sk-rel-" + strings.Repeat("Z9y8", 8)
	jsonCT   = []string{"Content-Type", "application/json"}
	formCT   = []string{"Content-Type", "application/x-www-form-urlencoded"}
	huge     = strings.Repeat("x", byok.MaxBodyBytes+1024)
	tooLong  = "sk-" + strings.Repeat("k", byok.MaxKeyLength+10)
	bigKey   = "sk-" + strings.Repeat("k", 900<<10) // under the body limit, far over any key's
	maxLenOK = "sk-" + strings.Repeat("k", 509)     // OpenAI's MaxLen, 512, exactly
)

func with(h []string, more ...string) []string { return append(append([]string(nil), h...), more...) }

// storedMasked returns the masked key the client's user has for provider,
// or "" for none.
func storedMasked(t *testing.T, c *client, provider string) string {
	t.Helper()
	r := c.do("GET", "/keys/"+provider, nil)
	var info struct {
		HasKey bool   `json:"has_key"`
		Masked string `json:"masked"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &info) != nil {
		t.Fatalf("reading back %s: %s", provider, r)
	}
	if !info.HasKey {
		return ""
	}
	return info.Masked
}

// nothingStored checks that the client's user has no key at all.
func nothingStored(t *testing.T, c *client, _ response) {
	t.Helper()
	for _, p := range providers {
		if m := storedMasked(t, c, p); m != "" {
			t.Errorf("a %s key was stored: %s", p, m)
		}
	}
}

// storedEndsWith checks that the openai key stored ends like key.
func storedEndsWith(key string) func(t *testing.T, c *client, r response) {
	return func(t *testing.T, c *client, _ response) {
		t.Helper()
		if m := storedMasked(t, c, "openai"); !strings.HasSuffix(m, key[len(key)-4:]) {
			t.Errorf("stored key is %q, want one ending in %q", m, key[len(key)-4:])
		}
	}
}

func multipartBody(size int) (func() io.Reader, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("api_key", okKey)
	if size > 0 {
		fw, _ := w.CreateFormFile("junk", "junk.bin")
		_, _ = fw.Write(bytes.Repeat([]byte("j"), size))
	}
	_ = w.Close()
	b := buf.Bytes()
	return func() io.Reader { return bytes.NewReader(b) }, w.FormDataContentType()
}

func badCases() []badCase {
	mpOK, mpOKType := multipartBody(0)
	mpHuge, mpHugeType := multipartBody(byok.MaxBodyBytes + 1024)
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	return []badCase{
		// Sizes.
		{name: "huge JSON body with length", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey, "pad": huge}), header: jsonCT, want: 413, code: "too_large", check: nothingStored},
		{name: "huge JSON body chunked", method: "POST", path: "/keys/openai", body: func() io.Reader { return chunked{jsonBody(map[string]string{"api_key": okKey, "pad": huge})()} }, header: jsonCT, want: 413, code: "too_large", check: nothingStored},
		{name: "huge form body", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey, "pad", huge), header: formCT, want: 413, code: "too_large", check: nothingStored},
		{name: "huge form body chunked", method: "POST", path: "/keys/openai", body: func() io.Reader { return chunked{formBody("api_key", okKey, "pad", huge)()} }, header: formCT, want: 413, code: "too_large", check: nothingStored},
		{name: "huge multipart body", method: "POST", path: "/keys/openai", body: mpHuge, header: []string{"Content-Type", mpHugeType}, want: 413, code: "too_large", check: nothingStored},
		{name: "huge delete body", method: "DELETE", path: "/keys/openai", body: formBody("next", huge), header: formCT, want: 413, code: "too_large"},
		{name: "key over MaxKeyLength", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": tooLong}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "900 KiB key", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": bigKey}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "900 KiB key as a form", method: "POST", path: "/keys/openai", body: formBody("api_key", bigKey), header: formCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "key at the provider's MaxLen", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": maxLenOK}), header: jsonCT, want: 201, check: storedEndsWith(maxLenOK)},
		{name: "key one over the provider's MaxLen", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": maxLenOK + "k"}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},

		// NUL, control characters, invalid UTF-8, lookalikes.
		{name: "NUL in key (JSON)", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey[:10] + "\x00" + okKey[10:]}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "NUL in key (form)", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey[:10]+"\x00"+okKey[10:]), header: formCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "escape sequence in key", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey + "\x1b[31m"}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "DEL in key", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey[:12]+"\x7f"+okKey[12:]), header: formCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "CRLF inside key", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey[:12]+"\r\nSet-Cookie: x=y\r\n"+okKey[12:]), header: formCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "surrounding white space is trimmed", method: "POST", path: "/keys/openai", body: formBody("api_key", " \t"+okKey+"\r\n "), header: formCT, want: 201, check: storedEndsWith(okKey)},
		{name: "invalid UTF-8 in key (JSON)", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + "\xff\xfe" + `"}`), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "invalid UTF-8 in key (form)", method: "POST", path: "/keys/openai", body: rawBody("api_key=" + okKey + "%ff%fe"), header: formCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "fullwidth lookalike key", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": "sk-ｒｅｌ" + okKey[6:]}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "right-to-left override in key", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey + "\u202e"}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "zero-width space in key", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey[:9] + "\u200b" + okKey[9:]}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},

		// Unknown providers and path tricks.
		{name: "unknown provider POST", method: "POST", path: "/keys/nope", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "unknown provider GET", method: "GET", path: "/keys/nope", want: 404, code: "unknown_provider"},
		{name: "unknown provider DELETE", method: "DELETE", path: "/keys/nope", want: 404, code: "unknown_provider"},
		{name: "unknown provider POST delete", method: "POST", path: "/keys/nope/delete", want: 404, code: "unknown_provider"},
		{name: "provider name in upper case", method: "POST", path: "/keys/OpenAI", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "reserved name assets", method: "POST", path: "/keys/assets", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "encoded dot-dot as provider", method: "POST", path: "/keys/%2e%2e", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "double-encoded dot-dot", method: "POST", path: "/keys/%252e%252e", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "dot-dot segment to another provider", method: "POST", path: "/keys/nope/../openai", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: hostNotFound, check: nothingStored},
		{name: "encoded slash dot-dot", method: "POST", path: "/keys/..%2fopenai", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: hostNotFound, check: nothingStored},
		{name: "encoded slash after provider", method: "POST", path: "/keys/openai%2f..", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: hostNotFound, check: nothingStored},
		{name: "encoded backslash", method: "POST", path: "/keys/..%5copenai", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "encoded NUL in provider", method: "POST", path: "/keys/openai%00", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "fullwidth provider name", method: "POST", path: "/keys/" + url.PathEscape("ｏｐｅｎａｉ"), body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "zero-width space after provider", method: "POST", path: "/keys/openai%E2%80%8B", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "invalid UTF-8 provider", method: "POST", path: "/keys/open%ffai", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "10k-character provider", method: "POST", path: "/keys/" + strings.Repeat("a", 10000), body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 404, code: "unknown_provider", check: nothingStored},
		{name: "provider with a trailing slash", method: "POST", path: "/keys/openai/", body: jsonBody(map[string]string{"api_key": okKey}), header: jsonCT, want: 307, code: "", check: nothingStored},

		// Content types and malformed bodies.
		{name: "text/plain", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: []string{"Content-Type", "text/plain"}, want: 415, code: "unsupported_media_type", check: nothingStored},
		{name: "no content type", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), want: 415, code: "unsupported_media_type", check: nothingStored},
		{name: "application/xml", method: "POST", path: "/keys/openai", body: rawBody("<api_key>" + okKey + "</api_key>"), header: []string{"Content-Type", "application/xml"}, want: 415, code: "unsupported_media_type", check: nothingStored},
		{name: "malformed content type", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: []string{"Content-Type", ";;;=="}, want: 415, code: "unsupported_media_type", check: nothingStored},
		{name: "content type without subtype", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: []string{"Content-Type", "json"}, want: 415, code: "unsupported_media_type", check: nothingStored},
		// mime.ParseMediaType gives the media type with ErrInvalidMediaParameter:
		// the body is read as what the type says.
		{name: "JSON with malformed parameters", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: []string{"Content-Type", "application/json;;;=="}, want: 201, check: storedEndsWith(okKey)},
		{name: "+json content type", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: []string{"Content-Type", "application/merge-patch+json"}, want: 201, check: storedEndsWith(okKey)},
		{name: "multipart form", method: "POST", path: "/keys/openai", body: mpOK, header: []string{"Content-Type", mpOKType}, want: 201, check: storedEndsWith(okKey)},
		{name: "JSON syntax error", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":`), header: jsonCT, want: 400, code: "bad_request", check: nothingStored},
		{name: "JSON array", method: "POST", path: "/keys/openai", body: rawBody(`["` + okKey + `"]`), header: jsonCT, want: 400, code: "bad_request", check: nothingStored},
		{name: "two JSON objects", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + `"}{"api_key":"` + okKey2 + `"}`), header: jsonCT, want: 400, code: "bad_request", check: nothingStored},
		{name: "api_key a number", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":12345678901234567890}`), header: jsonCT, want: 400, code: "bad_request", check: nothingStored},
		{name: "empty JSON body", method: "POST", path: "/keys/openai", body: rawBody(""), header: jsonCT, want: 400, code: "bad_request", check: nothingStored},
		{name: "deeply nested ttl", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + `","ttl":` + deep + `}`), header: jsonCT, want: 400, code: "bad_request", check: nothingStored},

		// Missing and repeated fields, ttl.
		{name: "empty JSON object", method: "POST", path: "/keys/openai", body: rawBody(`{}`), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "ttl without key", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"ttl": "24h"}), header: jsonCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "empty form", method: "POST", path: "/keys/openai", body: rawBody(""), header: formCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "empty api_key field", method: "POST", path: "/keys/openai", body: formBody("api_key", ""), header: formCT, want: 422, code: "invalid_key", check: nothingStored},
		{name: "repeated api_key in a form: the first counts", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey, "api_key", okKey2), header: formCT, want: 201, check: storedEndsWith(okKey)},
		{name: "repeated api_key in JSON: the last counts", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + `","api_key":"` + okKey2 + `"}`), header: jsonCT, want: 201, check: storedEndsWith(okKey2)},
		{name: "repeated ttl in a form: the first counts", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey, "ttl", "2h", "ttl", "forever"), header: formCT, want: 201, check: storedEndsWith(okKey)},
		{name: "ttl not a duration", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey, "ttl": "forever"}), header: jsonCT, want: 422, code: "invalid_ttl", check: nothingStored},
		{name: "ttl not a choice", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey, "ttl": "1h"}), header: jsonCT, want: 422, code: "invalid_ttl", check: nothingStored},
		{name: "ttl negative", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey, "ttl", "-24h"), header: formCT, want: 422, code: "invalid_ttl", check: nothingStored},
		{name: "ttl huge", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey, "ttl", "99999999999999999999d"), header: formCT, want: 422, code: "invalid_ttl", check: nothingStored},
		{name: "ttl a number", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + `","ttl":86400}`), header: jsonCT, want: 422, code: "invalid_ttl", check: nothingStored},
		{name: "empty ttl string in JSON", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + `","ttl":""}`), header: jsonCT, want: 422, code: "invalid_ttl", check: nothingStored},
		{name: "empty ttl field in a form means the default", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey, "ttl", ""), header: formCT, want: 201, check: storedEndsWith(okKey)},
		{name: "ttl null means the default", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + `","ttl":null}`), header: jsonCT, want: 201, check: storedEndsWith(okKey)},
		{name: "extra user_id field is ignored", user: "mallory", method: "POST", path: "/keys/openai", body: rawBody(`{"api_key":"` + okKey + `","user_id":"victim","provider":"anthropic"}`), header: jsonCT, want: 201,
			check: func(t *testing.T, c *client, r response) {
				storedEndsWith(okKey)(t, c, r)
				nothingStored(t, c.s.client("victim"), r)
				if m := storedMasked(t, c, "anthropic"); m != "" {
					t.Errorf("the body's provider field was used: %s", m)
				}
			}},

		// Cross-origin writes.
		{name: "cross-site POST", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: with(jsonCT, "Sec-Fetch-Site", "cross-site"), want: 403, code: "cross_origin", check: nothingStored},
		{name: "same-site (other subdomain) POST", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: with(jsonCT, "Sec-Fetch-Site", "same-site"), want: 403, code: "cross_origin", check: nothingStored},
		{name: "foreign Origin POST", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: with(jsonCT, "Origin", "https://evil.example"), want: 403, code: "cross_origin", check: nothingStored},
		{name: "Origin null POST", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: with(jsonCT, "Origin", "null"), want: 403, code: "cross_origin", check: nothingStored},
		{name: "cross-site form POST", method: "POST", path: "/keys/openai", body: formBody("api_key", okKey), header: with(formCT, "Sec-Fetch-Site", "cross-site"), want: 403, code: "cross_origin", check: nothingStored},
		{name: "cross-site DELETE", method: "DELETE", path: "/keys/openai", header: []string{"Sec-Fetch-Site", "cross-site"}, want: 403, code: "cross_origin"},
		{name: "cross-site clear", method: "POST", path: "/keys/clear", header: []string{"Origin", "https://evil.example"}, want: 403, code: "cross_origin"},
		{name: "cross-site DELETE all", method: "DELETE", path: "/keys", header: []string{"Sec-Fetch-Site", "cross-site"}, want: 403, code: "cross_origin"},
		{name: "same-origin POST", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: with(jsonCT, "Sec-Fetch-Site", "same-origin"), want: 201, check: storedEndsWith(okKey)},
		{name: "cross-site GET is allowed", method: "GET", path: "/keys", header: []string{"Sec-Fetch-Site", "cross-site"}, want: 200},

		// Forged session cookies: a new, empty session, never an error.
		{name: "garbage session cookie", method: "GET", path: "/keys", header: []string{"Cookie", "byok=garbage"}, want: 200},
		{name: "base64 session cookie", method: "GET", path: "/keys", header: []string{"Cookie", "byok=" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 120))}, want: 200},
		{name: "4 KiB session cookie", method: "GET", path: "/keys", header: []string{"Cookie", "byok=" + strings.Repeat("A", 4096)}, want: 200},
		{name: "session cookie with NUL and quotes", method: "GET", path: "/keys", header: []string{"Cookie", `byok="\x00\x01"`}, want: 200},
		{name: "forged cookie on a write", method: "POST", path: "/keys/openai", body: jsonBody(map[string]string{"api_key": okKey}), header: with(jsonCT, "Cookie", "byok=AAAA"), want: 201, check: storedEndsWith(okKey)},
		{name: "forged cookie on a guarded route", method: "GET", path: "/use/openai", header: []string{"Cookie", "byok=AAAA"}, want: 403, code: "key_required"},
	}
}

// TestBadInput sends the hostile-input table to the embedded default
// (cookie sessions, SQLite) and to Redis sessions with PostgreSQL, each case
// from a fresh client, anonymous and signed in. Each gets its documented
// status and problem code, nothing is stored where nothing should be, and
// the server stays up with no panic recovered.
func TestBadInput(t *testing.T) {
	for _, name := range []string{"cookie+sqlite", "redis+postgres"} {
		t.Run(name, func(t *testing.T) {
			var rdb *redis.Client
			var prefix string
			opts := []byok.Option{byok.WithDB(testenv.SQLite(t))}
			if name == "redis+postgres" {
				rdb, prefix = sharedRedis(t)
				opts = []byok.Option{byok.WithDB(testenv.Postgres(t)), byok.WithRedis(rdb), byok.WithRedisPrefix(prefix)}
			}
			s := newStack(t, opts...)
			var counts counter
			// JSON clients, anonymous and signed in, get every case; browsers
			// and htmx get the refusals, with the same status (htmx: the
			// status the plugin's page lets htmx swap).
			for _, who := range []string{"anonymous", "signed-in", "browser", "htmx"} {
				for i, tc := range badCases() {
					html := who == "browser" || who == "htmx"
					if html && (tc.code == "" || tc.code == hostNotFound || tc.code == "key_required") {
						continue
					}
					t.Run(who+"/"+tc.name, func(t *testing.T) {
						user := tc.user
						switch {
						case user != "":
							user += "-" + who
						case who == "signed-in":
							user = fmt.Sprintf("user-%03d", i)
						}
						c := s.client(user)
						var body io.Reader
						if tc.body != nil {
							body = tc.body()
						}
						header, want := tc.header, tc.want
						switch who {
						case "browser":
							header = with(header, "Accept", "text/html")
						case "htmx":
							header = with(header, "Accept", "text/html", "HX-Request", "true")
							want = htmxStatus(want)
						}
						r := c.do(tc.method, tc.path, body, header...)
						counts.inc("requests")
						if r.err != nil {
							t.Fatalf("transport error: %v", r.err)
						}
						if r.status != want {
							t.Errorf("status %d, want %d: %s", r.status, want, r)
						}
						switch {
						case html:
							if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
								t.Errorf("a %s client got %s", who, r.header.Get("Content-Type"))
							}
						case tc.code == "":
							if _, isProb := problemOf(r); isProb {
								t.Errorf("a problem where none was expected: %s", r)
							}
						case tc.code == hostNotFound:
						default:
							if p, ok := problemOf(r); !ok || p.Code != tc.code {
								t.Errorf("want problem %q, got %s", tc.code, r)
							}
						}
						for _, k := range []string{okKey, okKey2, bigKey[:64], maxLenOK} {
							if strings.Contains(string(r.body), k) || strings.Contains(headerText(r.header), k) {
								t.Errorf("the response echoes a key")
							}
						}
						if r.status >= 500 {
							counts.inc("5xx")
						}
						if tc.check != nil {
							tc.check(t, c, r)
						}
						counts.inc(who + "." + cmp.Or(tc.code, "ok") + "." + strconv.Itoa(r.status))
					})
				}
			}
			expiredSessions(t, s, rdb, prefix, &counts)
			s.healthy()
			if strings.Contains(strings.ToLower(s.logs.String()), "panic") {
				t.Error("the plugin logged a panic")
			}
			t.Logf("bad input (%s): %d cases, as JSON clients (anonymous and signed in), browsers and htmx (refusals only); outcomes: %s", name, len(badCases()), &counts)
		})
	}
}

// htmxStatus is the status an htmx request gets for a refusal: the
// problem's own for those the plugin's page tells htmx to swap (413, 422,
// 429, 503, and 409), else 200 so that htmx swaps the message in
// (problems.go).
func htmxStatus(status int) int {
	switch status {
	case 409, 413, 422, 429, 503:
		return status
	}
	return 200
}

func headerText(h http.Header) string {
	var sb strings.Builder
	_ = h.Write(&sb)
	return sb.String()
}

// expiredSessions checks that an anonymous visitor's key does not outlive
// the session, and a signed-in user's keys (in SQL) do: for cookie sessions
// the cookies are replayed after the plugin's clock passed their expiry;
// for Redis sessions every session of the stack is made to expire in Redis.
// Either way the old cookie gets an empty session, with 200 and no error.
func expiredSessions(t *testing.T, s *stack, rdb *redis.Client, prefix string, counts *counter) {
	t.Run("expired session", func(t *testing.T) {
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		if rdb == nil {
			// A stack of its own, with a clock the test moves.
			s = newStack(t, byok.WithDB(testenv.SQLite(t)), byok.WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
		}
		anon, alice := s.client(""), s.client("alice-expired")
		for _, c := range []*client{anon, alice} {
			if r := c.setKey("openai", okKey, "never"); r.status != 201 {
				t.Fatalf("store: %s", r)
			}
			if storedMasked(t, c, "openai") == "" {
				t.Fatal("key not stored")
			}
		}
		if rdb == nil {
			now.Add(int64(31 * 24 * time.Hour))
			counts.inc("expired.cookie_session")
		} else {
			ctx := context.Background()
			var keys []string
			iter := rdb.Scan(ctx, 0, prefix+"sess:*", 500).Iterator()
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
			if err := iter.Err(); err != nil || len(keys) == 0 {
				t.Fatalf("no sessions under %ssess: (%v)", prefix, err)
			}
			for _, k := range keys {
				_ = rdb.PExpire(ctx, k, time.Millisecond).Err()
			}
			time.Sleep(50 * time.Millisecond)
			counts.add("expired.redis_session", len(keys))
		}
		r := anon.do("GET", "/keys/openai", nil)
		if r.status != 200 || strings.Contains(string(r.body), `"has_key":true`) {
			t.Errorf("an expired session still serves its anonymous key: %s", r)
		}
		if _, r := anon.use("openai"); !isProblem(r, 403, "key_required") {
			t.Errorf("guarded route with an expired session: %s", r)
		}
		if got, r := alice.use("openai"); got != sum(okKey) {
			t.Errorf("a signed-in user's key after her session expired: %s", r)
		}
		s.healthy()
	})
}
