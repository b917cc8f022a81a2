package byok

import (
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/html"
	"github.com/ginbyok/byok/internal/httpx"
)

// Template names the plugin renders.
const (
	tmplPage            = "byok/page"             // the full page (html.Page)
	tmplDashboard       = "byok/dashboard"        // the dashboard fragment (html.Page)
	tmplDashboardUpdate = "byok/dashboard-update" // dashboard + out-of-band toasts (html.Page)
	tmplCard            = "byok/key-card"         // one card (html.CardData)
	tmplCardUpdate      = "byok/card-update"      // card + out-of-band toast (html.CardData)
	tmplToast           = "byok/toast-item"       // one toast (html.Toast)
)

// contentSecurityPolicy is sent with every page and fragment: the templates
// use no inline script or style and load everything from the plugin's
// assets.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// newTemplates builds the plugin's own template set: the embedded templates,
// then the overrides.
func newTemplates(overrides fs.FS) (*template.Template, error) {
	t, err := html.New(overrides)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{tmplPage, tmplDashboard, tmplDashboardUpdate, tmplCard, tmplCardUpdate, tmplToast} {
		if t.Lookup(name) == nil {
			return nil, errors.New("template " + name + " is missing")
		}
	}
	return t, nil
}

// render writes a template as text/html with status, or a plain 500 if it
// fails to render (nothing of the failed template is sent).
func (p *Plugin) render(c *gin.Context, status int, name string, data any) {
	h := c.Writer.Header()
	httpx.SecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	c.Status(status)
	if err := html.Render(c.Writer, p.tmpl, name, data); err != nil {
		p.log.ErrorContext(c.Request.Context(), "byok: rendering a template failed", "template", name, "err", err)
		if !c.Writer.Written() {
			c.Status(http.StatusInternalServerError)
			_, _ = c.Writer.WriteString("<!doctype html><title>Error</title><p>Something went wrong.</p>")
		}
	}
}

// viewProvider is what the templates know about a provider.
func viewProvider(pr Provider) html.Provider {
	v := html.Provider{
		Name:        pr.Name,
		DisplayName: pr.DisplayName,
		Placeholder: pr.Placeholder,
		MinLen:      pr.MinLen,
		MaxLen:      pr.MaxLen,
		DocsURL:     pr.DocsURL,
	}
	v.Pattern = pr.InputPattern()
	return v
}

// view turns a KeyInfo into the templates' KeyView.
func (p *Plugin) view(k KeyInfo) html.KeyView {
	pr, _ := p.keys.Provider(k.Provider)
	return html.KeyView{
		Provider:  viewProvider(pr),
		HasKey:    k.HasKey || k.Expired,
		Masked:    k.Masked,
		CreatedAt: k.CreatedAt,
		UpdatedAt: k.UpdatedAt,
		ExpiresAt: k.ExpiresAt,
		Expired:   k.Expired,
	}
}

// ttlChoices are the "keep for" options, with the default selected.
func (p *Plugin) ttlChoices() []html.TTLChoice {
	out := make([]html.TTLChoice, len(p.opts.ttlChoices))
	for i, d := range p.opts.ttlChoices {
		out[i] = html.TTLChoice{Value: FormatTTL(d), Label: ttlLabel(d), Default: d == p.opts.ttl}
	}
	return out
}

// ttlValues are the allowed ttl values, as the problem detail lists them.
func (p *Plugin) ttlValues() []string {
	out := make([]string, len(p.opts.ttlChoices))
	for i, d := range p.opts.ttlChoices {
		out[i] = FormatTTL(d)
	}
	return out
}

// page builds the dashboard's view model.
func (p *Plugin) page(keys []KeyInfo, need []string, next, user string) html.Page {
	views := make([]html.KeyView, len(keys))
	for i, k := range keys {
		views[i] = p.view(k)
	}
	return html.Page{
		Prefix:     p.base,
		AssetsPath: p.base + "/assets",
		Keys:       views,
		Need:       need,
		Next:       next,
		TTLChoices: p.ttlChoices(),
		Now:        p.now(),
		User:       user,
		AppName:    p.opts.appName,
		HomeURL:    p.opts.homeURL,
	}
}

// card builds one card's view model.
func (p *Plugin) card(k KeyInfo, next string) html.CardData {
	return html.CardData{
		Key:        p.view(k),
		Prefix:     p.base,
		Next:       next,
		TTLChoices: p.ttlChoices(),
		Now:        p.now(),
	}
}

// viewProblem is a problem in the templates' words.
func viewProblem(pr httpx.Problem, field string) *html.Problem {
	return &html.Problem{Title: pr.Title, Detail: pr.Detail, Code: pr.Code, Status: pr.Status, Field: field, Provider: pr.Provider}
}

// toastFor is the toast a finished change shows.
func toastFor(name, status, masked string) *html.Toast {
	t := html.KeyStatus{Provider: name, Status: status, Masked: masked}.Toast()
	return &t
}

// errorToast is the toast an htmx request gets for a problem that is not
// about one form field.
func errorToast(pr httpx.Problem) html.Toast {
	return html.Toast{Kind: html.KindError, Message: pr.Title + ": " + pr.Detail, Timeout: 8 * time.Second}
}
