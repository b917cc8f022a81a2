package sample

import (
	"bytes"
	"html/template"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ginbyok/byok/html"
	"github.com/ginbyok/byok/internal/httpx"
)

// CSP is the Content-Security-Policy the sample server sends: the strict
// policy the templates are written for.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const gallery = `{{define "gallery"}}<!doctype html>
<html lang="en" data-theme="light"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>byok components</title>
<link rel="icon" href="{{byokAsset .Page.AssetsPath "favicon.svg"}}" type="image/svg+xml">
{{template "byok/head" .Page.AssetsPath}}</head>
<body class="bg-base-200"><main id="byok-main" class="mx-auto grid max-w-6xl gap-8 p-8 lg:grid-cols-2">
<section class="flex flex-col gap-3"><h2 class="font-semibold">byok/multi-form</h2>{{template "byok/multi-form" .Page}}</section>
<section class="flex flex-col gap-3"><h2 class="font-semibold">byok/inline-input</h2>{{template "byok/inline-input" .Inline}}
<h2 class="mt-4 font-semibold">byok/validation-message</h2>{{template "byok/validation-message" .Invalid}}{{template "byok/validation-message" .Valid}}
<h2 class="mt-4 font-semibold">byok/key-status</h2>{{range .Statuses}}{{template "byok/key-status" .}}{{end}}</section>
<section class="flex flex-col gap-3"><h2 class="font-semibold">byok/alert</h2>{{range .Alerts}}{{template "byok/alert" .}}{{end}}</section>
<section class="flex flex-col gap-3"><h2 class="font-semibold">byok/security-alert</h2>{{range .Security}}{{template "byok/security-alert" .}}{{end}}
<h2 class="mt-4 font-semibold">byok/alert-stack</h2>{{template "byok/alert-stack" .Stack}}</section>
<section class="flex flex-col gap-3"><h2 class="font-semibold">icons</h2><p class="flex gap-3">{{template "byok/icon-key" "size-6"}}{{template "byok/icon-info" "size-6 text-info"}}{{template "byok/icon-success" "size-6 text-success"}}{{template "byok/icon-warning" "size-6 text-warning"}}{{template "byok/icon-error" "size-6 text-error"}}{{template "byok/icon-check" "size-6"}}{{template "byok/icon-lock" "size-6"}}{{template "byok/icon-clock" "size-6"}}</p></section>
</main>{{template "byok/toast-container" .Toasts}}</body></html>{{end}}`

type server struct {
	t    *template.Template
	mu   sync.Mutex
	keys map[string]html.KeyView // by provider name
	re   map[string]*regexp.Regexp
}

// NewServer returns a handler that serves the sample pages and answers the
// key routes the way the plugin does, keeping keys in memory: GET
// /keys[?state=…] (a sample state, or the live in-memory keys, with ?need=
// and ?next=), GET /gallery (every partial), POST /keys (the multi-provider
// form's provider field), POST /keys/{provider}, POST
// /keys/{provider}/delete, POST /keys/clear, GET /demo/{provider} and the
// assets under /keys/assets/. Every answer carries CSP.
func NewServer() (http.Handler, error) {
	t, err := html.New(nil)
	if err != nil {
		return nil, err
	}
	if _, err := t.Parse(gallery); err != nil {
		return nil, err
	}
	s := &server{t: t, keys: map[string]html.KeyView{}, re: map[string]*regexp.Regexp{}}
	for _, p := range Providers() {
		if p.Pattern != "" {
			s.re[p.Name] = regexp.MustCompile(`^(?:` + strings.ReplaceAll(p.Pattern, `\u{`, `\x{`) + `)$`)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /keys/assets/", http.StripPrefix("/keys/assets/", http.FileServerFS(html.Assets())))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		http.ServeFileFS(w, r, html.Assets(), "favicon.svg")
	})
	mux.HandleFunc("GET /keys", s.page)
	mux.HandleFunc("GET /gallery", s.gallery)
	mux.HandleFunc("POST /keys", s.save)
	mux.HandleFunc("POST /keys/{provider}", s.save)
	mux.HandleFunc("POST /keys/{provider}/delete", s.del)
	mux.HandleFunc("POST /keys/clear", s.clear)
	mux.HandleFunc("GET /demo/{provider}", s.demo)
	return headers(mux), nil
}

func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", CSP)
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// current returns the page for the in-memory keys, or a sample state when
// ?state= is given.
func (s *server) current(r *http.Request) html.Page {
	if st := r.URL.Query().Get("state"); st != "" {
		return Page(st)
	}
	p := Page("empty")
	p.Now = time.Now().UTC()
	s.mu.Lock()
	for i, k := range p.Keys {
		if v, ok := s.keys[k.Provider.Name]; ok {
			p.Keys[i] = v
		}
	}
	s.mu.Unlock()
	if need := r.URL.Query()["need"]; len(need) > 0 {
		p.Need = need
	}
	if next := r.URL.Query().Get("next"); httpx.IsSafeNext(next) {
		p.Next = next
	}
	return p
}

func (s *server) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var buf bytes.Buffer
	if err := html.Render(&buf, s.t, name, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "byok/page", s.current(r))
}

func (s *server) gallery(w http.ResponseWriter, r *http.Request) {
	page := Page("filled")
	inline := page.Card(page.Keys[3])
	s.render(w, http.StatusOK, "gallery", map[string]any{
		"Page":    page,
		"Inline":  inline,
		"Invalid": html.ValidationMessage{ID: "v1", Message: "That doesn't look like a Groq key."},
		"Valid":   html.ValidationMessage{ID: "v2", Message: "Looks like a Groq key.", Valid: true},
		"Statuses": []html.KeyStatus{
			{Provider: "OpenAI", Status: html.StatusAdded, Masked: "sk-…x9Qa", Timeout: -1},
			{Provider: "Anthropic", Status: html.StatusUpdated, Masked: "sk-ant-…7fK2", Timeout: -1},
			{Provider: "Groq", Status: html.StatusDeleted, Timeout: -1},
			{Provider: "Google Gemini", Status: html.StatusExpired, Timeout: -1},
			{Provider: "Mistral", Status: html.StatusInvalid, Timeout: -1},
		},
		"Alerts": []html.Alert{
			{Kind: html.KindInfo, Title: "Heads up", Message: "An info alert, solid.", Dismissible: true},
			{Kind: html.KindSuccess, Message: "A success alert, soft.", Style: html.StyleSoft, Dismissible: true},
			{Kind: html.KindWarning, Message: "A warning alert, outline.", Style: html.StyleOutline},
			{Kind: html.KindError, Title: "Something failed", Message: "An error alert, soft.", Style: html.StyleSoft},
		},
		"Security": []html.SecurityAlert{
			{Severity: html.SeverityLow, Message: "Your OpenAI key has not been used for 90 days."},
			{Severity: html.SeverityMedium, Message: "Your Anthropic key never expires.", ActionURL: "/keys", ActionText: "Set an expiry"},
			{Severity: html.SeverityHigh, Message: "A key was used from a new location."},
			{Severity: html.SeverityCritical, Message: "A key may have leaked. Replace it now.", ActionURL: "/keys"},
		},
		"Stack":  Page("many-alerts").AlertStack(),
		"Toasts": []html.Toast{{Kind: html.KindSuccess, Message: "A toast that stays", Timeout: -1}, {Kind: html.KindInfo, Message: "A toast that leaves after 4 s", Timeout: 4 * time.Second}},
	})
}

// demo stands in for the host app's page that needed a key: it names a
// known provider (never echoing the request) and 404s for any other.
func (s *server) demo(w http.ResponseWriter, r *http.Request) {
	prov, ok := s.provider(r.PathValue("provider"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte("demo page for " + prov.Name))
}

func (s *server) provider(name string) (html.Provider, bool) {
	for _, p := range Providers() {
		if p.Name == name {
			return p, true
		}
	}
	return html.Provider{}, false
}

func (s *server) card(r *http.Request, name string) html.CardData {
	p := s.current(r)
	for _, k := range p.Keys {
		if k.Provider.Name == name {
			return p.Card(k)
		}
	}
	return html.CardData{}
}

func (s *server) done(w http.ResponseWriter, r *http.Request, c html.CardData, toast html.Toast) {
	if r.Header.Get("HX-Request") == "true" {
		c.Toast = &toast
		s.render(w, http.StatusOK, "byok/card-update", c)
		return
	}
	next := httpx.SafeNext(r.PostFormValue("next"), "/keys")
	http.Redirect(w, r, next, http.StatusSeeOther) //nolint:gosec // G710: httpx.SafeNext lets through only a same-site path ("/keys" otherwise)
}

func (s *server) save(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	if name == "" {
		name = r.PostFormValue("provider")
	}
	prov, ok := s.provider(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	key := strings.TrimSpace(r.PostFormValue("api_key"))
	if re := s.re[name]; key == "" || (re != nil && !re.MatchString(key)) {
		prob := &html.Problem{Title: "That key doesn't look right", Code: "invalid_key", Status: 422,
			Detail: prov.DisplayName + " keys look like " + prov.Placeholder + ".", Field: "api_key", Provider: name}
		if r.Header.Get("HX-Request") == "true" {
			c := s.card(r, name)
			c.Error = prob
			c.Autofocus = true
			s.render(w, http.StatusUnprocessableEntity, "byok/card-update", c)
			return
		}
		p := s.current(r)
		p.Error = prob
		if next := r.PostFormValue("next"); httpx.IsSafeNext(next) {
			p.Next = next
		}
		s.render(w, http.StatusUnprocessableEntity, "byok/page", p)
		return
	}
	now := time.Now().UTC()
	k := html.KeyView{Provider: prov, HasKey: true, Masked: key[:3] + "…" + key[len(key)-4:], CreatedAt: now, UpdatedAt: now}
	switch r.PostFormValue("ttl") {
	case "1h":
		k.ExpiresAt = now.Add(time.Hour)
	case "7d":
		k.ExpiresAt = now.Add(7 * 24 * time.Hour)
	case "30d":
		k.ExpiresAt = now.Add(30 * 24 * time.Hour)
	case "never":
	default:
		k.ExpiresAt = now.Add(24 * time.Hour)
	}
	s.mu.Lock()
	old, replaced := s.keys[name]
	if replaced {
		k.CreatedAt = old.CreatedAt
	}
	s.keys[name] = k
	s.mu.Unlock()
	st := html.KeyStatus{Provider: prov.DisplayName, Status: html.StatusAdded, Masked: k.Masked}
	if replaced {
		st.Status = html.StatusUpdated
	}
	s.done(w, r, s.card(r, name), st.Toast())
}

func (s *server) del(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	prov, ok := s.provider(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	delete(s.keys, name)
	s.mu.Unlock()
	s.done(w, r, s.card(r, name), html.KeyStatus{Provider: prov.DisplayName, Status: html.StatusDeleted}.Toast())
}

func (s *server) clear(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	clear(s.keys)
	s.mu.Unlock()
	if r.Header.Get("HX-Request") == "true" {
		p := s.current(r)
		p.Toasts = []html.Toast{{Kind: html.KindInfo, Message: "All keys removed"}}
		s.render(w, http.StatusOK, "byok/dashboard-update", p)
		return
	}
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}
