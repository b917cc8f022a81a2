package byok

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"reflect"
	"regexp"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/internal/httpx"
	"github.com/ginbyok/byok/stores"
)

// Option configures [Register]. Every option is listed in this file with its
// default and when to change it. Options are applied in order, then checked
// together once; Register returns the first problem as an error wrapping
// [ErrConfig] (or, for the secret, encrypt's error).
type Option func(*options) error

// Defaults of the options below.
const (
	DefaultPrefix          = "/keys"
	DefaultTTL             = 24 * time.Hour
	DefaultSessionName     = "byok"
	DefaultRedisPrefix     = "byok:"
	DefaultTable           = "byok_keys"
	DefaultCleanupInterval = 10 * time.Minute
	DefaultRateLimit       = 10
	DefaultRateWindow      = time.Minute
	DefaultLiveTimeout     = 10 * time.Second
	// MaxBodyBytes caps every request body the key routes read (1 MiB);
	// larger bodies get a 413 too_large.
	MaxBodyBytes = 1 << 20
	// startTimeout bounds each check Register makes against a database.
	startTimeout = 10 * time.Second
)

type options struct {
	secrets      []string
	keyring      *encrypt.Keyring
	aead         encrypt.AEAD
	redis        redis.UniversalClient
	redisPrefix  string
	sessionStore sessions.Store
	sessionName  string
	db           *sqlx.DB
	table        string
	tableSet     bool
	store        stores.Store
	user         func(*gin.Context) string
	providers    []Provider
	prefix       string
	ttl          time.Duration
	ttlChoices   []time.Duration
	cleanup      time.Duration
	logger       *slog.Logger
	audit        func(context.Context, AuditEvent)
	requireHTTPS *bool
	origins      []string
	rateN        int
	rateWindow   time.Duration
	templates    fs.FS
	validator    func(ctx context.Context, provider, key string) error
	liveClient   *http.Client
	clock        func() time.Time
	appName      string
	homeURL      string
}

func defaultOptions() *options {
	return &options{
		sessionName: DefaultSessionName,
		redisPrefix: DefaultRedisPrefix,
		table:       DefaultTable,
		prefix:      DefaultPrefix,
		ttl:         DefaultTTL,
		ttlChoices:  DefaultTTLChoices(),
		cleanup:     DefaultCleanupInterval,
		rateN:       DefaultRateLimit,
		rateWindow:  DefaultRateWindow,
		clock:       time.Now,
	}
}

func optErr(name, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, name, fmt.Sprintf(format, args...))
}

// WithSecret sets the master secret: at least 32 random bytes, written as
// base64 or hex (`byok keygen` prints one). It is required. From it come the
// key-encryption keys, the session cookie keys and the fingerprint key.
//
// To rotate, pass the new secret first and the old ones after it: new keys
// are sealed under the first, values sealed under an old one still open and
// are sealed again under the new one when read (`byok rotate` does all rows
// at once). Drop an old secret only after that.
//
// A short, weak or malformed secret makes Register fail with encrypt's
// ErrShortSecret, ErrWeakSecret or ErrInvalidSecret.
func WithSecret(current string, previous ...string) Option {
	return func(o *options) error {
		o.secrets = append([]string{current}, previous...)
		return nil
	}
}

// WithKeyring seals the stored keys with this keyring instead of the one
// derived from [WithSecret], for example one built from keys kept in a
// vault. WithSecret is still required: it keys the sessions and
// fingerprints. Default: the WithSecret keyring. Cannot be combined with
// [WithAEAD].
func WithKeyring(k *encrypt.Keyring) Option {
	return func(o *options) error {
		if k == nil {
			return optErr("WithKeyring", "nil keyring")
		}
		o.keyring = k
		return nil
	}
}

// WithAEAD seals the stored keys with any AEAD that has tink's method set,
// for example a tink primitive or a KMS envelope AEAD. Lazy rewrap on read
// then happens only if the AEAD also has NeedsRewrap and Rewrap methods like
// [encrypt.Keyring]. WithSecret is still required. Default: the WithSecret
// keyring. Cannot be combined with [WithKeyring].
func WithAEAD(a encrypt.AEAD) Option {
	return func(o *options) error {
		if isNil(a) {
			return optErr("WithAEAD", "nil AEAD")
		}
		o.aead = a
		return nil
	}
}

