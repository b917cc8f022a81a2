package byok

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLength is the hard upper bound on any key's length, whatever a
// provider's MaxLen says.
const MaxKeyLength = 4096

// defaultMaxLen applies when a provider leaves MaxLen at zero.
const defaultMaxLen = 512

// defaultCheckTimeout bounds a live check when ctx has no deadline.
const defaultCheckTimeout = 10 * time.Second

// maxCheckBody is how much of a check response is read.
const maxCheckBody = 64 << 10

// maxProviderMessage is how many characters of a provider's error text are
// kept.
const maxProviderMessage = 300

// Errors about providers and keys. Compare with errors.Is; none of them
// ever contains a key.
var (
	// ErrMalformedKey means a key failed [Provider.CheckFormat]: empty, too
	// short or long, a character that is not printable ASCII, or not the
	// provider's shape. The wrapped text says which.
	ErrMalformedKey = errors.New("byok: malformed key")
	// ErrKeyRejected means the provider answered the live check with 400,
	// 401 or 403: it does not accept the key. See [CheckError] for its words.
	ErrKeyRejected = errors.New("byok: key rejected by the provider")
	// ErrCheckUnavailable means the live check could not tell: the provider
	// could not be reached, timed out, limited the rate or failed (5xx).
	ErrCheckUnavailable = errors.New("byok: key check unavailable")
	// ErrNoCheckURL means the provider has no CheckURL, so no live check.
	ErrNoCheckURL = errors.New("byok: provider has no check URL")
	// ErrInvalidProvider means a Provider definition is unusable; see
	// [Provider.Validate].
	ErrInvalidProvider = errors.New("byok: invalid provider")
)

// Provider describes an API whose keys users bring: how to name it, what a
// well-formed key looks like, and how to try a key against it.
//
// Built-in providers are the exported variables ([OpenAI], [Anthropic], …);
// a custom provider is a Provider value that passes [Provider.Validate].
type Provider struct {
	// Name is the URL-safe id used in routes, storage and Key(c, name):
	// lower-case letters, digits, "-" and "_", at most 32, e.g. "openai".
	Name string
	// DisplayName is the human name, e.g. "OpenAI".
	DisplayName string
	// Prefix is what every key starts with ("sk-"), or "" if keys have no
	// fixed prefix. It is checked, and shown by Mask.
	Prefix string
	// Placeholder is the hint shown in an empty key input, e.g. "sk-…".
	Placeholder string
	// DocsURL is the page where users create a key.
	DocsURL string
	// Pattern, when set, is what a well-formed key matches; it must be
	// anchored (^…$). Nil means any printable ASCII without spaces.
	Pattern *regexp.Regexp
	// MinLen and MaxLen bound a key's length in bytes. MinLen 0 means 1;
	// MaxLen 0 means 512; MaxLen is at most MaxKeyLength.
	MinLen, MaxLen int
	// HTMLPattern is the input element's pattern attribute (a JavaScript
	// regular expression, implicitly anchored, compiled with the v flag).
	// Empty means derived from Pattern when that is simple enough; see
	// [Provider.InputPattern].
	HTMLPattern string
	// BaseURL is the API's base URL ("https://api.openai.com/v1"); CheckURL
	// starts with it. [Provider.WithBaseURL] moves both.
	BaseURL string
	// CheckURL is fetched with GET and the key to check it, e.g. the models
	// list. Empty means the provider has no live check. It must be https
	// (plain http only to a loopback address).
	CheckURL string
	// Auth puts the key on a check request. Nil means
	// "Authorization: Bearer <key>".
	Auth func(req *http.Request, key string)
	// EnvVars are the conventional environment variables holding a key for
	// this provider ("OPENAI_API_KEY"), read by [KeysFromEnv] after the
	// API_KEY_<NAME> form.
	EnvVars []string
}

// BearerAuth sets "Authorization: Bearer <key>", the scheme most providers use.
func BearerAuth(req *http.Request, key string) {
	req.Header.Set("Authorization", "Bearer "+key)
}

