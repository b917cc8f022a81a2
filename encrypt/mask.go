package encrypt

import (
	"strings"
	"unicode/utf8"
)

// maskPrefixes are the provider key prefixes Mask shows. Mask picks the
// longest one that fits, so order does not matter.
var maskPrefixes = []string{
	"sk-ant-api03-", "sk-ant-admin01-", "sk-ant-",
	"sk-proj-", "sk-svcacct-", "sk-admin-", "sk-or-v1-", "sk-",
	"sk_", "gsk_", "xai-", "hf_", "pplx-", "AIza", "csk-", "r8_", "fw_",
	"nvapi-", "tgp_v1_", "jina_", "pa-", "ghp_", "github_pat_",
}

// maskEllipsis stands for the hidden characters, however many there are.
const maskEllipsis = "…"

// maskMinLen is the length in characters below which Mask shows nothing.
const maskMinLen = 8

// maskTail is the most trailing characters Mask shows.
const maskTail = 4

// Mask returns a display form of an API key that identifies it to its owner
// without revealing it, such as "sk-proj-…abcd".
//
// The rule, counting characters (runes), with n the key's length:
//   - a key shorter than 8 characters, the empty key included, is "…";
//   - otherwise at most n/4 characters are shown in total: the longest
//     recognised provider prefix (such as "sk-ant-api03-", "sk-proj-",
//     "sk-", "gsk_", "AIza", "hf_") that fits in n/4, then as many of the
//     last 4 characters as still fit; when no recognised prefix fits, the
//     prefix is left out and up to 4 last characters shown.
//
// The hidden part is always a single "…", so the mask does not tell the
// key's length.
func Mask(key string) string {
	n := utf8.RuneCountInString(key)
	if n < maskMinLen {
		return maskEllipsis
	}
	budget := n / 4
	prefix := ""
	for _, p := range maskPrefixes {
		if len(p) > len(prefix) && len(p) <= budget && strings.HasPrefix(key, p) {
			prefix = p // prefixes are ASCII: bytes are characters
		}
	}
	tail := min(maskTail, budget-len(prefix))
	// Cut the last tail runes.
	end := len(key)
	for range tail {
		_, size := utf8.DecodeLastRuneInString(key[:end])
		end -= size
	}
	return prefix + maskEllipsis + key[end:]
}
