package byok

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/guards"
	"github.com/ginbyok/byok/html"
	"github.com/ginbyok/byok/internal/httpx"
)

// flashKey is the session entry that carries the result of a form post
// across its redirect (post/redirect/get), e.g. "saved:openai".
const flashKey = "byok.flash"

// reservedNames are path segments the key routes use; no provider may take
// one as its name.
var reservedNames = []string{"assets", "clear"}

// routes mounts the key routes on g (DESIGN.md §5).
func (p *Plugin) routes(g *gin.RouterGroup) {
	// Assets first: they are public and cacheable, unlike key responses.
	g.GET("/assets/*file", p.handleAsset())

	g.Use(guards.NoStore())
	if p.guard.https != nil {
		g.Use(p.guard.https)
	}
	write := []gin.HandlerFunc{p.guard.crossOrigin, p.limitBody}
	if p.guard.rate != nil {
		write = append(write, p.guard.rate)
	}
	with := func(h gin.HandlerFunc) []gin.HandlerFunc {
		return append(append([]gin.HandlerFunc(nil), write...), h)
	}
	g.GET("", p.handleList)
	g.POST("", with(p.handleSetNamed)...)
	g.DELETE("", with(p.handleClear)...)
	g.POST("/clear", with(p.handleClear)...)
	g.GET("/:provider", p.handleInfo)
	g.POST("/:provider", with(p.handleSet)...)
	g.DELETE("/:provider", with(p.handleDelete)...)
	g.POST("/:provider/delete", with(p.handleDelete)...)
}

// limitBody caps the request body at MaxBodyBytes.
func (p *Plugin) limitBody(c *gin.Context) {
	if c.Request.ContentLength > MaxBodyBytes {
		p.fail(c, httpx.KindOf(c.Request), httpx.TooLarge(MaxBodyBytes), "", "")
		c.Abort()
		return
	}
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	}
	c.Next()
}

// handleAsset serves html.Assets(): long-lived and immutable when the URL
// carries the content hash the templates add (?v=…), an hour otherwise.
func (p *Plugin) handleAsset() gin.HandlerFunc {
	assets := html.Assets()
	files := http.FileServerFS(assets)
	return func(c *gin.Context) {
		name := strings.TrimPrefix(path.Clean("/"+c.Param("file")), "/")
		if st, err := fs.Stat(assets, name); err != nil || !st.Mode().IsRegular() {
			c.Status(http.StatusNotFound)
			return
		}
		h := c.Writer.Header()
		if c.Query("v") != "" {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=3600")
		}
		h.Set("X-Content-Type-Options", "nosniff")
		r := c.Request.Clone(c.Request.Context())
		r.URL.Path = "/" + name
		files.ServeHTTP(c.Writer, r)
	}
}

// handleList answers GET prefix: the page, the dashboard fragment, or JSON.
func (p *Plugin) handleList(c *gin.Context) {
	kind := httpx.KindOf(c.Request)
	scope := p.scope(c, false)
	keys, err := p.keys.List(c.Request.Context(), scope)
	if err != nil {
		p.fail(c, kind, p.problemOf(c, err, ""), "", "")
		return
	}
	if kind == httpx.JSON {
		writeJSON(c, http.StatusOK, struct {
			Keys []KeyInfo `json:"keys"`
		}{keys})
		return
	}
	page := p.page(keys, p.needParam(c), safeNext(c.Query("next")), scope.UserID)
	if kind == httpx.HTMX {
		p.render(c, http.StatusOK, tmplDashboard, page)
		return
	}
	page.Toasts = p.takeFlash(c)
	p.render(c, http.StatusOK, tmplPage, page)
}

// handleInfo answers GET prefix/{provider}: the card fragment or JSON; a
// browser is sent to the page, at the card.
func (p *Plugin) handleInfo(c *gin.Context) {
	kind := httpx.KindOf(c.Request)
	name := c.Param("provider")
	info, err := p.keys.Info(c.Request.Context(), p.scope(c, false), name)
	if err != nil {
		p.fail(c, kind, p.problemOf(c, err, ""), "", "")
		return
	}
	switch kind {
	case httpx.JSON:
		writeJSON(c, http.StatusOK, info)
	case httpx.HTMX:
		p.render(c, http.StatusOK, tmplCard, p.card(info, safeNext(c.Query("next"))))
	default:
		c.Redirect(http.StatusSeeOther, p.base+"#byok-card-"+url.PathEscape(name))
	}
}

// keyInput is a POST prefix/{provider} body.
type keyInput struct {
	key, ttl, next string
	ttlSet         bool
}

