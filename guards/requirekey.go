package guards

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
	"github.com/ginbyok/byok/stores"
)

// ErrNoKey is what a KeySource returns, wrapped, when the user has no live
// key for the provider (never stored, expired, or unreadable). It is
// stores.ErrNotFound, so a store's own not-found error serves as is.
var ErrNoKey = stores.ErrNotFound

// KeySource loads the current user's plaintext key for a provider. It
// returns an error wrapping ErrNoKey when there is none; any other error
// means the storage failed, and the guard answers 503 storage_unavailable
// (the error is logged, never shown). Errors must not contain the key.
type KeySource interface {
	LoadKey(c *gin.Context, provider string) (string, error)
}

// KeySourceFunc adapts a function to KeySource.
type KeySourceFunc func(c *gin.Context, provider string) (string, error)

// LoadKey calls f.
func (f KeySourceFunc) LoadKey(c *gin.Context, provider string) (string, error) {
	return f(c, provider)
}

// Options configure RequireKey and RequireAnyKey.
type Options struct {
	// Prefix is where the key routes are mounted; the form for a missing
	// key is Prefix?need=<provider>&next=<here>. Default "/keys".
	Prefix string
	// OnDenied, if set, is called with the providers whose keys are missing
	// before the request is refused; use it for audit (guard.denied). It
	// receives names only, never keys.
	OnDenied func(c *gin.Context, providers []string)
	// DisplayName turns a provider name into the name shown to people
	// ("openai" → "OpenAI"). Default: the name itself.
	DisplayName func(provider string) string
	// Render renders a storage_unavailable problem for browsers and htmx;
	// nil means a minimal built-in page. (A missing key is answered with a
	// redirect, not a page.)
	Render RenderFunc
	// Logger receives storage errors. Default slog.Default().
	Logger *slog.Logger
}

// keysKey is the gin context key under which guards keep the keys they
// loaded for this request.
type keysKey struct{}

// keySet holds the request's plaintext keys, in a small inline array (a
// route rarely needs more than two). Every way of printing or encoding it
// gives "[REDACTED]", so dumping the gin context's Keys never shows a key.
type keySet struct {
	kv  []keyEntry
	buf [2]keyEntry
}

type keyEntry struct{ provider, key string }

func (*keySet) String() string               { return "[REDACTED]" }
func (*keySet) GoString() string             { return "[REDACTED]" }
func (*keySet) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, "[REDACTED]") }
func (*keySet) MarshalJSON() ([]byte, error) { return []byte(`"[REDACTED]"`), nil }
func (*keySet) MarshalText() ([]byte, error) { return []byte("[REDACTED]"), nil }
func (*keySet) LogValue() slog.Value         { return slog.StringValue("[REDACTED]") }

func (k *keySet) get(provider string) (string, bool) {
	for _, e := range k.kv {
		if e.provider == provider {
			return e.key, true
		}
	}
	return "", false
}

func (k *keySet) put(provider, key string) { k.kv = append(k.kv, keyEntry{provider, key}) }

func keysOf(c *gin.Context, create bool) *keySet {
	if v, ok := c.Get(keysKey{}); ok {
		if ks, ok := v.(*keySet); ok {
			return ks
		}
	}
	if !create {
		return nil
	}
	ks := &keySet{}
	ks.kv = ks.buf[:0]
	c.Set(keysKey{}, ks)
	return ks
}

// Key returns the plaintext key for provider that a RequireKey or
// RequireAnyKey guard loaded for this request, or "" when none did. The key
// is decrypted once per request; do not log it.
func Key(c *gin.Context, provider string) string {
	if ks := keysOf(c, false); ks != nil {
		k, _ := ks.get(provider)
		return k
	}
	return ""
}

// RequireKey lets a request through only when the user has a key for every
// one of providers, loading each from src once and keeping it for Key.
// When one is missing, a JSON client gets 403 key_required naming the
// provider and the URL of its form; an htmx request gets 204 with
// HX-Redirect to the form; a browser gets 303 to the form. The form URL is
// opts.Prefix?need=<provider>…&next=<this page>.
//
// Called without a source or providers, or with a provider name that is
// not a valid name, the guard refuses every request with 500 and logs why.
func RequireKey(src KeySource, opts Options, providers ...string) gin.HandlerFunc {
	return require(src, opts, providers, true)
}

// RequireAnyKey is RequireKey satisfied by a key for at least one of
// providers; they are tried in order and loading stops at the first found,
// so Key returns "" for the others. When none is found, the form asks for
// all of them.
func RequireAnyKey(src KeySource, opts Options, providers ...string) gin.HandlerFunc {
	return require(src, opts, providers, false)
}