// HeaderAuth returns an Auth function that puts the key in the named header
// (for example "x-api-key"), and sets each pair of extra header names and
// values as well.
func HeaderAuth(header string, extra ...string) func(req *http.Request, key string) {
	return func(req *http.Request, key string) {
		req.Header.Set(header, key)
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
	}
}

// Key shapes. Classes are written so that the same text is a valid Go
// regexp and a valid JavaScript v-flag pattern ("-" escaped in classes).
var (
	// permissive is a charset for providers whose exact key shape is not
	// documented: letters, digits and the punctuation of base64 and
	// base64url, plus "." and "~".
	permissive  = regexp.MustCompile(`^[A-Za-z0-9._~+=\/\-]+$`)
	patOpenAI   = regexp.MustCompile(`^sk-[A-Za-z0-9_\-]+$`)
	patAnthro   = regexp.MustCompile(`^sk-ant-[A-Za-z0-9_\-]+$`)
	patGroq     = regexp.MustCompile(`^gsk_[A-Za-z0-9_\-]+$`)
	patXAI      = regexp.MustCompile(`^xai-[A-Za-z0-9_\-]+$`)
	patOpenRtr  = regexp.MustCompile(`^sk-or-[A-Za-z0-9_\-]+$`)
	patHF       = regexp.MustCompile(`^hf_[A-Za-z0-9_\-]+$`)
	patPPLX     = regexp.MustCompile(`^pplx-[A-Za-z0-9_\-]+$`)
	patReplic   = regexp.MustCompile(`^r8_[A-Za-z0-9_\-]{37}$`)
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
)

func anthropicAuth(req *http.Request, key string) {
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
}

func googleAuth(req *http.Request, key string) { req.Header.Set("x-goog-api-key", key) }