// handleSet answers POST prefix/{provider}: validate, store, then JSON
// 201/200, the card with a toast for htmx, or a 303 for a form.
func (p *Plugin) handleSet(c *gin.Context) {
	kind := httpx.KindOf(c.Request)
	name := c.Param("provider")
	if _, ok := p.keys.Provider(name); !ok {
		p.fail(c, kind, httpx.UnknownProvider(), "", "")
		return
	}
	in, prob := readKeyInput(c.Request)
	if prob != nil {
		p.failCard(c, kind, name, *prob, in.next)
		return
	}
	ttl := time.Duration(0)
	if in.ttlSet {
		d, err := ParseTTL(in.ttl)
		if err == nil {
			d, err = p.keys.TTL(d)
		}
		if err != nil {
			p.failCard(c, kind, name, p.problemOf(c, err, name), in.next)
			return
		}
		ttl = d
	}
	scope := p.scope(c, true)
	sess := scope.Session
	if kind == httpx.HTML {
		sess.Set(flashKey, "saved:"+name)
	}
	info, replaced, err := p.keys.Set(c.Request.Context(), scope, name, in.key, ttl)
	if err != nil {
		if kind == httpx.HTML {
			sess.Delete(flashKey)
		}
		p.failCard(c, kind, name, p.problemOf(c, err, name), in.next)
		return
	}
	status, toast := http.StatusCreated, html.StatusAdded
	if replaced {
		status, toast = http.StatusOK, html.StatusUpdated
	}
	switch kind {
	case httpx.JSON:
		writeJSON(c, status, info)
	case httpx.HTMX:
		card := p.card(info, "")
		card.Toast = toastFor(info.Name, toast, info.Masked)
		p.render(c, http.StatusOK, tmplCardUpdate, card)
	default:
		p.saveSession(c, sess) // the flash set above, unless the store saved it already
		c.Redirect(http.StatusSeeOther, httpx.SafeNext(in.next, p.base))
	}
}

// handleDelete answers DELETE prefix/{provider} and POST
// prefix/{provider}/delete: 204, the empty card with a toast, or a 303.
func (p *Plugin) handleDelete(c *gin.Context) {
	kind := httpx.KindOf(c.Request)
	name := c.Param("provider")
	if _, ok := p.keys.Provider(name); !ok {
		p.fail(c, kind, httpx.UnknownProvider(), "", "")
		return
	}
	next, prob := readNext(c.Request)
	if prob != nil {
		p.failCard(c, kind, name, *prob, next)
		return
	}
	scope := p.scope(c, false)
	if kind == httpx.HTML {
		scope.Session.Set(flashKey, "deleted:"+name)
	}
	if _, err := p.keys.Delete(c.Request.Context(), scope, name); err != nil {
		if kind == httpx.HTML {
			scope.Session.Delete(flashKey)
		}
		p.failCard(c, kind, name, p.problemOf(c, err, name), next)
		return
	}
	switch kind {
	case httpx.JSON:
		c.Status(http.StatusNoContent)
	case httpx.HTMX:
		info := p.keys.info(name, zeroRecord, "")
		card := p.card(info, "")
		card.Toast = toastFor(info.Name, html.StatusDeleted, "")
		p.render(c, http.StatusOK, tmplCardUpdate, card)
	default:
		p.saveSession(c, scope.Session)
		c.Redirect(http.StatusSeeOther, httpx.SafeNext(next, p.base))
	}
}

// handleClear answers DELETE prefix and POST prefix/clear: 204, the empty
// dashboard with a toast, or a 303.
func (p *Plugin) handleClear(c *gin.Context) {
	kind := httpx.KindOf(c.Request)
	next, prob := readNext(c.Request)
	if prob != nil {
		p.fail(c, kind, *prob, "", next)
		return
	}
	scope := p.scope(c, false)
	if kind == httpx.HTML {
		scope.Session.Set(flashKey, "cleared:")
	}
	n, err := p.keys.Clear(c.Request.Context(), scope)
	if err != nil {
		if kind == httpx.HTML {
			scope.Session.Delete(flashKey)
		}
		p.fail(c, kind, p.problemOf(c, err, ""), "", next)
		return
	}
	switch kind {
	case httpx.JSON:
		c.Status(http.StatusNoContent)
	case httpx.HTMX:
		keys, err := p.keys.List(c.Request.Context(), scope)
		if err != nil {
			p.fail(c, kind, p.problemOf(c, err, ""), "", "")
			return
		}
		page := p.page(keys, nil, "", scope.UserID)
		page.Toasts = []html.Toast{{Kind: html.KindInfo, Message: clearedText(n)}}
		p.render(c, http.StatusOK, tmplDashboardUpdate, page)
	default:
		p.saveSession(c, scope.Session)
		c.Redirect(http.StatusSeeOther, httpx.SafeNext(next, p.base))
	}
}

func clearedText(n int) string {
	switch n {
	case 0:
		return "There were no keys to remove"
	case 1:
		return "1 key removed"
	}
	return itoa(n) + " keys removed"
}

