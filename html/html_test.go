package html_test

import (
	"bytes"
	"errors"
	"flag"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ginbyok/byok/html"
	"github.com/ginbyok/byok/html/internal/sample"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

type goldenCase struct {
	file string // testdata/golden/<file>.html
	name string // template
	data any
}

func card(state string, i int, edit func(*html.CardData)) html.CardData {
	p := sample.Page(state)
	c := p.Card(p.Keys[i])
	if edit != nil {
		edit(&c)
	}
	return c
}

func goldenCases() []goldenCase {
	withToasts := sample.Page("filled")
	withToasts.Toasts = []html.Toast{{Kind: html.KindInfo, Message: "All keys removed"}}
	formErr := &html.Problem{Title: "Storage is unavailable", Detail: "Your key was not saved. Try again in a minute.", Code: "storage_unavailable", Status: 503, Provider: "groq"}
	ttlErr := &html.Problem{Title: "Unknown duration", Detail: "Choose one of the listed durations.", Code: "invalid_ttl", Status: 422, Field: "ttl", Provider: "groq"}
	saved := &html.Toast{Kind: html.KindSuccess, Message: "OpenAI key saved (sk-…x9Qa)"}
	return []goldenCase{
		{"page-empty", "byok/page", sample.Page("empty")},
		{"page-filled", "byok/page", sample.Page("filled")},
		{"page-error", "byok/page", sample.Page("error")},
		{"page-need", "byok/page", sample.Page("need")},
		{"page-none", "byok/page", sample.Page("none")},
		{"page-many-alerts", "byok/page", sample.Page("many-alerts")},
		{"dashboard-empty", "byok/dashboard", sample.Page("empty")},
		{"dashboard-filled", "byok/dashboard", sample.Page("filled")},
		{"dashboard-update", "byok/dashboard-update", withToasts},
		{"multi-form", "byok/multi-form", sample.Page("filled")},
		{"multi-form-next", "byok/multi-form", sample.Page("need")},
		{"key-card-empty", "byok/key-card", card("empty", 3, nil)},
		{"key-card-filled", "byok/key-card", card("filled", 0, nil)},
		{"key-card-updated-never", "byok/key-card", card("filled", 1, nil)},
		{"key-card-expired", "byok/key-card", card("filled", 2, nil)},
		{"key-card-needed", "byok/key-card", card("need", 0, nil)},
		{"key-card-field-error", "byok/key-card", card("error", 3, nil)},
		{"key-card-form-error", "byok/key-card", card("empty", 3, func(c *html.CardData) { c.Error = formErr })},
		{"key-card-replace-error", "byok/key-card", card("filled", 0, func(c *html.CardData) {
			c.Error = &html.Problem{Title: "Invalid key", Detail: "OpenAI keys start with sk-.", Field: "api_key", Provider: "openai"}
			c.Autofocus = true
		})},
		{"key-form-new", "byok/key-form", card("empty", 0, nil)},
		{"key-form-next", "byok/key-form", card("need", 0, nil)},
		{"key-form-ttl-error", "byok/key-form", card("empty", 3, func(c *html.CardData) { c.Error = ttlErr; c.Autofocus = true })},
		{"key-form-no-ttl", "byok/key-form", card("empty", 5, func(c *html.CardData) { c.TTLChoices = nil })},
		{"card-update", "byok/card-update", card("filled", 0, func(c *html.CardData) { c.Toast = saved })},
		{"card-update-deleted", "byok/card-update", card("empty", 0, func(c *html.CardData) {
			c.Toast = &html.Toast{Kind: html.KindInfo, Message: "OpenAI key removed"}
		})},
		{"inline-input", "byok/inline-input", card("empty", 3, nil)},
		{"inline-input-next", "byok/inline-input", card("need", 0, nil)},
		{"alert-info", "byok/alert", html.Alert{Kind: html.KindInfo, Message: "Keys are kept for 24 hours.", Dismissible: true, ID: "note"}},
		{"alert-success-soft", "byok/alert", html.Alert{Kind: html.KindSuccess, Style: html.StyleSoft, Message: "Saved."}},
		{"alert-warning-outline", "byok/alert", html.Alert{Kind: html.KindWarning, Style: html.StyleOutline, Title: "Expiring", Message: "Your key expires in 1 hour."}},
		{"alert-error", "byok/alert", html.Alert{Kind: html.KindError, Title: "Failed", Message: "Try again."}},
		{"alert-unknown-kind", "byok/alert", html.Alert{Kind: "shout", Style: "loud", Message: "Shown as info."}},
		{"security-alert-low", "byok/security-alert", html.SecurityAlert{Severity: html.SeverityLow, Message: "Unused for 90 days."}},
		{"security-alert-medium", "byok/security-alert", html.SecurityAlert{Severity: html.SeverityMedium, Message: "Never expires.", ActionURL: "/keys", ActionText: "Set an expiry"}},
		{"security-alert-high", "byok/security-alert", html.SecurityAlert{Severity: html.SeverityHigh, Message: "Used from a new place."}},
		{"security-alert-critical", "byok/security-alert", html.SecurityAlert{Severity: html.SeverityCritical, Message: "May have leaked.", ActionURL: "/keys"}},
		{"key-status-added", "byok/key-status", html.KeyStatus{Provider: "OpenAI", Status: html.StatusAdded, Masked: "sk-…x9Qa"}},
		{"key-status-updated", "byok/key-status", html.KeyStatus{Provider: "OpenAI", Status: html.StatusUpdated, Masked: "sk-…x9Qa", Timeout: 2 * time.Second}},
		{"key-status-deleted", "byok/key-status", html.KeyStatus{Provider: "OpenAI", Status: html.StatusDeleted, Masked: "sk-…x9Qa"}},
		{"key-status-expired", "byok/key-status", html.KeyStatus{Provider: "OpenAI", Status: html.StatusExpired, Timeout: -1}},
		{"key-status-invalid", "byok/key-status", html.KeyStatus{Provider: "OpenAI", Status: html.StatusInvalid}},
		{"toast-container", "byok/toast-container", []html.Toast{{Kind: html.KindSuccess, Message: "Saved"}, {Kind: html.KindError, Message: "Failed", Timeout: -1}}},
		{"toast-container-empty", "byok/toast-container", []html.Toast(nil)},
		{"toast", "byok/toast", html.Toast{Kind: html.KindWarning, Message: "Expires soon", Timeout: 10 * time.Second}},
		{"toast-item", "byok/toast-item", html.Toast{Kind: html.KindInfo, Message: "Hello"}},
		{"validation-message", "byok/validation-message", html.ValidationMessage{ID: "f-error", Message: "That doesn't look like an OpenAI key."}},
		{"validation-message-valid", "byok/validation-message", html.ValidationMessage{ID: "f-ok", Message: "Looks right.", Valid: true}},
		{"alert-stack", "byok/alert-stack", sample.Page("many-alerts").AlertStack()},
		{"alert-stack-short", "byok/alert-stack", html.AlertStack{Alerts: sample.Page("many-alerts").Alerts[:2], Max: 3}},
		{"head", "byok/head", "/keys/assets"},
		{"icon-key", "byok/icon-key", ""},
		{"icon-key-sized", "byok/icon-key", "size-8 text-primary"},
		{"icon-info", "byok/icon-info", ""},
		{"icon-success", "byok/icon-success", ""},
		{"icon-warning", "byok/icon-warning", ""},
		{"icon-error", "byok/icon-error", ""},
		{"icon-check", "byok/icon-check", ""},
		{"icon-close", "byok/icon-close", ""},
		{"icon-clock", "byok/icon-clock", ""},
		{"icon-lock", "byok/icon-lock", ""},
	}
}

func newSet(t testing.TB) *htmltemplate.Template {
	t.Helper()
	tmpl, err := html.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func render(t testing.TB, tmpl *htmltemplate.Template, name string, data any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := html.Render(&buf, tmpl, name, data); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return buf.String()
}

func TestGolden(t *testing.T) {
	tmpl := newSet(t)
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, c := range goldenCases() {
		t.Run(c.file, func(t *testing.T) {
			if seen[c.file] {
				t.Fatalf("duplicate golden file %s", c.file)
			}
			seen[c.file] = true
			got := render(t, tmpl, c.name, c.data)
			path := filepath.Join(dir, c.file+".html")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./html -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run go test ./html -update to accept):\n%s", c.name, path, firstDiff(string(want), got))
			}
		})
	}
	if !*update {
		// No stale golden files.
		files, _ := filepath.Glob(filepath.Join(dir, "*.html"))
		for _, f := range files {
			if !seen[strings.TrimSuffix(filepath.Base(f), ".html")] {
				t.Errorf("golden file %s has no case (delete it or run -update)", f)
			}
		}
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\nwant: " + wl + "\ngot:  " + gl
		}
	}
	return ""
}

