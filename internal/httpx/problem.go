package httpx

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TypeBase is the start of every problem type URI; the stable code follows
// it, e.g. TypeBase + "key_required".
const TypeBase = "https://github.com/ginbyok/byok/blob/main/docs/errors.md#"

// ProblemContentType is the media type of a problem response (RFC 9457).
const ProblemContentType = "application/problem+json"

// The stable problem codes. Clients switch on these, never on Title or
// Detail, which are for people and may be reworded.
const (
	CodeKeyRequired          = "key_required"           // 403: the route needs a key the user has not stored
	CodeUnknownProvider      = "unknown_provider"       // 404: no such provider is configured
	CodeInvalidKey           = "invalid_key"            // 422: the key is malformed or the provider rejected it
	CodeInvalidTTL           = "invalid_ttl"            // 422: the ttl is not one of the allowed choices
	CodeTooLarge             = "too_large"              // 413: the request body is over the limit
	CodeCrossOrigin          = "cross_origin"           // 403: an unsafe request came from another origin
	CodeRateLimited          = "rate_limited"           // 429: too many key writes; see Retry-After
	CodeHTTPSRequired        = "https_required"         // 403: keys are only accepted over HTTPS
	CodeStorageUnavailable   = "storage_unavailable"    // 503: the key store could not be reached
	CodeBadRequest           = "bad_request"            // 400: the request could not be read
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeUnsupportedMediaType = "unsupported_media_type" // 415: the body is neither a form nor JSON
)

// Problem is an RFC 9457 problem detail with byok's stable Code. It is
// written as application/problem+json to JSON clients, and rendered as a
// page or fragment for browsers and htmx. It never carries a key.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Code     string `json:"code"`
	Instance string `json:"instance,omitempty"`
	// Provider names the provider the problem is about, if any.
	Provider string `json:"provider,omitempty"`
	// FormURL is where the user can enter the missing or rejected key.
	FormURL string `json:"form_url,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header (rate_limited).
	RetryAfter int `json:"-"`
}

// Error makes a Problem usable as an error; it returns the code and title.
func (p Problem) Error() string { return p.Code + ": " + p.Title }

// newProblem fills Type from the code.
func newProblem(code string, status int, title, detail string) Problem {
	return Problem{Type: TypeBase + code, Code: code, Status: status, Title: title, Detail: detail}
}

// KeyRequired is the 403 for a guarded route whose key is missing or
// expired. displayName is the provider's human name (the id is used when
// empty); formURL is where to enter it.
func KeyRequired(provider, displayName, formURL string) Problem {
	if displayName == "" {
		displayName = provider
	}
	p := newProblem(CodeKeyRequired, http.StatusForbidden, "API key required",
		fmt.Sprintf("This needs your %s API key. Add it, then try again.", displayName))
	p.Provider = provider
	p.FormURL = formURL
	return p
}

// UnknownProvider is the 404 for a provider name that is not configured.
// The name is not echoed (it is user input); only the fact is stated.
func UnknownProvider() Problem {
	return newProblem(CodeUnknownProvider, http.StatusNotFound, "Unknown provider",
		"There is no provider by that name here.")
}

// InvalidKey is the 422 for a key that failed the format check or was
// rejected by the provider. detail says why, and must not contain the key.
func InvalidKey(provider, detail string) Problem {
	if detail == "" {
		detail = "That does not look like a valid API key."
	}
	p := newProblem(CodeInvalidKey, http.StatusUnprocessableEntity, "Invalid API key", detail)
	p.Provider = provider
	return p
}

// InvalidTTL is the 422 for a ttl that is not one of allowed (which are
// listed in the detail, e.g. "30m, 2h, 24h, never").
func InvalidTTL(allowed []string) Problem {
	d := "Choose how long to keep the key from the offered choices."
	if len(allowed) > 0 {
		d = "Choose how long to keep the key: " + strings.Join(allowed, ", ") + "."
	}
	return newProblem(CodeInvalidTTL, http.StatusUnprocessableEntity, "Invalid expiry", d)
}

// TooLarge is the 413 for a body over limit bytes.
func TooLarge(limit int64) Problem {
	return newProblem(CodeTooLarge, http.StatusRequestEntityTooLarge, "Request too large",
		fmt.Sprintf("The request is larger than the %s this form accepts.", byteSize(limit)))
}

// CrossOrigin is the 403 for an unsafe request from another origin.
func CrossOrigin() Problem {
	return newProblem(CodeCrossOrigin, http.StatusForbidden, "Cross-origin request refused",
		"This change must be made from this site's own pages.")
}

// RateLimited is the 429 for too many key writes; retryAfter is rounded up
// to whole seconds (at least 1) and sent as Retry-After.
func RateLimited(retryAfter time.Duration) Problem {
	secs := max(int((retryAfter+time.Second-1)/time.Second), 1)
	p := newProblem(CodeRateLimited, http.StatusTooManyRequests, "Too many attempts",
		fmt.Sprintf("Too many key changes. Try again in %s.", seconds(secs)))
	p.RetryAfter = secs
	return p
}

// HTTPSRequired is the 403 for a plain-HTTP request where HTTPS is required.
func HTTPSRequired() Problem {
	return newProblem(CodeHTTPSRequired, http.StatusForbidden, "HTTPS required",
		"API keys are only accepted over a secure (HTTPS) connection.")
}

// StorageUnavailable is the 503 for a key store that failed. It never says
// why: the cause is logged, not shown.
func StorageUnavailable() Problem {
	return newProblem(CodeStorageUnavailable, http.StatusServiceUnavailable, "Key storage unavailable",
		"Your keys cannot be reached right now. Nothing was changed. Please try again shortly.")
}

// BadRequest is the 400 for a request that could not be read; detail must
// not echo user input.
func BadRequest(detail string) Problem {
	if detail == "" {
		detail = "The request could not be read."
	}
	return newProblem(CodeBadRequest, http.StatusBadRequest, "Bad request", detail)
}

// MethodNotAllowed is the 405; allowed is sent by the caller as Allow.
func MethodNotAllowed() Problem {
	return newProblem(CodeMethodNotAllowed, http.StatusMethodNotAllowed, "Method not allowed",
		"This address does not accept that kind of request.")
}

// UnsupportedMediaType is the 415 for a body that is neither a form nor JSON.
func UnsupportedMediaType() Problem {
	return newProblem(CodeUnsupportedMediaType, http.StatusUnsupportedMediaType, "Unsupported media type",
		"Send the key as a form (application/x-www-form-urlencoded) or as JSON.")
}

// WriteProblem writes p as application/problem+json with its status, the
// security headers and, when set, Retry-After.
func WriteProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	SecurityHeaders(h)
	h.Set("Content-Type", ProblemContentType)
	h.Del("Content-Length")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this struct; stay well-formed anyway
		body = []byte(`{"type":"about:blank","title":"Error","status":500,"code":"internal"}`)
		p.Status = http.StatusInternalServerError
	}
	w.WriteHeader(statusOr500(p.Status))
	_, _ = w.Write(body)
}

var problemPage = template.Must(template.New("problem").Parse(
	`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
		`<title>{{.Title}}</title></head><body><main><h1>{{.Title}}</h1><p>{{.Detail}}</p>` +
		`{{if .FormURL}}<p><a href="{{.FormURL}}">Add the key</a></p>{{end}}</main></body></html>`))