// builtins returns fresh copies of the built-in providers, in display order.
// Sources: each provider's API reference for the check endpoint and its
// authentication; key shapes from the providers' docs where documented,
// otherwise a permissive charset with length bounds.
func builtins() []Provider {
	return []Provider{
		{
			Name: "openai", DisplayName: "OpenAI", Prefix: "sk-", Placeholder: "sk-…",
			DocsURL: "https://platform.openai.com/api-keys",
			Pattern: patOpenAI, MinLen: 20, MaxLen: 512,
			BaseURL: "https://api.openai.com/v1", CheckURL: "https://api.openai.com/v1/models",
			EnvVars: []string{"OPENAI_API_KEY"},
		},
		{
			Name: "anthropic", DisplayName: "Anthropic", Prefix: "sk-ant-", Placeholder: "sk-ant-…",
			DocsURL: "https://console.anthropic.com/settings/keys",
			Pattern: patAnthro, MinLen: 32, MaxLen: 512,
			BaseURL: "https://api.anthropic.com/v1", CheckURL: "https://api.anthropic.com/v1/models",
			Auth:    anthropicAuth,
			EnvVars: []string{"ANTHROPIC_API_KEY"},
		},
		{
			// Google issues "AIza…" standard keys and, since 2026, "AQ.…"
			// auth keys: no fixed prefix, and "." is allowed.
			Name: "google", DisplayName: "Google Gemini", Placeholder: "AIza… or AQ.…",
			DocsURL: "https://aistudio.google.com/app/apikey",
			Pattern: permissive, MinLen: 30, MaxLen: 512,
			BaseURL: "https://generativelanguage.googleapis.com/v1beta", CheckURL: "https://generativelanguage.googleapis.com/v1beta/models",
			Auth:    googleAuth,
			EnvVars: []string{"GEMINI_API_KEY", "GOOGLE_API_KEY"},
		},
		{
			Name: "mistral", DisplayName: "Mistral AI", Placeholder: "Your Mistral API key",
			DocsURL: "https://console.mistral.ai/api-keys",
			Pattern: permissive, MinLen: 20, MaxLen: 256,
			BaseURL: "https://api.mistral.ai/v1", CheckURL: "https://api.mistral.ai/v1/models",
			EnvVars: []string{"MISTRAL_API_KEY"},
		},
		{
			Name: "groq", DisplayName: "Groq", Prefix: "gsk_", Placeholder: "gsk_…",
			DocsURL: "https://console.groq.com/keys",
			Pattern: patGroq, MinLen: 24, MaxLen: 256,
			BaseURL: "https://api.groq.com/openai/v1", CheckURL: "https://api.groq.com/openai/v1/models",
			EnvVars: []string{"GROQ_API_KEY"},
		},
		{
			Name: "xai", DisplayName: "xAI (Grok)", Prefix: "xai-", Placeholder: "xai-…",
			DocsURL: "https://console.x.ai/",
			Pattern: patXAI, MinLen: 24, MaxLen: 256,
			BaseURL: "https://api.x.ai/v1", CheckURL: "https://api.x.ai/v1/models",
			EnvVars: []string{"XAI_API_KEY"},
		},
		{
			// OpenRouter's /models is public; /key needs the key and
			// describes it.
			Name: "openrouter", DisplayName: "OpenRouter", Prefix: "sk-or-", Placeholder: "sk-or-v1-…",
			DocsURL: "https://openrouter.ai/settings/keys",
			Pattern: patOpenRtr, MinLen: 24, MaxLen: 256,
			BaseURL: "https://openrouter.ai/api/v1", CheckURL: "https://openrouter.ai/api/v1/key",
			EnvVars: []string{"OPENROUTER_API_KEY"},
		},
		{
			Name: "deepseek", DisplayName: "DeepSeek", Prefix: "sk-", Placeholder: "sk-…",
			DocsURL: "https://platform.deepseek.com/api_keys",
			Pattern: patOpenAI, MinLen: 20, MaxLen: 256,
			BaseURL: "https://api.deepseek.com", CheckURL: "https://api.deepseek.com/models",
			EnvVars: []string{"DEEPSEEK_API_KEY"},
		},
		{
			Name: "cohere", DisplayName: "Cohere", Placeholder: "Your Cohere API key",
			DocsURL: "https://dashboard.cohere.com/api-keys",
			Pattern: permissive, MinLen: 20, MaxLen: 256,
			BaseURL: "https://api.cohere.com/v1", CheckURL: "https://api.cohere.com/v1/models",
			EnvVars: []string{"COHERE_API_KEY", "CO_API_KEY"},
		},
		{
			Name: "together", DisplayName: "Together AI", Placeholder: "Your Together API key",
			DocsURL: "https://api.together.ai/settings/api-keys",
			Pattern: permissive, MinLen: 20, MaxLen: 256,
			BaseURL: "https://api.together.xyz/v1", CheckURL: "https://api.together.xyz/v1/models",
			EnvVars: []string{"TOGETHER_API_KEY", "TOGETHERAI_API_KEY"},
		},
		{
			// A Hugging Face token is checked with whoami, the Hub's
			// cheapest authenticated call.
			Name: "huggingface", DisplayName: "Hugging Face", Prefix: "hf_", Placeholder: "hf_…",
			DocsURL: "https://huggingface.co/settings/tokens",
			Pattern: patHF, MinLen: 20, MaxLen: 256,
			BaseURL: "https://huggingface.co/api", CheckURL: "https://huggingface.co/api/whoami-v2",
			EnvVars: []string{"HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGING_FACE_HUB_TOKEN"},
		},
		{
			// Perplexity documents no cheap authenticated GET, so no live check.
			Name: "perplexity", DisplayName: "Perplexity", Prefix: "pplx-", Placeholder: "pplx-…",
			DocsURL: "https://www.perplexity.ai/settings/api",
			Pattern: patPPLX, MinLen: 20, MaxLen: 256,
			BaseURL: "https://api.perplexity.ai",
			EnvVars: []string{"PERPLEXITY_API_KEY", "PPLX_API_KEY"},
		},
		{
			// Fireworks' documented model list needs an account id, so no
			// live check; older keys have no fixed prefix.
			Name: "fireworks", DisplayName: "Fireworks AI", Placeholder: "Your Fireworks API key",
			DocsURL: "https://fireworks.ai/account/api-keys",
			Pattern: permissive, MinLen: 20, MaxLen: 256,
			BaseURL: "https://api.fireworks.ai/inference/v1",
			EnvVars: []string{"FIREWORKS_API_KEY"},
		},
		{
			// Replicate: "40-character strings that always start with r8_".
			Name: "replicate", DisplayName: "Replicate", Prefix: "r8_", Placeholder: "r8_…",
			DocsURL: "https://replicate.com/account/api-tokens",
			Pattern: patReplic, MinLen: 40, MaxLen: 40,
			BaseURL: "https://api.replicate.com/v1", CheckURL: "https://api.replicate.com/v1/account",
			EnvVars: []string{"REPLICATE_API_TOKEN", "REPLICATE_API_KEY"},
		},
	}
}

