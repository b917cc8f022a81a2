package html_test

import (
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"

	"github.com/ginbyok/byok/html"
	"github.com/ginbyok/byok/html/internal/sample"
)

// walk calls f for every element node of the parsed document.
func walk(n *xhtml.Node, f func(*xhtml.Node)) {
	if n.Type == xhtml.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *xhtml.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func parse(t *testing.T, src string) *xhtml.Node {
	t.Helper()
	doc, err := xhtml.Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkMarkup checks a rendered document for what a strict CSP and a
// screen reader need: no inline script or style, no event handler, no
// javascript: URL, unique ids, a label for every field, and
// aria-describedby/labelledby pointing at elements that exist.
func checkMarkup(t *testing.T, name, src string) {
	t.Helper()
	doc := parse(t, src)
	ids := map[string]int{}
	labelFor := map[string]bool{}
	walk(doc, func(n *xhtml.Node) {
		if id, ok := attr(n, "id"); ok {
			ids[id]++
		}
		if n.Data == "label" {
			if f, ok := attr(n, "for"); ok {
				labelFor[f] = true
			}
		}
	})
	for id, n := range ids {
		if n > 1 {
			t.Errorf("%s: id %q used %d times", name, id, n)
		}
	}
	walk(doc, func(n *xhtml.Node) {
		for _, a := range n.Attr {
			k := strings.ToLower(a.Key)
			switch {
			case strings.HasPrefix(k, "on"):
				t.Errorf("%s: <%s %s=…>: event-handler attribute", name, n.Data, a.Key)
			case k == "style":
				t.Errorf("%s: <%s style=…>: style attribute", name, n.Data)
			case k == "href" || k == "src" || k == "action" || k == "hx-post" || k == "data-docs-url":
				if v := strings.ToLower(strings.TrimSpace(a.Val)); strings.HasPrefix(v, "javascript:") || strings.HasPrefix(v, "data:") {
					t.Errorf("%s: <%s %s=%q>", name, n.Data, a.Key, a.Val)
				}
			case k == "aria-describedby" || k == "aria-labelledby":
				for _, ref := range strings.Fields(a.Val) {
					if ids[ref] == 0 {
						t.Errorf("%s: <%s %s> points at missing id %q", name, n.Data, a.Key, ref)
					}
				}
			}
		}
		switch n.Data {
		case "script":
			if _, ok := attr(n, "src"); !ok || n.FirstChild != nil {
				t.Errorf("%s: inline <script>", name)
			}
		case "style":
			t.Errorf("%s: <style> element", name)
		case "input", "select", "textarea":
			if typ, _ := attr(n, "type"); typ == "hidden" {
				return
			}
			id, _ := attr(n, "id")
			_, aria := attr(n, "aria-label")
			if !labelFor[id] && !aria {
				t.Errorf("%s: <%s id=%q name=…> has no label", name, n.Data, id)
			}
		case "a":
			if target, _ := attr(n, "target"); target == "_blank" {
				if rel, _ := attr(n, "rel"); !strings.Contains(rel, "noopener") {
					t.Errorf("%s: target=_blank link without rel=noopener", name)
				}
			}
		case "button":
			if typ, _ := attr(n, "type"); typ == "" {
				t.Errorf("%s: <button> without a type", name)
			}
		}
	})
}

func TestMarkupOfEveryGolden(t *testing.T) {
	tmpl := newSet(t)
	for _, c := range goldenCases() {
		t.Run(c.file, func(t *testing.T) {
			checkMarkup(t, c.file, render(t, tmpl, c.name, c.data))
		})
	}
}

// TestPasswordFields checks every key input: type password, named api_key,
// no autocomplete, required; and that no form posts a key anywhere but the
// key routes.
func TestPasswordFields(t *testing.T) {
	tmpl := newSet(t)
	for _, state := range []string{"empty", "filled", "error", "need"} {
		doc := parse(t, render(t, tmpl, "byok/page", sample.Page(state)))
		n := 0
		walk(doc, func(el *xhtml.Node) {
			if name, _ := attr(el, "name"); el.Data != "input" || name != "api_key" {
				if el.Data == "form" {
					if action, _ := attr(el, "action"); !strings.HasPrefix(action, "/keys") {
						t.Errorf("%s: form posts to %q", state, action)
					}
					if m, _ := attr(el, "method"); m != "post" {
						t.Errorf("%s: form method %q, want post", state, m)
					}
				}
				return
			}
			n++
			for k, want := range map[string]string{"type": "password", "autocomplete": "off", "spellcheck": "false"} {
				if got, _ := attr(el, k); got != want {
					t.Errorf("%s: key input %s=%q, want %q", state, k, got, want)
				}
			}
			if _, ok := attr(el, "required"); !ok {
				t.Errorf("%s: key input not required", state)
			}
			if _, ok := attr(el, "value"); ok {
				t.Errorf("%s: key input has a value attribute", state)
			}
		})
		if n == 0 {
			t.Errorf("%s: no key input", state)
		}
	}
}

// TestNoJSForms checks the forms that work without JavaScript: each save
// form posts to prefix/{provider}, each delete form to
// prefix/{provider}/delete, the clear form to prefix/clear; with a next
// path the save forms carry it and post without htmx.
func TestNoJSForms(t *testing.T) {
	tmpl := newSet(t)
	page := sample.Page("filled")
	page.Prefix = "/settings/api-keys"
	page.Next = "/chat?x=1"
	doc := parse(t, render(t, tmpl, "byok/page", page))
	var actions []string
	walk(doc, func(el *xhtml.Node) {
		if el.Data != "form" {
			return
		}
		action, _ := attr(el, "action")
		actions = append(actions, action)
		hx, hasHX := attr(el, "hx-post")
		if hasHX && hx != action {
			t.Errorf("form %s: hx-post %q differs from action", action, hx)
		}
		var next string
		walk(el, func(in *xhtml.Node) {
			if n, _ := attr(in, "name"); n == "next" {
				next, _ = attr(in, "value")
			}
		})
		isSave := !strings.HasSuffix(action, "/delete") && !strings.HasSuffix(action, "/clear")
		if isSave && (next != page.Next || hasHX) {
			t.Errorf("save form %s: next %q, hx-post %v; want next %q and no htmx", action, next, hasHX, page.Next)
		}
	})
	for _, want := range []string{"/settings/api-keys/openai", "/settings/api-keys/openai/delete", "/settings/api-keys/groq", "/settings/api-keys/clear"} {
		found := false
		for _, a := range actions {
			found = found || a == want
		}
		if !found {
			t.Errorf("no form posts to %s (forms: %v)", want, actions)
		}
	}
	for _, a := range actions {
		if strings.HasPrefix(a, "/keys") {
			t.Errorf("form action %s ignores the prefix", a)
		}
	}
}

// TestEscaping renders user-controlled and configured strings that carry
// markup, and checks they stay text.
func TestEscaping(t *testing.T) {
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	page := sample.Page("filled")
	page.Title = evil
	page.AppName = evil
	page.User = evil
	page.Next = `javascript:alert(3)` + evil
	page.HomeURL = "javascript:alert(4)"
	page.Alerts = []html.Alert{{Kind: evil, Style: evil, Title: evil, Message: evil, ID: evil, Dismissible: true}}
	page.Toasts = []html.Toast{{Kind: evil, Message: evil}}
	page.Error = &html.Problem{Title: evil, Detail: evil, Provider: "openai", Field: "api_key"}
	page.TTLChoices = append(page.TTLChoices, html.TTLChoice{Value: evil, Label: evil})
	page.Keys[0].Provider.DisplayName = evil
	page.Keys[0].Provider.Help = evil
	page.Keys[0].Provider.Placeholder = evil
	page.Keys[0].Provider.Pattern = evil
	page.Keys[0].Provider.DocsURL = "javascript:alert(5)"
	page.Keys[0].Masked = evil
	page.Need = []string{"openai"}

	tmpl := newSet(t)
	outputs := map[string]string{
		"page":       render(t, tmpl, "byok/page", page),
		"multi-form": render(t, tmpl, "byok/multi-form", page),
		"card":       render(t, tmpl, "byok/card-update", html.CardData{Key: page.Keys[0], Prefix: "/keys", Error: page.Error, Toast: &page.Toasts[0]}),
		"security":   render(t, tmpl, "byok/security-alert", html.SecurityAlert{Severity: evil, Message: evil, ActionURL: "javascript:alert(6)", ActionText: evil}),
		"status":     render(t, tmpl, "byok/key-status", html.KeyStatus{Provider: evil, Status: evil, Masked: evil}),
		"validation": render(t, tmpl, "byok/validation-message", html.ValidationMessage{ID: evil, Message: evil}),
	}
	for name, out := range outputs {
		if strings.Contains(out, "<script>alert") || strings.Contains(out, "<img") {
			t.Errorf("%s: markup from data was not escaped", name)
		}
		if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") && !strings.Contains(out, "&#34;&gt;&lt;script&gt;") {
			t.Errorf("%s: escaped text missing", name)
		}
		// Only the two script elements of byok/head, and only with src.
		doc := parse(t, out)
		walk(doc, func(n *xhtml.Node) {
			if n.Data == "script" {
				if src, _ := attr(n, "src"); !strings.HasPrefix(src, "/keys/assets/") {
					t.Errorf("%s: unexpected script %q", name, src)
				}
			}
			if n.Data == "img" || n.Data == "style" {
				t.Errorf("%s: <%s> from data", name, n.Data)
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: %s attribute from data", name, a.Key)
				}
				urlAttr := a.Key == "href" || a.Key == "src" || a.Key == "action" || strings.HasPrefix(a.Key, "hx-") || strings.HasSuffix(a.Key, "-url")
				if urlAttr && strings.HasPrefix(strings.ToLower(a.Val), "javascript:") {
					t.Errorf("%s: <%s %s=%q>: a javascript: URL from data", name, n.Data, a.Key, a.Val)
				}
			}
		})
	}
}