// WithRedis keeps sessions in Redis (server-side, so a deleted key is gone
// everywhere at once), shares the write rate limit across replicas, and,
// with [WithDB], tells other replicas' session caches about every change.
// Any redis.UniversalClient works, so Sentinel and Cluster do too. A nil
// client (also a nil *redis.Client) means none, so a client that is only
// sometimes configured can be passed as it is. Default: none (encrypted
// cookie sessions, an in-process rate limit).
func WithRedis(client redis.UniversalClient) Option {
	return func(o *options) error {
		if isNil(client) {
			client = nil
		}
		o.redis = client
		return nil
	}
}

// isNil reports whether v is nil or an interface holding a nil pointer.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// WithRedisPrefix starts every Redis key the plugin writes: sessions
// (prefix+"sess:"), the per-user epochs of the session cache
// (prefix+"epoch:") and the rate-limit counters (prefix+"rl:"). Change it
// when apps or environments share one Redis. Default "byok:".
func WithRedisPrefix(prefix string) Option {
	return func(o *options) error {
		if prefix == "" || len(prefix) > 64 {
			return optErr("WithRedisPrefix", "want 1 to 64 characters")
		}
		o.redisPrefix = prefix
		return nil
	}
}

// WithSessionStore makes the plugin keep its session in this gin-contrib
// sessions store when the host has not installed the sessions middleware
// itself. Use it to share the host's store; a host that already runs
// sessions.Sessions on its routes needs nothing: the plugin uses that
// session. Default: a Redis store with [WithRedis], else an encrypted,
// signed cookie store keyed from the secret.
func WithSessionStore(store sessions.Store) Option {
	return func(o *options) error {
		if isNil(store) {
			return optErr("WithSessionStore", "nil store")
		}
		o.sessionStore = store
		return nil
	}
}

// WithSessionName names the session (its cookie) the plugin creates when the
// host has not installed the sessions middleware. Change it if "byok" is
// taken. Default "byok".
func WithSessionName(name string) Option {
	return func(o *options) error {
		if !cookieName.MatchString(name) {
			return optErr("WithSessionName", "%q is not a cookie name (letters, digits, - and _, at most 64)", name)
		}
		o.sessionName = name
		return nil
	}
}

var cookieName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// WithDB persists the keys of signed-in users in SQL (PostgreSQL through
// lib/pq, or SQLite through modernc.org/sqlite), so they outlive sessions
// and follow the user across devices. Register pings the database, runs the
// embedded migrations and checks the master secret against a stored check
// value (created on first start): a wrong secret fails Register with an error
// wrapping encrypt.ErrWrongSecret, and nothing is deleted. Anonymous visitors
// still keep their keys in the session. A nil db means none. Default: none
// (keys live in the session only).
func WithDB(db *sqlx.DB) Option {
	return func(o *options) error {
		o.db = db
		return nil
	}
}

// WithTable names the SQL table of [WithDB], for example to keep two apps
// in one database. Default "byok_keys".
func WithTable(name string) Option {
	return func(o *options) error {
		o.table = name
		o.tableSet = true
		return nil
	}
}

// WithStore stores keys in a store of your own instead of the ones the
// plugin builds from [WithDB] and [WithRedis]. Sessions are still set up as
// usual (a session-backed store finds the request's session in the scope).
// Cannot be combined with WithDB. Default: built from the other options.
func WithStore(s stores.Store) Option {
	return func(o *options) error {
		if isNil(s) {
			return optErr("WithStore", "nil store")
		}
		o.store = s
		return nil
	}
}

// WithUser tells the plugin who is signed in: f returns the user id of the
// request, or "" for an anonymous visitor. Keys are bound to that id.
// Anonymous visitors get a random id kept in their session, and their keys
// live in the session only. Default: everyone is anonymous.
func WithUser(f func(c *gin.Context) string) Option {
	return func(o *options) error {
		if f == nil {
			return optErr("WithUser", "nil function")
		}
		o.user = f
		return nil
	}
}

// WithProviders sets the providers users can store keys for, in the order
// the page shows them. Use the built-in ones ([OpenAI], [Anthropic], …) or
// your own [Provider]. Names must be unique. Default: every built-in
// provider ([BuiltinProviders]).
func WithProviders(ps ...Provider) Option {
	return func(o *options) error {
		if len(ps) == 0 {
			return optErr("WithProviders", "no providers")
		}
		o.providers = append([]Provider(nil), ps...)
		return nil
	}
}