// TestEveryTemplateHasGolden makes sure each template file is rendered by at
// least one golden case.
func TestEveryTemplateHasGolden(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range goldenCases() {
		covered[c.name] = true
	}
	entries, err := os.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := "byok/" + strings.TrimSuffix(e.Name(), ".tmpl")
		if !covered[name] {
			t.Errorf("%s has no golden case", name)
		}
	}
}

// TestTemplateFilesDefineTheirName checks the naming rule AddTo relies on:
// templates/NAME.tmpl defines byok/NAME, and every define is namespaced.
func TestTemplateFilesDefineTheirName(t *testing.T) {
	defineRe := regexp.MustCompile(`\{\{-?\s*define\s+"([^"]+)"`)
	entries, err := os.ReadDir("templates")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("templates", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		want := "byok/" + strings.TrimSuffix(e.Name(), ".tmpl")
		var names []string
		for _, m := range defineRe.FindAllStringSubmatch(string(b), -1) {
			names = append(names, m[1])
			if !strings.HasPrefix(m[1], "byok/") {
				t.Errorf("%s defines %q, outside the byok/ namespace", e.Name(), m[1])
			}
		}
		if !slices.Contains(names, want) {
			t.Errorf("%s does not define %q (defines %v)", e.Name(), want, names)
		}
	}
}

