package html_test

import (
	"fmt"
	htmltemplate "html/template"
	"os"
	"regexp"
	"testing/fstest"
	"time"

	"github.com/ginbyok/byok/html"
)

// A host app adds the byok partials to its own template set and uses them
// in its own layout; byok/head links the bundled CSS and scripts.
func ExampleAddTo() {
	t := htmltemplate.Must(htmltemplate.New("app").Parse(
		`{{define "settings"}}<head>{{template "byok/head" .AssetsPath}}</head>` +
			`<main>{{template "byok/dashboard" .}}</main>{{template "byok/toast-container" .Toasts}}{{end}}`))
	if _, err := html.AddTo(t); err != nil {
		fmt.Println(err)
		return
	}
	// Override a partial after AddTo by defining the same name.
	htmltemplate.Must(t.Parse(`{{define "byok/icon-key"}}<i class="my-key"></i>{{end}}`))

	page := html.Page{Prefix: "/keys", AssetsPath: "/keys/assets", Now: time.Now(),
		Keys: []html.KeyView{{Provider: html.Provider{Name: "openai", DisplayName: "OpenAI"}}}}
	if err := html.Render(os.Stdout, t, "settings", page); err != nil {
		fmt.Println(err)
	}
}

// The plugin builds its own set: the embedded templates, then the host's
// override files.
func ExampleNew() {
	overrides := fstest.MapFS{
		"byok/alert.tmpl": {Data: []byte(`{{define "byok/alert"}}<p class="my-alert">{{.Message}}</p>{{end}}`)},
	}
	t, err := html.New(overrides)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = html.Render(os.Stdout, t, "byok/alert", html.Alert{Kind: html.KindInfo, Message: "Hello"})
	// Output: <p class="my-alert">Hello</p>
}

func ExampleRender() {
	t, _ := html.New(nil)
	err := html.Render(os.Stdout, t, "byok/validation-message", html.ValidationMessage{ID: "key-error", Message: "Too short"})
	fmt.Println()
	fmt.Println(err)
	// Output:
	// <p class="flex items-center gap-1.5 text-sm text-error" id="key-error"><svg class="size-4 shrink-0" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="9"/><path d="m9.5 9.5 5 5m0-5-5 5"/></svg><span>Too short</span></p>
	// <nil>
}

func ExampleHTMLPattern() {
	fmt.Println(html.HTMLPattern(regexp.MustCompile(`^sk-[A-Za-z0-9_-]{20,}$`)))
	fmt.Println(html.HTMLPattern(regexp.MustCompile(`^gsk_`)))
	fmt.Printf("%q\n", html.HTMLPattern(regexp.MustCompile(`(?m)^a$`)))
	// Output:
	// sk\x2D[\x2D0-9A-Z\x5Fa-z]{20,}
	// gsk\x5F[\s\S]*
	// ""
}

func ExampleExpires() {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	fmt.Println(html.Expires(time.Time{}, now))
	fmt.Println(html.Expires(now.Add(24*time.Hour-time.Second), now))
	fmt.Println(html.Expires(now.Add(59*time.Minute+59*time.Second), now))
	fmt.Println(html.Expires(now.Add(-time.Minute), now))
	// Output:
	// never expires
	// expires in 1 day
	// expires in 1 hour
	// expired
}

func ExampleAgo() {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	fmt.Println(html.Added(now.Add(-59*time.Second), now))
	fmt.Println(html.Added(now.Add(-(59*time.Minute + 59*time.Second)), now))
	fmt.Println(html.Added(now.Add(-time.Hour), now))
	fmt.Println(html.Ago(now.Add(-3*time.Hour), now))
	// Output:
	// added just now
	// added 59 minutes ago
	// added 1 hour ago
	// 3 hours ago
}

func ExamplePage_Card() {
	p := html.Page{Prefix: "/keys", Need: []string{"openai"},
		Keys: []html.KeyView{{Provider: html.Provider{Name: "openai", DisplayName: "OpenAI"}}}}
	c := p.Card(p.Keys[0])
	fmt.Println(c.ID(), c.Action(), c.DeleteAction(), c.InputID(), c.Needed, c.Autofocus)
	// Output: byok-card-openai /keys/openai /keys/openai/delete byok-card-openai-key true true
}