// WithPrefix sets where the key routes are mounted, relative to the router
// or group given to Register: a path such as "/keys" or "/settings/api-keys".
// Default "/keys".
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		o.prefix = prefix
		return nil
	}
}

// WithTTL sets the lifetime of a key stored without one (a form or JSON
// body with no "ttl", or [Plugin.Set] with 0). It must be one of the
// [WithTTLChoices]. Use [Never] for keys that do not expire. Default 24h.
func WithTTL(d time.Duration) Option {
	return func(o *options) error {
		o.ttl = d
		return nil
	}
}

// WithTTLChoices sets the lifetimes a user may pick on the form or send as
// "ttl"; any other value is rejected with invalid_ttl. Include [Never] to
// allow keys that do not expire; leave it out to force expiry. Default 30m,
// 2h, 12h, 24h, 7d, 30d and never ([DefaultTTLChoices]).
func WithTTLChoices(choices ...time.Duration) Option {
	return func(o *options) error {
		c, err := normalizeChoices(choices)
		if err != nil {
			return optErr("WithTTLChoices", "%v", err)
		}
		o.ttlChoices = c
		return nil
	}
}

// WithCleanupInterval sets how often the janitor deletes expired keys from
// the [WithDB] table (in batches; it stops at [Plugin.Close]). Set 0 to
// turn it off, for example when `byok cleanup` runs from cron. Session-held
// keys need no janitor: they are dropped when read after expiry.
// Default 10m.
func WithCleanupInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || (d > 0 && d < time.Second) {
			return optErr("WithCleanupInterval", "%s: use 0 (off) or at least 1s", d)
		}
		o.cleanup = d
		return nil
	}
}

// WithLogger sets where the plugin logs, audit events included. Default
// slog.Default() at the time of Register.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return optErr("WithLogger", "nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithAudit subscribes f to every [AuditEvent] (key.set, key.replaced,
// key.deleted, key.cleared, key.expired, key.decrypt_failed, key.validated,
// guard.denied), for example to write them to an audit table. f runs
// synchronously on the request's goroutine: keep it quick. Events are also
// logged either way. Default: none.
func WithAudit(f func(ctx context.Context, e AuditEvent)) Option {
	return func(o *options) error {
		if f == nil {
			return optErr("WithAudit", "nil function")
		}
		o.audit = f
		return nil
	}
}

// WithRequireHTTPS makes the key routes and guards refuse plain HTTP with a
// 403 https_required, and marks the plugin's session cookie Secure. Whether
// a request came over HTTPS is decided from the connection, or from
// X-Forwarded-Proto only when it comes from a proxy the engine trusts
// (gin's SetTrustedProxies). Default: on in gin's release mode, off in
// debug and test modes, decided at Register.
func WithRequireHTTPS(on bool) Option {
	return func(o *options) error {
		o.requireHTTPS = &on
		return nil
	}
}

// WithTrustedOrigins lets pages on these other origins ("https://app.example.com")
// send unsafe requests (POST, DELETE) to the key routes. Every other
// cross-origin unsafe request is refused with 403 cross_origin by net/http's
// CrossOriginProtection. Default: none (same origin only).
func WithTrustedOrigins(origins ...string) Option {
	return func(o *options) error {
		o.origins = append(o.origins, origins...)
		return nil
	}
}

// WithRateLimit allows n key writes (store, delete, clear) per window for
// each user, or each session of an anonymous visitor; more get 429
// rate_limited with Retry-After. The count is shared by all replicas with
// [WithRedis], else kept in-process. n = 0 turns the limit off.
// Default 10 per minute.
func WithRateLimit(n int, per time.Duration) Option {
	return func(o *options) error {
		if n < 0 || (n > 0 && per <= 0) {
			return optErr("WithRateLimit", "%d per %s: need n ≥ 0 and a positive window", n, per)
		}
		o.rateN, o.rateWindow = n, per
		return nil
	}
}

