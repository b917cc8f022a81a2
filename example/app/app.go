// Package app is the byok example web app that `go run ./example` serves: a
// small Gin site with sign-in, the plugin's key pages at /keys, and demo pages
// guarded by a key. It is a package of its own so that the example's tests and
// the browser tests in e2e/ can start it in-process with [New].
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the postgres driver, for DATABASE_URL
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // the sqlite driver, for the embedded default

	byok "github.com/ginbyok/byok"
)

// Environment variables [ConfigFromEnv] reads.
const (
	EnvAddr            = "ADDR"                  // listen address, default DefaultAddr
	EnvSecret          = "BYOK_SECRET"           // master secret; else one generated into the data dir
	EnvPreviousSecrets = "BYOK_PREVIOUS_SECRETS" // comma-separated older secrets that still open stored keys
	EnvRedisURL        = "REDIS_URL"             // redis://…; else signed cookie sessions
	EnvDatabaseURL     = "DATABASE_URL"          // postgres://…; else an SQLite file in the data dir
	EnvDataDir         = "BYOK_DATA_DIR"         // where the SQLite file and the generated secret live
)

// Defaults of [Config].
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultDataDir = "example/data"
	// SecretFile is the name of the generated secret in the data dir.
	SecretFile = "secret"
	// SQLiteFile is the name of the SQLite database in the data dir.
	SQLiteFile = "byok.db"
)

// ErrConfig means a setting of [Config] (or its environment variable) is
// malformed; the error names the setting, never a secret's value.
var ErrConfig = errors.New("example: bad configuration")

// Config is everything the example app can be told. The zero value (with a
// DataDir) is the embedded default: an SQLite file, cookie sessions and a
// secret generated once into the data dir.
type Config struct {
	// Addr is where main listens; New does not use it. Default DefaultAddr.
	Addr string
	// DataDir holds the SQLite file and the generated secret; it is created
	// (0700) when one of them is needed. Default DefaultDataDir.
	DataDir string
	// Secret is the master secret (base64 or hex, at least 32 bytes). Empty
	// means read DataDir/secret, creating it (0600) on first start.
	Secret string
	// PreviousSecrets are older master secrets whose stored keys must still
	// open while they are re-sealed under Secret.
	PreviousSecrets []string
	// RedisURL, when set, keeps sessions in Redis (redis:// or rediss://).
	// Empty means signed, encrypted cookie sessions.
	RedisURL string
	// RedisPrefix starts every Redis key the plugin writes. Empty means the
	// plugin's default, "byok:". Tests set a unique one.
	RedisPrefix string
	// DatabaseURL, when set, persists signed-in users' keys in PostgreSQL
	// (postgres:// or postgresql://). Empty means DataDir/byok.db (SQLite).
	DatabaseURL string
	// Providers are the providers the app offers; nil means DefaultProviders.
	Providers []byok.Provider
	// Logger receives the app's logs and the plugin's; nil means
	// slog.Default(). No log line ever holds a key or a secret.
	Logger *slog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// DefaultProviders are the providers the example offers: six, so the
// dashboard shows a full grid without scrolling forever.
func DefaultProviders() []byok.Provider {
	return []byok.Provider{byok.OpenAI, byok.Anthropic, byok.Google, byok.Mistral, byok.Groq, byok.OpenRouter}
}

// ConfigFromEnv reads the Config from environment variables (getenv is
// os.Getenv, or a map's lookup in tests). Unset variables leave the
// defaults.
func ConfigFromEnv(getenv func(string) string) Config {
	cfg := Config{
		Addr:        strings.TrimSpace(getenv(EnvAddr)),
		DataDir:     strings.TrimSpace(getenv(EnvDataDir)),
		Secret:      strings.TrimSpace(getenv(EnvSecret)),
		RedisURL:    strings.TrimSpace(getenv(EnvRedisURL)),
		DatabaseURL: strings.TrimSpace(getenv(EnvDatabaseURL)),
	}
	for s := range strings.SplitSeq(getenv(EnvPreviousSecrets), ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.PreviousSecrets = append(cfg.PreviousSecrets, s)
		}
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	return cfg
}

// New builds the example app: it resolves the secret, opens the storage,
// registers the plugin and mounts the routes. It returns the handler and a
// function that releases everything (the plugin's janitor, the database and
// Redis clients); call it once the server has stopped. It logs, at Info,
// which secret, storage and sessions are in use.
//
// Routes: GET / (home and sign-in), POST /login (form "user", and
// "keep_keys" to keep the keys saved as a guest), POST /logout,
// the plugin at /keys, and GET /demo/{provider} for each provider, guarded
// by the plugin's RequireKey.
func New(ctx context.Context, cfg Config) (http.Handler, func(), error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	clock := cfg.Now
	if clock == nil {
		clock = time.Now
	}
	if cfg.Providers == nil {
		cfg.Providers = DefaultProviders()
	}
	log := cfg.Logger

	var closers []func()
	release := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (http.Handler, func(), error) {
		release()
		return nil, nil, err
	}

	secret, err := resolveSecret(cfg)
	if err != nil {
		return fail(err)
	}
	if secret.path != "" {
		log.InfoContext(ctx, "secret", "source", secret.source, "file", secret.path)
	} else {
		log.InfoContext(ctx, "secret", "source", secret.source)
	}
	login, err := newSigner(secret.value, cfg.PreviousSecrets...)
	if err != nil {
		return fail(err)
	}

	opts := []byok.Option{
		byok.WithSecret(secret.value, cfg.PreviousSecrets...),
		byok.WithProviders(cfg.Providers...),
		byok.WithUser(func(c *gin.Context) string { return c.GetString(userKey) }),
		byok.WithLogger(log),
		byok.WithAppName("byok example"),
		byok.WithHomeURL("/"),
		// The example serves plain HTTP on loopback. Behind TLS in
		// production, leave this out (it is on in gin's release mode) or
		// pass true.
		byok.WithRequireHTTPS(false),
	}
	if cfg.Now != nil {
		opts = append(opts, byok.WithClock(cfg.Now))
	}
	if cfg.RedisPrefix != "" {
		opts = append(opts, byok.WithRedisPrefix(cfg.RedisPrefix))
	}

	sessionsDesc := "signed, encrypted cookies"
	if cfg.RedisURL != "" {
		rdb, err := openRedis(ctx, cfg.RedisURL)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { _ = rdb.Close() })
		opts = append(opts, byok.WithRedis(rdb))
		sessionsDesc = "Redis " + redactURL(cfg.RedisURL)
	}

	db, storageDesc, err := openDB(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = db.Close() })
	opts = append(opts, byok.WithDB(db))
	log.InfoContext(ctx, "storage", "keys", storageDesc)
	log.InfoContext(ctx, "sessions", "store", sessionsDesc)

	r := gin.New()
	_ = r.SetTrustedProxies(nil)
	r.Use(recoverer(log), requestLog(log), securityHeaders, identify(login, clock))

	kit, err := byok.Register(r, opts...)
	if err != nil {
		return fail(fmt.Errorf("example: starting the byok plugin: %w", err))
	}
	closers = append(closers, func() { _ = kit.Close() })

	pg, err := newPages(kit, cfg, storageDesc, sessionsDesc)
	if err != nil {
		return fail(err)
	}
	cop := http.NewCrossOriginProtection()
	r.GET("/", pg.home)
	r.HEAD("/", pg.home)
	r.POST("/login", sameOrigin(cop, pg), loginHandler(login, pg, log))
	r.POST("/logout", sameOrigin(cop, pg), logoutHandler(kit, log))
	r.GET("/favicon.ico", favicon)
	r.GET("/whoami", whoami(kit))
	for _, p := range cfg.Providers {
		r.GET("/demo/"+p.Name, kit.RequireKey(p.Name), pg.demo(p))
	}
	r.NoRoute(pg.notFound)
	r.NoMethod(pg.notFound)
	return r, release, nil
}