var problemFragment = template.Must(template.New("problem").Parse(
	`<div role="alert" class="alert alert-error" data-problem="{{.Code}}"><strong>{{.Title}}</strong> <span>{{.Detail}}</span>` +
		`{{if .FormURL}} <a href="{{.FormURL}}">Add the key</a>{{end}}</div>`))

// WriteProblemHTML writes p as a minimal, escaped text/html answer: a whole
// page with p's status for a browser, or, when htmx is true, an alert
// fragment with status 200 so that htmx swaps it in (htmx does not swap 4xx
// and 5xx answers by default). It is the fallback when no template renders
// problems. Retry-After is sent as with WriteProblem.
func WriteProblemHTML(w http.ResponseWriter, p Problem, htmx bool) {
	h := w.Header()
	SecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Del("Content-Length")
	if p.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	var sb strings.Builder
	t, status := problemPage, statusOr500(p.Status)
	if htmx {
		t, status = problemFragment, http.StatusOK
	}
	if err := t.Execute(&sb, p); err != nil {
		sb.Reset()
		sb.WriteString("<p>Error</p>")
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(sb.String()))
}

func statusOr500(s int) int {
	if s < 400 || s > 599 {
		return http.StatusInternalServerError
	}
	return s
}

func seconds(n int) string {
	if n == 1 {
		return "1 second"
	}
	if n < 120 {
		return strconv.Itoa(n) + " seconds"
	}
	return strconv.Itoa((n+59)/60) + " minutes"
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}