// WithTemplates overrides some or all of the plugin's templates: files in
// fsys whose names match the embedded partials ("byok/card.tmpl", …) are
// used instead. Templates render from the plugin's own set, never from the
// host's LoadHTML*. Default: the embedded templates.
func WithTemplates(fsys fs.FS) Option {
	return func(o *options) error {
		if fsys == nil {
			return optErr("WithTemplates", "nil file system")
		}
		o.templates = fsys
		return nil
	}
}

// WithValidator adds a check every key must pass before it is stored, after
// the provider's length and charset check: return an error to refuse it
// (422 invalid_key; the error's text is shown to the user, so never put the
// key in it). Default: none.
func WithValidator(f func(ctx context.Context, provider, key string) error) Option {
	return func(o *options) error {
		if f == nil {
			return optErr("WithValidator", "nil function")
		}
		o.validator = f
		return nil
	}
}

// WithLiveCheck makes the plugin try each new key against its provider
// before storing it (a cheap authenticated request such as listing models,
// see [Provider.CheckKey]); a key the provider refuses is rejected with 422
// invalid_key and the provider's own error text. client makes the request;
// nil means a client with a 10s timeout. Providers without a check URL are
// not checked. Default: off.
func WithLiveCheck(client *http.Client) Option {
	return func(o *options) error {
		if client == nil {
			client = &http.Client{Timeout: DefaultLiveTimeout}
		}
		o.liveClient = client
		return nil
	}
}

// WithAppName names the host app in the key page's header (for example
// "Acme Chat"). Default: "" (the page says "Bring your own key").
func WithAppName(name string) Option {
	return func(o *options) error {
		if len(name) > 80 {
			return optErr("WithAppName", "longer than 80 bytes")
		}
		o.appName = name
		return nil
	}
}

// WithHomeURL is where the key page's header and "Back to the app" link
// lead: a same-site path such as "/". Default: "" (no link back).
func WithHomeURL(path string) Option {
	return func(o *options) error {
		if path != "" && httpx.SafeNext(path, "") != path {
			return optErr("WithHomeURL", "%q is not a same-site path", path)
		}
		o.homeURL = path
		return nil
	}
}

// WithClock replaces time.Now, for tests. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return optErr("WithClock", "nil function")
		}
		o.clock = now
		return nil
	}
}

var (
	prefixPattern = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
)

// validate checks the options together, once all are applied.
func (o *options) validate() error {
	if len(o.secrets) == 0 {
		return optErr("WithSecret", "a master secret is required (at least 32 random bytes, base64 or hex; `byok keygen` makes one)")
	}
	if o.keyring != nil && o.aead != nil {
		return optErr("WithKeyring", "cannot be combined with WithAEAD")
	}
	if o.store != nil && o.db != nil {
		return optErr("WithStore", "cannot be combined with WithDB")
	}
	if o.tableSet && o.db == nil {
		return optErr("WithTable", "needs WithDB")
	}
	if !prefixPattern.MatchString(o.prefix) || path.Clean(o.prefix) != o.prefix {
		return optErr("WithPrefix", "%q: want a clean absolute path such as /keys, without a trailing slash, : or *", o.prefix)
	}
	if err := checkTTL(o.ttl); err != nil {
		return optErr("WithTTL", "%v", err)
	}
	if !containsTTL(o.ttlChoices, o.ttl) {
		return optErr("WithTTL", "%s is not one of the choices %s", FormatTTL(o.ttl), formatChoices(o.ttlChoices))
	}
	if len(o.providers) == 0 {
		o.providers = BuiltinProviders()
	}
	seen := make(map[string]bool, len(o.providers))
	for _, p := range o.providers {
		if err := p.Validate(); err != nil {
			return fmt.Errorf("%w: WithProviders: %w", ErrConfig, err)
		}
		if contains(reservedNames, p.Name) {
			return optErr("WithProviders", "provider name %q is taken by the key routes", p.Name)
		}
		if seen[p.Name] {
			return optErr("WithProviders", "provider %q is listed twice", p.Name)
		}
		seen[p.Name] = true
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return nil
}

func containsTTL(choices []time.Duration, d time.Duration) bool {
	for _, c := range choices {
		if c == d {
			return true
		}
	}
	return false
}

func formatChoices(choices []time.Duration) string {
	s := ""
	for i, c := range choices {
		if i > 0 {
			s += ", "
		}
		s += FormatTTL(c)
	}
	return s
}