// The built-in providers. Each is a copy: changing one of these variables
// does not change what [BuiltinProviders] or [LookupProvider] return.
var (
	OpenAI      = mustBuiltin("openai")      // OpenAI: sk-… keys, checked with GET /v1/models
	Anthropic   = mustBuiltin("anthropic")   // Anthropic: sk-ant-… keys, checked with GET /v1/models (x-api-key)
	Google      = mustBuiltin("google")      // Google Gemini: AIza… or AQ.… keys, checked with GET /v1beta/models (x-goog-api-key)
	Mistral     = mustBuiltin("mistral")     // Mistral AI, checked with GET /v1/models
	Groq        = mustBuiltin("groq")        // Groq: gsk_… keys, checked with GET /openai/v1/models
	XAI         = mustBuiltin("xai")         // xAI (Grok): xai-… keys, checked with GET /v1/models
	OpenRouter  = mustBuiltin("openrouter")  // OpenRouter: sk-or-… keys, checked with GET /api/v1/key
	DeepSeek    = mustBuiltin("deepseek")    // DeepSeek: sk-… keys, checked with GET /models
	Cohere      = mustBuiltin("cohere")      // Cohere, checked with GET /v1/models
	Together    = mustBuiltin("together")    // Together AI, checked with GET /v1/models
	HuggingFace = mustBuiltin("huggingface") // Hugging Face: hf_… tokens, checked with GET /api/whoami-v2
	Perplexity  = mustBuiltin("perplexity")  // Perplexity: pplx-… keys; no live check
	Fireworks   = mustBuiltin("fireworks")   // Fireworks AI; no live check
	Replicate   = mustBuiltin("replicate")   // Replicate: r8_… tokens, checked with GET /v1/account
)

// mustBuiltin returns the built-in named name; the names are constants of
// this file, so a miss is a programming error caught by every test run.
func mustBuiltin(name string) Provider {
	p, ok := LookupProvider(name)
	if !ok {
		panic("byok: no built-in provider " + name)
	}
	return p
}

// BuiltinProviders returns every built-in provider, in display order. The
// slice and the providers in it are the caller's to change.
func BuiltinProviders() []Provider { return builtins() }

// LookupProvider returns the built-in provider with this name.
func LookupProvider(name string) (Provider, bool) {
	for _, p := range builtins() {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// WithBaseURL returns a copy of p whose API lives at u instead: BaseURL
// becomes u and CheckURL keeps its path below the old base. Use it for a
// proxy, a regional endpoint or a test server; [Provider.Validate] checks
// the result.
func (p Provider) WithBaseURL(u string) Provider {
	u = strings.TrimRight(u, "/")
	if p.CheckURL != "" {
		rest := ""
		old := strings.TrimRight(p.BaseURL, "/")
		if old != "" && strings.HasPrefix(p.CheckURL, old) {
			rest = strings.TrimPrefix(p.CheckURL, old)
		} else if cu, err := url.Parse(p.CheckURL); err == nil {
			rest = cu.RequestURI()
		}
		p.CheckURL = u + rest
	}
	p.BaseURL = u
	p.EnvVars = slices.Clone(p.EnvVars)
	return p
}

// Validate reports whether p is a usable provider definition: a valid Name,
// a DisplayName, length bounds in order, an anchored Pattern, and, when
// set, https DocsURL, BaseURL and CheckURL (plain http only to a loopback
// address). Errors wrap [ErrInvalidProvider].
func (p Provider) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidProvider, p.Name, fmt.Sprintf(format, args...))
	}
	if !namePattern.MatchString(p.Name) {
		return bad("name: want 1 to 32 lower-case letters, digits, - and _, starting with a letter or digit")
	}
	if strings.TrimSpace(p.DisplayName) == "" {
		return bad("no display name")
	}
	if p.MinLen < 0 || p.MaxLen < 0 || p.MaxLen > MaxKeyLength {
		return bad("length bounds must be between 0 and %d", MaxKeyLength)
	}
	if p.MaxLen > 0 && p.MinLen > p.MaxLen {
		return bad("MinLen %d is above MaxLen %d", p.MinLen, p.MaxLen)
	}
	if p.Prefix != "" && !printableASCII(p.Prefix) {
		return bad("prefix must be printable ASCII without spaces")
	}
	if p.Pattern != nil {
		src := p.Pattern.String()
		anchoredStart := strings.HasPrefix(src, "^") || strings.HasPrefix(src, `\A`)
		anchoredEnd := strings.HasSuffix(src, "$") || strings.HasSuffix(src, `\z`)
		if !anchoredStart || !anchoredEnd {
			return bad("pattern %q must be anchored with ^ and $", src)
		}
	}
	for _, f := range []struct{ name, v string }{{"DocsURL", p.DocsURL}, {"BaseURL", p.BaseURL}, {"CheckURL", p.CheckURL}} {
		if f.v == "" {
			continue
		}
		if err := checkURL(f.v); err != nil {
			return bad("%s: %v", f.name, err)
		}
	}
	return nil
}