func TestNames(t *testing.T) {
	names := html.Names()
	for _, want := range []string{"byok/page", "byok/key-card", "byok/key-form", "byok/multi-form", "byok/dashboard",
		"byok/inline-input", "byok/alert", "byok/security-alert", "byok/key-status", "byok/toast-container", "byok/toast",
		"byok/validation-message", "byok/alert-stack", "byok/icon-key", "byok/icon-info", "byok/icon-success",
		"byok/icon-warning", "byok/icon-error", "byok/card-update", "byok/dashboard-update"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s", want)
		}
	}
	if !slices.IsSorted(names) {
		t.Error("Names() is not sorted")
	}
}

// TestTemplateSourcesCSPClean scans the template sources: no inline
// script, no event-handler attribute, no style attribute or element, no
// javascript: URL and no outside URL (a CDN), so that
// "default-src 'self'; script-src 'self'; style-src 'self'" works.
func TestTemplateSourcesCSPClean(t *testing.T) {
	scriptTag := regexp.MustCompile(`(?i)<script\b[^>]*>`)
	urlRe := regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>]*`)
	bad := []struct {
		re   *regexp.Regexp
		what string
	}{
		{regexp.MustCompile(`(?i)\son[a-z]+\s*=`), "event-handler attribute"},
		{regexp.MustCompile(`(?i)\sstyle\s*=`), "style attribute"},
		{regexp.MustCompile(`(?i)<style\b`), "style element"},
		{regexp.MustCompile(`(?i)javascript:`), "javascript: URL"},
		{regexp.MustCompile(`(?i)hx-on`), "hx-on (needs eval)"},
	}
	err := fs.WalkDir(os.DirFS("templates"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join("templates", p))
		if err != nil {
			return err
		}
		src := string(b)
		for _, tag := range scriptTag.FindAllString(src, -1) {
			if !strings.Contains(tag, " src=") {
				t.Errorf("%s: inline script %s", p, tag)
			}
		}
		for _, u := range urlRe.FindAllString(src, -1) {
			if u != "http://www.w3.org/2000/svg" {
				t.Errorf("%s: outside URL %s (bundle assets instead)", p, u)
			}
		}
		for _, b := range bad {
			if loc := b.re.FindStringIndex(src); loc != nil {
				t.Errorf("%s: %s: %q", p, b.what, src[loc[0]:min(len(src), loc[1]+20)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestScriptClean keeps byok.js free of eval and HTML strings.
func TestScriptClean(t *testing.T) {
	b, err := fs.ReadFile(html.Assets(), "byok.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "setTimeout('", `setTimeout("`} {
		if strings.Contains(string(b), s) {
			t.Errorf("byok.js contains %q", s)
		}
	}
}

func TestAssets(t *testing.T) {
	for _, name := range []string{"byok.css", "byok.js", "htmx.min.js", "favicon.svg"} {
		b, err := fs.ReadFile(html.Assets(), name)
		if err != nil {
			t.Fatalf("Assets() lacks %s: %v", name, err)
		}
		if len(b) < 300 {
			t.Errorf("%s is only %d bytes", name, len(b))
		}
	}
	css, _ := fs.ReadFile(html.Assets(), "byok.css")
	// Every daisyUI class the templates rely on made it into the build.
	for _, class := range []string{".card", ".btn-primary", ".alert-success", ".alert-soft", ".alert-outline", ".badge-warning",
		".toast-end", ".dropdown-content", ".select", ".input-error", ".join-item", ".navbar", ".byok-spinner", ".htmx-indicator"} {
		if !strings.Contains(string(css), class) {
			t.Errorf("byok.css lacks %s (rebuild with html/assets/build.sh)", class)
		}
	}
	// The CSS must not load anything from outside or from data: URLs
	// (img-src 'self' blocks them); only the overridden noise variable
	// still names one.
	rest := regexp.MustCompile(`--fx-noise:url\("[^"]*"\)`).ReplaceAllString(string(css), "")
	if i := strings.Index(rest, "url("); i >= 0 {
		t.Errorf("byok.css loads a URL: %q", rest[max(0, i-60):min(len(rest), i+60)])
	}
	if !strings.Contains(string(css), "--fx-noise:none") {
		t.Error("byok.css does not turn off daisyUI's data: noise image")
	}
}

