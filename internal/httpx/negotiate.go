// Package httpx holds the small HTTP helpers every byok handler shares:
// content negotiation, RFC 9457 problem responses with stable codes, the
// security headers of a key response, and a same-site check for "next".
//
// It depends on net/http only, so both the root package and guards use it.
package httpx

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Kind is the kind of client a request comes from, which decides the shape
// of the answer: a full HTML page, an htmx fragment, or JSON.
type Kind int

// The kinds of client.
const (
	// HTML is a browser navigation or form post: answer with a page or a
	// redirect.
	HTML Kind = iota
	// HTMX is a request made by htmx (HX-Request: true): answer with a
	// fragment, and navigate with HX-Redirect.
	HTMX
	// JSON is an API client: answer with JSON and application/problem+json.
	JSON
)

// String returns "html", "htmx" or "json".
func (k Kind) String() string {
	switch k {
	case HTMX:
		return "htmx"
	case JSON:
		return "json"
	default:
		return "html"
	}
}

// KindOf tells what kind of client sent r.
//
// JSON wins when the Accept header prefers application/json or
// application/problem+json (or any +json type) over HTML by q-value; when
// Accept does not choose (absent, or */* only) a request whose body is
// JSON is answered in JSON too. Otherwise HX-Request: true means htmx, and
// anything else is a browser.
func KindOf(r *http.Request) Kind {
	qJSON, qHTML := acceptQ(r.Header.Values("Accept"))
	switch {
	case qJSON > qHTML:
		return JSON
	case qJSON == qHTML && isJSONContent(r.Header.Get("Content-Type")):
		return JSON
	}
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("HX-Request")), "true") {
		return HTMX
	}
	return HTML
}

// acceptQ returns the best q-value the Accept header gives to JSON and to
// HTML, each in thousandths. A more specific media range overrides a wider
// one for the same type, as RFC 9110 §12.5.1 says; to keep this cheap the
// specificity is per family: exact type, then type/*, then */*.
func acceptQ(values []string) (qJSON, qHTML int) {
	// Best q per specificity level: 2 exact, 1 type/*, 0 */*; -1 unset.
	jsonQ := [3]int{-1, -1, -1}
	htmlQ := [3]int{-1, -1, -1}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, q, ok := parseMediaRange(part)
			if !ok {
				continue
			}
			switch {
			case mt == "*/*":
				jsonQ[0] = max(jsonQ[0], q)
				htmlQ[0] = max(htmlQ[0], q)
			case mt == "application/*":
				jsonQ[1] = max(jsonQ[1], q)
			case mt == "text/*":
				htmlQ[1] = max(htmlQ[1], q)
			case mt == "application/json" || mt == "application/problem+json" ||
				(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")):
				jsonQ[2] = max(jsonQ[2], q)
			case mt == "text/html" || mt == "application/xhtml+xml":
				htmlQ[2] = max(htmlQ[2], q)
			}
		}
	}
	return mostSpecific(jsonQ), mostSpecific(htmlQ)
}

func mostSpecific(q [3]int) int {
	for i := 2; i >= 0; i-- {
		if q[i] >= 0 {
			return q[i]
		}
	}
	return 0
}

// parseMediaRange parses one element of an Accept header into a lower-case
// media range and its q-value in thousandths (1000 when absent).
func parseMediaRange(s string) (string, int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0, false
	}
	mt, params, _ := strings.Cut(s, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if !strings.Contains(mt, "/") {
		return "", 0, false
	}
	q := 1000
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q = parseQ(strings.TrimSpace(v))
	}
	return mt, q, true
}

// parseQ parses a qvalue ("0", "0.5", "1.000") into thousandths; anything
// malformed counts as 0 (not acceptable), which is the cautious reading.
func parseQ(v string) int {
	if v == "" || len(v) > 5 {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return 0
	}
	return int(f*1000 + 0.5)
}

func isJSONContent(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