// checkURL accepts absolute https URLs, and http URLs to a loopback IP or
// "localhost" (a local model server, a test stand-in).
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("want an absolute URL without user info or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("plain http is allowed only to a loopback address")
	default:
		return errors.New("want https")
	}
}

func (p Provider) displayName() string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Name
}

func (p Provider) lengthBounds() (lo, hi int) {
	lo, hi = max(p.MinLen, 1), p.MaxLen
	if hi <= 0 {
		hi = defaultMaxLen
	}
	return lo, min(hi, MaxKeyLength)
}

// CheckFormat reports whether key is well-formed for p, without any network:
// not empty, within MinLen..MaxLen, only printable ASCII with no white
// space or control characters, starting with Prefix and matching Pattern.
// It does not trim: callers trim surrounding white space first if they
// wish. Errors wrap [ErrMalformedKey], say what is wrong, and never contain
// the key.
func (p Provider) CheckFormat(key string) error {
	name := p.displayName()
	lo, hi := p.lengthBounds()
	switch {
	case key == "":
		return fmt.Errorf("%w: the %s key is empty", ErrMalformedKey, name)
	case len(key) > hi:
		return fmt.Errorf("%w: %s keys have at most %d characters", ErrMalformedKey, name, hi)
	case !printableASCII(key):
		return fmt.Errorf("%w: the %s key contains spaces, line breaks or other characters keys never have", ErrMalformedKey, name)
	case len(key) < lo:
		return fmt.Errorf("%w: %s keys have at least %d characters", ErrMalformedKey, name, lo)
	case p.Prefix != "" && !strings.HasPrefix(key, p.Prefix):
		return fmt.Errorf("%w: %s keys start with %q", ErrMalformedKey, name, p.Prefix)
	case p.Pattern != nil && !p.Pattern.MatchString(key):
		return fmt.Errorf("%w: the key does not have the shape of %s keys", ErrMalformedKey, name)
	}
	return nil
}

// printableASCII reports whether s holds only the bytes '!' through '~'.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// simpleJSPattern matches pattern sources that mean the same in Go and in
// a JavaScript v-flag pattern: literals, escaped punctuation, bracket
// classes of those, counted or plain quantifiers.
var simpleJSPattern = regexp.MustCompile(`^(?:[A-Za-z0-9_~!%&,:;<=>@#'"-]|\\[./+]|\[(?:[A-Za-z0-9_~.+=]|\\[./+\-]|[A-Za-z0-9]-[A-Za-z0-9])+\]|\{[0-9]+(?:,[0-9]*)?\}|[+*?])+$`)

