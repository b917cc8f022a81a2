package html

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// goPattern compiles an HTMLPattern result the way a browser applies it
// (anchored at both ends), in Go syntax.
func goPattern(p string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + strings.ReplaceAll(p, `\u{`, `\x{`) + `)$`)
}

func TestHTMLPattern(t *testing.T) {
	tests := []struct {
		expr string
		want string
		yes  []string
		no   []string
	}{
		{`^sk-[A-Za-z0-9_-]{20,}$`, `sk\x2D[\x2D0-9A-Z\x5Fa-z]{20,}`,
			[]string{"sk-abcdefghijklmnopqrst", "sk-" + strings.Repeat("_", 30)},
			[]string{"sk-short", "xsk-abcdefghijklmnopqrst", "sk-abcdefghijklmnopqrst\n"}},
		{`^AIza[0-9A-Za-z_-]{35}$`, `AIza[\x2D0-9A-Z\x5Fa-z]{35}`,
			[]string{"AIza" + strings.Repeat("x", 35)},
			[]string{"AIza" + strings.Repeat("x", 34), "AIza" + strings.Repeat("x", 36)}},
		{`sk-`, `[\s\S]*sk\x2D[\s\S]*`, []string{"sk-", "my sk-key"}, []string{"sk", ""}},
		{`^gsk_`, `gsk\x5F[\s\S]*`, []string{"gsk_", "gsk_abc"}, []string{"xgsk_"}},
		{`\d+$`, `[\s\S]*[0-9]+`, []string{"1", "abc12"}, []string{"12a"}},
		{`^(?i)key$`, `[Kk\u{212A}][Ee][Yy]`, []string{"KEY", "kEy"}, []string{"keys"}},
		{`^(a|bc)+$`, `(?:a|bc)+`, []string{"abca", "bc"}, []string{"b", ""}},
		{`^x(a|b)?y$`, `x(?:[a-b])?y`, []string{"xy", "xay"}, []string{"xaby"}},
		{`^a.b$`, `a[^\n]b`, []string{"a-b"}, []string{"a\nb"}},
		{`^(?s)a.b$`, `a[\s\S]b`, []string{"a\nb"}, []string{"ab"}},
		{`^é+$`, `\u{E9}+`, []string{"éé"}, []string{"e"}},
		{`^[^a]{2}$`, `[\x00-\x60b-\u{10FFFF}]{2}`, []string{"bc", "€€"}, []string{"ab"}},
		{`^\bword\b$`, `\bword\b`, []string{"word"}, nil},
		{`^a{2,4}?$`, `a{2,4}?`, []string{"aaa"}, []string{"a"}},
		{`^$`, ``, []string{""}, []string{"a"}},
		{`^(?:)$`, `(?:)`, []string{""}, []string{"a"}},
		{`^a|b$`, "", nil, nil},                // anchors inside an alternation
		{`(?m)^a$`, "", nil, nil},              // multi-line anchors
		{`^a$b`, "", nil, nil},                 // an anchor in the middle
		{`^[^\x00-\x{10FFFF}]$`, "", nil, nil}, // matches nothing
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			re := regexp.MustCompile(tt.expr)
			got := HTMLPattern(re)
			if got != tt.want {
				t.Fatalf("HTMLPattern(%q) = %q, want %q", tt.expr, got, tt.want)
			}
			if got == "" {
				return
			}
			compiled, err := goPattern(got)
			if err != nil {
				t.Fatalf("result %q does not compile: %v", got, err)
			}
			for _, s := range tt.yes {
				if !compiled.MatchString(s) || !re.MatchString(s) {
					t.Errorf("%q: want a match (pattern %v, original %v)", s, compiled.MatchString(s), re.MatchString(s))
				}
			}
			for _, s := range tt.no {
				if compiled.MatchString(s) || re.MatchString(s) {
					t.Errorf("%q: want no match (pattern %v, original %v)", s, compiled.MatchString(s), re.MatchString(s))
				}
			}
		})
	}
}

func TestHTMLPatternNil(t *testing.T) {
	if got := HTMLPattern(nil); got != "" {
		t.Errorf("HTMLPattern(nil) = %q", got)
	}
}

func TestHTMLPatternTooLong(t *testing.T) {
	// \p{L} is hundreds of ranges; repeated, it passes the size limit.
	re := regexp.MustCompile(strings.Repeat(`\p{L}`, 20))
	if got := HTMLPattern(re); got != "" {
		t.Errorf("want no pattern for a huge class, got %d bytes", len(got))
	}
}

// TestHTMLPatternSafeChars checks that the result only uses characters that
// need no escaping in an HTML attribute and are valid in v-mode: ASCII
// letters, digits and the regexp syntax this converter writes.
func TestHTMLPatternSafeChars(t *testing.T) {
	re := regexp.MustCompile(`^[\x00-\x{10FFFF}]"'<>&\|(?i)ß.+$`)
	got := HTMLPattern(re)
	if got == "" {
		t.Fatal("no pattern")
	}
	for _, r := range got {
		if r > 0x7e || strings.ContainsRune(`"'<>&`, r) {
			t.Errorf("unsafe character %q in %q", r, got)
		}
	}
}

// FuzzHTMLPattern checks, for any Go regexp and input, that the converted
// pattern (when there is one) compiles and accepts the input exactly when
// the original regexp matches it.
func FuzzHTMLPattern(f *testing.F) {
	for _, s := range []struct{ expr, in string }{
		{`^sk-[A-Za-z0-9_-]{20,}$`, "sk-abcdefghijklmnopqrst"},
		{`sk-`, "xx sk- yy"},
		{`^(?i)straße$`, "STRASSE"},
		{`^(a|bc)*d?$`, "abcbcd"},
		{`\bx\B`, "x y"},
		{`^.{3}$`, "a\nb"},
		{`^[^a-c]+$`, "déf"},
		{`(?U)^a+?b*$`, "aab"},
	} {
		f.Add(s.expr, s.in)
	}
	f.Fuzz(func(t *testing.T, expr, in string) {
		re, err := regexp.Compile(expr)
		if err != nil || !utf8.ValidString(in) {
			return
		}
		p := HTMLPattern(re)
		if p == "" {
			return
		}
		compiled, err := goPattern(p)
		if err != nil {
			t.Fatalf("HTMLPattern(%q) = %q does not compile: %v", expr, p, err)
		}
		if got, want := compiled.MatchString(in), re.MatchString(in); got != want {
			t.Fatalf("HTMLPattern(%q) = %q: match(%q) = %v, original %v", expr, p, in, got, want)
		}
	})
}
