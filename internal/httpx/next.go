package httpx

import (
	"net/url"
	"strings"
)

// maxNextLen bounds a "next" value; longer ones are not worth the risk.
const maxNextLen = 2048

// SafeNext returns next when it is a same-site relative path that is safe
// to redirect to, and fallback otherwise (or "/" when fallback itself is
// not safe).
//
// A safe next starts with a single "/" (not "//" nor "/\"), is printable
// ASCII without spaces or backslashes, has no scheme, host or user info,
// no "@" in its path, and stays so after being percent-decoded once (so
// "/%2F%2Fevil.example" and "/%5Cevil.example" are refused). The value is
// returned as given, not decoded.
func SafeNext(next, fallback string) string {
	if isSafeNext(next) {
		return next
	}
	if isSafeNext(fallback) {
		return fallback
	}
	return "/"
}

// IsSafeNext reports whether SafeNext would keep s.
func IsSafeNext(s string) bool { return isSafeNext(s) }

func isSafeNext(s string) bool {
	if s == "" || len(s) > maxNextLen || !safeShape(s, false) {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// Decode once and check again: a browser or a later redirect may
	// decode what we saw encoded.
	dec, err := url.PathUnescape(s)
	if err != nil || !safeShape(dec, true) {
		return false
	}
	if u2, err := url.Parse(dec); err != nil || u2.Scheme != "" || u2.Host != "" || u2.User != nil || u2.Opaque != "" {
		return false
	}
	return true
}

// safeShape checks the characters and the start of a candidate path. The
// raw value must be printable ASCII without spaces; its decoded form may
// hold spaces and UTF-8 (from %20, %E2…) but no control characters.
func safeShape(s string, decoded bool) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' || (!decoded && (c == ' ' || c > 0x7f)) {
			return false
		}
	}
	path := s
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return !strings.Contains(path, "@")
}