func require(src KeySource, opts Options, providers []string, all bool) gin.HandlerFunc {
	if opts.Prefix == "" {
		opts.Prefix = "/keys"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DisplayName == nil {
		opts.DisplayName = func(p string) string { return p }
	}
	providers = slices.Clone(providers)
	if why := checkGuardArgs(src, opts.Prefix, providers); why != "" {
		opts.Logger.Error("byok: key guard misconfigured; it refuses every request", "reason", why)
		return func(c *gin.Context) {
			opts.Logger.ErrorContext(c.Request.Context(), "byok: key guard misconfigured", "reason", why)
			deny(c, misconfigured(), nil)
		}
	}
	return func(c *gin.Context) {
		ks := keysOf(c, true)
		var missing []string
		found := 0
		for _, p := range providers {
			if _, ok := ks.get(p); ok {
				found++
			} else {
				key, err := src.LoadKey(c, p)
				switch {
				case err == nil && key != "":
					ks.put(p, key)
					found++
				case err == nil || errors.Is(err, ErrNoKey):
					missing = append(missing, p)
				default:
					opts.Logger.ErrorContext(c.Request.Context(), "byok: could not load a key", "provider", p, "err", err)
					deny(c, httpx.StorageUnavailable(), opts.Render)
					return
				}
			}
			if !all && found > 0 {
				break
			}
		}
		if (all && len(missing) == 0) || (!all && found > 0) {
			c.Next()
			return
		}
		if !all {
			missing = providers
		}
		keyRequired(c, opts, missing, all)
	}
}

var providerName = func(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func checkGuardArgs(src KeySource, prefix string, providers []string) string {
	switch {
	case src == nil:
		return "no KeySource"
	case len(providers) == 0:
		return "no providers"
	case !strings.HasPrefix(prefix, "/") || strings.HasPrefix(prefix, "//") || !httpx.IsSafeNext(prefix):
		return fmt.Sprintf("prefix %q is not an absolute path", prefix)
	}
	for _, p := range providers {
		if !providerName(p) {
			return fmt.Sprintf("provider name %q is not valid", p)
		}
	}
	return ""
}

// keyRequired refuses the request because the keys for missing are absent.
func keyRequired(c *gin.Context, opts Options, missing []string, all bool) {
	if opts.OnDenied != nil {
		opts.OnDenied(c, slices.Clone(missing))
	}
	kind := httpx.KindOf(c.Request)
	form := FormURL(opts.Prefix, missing, nextOf(c, kind))
	h := c.Writer.Header()
	httpx.SecurityHeaders(h)
	switch kind {
	case httpx.JSON:
		p := httpx.KeyRequired(missing[0], opts.DisplayName(missing[0]), form)
		if len(missing) > 1 {
			names := make([]string, len(missing))
			for i, m := range missing {
				names[i] = opts.DisplayName(m)
			}
			if all {
				p.Detail = "This needs your " + joinNames(names, "and") + " API keys. Add them, then try again."
			} else {
				p.Detail = "This needs an API key for " + joinNames(names, "or") + ". Add one, then try again."
			}
		}
		httpx.WriteProblem(c.Writer, p)
	case httpx.HTMX:
		h.Set("HX-Redirect", form)
		c.Writer.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Location", form)
		c.Writer.WriteHeader(http.StatusSeeOther)
	}
	c.Abort()
}

func joinNames(names []string, conj string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + conj + " " + names[len(names)-1]
}

// FormURL returns the URL of the key form asking for providers, coming back
// to next afterwards: prefix?need=a&need=b&next=/chat. next is dropped
// unless it is a safe same-site path.
func FormURL(prefix string, providers []string, next string) string {
	v := url.Values{"need": providers}
	if next != "" && httpx.IsSafeNext(next) {
		v.Set("next", next)
	}
	return prefix + "?" + v.Encode()
}

// nextOf is where the user should come back to after adding the key: this
// URL for a GET, the page htmx says it is on (HX-Current-URL) for htmx, and
// the referring page of this site for a form post. "" when unknown.
func nextOf(c *gin.Context, kind httpx.Kind) string {
	r := c.Request
	if kind == httpx.HTMX {
		if n := sameSitePath(r, r.Header.Get("HX-Current-URL")); n != "" {
			return n
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if n := r.URL.RequestURI(); httpx.IsSafeNext(n) {
			return n
		}
		return ""
	}
	if kind == httpx.JSON {
		return ""
	}
	return sameSitePath(r, r.Referer())
}

// sameSitePath returns raw's path and query when raw is a URL on this
// request's host (or a bare path), and "" otherwise.
func sameSitePath(r *http.Request, raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Host != "" && !strings.EqualFold(u.Host, r.Host)) {
		return ""
	}
	if n := u.RequestURI(); httpx.IsSafeNext(n) {
		return n
	}
	return ""
}