// InputPattern returns the pattern attribute for p's key input: HTMLPattern
// when set, else Pattern without its ^ and $ anchors when it is simple
// enough to mean the same in a browser, else "". The server checks the key
// anyway; the attribute only helps the user sooner.
func (p Provider) InputPattern() string {
	if p.HTMLPattern != "" {
		return p.HTMLPattern
	}
	if p.Pattern == nil {
		return ""
	}
	src := p.Pattern.String()
	if !strings.HasPrefix(src, "^") || !strings.HasSuffix(src, "$") {
		return ""
	}
	body := src[1 : len(src)-1]
	if !simpleJSPattern.MatchString(body) {
		return ""
	}
	return body
}

// CheckError is the error [Provider.CheckKey] returns when the provider
// rejected the key (it wraps [ErrKeyRejected]) or the check could not tell
// (it wraps [ErrCheckUnavailable]). Message is the provider's own words,
// cleaned for display: control characters removed, at most 300 characters,
// and the key, or any 8-character run of it, replaced by "[REDACTED]".
type CheckError struct {
	Provider string // provider name, e.g. "openai"
	Display  string // provider's display name, e.g. "OpenAI"
	Status   int    // HTTP status of the answer; 0 when there was none
	Message  string // the provider's own error text, cleaned; may be empty
	kind     error
}

// Error says who rejected or could not check the key, and why.
func (e *CheckError) Error() string {
	var b strings.Builder
	if errors.Is(e.kind, ErrKeyRejected) {
		fmt.Fprintf(&b, "%s rejected the key", e.Display)
	} else {
		fmt.Fprintf(&b, "could not check the key with %s", e.Display)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns ErrKeyRejected or ErrCheckUnavailable.
func (e *CheckError) Unwrap() error { return e.kind }

// CheckKey tries key against the provider: a GET of CheckURL with the key
// put on by Auth. The call is bounded by ctx, or by 10 seconds when ctx has
// no deadline; redirects are not followed (they would carry the key
// elsewhere). client nil means http.DefaultClient's transport.
//
// A 2xx answer means the key works: nil. 400, 401 and 403 mean the
// provider refuses it: a [*CheckError] wrapping [ErrKeyRejected] with the
// provider's own words. No answer, a timeout, 429, 5xx or anything else: a
// [*CheckError] wrapping [ErrCheckUnavailable]. A key that fails
// [Provider.CheckFormat] is not sent; that error is returned instead. No
// CheckURL: [ErrNoCheckURL]. The key never appears in an error.
func (p Provider) CheckKey(ctx context.Context, client *http.Client, key string) error {
	if p.CheckURL == "" {
		return fmt.Errorf("%w: %s", ErrNoCheckURL, p.Name)
	}
	if err := p.CheckFormat(key); err != nil {
		return err
	}
	if err := checkURL(p.CheckURL); err != nil {
		return fmt.Errorf("%w %q: CheckURL: %w", ErrInvalidProvider, p.Name, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCheckTimeout)
		defer cancel()
	}
	fail := func(kind error, status int, msg string) error {
		return &CheckError{Provider: p.Name, Display: p.displayName(), Status: status, Message: cleanMessage(msg, key), kind: kind}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.CheckURL, nil)
	if err != nil {
		return fail(ErrCheckUnavailable, 0, "the check URL is not usable")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ginbyok-keycheck/1")
	auth := p.Auth
	if auth == nil {
		auth = BearerAuth
	}
	auth(req, key)

	var c http.Client
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return fail(ErrCheckUnavailable, 0, "the provider did not answer in time")
		}
		return fail(ErrCheckUnavailable, 0, "the provider could not be reached")
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCheckBody))
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
	msg := providerMessage(resp.Header.Get("Content-Type"), body)
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		// Google answers a bad key with 400 API_KEY_INVALID; the request
		// itself is a plain GET, so a 400 is about the credential.
		if msg == "" {
			msg = "the key was refused"
		}
		return fail(ErrKeyRejected, resp.StatusCode, msg)
	case http.StatusTooManyRequests:
		if msg == "" {
			msg = "the provider is limiting requests; try again later"
		}
		return fail(ErrCheckUnavailable, resp.StatusCode, msg)
	default:
		return fail(ErrCheckUnavailable, resp.StatusCode, msg)
	}
}

