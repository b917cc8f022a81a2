package encrypt_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ginbyok/byok/encrypt"
)

func TestMask(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{"empty", "", "…"},
		{"one char", "x", "…"},
		{"seven chars", "sk-abcd", "…"},
		{"eight chars: 2 shown", "abcdefgh", "…gh"},
		{"eight chars with prefix: prefix does not fit", "sk-abcde", "…de"},
		{"twelve chars with sk-", "sk-abcdefghi", "sk-…"},
		{"sixteen chars with sk-", "sk-abcdefghijklm", "sk-…m"},
		{"openai legacy", "sk-" + strings.Repeat("x", 44) + "abcd", "sk-…abcd"},
		{"openai project", "sk-proj-" + strings.Repeat("x", 150) + "abcd", "sk-proj-…abcd"},
		{"anthropic", "sk-ant-api03-" + strings.Repeat("x", 91) + "abcd", "sk-ant-api03-…abcd"},
		{"anthropic too short for the long prefix", "sk-ant-api03-" + strings.Repeat("x", 11) + "abcd", "sk-ant-…"},
		{"openrouter", "sk-or-v1-" + strings.Repeat("0", 60) + "abcd", "sk-or-v1-…abcd"},
		{"groq", "gsk_" + strings.Repeat("x", 48) + "abcd", "gsk_…abcd"},
		{"google", "AIza" + strings.Repeat("x", 31) + "abcd", "AIza…abcd"},
		{"huggingface", "hf_" + strings.Repeat("x", 30) + "abcd", "hf_…abcd"},
		{"xai", "xai-" + strings.Repeat("x", 76) + "abcd", "xai-…abcd"},
		{"no recognised prefix", strings.Repeat("q", 36) + "abcd", "…abcd"},
		{"prefix is case sensitive", "aiza" + strings.Repeat("x", 31) + "abcd", "…abcd"},
		{"unicode counts characters", "ключ-ключ-ключ-ключ-ключ-ключ-ключ-éèêë", "…éèêë"},
		{"short unicode", "ключключ", "…юч"},
		{"emoji", strings.Repeat("🔑", 8), "…🔑🔑"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encrypt.Mask(tt.key)
			if got != tt.want {
				t.Fatalf("Mask(%q) = %q, want %q", tt.key, got, tt.want)
			}
			shown := utf8.RuneCountInString(got) - 1 // the ellipsis
			if n := utf8.RuneCountInString(tt.key); shown > n/4 {
				t.Fatalf("Mask shows %d of %d characters, more than a quarter", shown, n)
			}
			if strings.Count(got, "…") != 1 {
				t.Fatalf("Mask(%q) = %q, want exactly one ellipsis", tt.key, got)
			}
		})
	}
}

// TestMaskHidesLength checks that keys of different lengths with the same
// prefix and ending mask the same.
func TestMaskHidesLength(t *testing.T) {
	want := encrypt.Mask("sk-proj-" + strings.Repeat("x", 40) + "abcd")
	for _, n := range []int{41, 80, 160, 500} {
		if got := encrypt.Mask("sk-proj-" + strings.Repeat("x", n) + "abcd"); got != want {
			t.Fatalf("length %d masks as %q, length 40 as %q", n, got, want)
		}
	}
}

func TestMaskNeverShowsMoreThanAQuarter(t *testing.T) {
	for n := range 120 {
		for _, prefix := range []string{"", "sk-", "sk-ant-api03-", "AIza", "é"} {
			key := prefix + strings.Repeat("z", n)
			got := encrypt.Mask(key)
			if shown := utf8.RuneCountInString(got) - 1; shown > utf8.RuneCountInString(key)/4 {
				t.Fatalf("Mask(%q) = %q shows %d characters", key, got, shown)
			}
		}
	}
}
