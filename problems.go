package byok

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/hybrid"
)

var zeroRecord stores.Record

func itoa(n int) string { return strconv.Itoa(n) }

// invalidKeyError is a key refused by a check; its cause is the text shown
// to the user, and never contains the key.
type invalidKeyError struct{ cause error }

func (e *invalidKeyError) Error() string   { return ErrInvalidKey.Error() + ": " + e.cause.Error() }
func (e *invalidKeyError) Unwrap() []error { return []error{ErrInvalidKey, e.cause} }

// internalProblem is the 500 for anything unexpected; the cause is logged.
func internalProblem() httpx.Problem {
	return httpx.Problem{
		Type: httpx.TypeBase + "internal", Code: "internal", Status: http.StatusInternalServerError,
		Title: "Something went wrong", Detail: "The request could not be completed. Please try again.",
	}
}

// problemOf turns a manager error into the problem the client sees, and logs
// what the client does not see.
func (p *Plugin) problemOf(c *gin.Context, err error, provider string) httpx.Problem {
	var ik *invalidKeyError
	switch {
	case errors.Is(err, ErrUnknownProvider):
		return httpx.UnknownProvider()
	case errors.As(err, &ik):
		return httpx.InvalidKey(provider, reasonText(ik.cause))
	case errors.Is(err, ErrInvalidKey):
		return httpx.InvalidKey(provider, "")
	case errors.Is(err, ErrInvalidTTL):
		pr := httpx.InvalidTTL(p.ttlValues())
		pr.Provider = provider
		return pr
	case errors.Is(err, ErrTooLarge):
		pr := httpx.TooLarge(MaxBodyBytes)
		pr.Detail = "There is no room for another key in this session. Remove a key you no longer need, or sign in."
		pr.Provider = provider
		return pr
	case errors.Is(err, ErrUnavailable):
		p.log.ErrorContext(c.Request.Context(), "byok: key storage unavailable", "provider", provider, "err", err)
		pr := httpx.StorageUnavailable()
		if errors.Is(err, hybrid.ErrNotInvalidated) {
			// The write may have reached the database: "nothing was
			// changed" would not be true.
			pr.Detail = "Your change may have been saved, but it could not be confirmed everywhere. Please reload your keys and try again shortly."
		}
		pr.Provider = provider
		return pr
	}
	p.log.ErrorContext(c.Request.Context(), "byok: request failed", "provider", provider, "err", err)
	return internalProblem()
}

func kindOf(c *gin.Context) httpx.Kind { return httpx.KindOf(c.Request) }

// fieldOf names the form field a problem is about.
func fieldOf(pr httpx.Problem) string {
	switch pr.Code {
	case httpx.CodeInvalidKey:
		return "api_key"
	case httpx.CodeInvalidTTL:
		return "ttl"
	}
	return ""
}

// htmxStatus is the status an htmx answer carries: the problem's own when
// the plugin's page configures htmx to swap it, else 200 so that htmx swaps
// the message in.
func htmxStatus(status int) int {
	switch status {
	case http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity,
		http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return status
	}
	return http.StatusOK
}

func retryAfter(c *gin.Context, pr httpx.Problem) {
	if pr.RetryAfter > 0 {
		c.Header("Retry-After", itoa(pr.RetryAfter))
	}
}

// fail answers a problem that is not about one card: problem+json, an htmx
// toast (retargeted to the toast container), or the page with the error.
func (p *Plugin) fail(c *gin.Context, kind httpx.Kind, pr httpx.Problem, provider, next string) {
	c.Abort()
	switch kind {
	case httpx.JSON:
		httpx.WriteProblem(c.Writer, pr)
	case httpx.HTMX:
		retryAfter(c, pr)
		c.Header("HX-Retarget", "#byok-toasts")
		c.Header("HX-Reswap", "beforeend")
		p.render(c, htmxStatus(pr.Status), tmplToast, errorToast(pr))
	default:
		p.failPage(c, pr, provider, next)
	}
}

// failCard answers a problem about one provider's card: problem+json, the
// card with the error shown in it (htmx), or the page with the error.
func (p *Plugin) failCard(c *gin.Context, kind httpx.Kind, provider string, pr httpx.Problem, next string) {
	c.Abort()
	pr.Provider = provider
	switch kind {
	case httpx.JSON:
		httpx.WriteProblem(c.Writer, pr)
	case httpx.HTMX:
		info, err := p.keys.Info(c.Request.Context(), p.scope(c, false), provider)
		if err != nil {
			p.fail(c, kind, pr, provider, next)
			return
		}
		card := p.card(info, "")
		card.Error = viewProblem(pr, fieldOf(pr))
		card.Autofocus = true
		retryAfter(c, pr)
		c.Header("HX-Retarget", "#"+card.ID())
		c.Header("HX-Reswap", "outerHTML")
		p.render(c, htmxStatus(pr.Status), tmplCard, card)
	default:
		p.failPage(c, pr, provider, next)
	}
}

// failPage renders the whole page with the error, with the problem's
// status; if even the list of keys cannot be read, a minimal page.
func (p *Plugin) failPage(c *gin.Context, pr httpx.Problem, provider, next string) {
	scope := p.scope(c, false)
	keys, err := p.keys.List(c.Request.Context(), scope)
	if err != nil {
		httpx.WriteProblemHTML(c.Writer, pr, false)
		return
	}
	page := p.page(keys, nil, safeNext(next), scope.UserID)
	pr.Provider = provider
	page.Error = viewProblem(pr, fieldOf(pr))
	retryAfter(c, pr)
	p.render(c, pr.Status, tmplPage, page)
}

// problemPage is the problem handler the guards use for the key routes.
func (p *Plugin) problemPage(c *gin.Context, pr httpx.Problem) {
	kind := httpx.KindOf(c.Request)
	if provider := c.Param("provider"); provider != "" && kind == httpx.HTMX {
		if _, ok := p.keys.Provider(provider); ok {
			p.failCard(c, kind, provider, pr, "")
			return
		}
	}
	p.fail(c, kind, pr, "", "")
}

// reasonText is the sentence a refused key's cause shows the user.
func reasonText(err error) string {
	s := err.Error()
	for _, sentinel := range []error{ErrMalformedKey, ErrInvalidKey} {
		s = strings.TrimPrefix(s, sentinel.Error()+": ")
	}
	if s == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
