package app

import (
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	byok "github.com/ginbyok/byok"
	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/html"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// userPattern is what checkUser accepts, for the sign-in input's pattern
// attribute (the server checks anyway).
var userPattern = html.HTMLPattern(regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`))

// pages renders the app's own pages. They share the plugin's stylesheet,
// script and partials (html.AddTo), so the whole site looks like one app.
type pages struct {
	kit       *byok.Plugin
	providers []byok.Provider
	clock     func() time.Time
	storage   string // for the footer: where keys are kept
	sessions  string // for the footer: where sessions are kept
	tmpl      map[string]*template.Template
}

// Page template names: each file templates/<name>.tmpl defines
// "example/content" for the layout.
const (
	pageHome  = "home"
	pageDemo  = "demo"
	pageError = "error"
)

// newPages parses the layout with the byok partials, then each page on a
// copy of it.
func newPages(kit *byok.Plugin, cfg Config, storage, sessions string) (*pages, error) {
	base, err := html.AddTo(template.New("example"))
	if err != nil {
		return nil, fmt.Errorf("example: templates: %w", err)
	}
	if base, err = base.ParseFS(templateFiles, "templates/layout.tmpl"); err != nil {
		return nil, fmt.Errorf("example: templates: %w", err)
	}
	pg := &pages{kit: kit, providers: cfg.Providers, clock: cfg.Now, storage: storage, sessions: sessions,
		tmpl: map[string]*template.Template{}}
	if pg.clock == nil {
		pg.clock = time.Now
	}
	for _, name := range []string{pageHome, pageDemo, pageError} {
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFiles, "templates/"+name+".tmpl")
		}
		if err != nil {
			return nil, fmt.Errorf("example: templates: %w", err)
		}
		pg.tmpl[name] = t
	}
	return pg, nil
}

// now is the clock's time in UTC.
func (pg *pages) now() time.Time { return pg.clock().UTC() }

// layout is what every page's frame shows.
type layout struct {
	Title      string
	User       string // "" for a guest
	AssetsPath string
	KeysURL    string
	Storage    string
	Sessions   string
}

func (pg *pages) layout(c *gin.Context, title string) layout {
	return layout{
		Title:      title,
		User:       c.GetString(userKey),
		AssetsPath: pg.kit.Prefix() + "/assets",
		KeysURL:    pg.kit.Prefix(),
		Storage:    pg.storage,
		Sessions:   pg.sessions,
	}
}

// render writes a page as HTML with status; html.Render sends nothing of a
// page that fails.
func (pg *pages) render(c *gin.Context, status int, name string, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if err := html.Render(c.Writer, pg.tmpl[name], "example/layout", data); err != nil {
		_ = c.Error(err)
		c.String(http.StatusInternalServerError, "Something went wrong.")
	}
}

// providerRow is one provider on the home page.
type providerRow struct {
	Info      byok.KeyInfo
	DemoURL   string
	ManageURL string
}

// homeView is the home page.
type homeView struct {
	layout
	Rows        []providerRow
	Saved       int
	LoginName   string
	LoginError  *html.Alert
	UserPattern string
	Notice      *html.Alert // what the sign-in just did, shown once
}

// home answers GET /.
func (pg *pages) home(c *gin.Context) { pg.renderHome(c, http.StatusOK, "", "") }

// renderHome renders the home page, with a sign-in error when msg is set.
func (pg *pages) renderHome(c *gin.Context, status int, name, msg string) {
	v := homeView{layout: pg.layout(c, "Home"), LoginName: name, UserPattern: userPattern, Notice: takeNotice(c)}
	if msg != "" {
		v.LoginError = &html.Alert{Kind: html.KindError, Style: html.StyleSoft, Message: msg, ID: "user-error"}
	}
	infos, err := pg.kit.List(c)
	if err != nil {
		// Storage is down: show the page without key states rather than
		// no page at all.
		_ = c.Error(err)
		infos = nil
		for _, p := range pg.providers {
			infos = append(infos, byok.KeyInfo{Provider: p.Name, Name: p.DisplayName})
		}
	}
	for _, k := range infos {
		if k.HasKey {
			v.Saved++
		}
		v.Rows = append(v.Rows, providerRow{
			Info:      k,
			DemoURL:   "/demo/" + url.PathEscape(k.Provider),
			ManageURL: pg.kit.Prefix() + "#byok-card-" + url.PathEscape(k.Provider),
		})
	}
	pg.render(c, status, pageHome, v)
}

// demoView is a guarded demo page.
type demoView struct {
	layout
	Provider  string // provider name
	Name      string // display name
	Masked    string
	Info      byok.KeyInfo
	ManageURL string
	Now       time.Time
}

// demoJSON is the JSON answer of a guarded demo page.
type demoJSON struct {
	Provider string `json:"provider"`
	Masked   string `json:"masked"`
}

// demo answers GET /demo/{provider} once RequireKey let the request through:
// JSON {"provider","masked"} for a JSON client, else a page saying which key
// would be used. Only the mask is ever shown.
func (pg *pages) demo(p byok.Provider) gin.HandlerFunc {
	return func(c *gin.Context) {
		masked := encrypt.Mask(byok.Key(c, p.Name))
		if c.NegotiateFormat(gin.MIMEHTML, gin.MIMEJSON) == gin.MIMEJSON {
			c.Header("Cache-Control", "no-store")
			c.JSON(http.StatusOK, demoJSON{Provider: p.Name, Masked: masked})
			return
		}
		info, err := pg.kit.Info(c, p.Name)
		if err != nil {
			_ = c.Error(err)
		}
		pg.render(c, http.StatusOK, pageDemo, demoView{
			layout:    pg.layout(c, p.DisplayName+" demo"),
			Provider:  p.Name,
			Name:      p.DisplayName,
			Masked:    masked,
			Info:      info,
			ManageURL: pg.kit.Prefix() + "#byok-card-" + url.PathEscape(p.Name),
			Now:       pg.now(),
		})
	}
}

// errorView is an error page.
type errorView struct {
	layout
	Heading string
	Detail  string
	Status  int
}

// renderError renders an error page with status.
func (pg *pages) renderError(c *gin.Context, status int, heading, detail string) {
	pg.render(c, status, pageError, errorView{layout: pg.layout(c, heading), Heading: heading, Detail: detail, Status: status})
}

// notFound answers every path the app does not serve.
func (pg *pages) notFound(c *gin.Context) {
	if c.NegotiateFormat(gin.MIMEHTML, gin.MIMEJSON) == gin.MIMEJSON {
		c.JSON(http.StatusNotFound, gin.H{"error": "not found"})
		return
	}
	pg.renderError(c, http.StatusNotFound, "Page not found", "There is nothing at this address. The demo pages are listed on the home page.")
}