// saveSession saves the session if a flash is still unsaved (the store
// saved it with the change in most cases, making this a no-op).
func (p *Plugin) saveSession(c *gin.Context, s interface{ Save() error }) {
	if err := s.Save(); err != nil {
		p.log.WarnContext(c.Request.Context(), "byok: saving the session failed", "err", err)
	}
}

// takeFlash reads and removes the result a form post left for this page.
func (p *Plugin) takeFlash(c *gin.Context) []html.Toast {
	sess := p.session(c)
	v, ok := sess.Get(flashKey).(string)
	if !ok {
		return nil
	}
	sess.Delete(flashKey)
	p.saveSession(c, sess)
	what, name, _ := strings.Cut(v, ":")
	label := name
	if pr, ok := p.keys.Provider(name); ok && pr.DisplayName != "" {
		label = pr.DisplayName
	} else if !ok && what != "cleared" {
		return nil
	}
	var st string
	switch what {
	case "saved":
		st = html.StatusAdded
	case "replaced":
		st = html.StatusUpdated
	case "deleted":
		st = html.StatusDeleted
	case "cleared":
		return []html.Toast{{Kind: html.KindInfo, Message: "All keys removed"}}
	default:
		return nil
	}
	return []html.Toast{html.KeyStatus{Provider: label, Status: st}.Toast()}
}

// needParam reads ?need=a&need=b or ?need=a,b, keeping configured providers
// only, in order, without duplicates.
func (p *Plugin) needParam(c *gin.Context) []string {
	var out []string
	for _, v := range c.QueryArray("need") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.TrimSpace(name)
			if _, ok := p.keys.Provider(name); ok && !contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// safeNext returns next when it is a safe same-site path, else "".
func safeNext(next string) string {
	if next == "" || httpx.SafeNext(next, "") != next {
		return ""
	}
	return next
}

// readKeyInput reads api_key, ttl and next from a form or JSON body.
func readKeyInput(r *http.Request) (keyInput, *httpx.Problem) {
	var in keyInput
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case isJSON(mt):
		var body struct {
			APIKey *string          `json:"api_key"`
			TTL    *json.RawMessage `json:"ttl"`
			Next   string           `json:"next"`
		}
		dec := json.NewDecoder(r.Body)
		if err := dec.Decode(&body); err != nil {
			return in, bodyProblem(err, "The body is not a JSON object with a string \"api_key\".")
		}
		if _, err := dec.Token(); err != io.EOF {
			pr := httpx.BadRequest("The body must hold one JSON object.")
			return in, &pr
		}
		if body.APIKey != nil {
			in.key = *body.APIKey
		}
		in.next = body.Next
		if body.TTL != nil && string(*body.TTL) != "null" {
			in.ttlSet = true
			if err := json.Unmarshal(*body.TTL, &in.ttl); err != nil {
				in.ttl = "\x00" // not a string: fails ParseTTL as invalid_ttl
			}
		}
	case mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data":
		if err := parseForm(r); err != nil {
			return in, bodyProblem(err, "The form could not be read.")
		}
		in.key = r.PostForm.Get("api_key")
		in.next = r.PostForm.Get("next")
		if v, ok := r.PostForm["ttl"]; ok && len(v) > 0 && v[0] != "" {
			in.ttl, in.ttlSet = v[0], true
		}
	default:
		pr := httpx.UnsupportedMediaType()
		return in, &pr
	}
	if in.next == "" {
		in.next = r.URL.Query().Get("next")
	}
	return in, nil
}

// readNext reads the optional "next" of a delete or clear: from a form body,
// else the query. Other bodies are ignored.
func readNext(r *http.Request) (string, *httpx.Problem) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data" {
		if err := parseForm(r); err != nil {
			return "", bodyProblem(err, "The form could not be read.")
		}
		if n := r.PostForm.Get("next"); n != "" {
			return n, nil
		}
	}
	return r.URL.Query().Get("next"), nil
}

func parseForm(r *http.Request) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		return r.ParseMultipartForm(MaxBodyBytes)
	}
	return r.ParseForm()
}

func isJSON(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// bodyProblem is too_large for a body over the limit, else bad_request.
func bodyProblem(err error, detail string) *httpx.Problem {
	var mbe *http.MaxBytesError
	var pr httpx.Problem
	if errors.As(err, &mbe) {
		pr = httpx.TooLarge(MaxBodyBytes)
	} else {
		pr = httpx.BadRequest(detail)
	}
	return &pr
}

// writeJSON writes v as JSON with status.
func writeJSON(c *gin.Context, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal"}`)
	}
	h := c.Writer.Header()
	httpx.SecurityHeaders(h)
	h.Set("Content-Type", "application/json; charset=utf-8")
	c.Status(status)
	_, _ = c.Writer.Write(b)
}
