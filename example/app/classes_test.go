package app

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/ginbyok/byok/html"
)

// TestTemplateClassesExistInTheStylesheet checks that every class the
// example's templates use is in the plugin's bundled byok.css. That
// stylesheet is built from package html's templates only, so a class
// used here alone would silently do nothing.
func TestTemplateClassesExistInTheStylesheet(t *testing.T) {
	css, err := fs.ReadFile(html.Assets(), "byok.css")
	if err != nil {
		t.Fatal(err)
	}
	sheet := string(css)
	classAttr := regexp.MustCompile(`class="([^"]*)"`)
	action := regexp.MustCompile(`\{\{.*?\}\}`)
	files, err := fs.Glob(templateFiles, "templates/*.tmpl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(templateFiles, f)
		if err != nil {
			t.Fatal(err)
		}
		// Template actions inside an attribute are branches: keep the
		// literal class names on both sides of them.
		for _, m := range classAttr.FindAllStringSubmatch(string(b), -1) {
			for _, class := range strings.Fields(action.ReplaceAllString(m[1], " ")) {
				if !hasClass(sheet, class) {
					t.Errorf("%s: class %q is not in html's byok.css", f, class)
				}
			}
		}
	}
}

// hasClass reports whether the stylesheet has a rule for .class, written
// with CSS escapes as Tailwind writes them (".md\:grid-cols-2").
func hasClass(sheet, class string) bool {
	var b strings.Builder
	b.WriteByte('.')
	for i, r := range class {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == '-':
		case r >= '0' && r <= '9' && i > 0:
		default:
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	sel := b.String()
	for i := 0; ; {
		j := strings.Index(sheet[i:], sel)
		if j < 0 {
			return false
		}
		end := i + j + len(sel)
		if end == len(sheet) || !isIdent(sheet[end]) {
			return true
		}
		i = end
	}
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '\\'
}

func TestHasClass(t *testing.T) {
	sheet := `.btn{x}.md\:grid-cols-2{x}.size-3\.5{x}.bg-primary\/10{x}.-translate-y-20{x}.input-error,.x{}`
	tests := []struct {
		class string
		want  bool
	}{
		{"btn", true},
		{"md:grid-cols-2", true},
		{"size-3.5", true},
		{"bg-primary/10", true},
		{"-translate-y-20", true},
		{"input-error", true},
		{"input", false}, // only as a prefix of input-error
		{"bt", false},
		{"grid-cols-2", false},
	}
	for _, tt := range tests {
		if got := hasClass(sheet, tt.class); got != tt.want {
			t.Errorf("hasClass(%q) = %v, want %v", tt.class, got, tt.want)
		}
	}
}