func TestRenderWritesNothingOnError(t *testing.T) {
	tmpl := newSet(t)
	var buf bytes.Buffer
	// The page renders most of its HTML before it needs .Keys; with the
	// wrong data type it fails half-way.
	err := html.Render(&buf, tmpl, "byok/page", struct{ Title, Prefix, AssetsPath string }{"t", "/keys", "/a"})
	if err == nil {
		t.Fatal("want an error for data without the page's fields")
	}
	if buf.Len() != 0 {
		t.Errorf("Render wrote %d bytes before failing", buf.Len())
	}
	err = html.Render(&buf, tmpl, "byok/nope", nil)
	if !errors.Is(err, html.ErrUnknownTemplate) {
		t.Errorf("unknown template: err = %v, want ErrUnknownTemplate", err)
	}
	if buf.Len() != 0 {
		t.Errorf("Render wrote %d bytes for an unknown template", buf.Len())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("client went away") }

func TestRenderWriteError(t *testing.T) {
	err := html.Render(failWriter{}, newSet(t), "byok/icon-key", "")
	if err == nil || !strings.Contains(err.Error(), "client went away") {
		t.Errorf("err = %v, want the writer's error", err)
	}
}

func TestNewOverrides(t *testing.T) {
	overrides := fstest.MapFS{
		"theme/icons.tmpl": {Data: []byte(`{{define "byok/icon-key"}}<i class="custom-key"></i>{{end}}`)},
		"theme/README.md":  {Data: []byte("not a template {{")},
	}
	tmpl, err := html.New(overrides)
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, tmpl, "byok/key-card", card("filled", 0, nil))
	if !strings.Contains(got, `<i class="custom-key"></i>`) || strings.Contains(got, `r="4"`) {
		t.Errorf("override of byok/icon-key not used:\n%s", got)
	}
	// Other templates are untouched.
	if !strings.Contains(got, "sk-…x9Qa") {
		t.Error("card lost its content")
	}

	_, err = html.New(fstest.MapFS{"bad.tmpl": {Data: []byte(`{{define "byok/alert"}}{{.Nope`)}})
	if err == nil || !strings.Contains(err.Error(), "bad.tmpl") {
		t.Errorf("broken override: err = %v, want a parse error naming the file", err)
	}
}

func TestAddToHostSet(t *testing.T) {
	host := htmltemplate.New("host").Funcs(htmltemplate.FuncMap{"shout": strings.ToUpper})
	if _, err := host.Parse(`{{define "layout"}}<h1>{{shout .Name}}</h1>{{template "byok/dashboard" .Page}}{{end}}`); err != nil {
		t.Fatal(err)
	}
	if _, err := html.AddTo(host); err != nil {
		t.Fatal(err)
	}
	// The host overrides a partial after AddTo.
	if _, err := host.Parse(`{{define "byok/key-badge"}}<span class="host-badge"></span>{{end}}`); err != nil {
		t.Fatal(err)
	}
	got := render(t, host, "layout", map[string]any{"Name": "acme", "Page": sample.Page("filled")})
	if !strings.HasPrefix(got, "<h1>ACME</h1>") || !strings.Contains(got, `id="byok-dashboard"`) {
		t.Errorf("host layout not rendered:\n%.300s", got)
	}
	if strings.Count(got, "host-badge") != len(sample.Page("filled").Keys) {
		t.Errorf("host override of byok/key-badge not used")
	}
	// AddTo adds no template outside byok/ (besides the host's own).
	for _, tt := range host.Templates() {
		if n := tt.Name(); n != "host" && n != "layout" && !strings.HasPrefix(n, "byok/") {
			t.Errorf("AddTo added template %q", n)
		}
	}
	// Once executed, the set cannot take more templates.
	if _, err := html.AddTo(host); err == nil {
		t.Error("AddTo after execution: want an error")
	}
	if _, err := html.AddTo(nil); err == nil {
		t.Error("AddTo(nil): want an error")
	}
}

func BenchmarkRenderPage(b *testing.B) {
	tmpl := newSet(b)
	page := sample.Page("filled")
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := html.Render(&buf, tmpl, "byok/page", page); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

func BenchmarkRenderCardUpdate(b *testing.B) {
	tmpl := newSet(b)
	c := card("filled", 0, func(c *html.CardData) { c.Toast = &html.Toast{Kind: html.KindSuccess, Message: "saved"} })
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := html.Render(&buf, tmpl, "byok/card-update", c); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}