// openRedis connects to url and checks that Redis answers.
func openRedis(ctx context.Context, raw string) (*redis.Client, error) {
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a redis:// URL", ErrConfig, EnvRedisURL)
	}
	// Short timeouts: while Redis is down, signed-in users are served from
	// the database, and a request should not hang on Redis first.
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("example: %s: Redis at %s does not answer: %w", EnvRedisURL, redactURL(raw), err)
	}
	return rdb, nil
}

// openDB opens PostgreSQL (DatabaseURL) or the SQLite file in the data dir,
// and describes it for the start-up log.
func openDB(ctx context.Context, cfg Config) (*sqlx.DB, string, error) {
	if cfg.DatabaseURL != "" {
		u, err := url.Parse(cfg.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, "", fmt.Errorf("%w: %s must be a postgres:// URL (leave it unset for SQLite)", ErrConfig, EnvDatabaseURL)
		}
		db, err := sqlx.Open("postgres", cfg.DatabaseURL)
		if err != nil {
			return nil, "", fmt.Errorf("example: %s: %w", EnvDatabaseURL, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := db.PingContext(pctx); err != nil {
			_ = db.Close()
			return nil, "", fmt.Errorf("example: %s: PostgreSQL at %s does not answer: %w", EnvDatabaseURL, redactURL(cfg.DatabaseURL), err)
		}
		return db, "PostgreSQL " + redactURL(cfg.DatabaseURL), nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("example: creating the data dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, SQLiteFile)
	db, err := sqlx.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, "", fmt.Errorf("example: opening %s: %w", path, err)
	}
	return db, "SQLite file " + path, nil
}

// sqliteDSN is the data source name of an SQLite file for modernc.org/sqlite:
// WAL, a busy timeout, and write transactions that take the lock at once.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// redactURL drops the user info (a password) from a URL for logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// whoami answers {"user": …} after loading the plugin's session, the way an
// app reads its own session on an ordinary route: the load test's unguarded
// baseline on the same session store as the guarded /demo routes.
func whoami(kit *byok.Plugin) gin.HandlerFunc {
	return func(c *gin.Context) {
		scope := kit.Scope(c)
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, gin.H{"user": scope.UserID})
	}
}