// providerMessage extracts a provider's error text from the common JSON
// shapes ({"error":{"message":…}}, {"error":"…"}, {"message":…},
// {"detail":…}, {"title":…}), or from a short text/plain body.
func providerMessage(contentType string, body []byte) string {
	var v map[string]any
	if err := json.Unmarshal(body, &v); err == nil {
		if s := messageFrom(v); s != "" {
			return s
		}
		return ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/plain" && utf8.Valid(body) {
		return string(body)
	}
	return ""
}

func messageFrom(v map[string]any) string {
	if e, ok := v["error"]; ok {
		switch e := e.(type) {
		case string:
			if d, ok := v["error_description"].(string); ok && d != "" {
				return e + ": " + d
			}
			return e
		case map[string]any:
			if s := messageFrom(e); s != "" {
				return s
			}
		}
	}
	for _, k := range []string{"message", "detail", "error_description", "title"} {
		if s, ok := v[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// cleanMessage makes provider text safe to show: control and format
// characters become spaces, runs of space collapse, the key and any run of
// 8 or more of its characters are replaced by "[REDACTED]", and the result
// is cut to maxProviderMessage characters.
func cleanMessage(s, key string) string {
	if len(s) > 2048 {
		s = s[:2048]
	}
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	s = redactKey(s, key)
	if utf8.RuneCountInString(s) > maxProviderMessage {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:maxProviderMessage-1])) + "…"
	}
	return s
}

// redactKey replaces key, and every run of at least minRun bytes that
// occurs inside key, with "[REDACTED]".
func redactKey(s, key string) string {
	if key == "" {
		return s
	}
	s = strings.ReplaceAll(s, key, "[REDACTED]")
	minRun := 8
	if len(key) < 16 {
		minRun = max(4, len(key)/2)
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if i+minRun <= len(s) && strings.Contains(key, s[i:i+minRun]) {
			n := minRun
			for i+n < len(s) && strings.Contains(key, s[i:i+n+1]) {
				n++
			}
			b.WriteString("[REDACTED]")
			i += n
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// KeysFromEnv reads API keys from environment entries ("NAME=value", as
// os.Environ returns them), as the Python original's import_from_env does:
// <prefix><PROVIDER> (prefix "API_KEY_" when empty, so API_KEY_OPENAI=…
// gives "openai"), then each built-in provider's conventional variables
// (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or GOOGLE_API_KEY, …).
// The prefixed form wins; values are trimmed and empty ones skipped; when a
// name appears twice the last entry counts. Names after the prefix that are
// not built-in providers are returned too (lower-cased, "_" kept) when they
// are valid provider names, for custom providers; the caller keeps the ones
// it has configured and still runs CheckFormat on each value.
func KeysFromEnv(prefix string, environ []string) map[string]string {
	if prefix == "" {
		prefix = "API_KEY_"
	}
	env := parseEnviron(environ)
	out := keysFor(prefix, env, builtins())
	for name, v := range env {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		id := strings.ToLower(rest)
		if _, done := out[id]; done || !namePattern.MatchString(id) {
			continue
		}
		out[id] = v
	}
	return out
}

// KeysFromEnvFor is KeysFromEnv for a given set of providers (custom ones
// included) and only those: for each, <prefix><NAME> with "-" written "_"
// (API_KEY_MY_LLM for "my-llm"), then its EnvVars.
func KeysFromEnvFor(prefix string, environ []string, providers []Provider) map[string]string {
	if prefix == "" {
		prefix = "API_KEY_"
	}
	return keysFor(prefix, parseEnviron(environ), providers)
}

func keysFor(prefix string, env map[string]string, providers []Provider) map[string]string {
	out := make(map[string]string)
	for _, p := range providers {
		names := append([]string{prefix + strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))}, p.EnvVars...)
		for _, n := range names {
			if v := env[n]; v != "" {
				out[p.Name] = v
				break
			}
		}
	}
	return out
}

func parseEnviron(environ []string) map[string]string {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if v = strings.TrimSpace(v); v != "" {
			env[k] = v
		} else {
			delete(env, k)
		}
	}
	return env
}
