package httpx

import (
	"net/http"
	"strings"
)

// SecurityHeaders sets the headers every key response carries:
// Cache-Control: no-store, X-Content-Type-Options: nosniff and
// Referrer-Policy: no-referrer, and adds Accept and HX-Request to Vary
// (appended to what is there, never duplicated, never clobbered).
func SecurityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	AddVary(h, "Accept", "HX-Request")
}

// AddVary adds each field name to h's Vary header unless it is already
// listed (case-insensitively) or Vary is "*".
func AddVary(h http.Header, fields ...string) {
	existing := h.Values("Vary")
	has := func(f string) bool {
		for _, v := range existing {
			for tok := range strings.SplitSeq(v, ",") {
				tok = strings.TrimSpace(tok)
				if tok == "*" || strings.EqualFold(tok, f) {
					return true
				}
			}
		}
		return false
	}
	var add []string
	for _, f := range fields {
		if !has(f) {
			add = append(add, f)
			existing = append(existing, f)
		}
	}
	if len(add) > 0 {
		h.Add("Vary", strings.Join(add, ", "))
	}
}
