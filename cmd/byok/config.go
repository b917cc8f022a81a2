package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // PostgreSQL driver "postgres"
	_ "modernc.org/sqlite" // SQLite driver "sqlite"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// Environment variables byok reads; the example app reads the same ones.
const (
	envSecret         = "BYOK_SECRET"
	envPreviousSecret = "BYOK_PREVIOUS_SECRETS" //nolint:gosec // G101: a variable's name, not a credential
	envDatabaseURL    = "DATABASE_URL"
)

// defaultTable is sqlstore's default table name.
const defaultTable = "byok_keys"

// sqlitePragmas are added to an SQLite DSN unless it sets them itself: WAL so
// readers do not block the writer, a busy timeout so a write waits for the
// running app instead of failing, and write transactions that take the lock
// at BEGIN (no deadlocking lock upgrades).
var sqlitePragmas = []struct{ name, param string }{
	{"busy_timeout", "_pragma=busy_timeout(10000)"},
	{"journal_mode", "_pragma=journal_mode(WAL)"},
	{"foreign_keys", "_pragma=foreign_keys(1)"},
	{"_txlock", "_txlock=immediate"},
}

// schemeRe matches a URL scheme (RFC 3986).
var schemeRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// database says where the keys live.
type database struct {
	driver  string // "postgres" or "sqlite"
	dsn     string // for sql.Open; may hold a password: never print it
	display string // printable: no password
	path    string // SQLite file path; "" for PostgreSQL or an in-memory database
}

// errNoDatabase is returned when neither --database-url nor DATABASE_URL is set.
var errNoDatabase = errors.New("no database: set DATABASE_URL or --database-url (postgres://… or an SQLite file path)")

// parseDatabaseURL maps a DATABASE_URL to a driver and DSN: postgres:// and
// postgresql:// URLs go to lib/pq; anything else names an SQLite file — a
// path, a file: URI, or sqlite://path (sqlite:path) — opened with WAL, a
// busy timeout and immediate write transactions. Errors never contain the
// URL, which may hold a password.
func parseDatabaseURL(raw string) (database, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return database{}, errNoDatabase
	}
	if hasPrefixFold(raw, "postgres://") || hasPrefixFold(raw, "postgresql://") {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			// url.Parse's error quotes the URL, password and all.
			return database{}, errors.New("DATABASE_URL is not a valid postgres:// URL")
		}
		return database{driver: "postgres", dsn: raw, display: u.Redacted()}, nil
	}
	rest := raw
	switch {
	case hasPrefixFold(rest, "sqlite://"):
		rest = rest[len("sqlite://"):]
	case hasPrefixFold(rest, "sqlite3://"):
		rest = rest[len("sqlite3://"):]
	case hasPrefixFold(rest, "sqlite:"):
		rest = rest[len("sqlite:"):]
	}
	if i := strings.Index(rest, "://"); i > 0 && !hasPrefixFold(rest, "file:") {
		if schemeRe.MatchString(rest[:i]) { // a scheme cannot hold a password
			return database{}, fmt.Errorf("DATABASE_URL: unsupported scheme %q (use postgres://… or an SQLite path)", rest[:i])
		}
		return database{}, errors.New("DATABASE_URL: unsupported URL (use postgres://… or an SQLite path)")
	}
	name, query, _ := strings.Cut(rest, "?")
	if name == "" {
		return database{}, errors.New("DATABASE_URL: empty SQLite path")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return database{}, errors.New("DATABASE_URL: malformed query string")
	}
	var add []string
	for _, p := range sqlitePragmas {
		if !strings.Contains(query, p.name) {
			add = append(add, p.param)
		}
	}
	if query != "" {
		add = append([]string{query}, add...)
	}
	db := database{driver: "sqlite", dsn: name + "?" + strings.Join(add, "&"), display: "sqlite:" + name}
	db.path = sqliteFilePath(name, params)
	return db, nil
}

// sqliteFilePath returns the file an SQLite name (a path or a file: URI
// without its query) refers to, or "" for an in-memory database.
func sqliteFilePath(name string, params url.Values) string {
	if params.Get("mode") == "memory" || params.Get("vfs") == "memdb" {
		return ""
	}
	p := name
	if hasPrefixFold(p, "file:") {
		p = p[len("file:"):]
		switch {
		case strings.HasPrefix(p, "///"):
			p = p[2:]
		case hasPrefixFold(p, "//localhost/"):
			p = p[len("//localhost"):]
		}
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
	}
	if p == "" || p == ":memory:" {
		return ""
	}
	return p
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// dbFlags are the flags of every command that opens the database.
type dbFlags struct {
	url   string
	table string
}

func (d *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.url, "database-url", "", "database `URL`: postgres://… or an SQLite path, file:… or sqlite://path (default $DATABASE_URL)")
	fs.StringVar(&d.table, "table", defaultTable, "`name` of the key table")
}

// openMode says how openStore treats the database.
type openMode int

const (
	openExisting  openMode = iota // connect; a missing SQLite file is an error
	openCreate                    // connect; a missing SQLite file is created
	openNoConnect                 // do not connect (nothing is created or read)
)

// openStore opens the database and the key store on it.
func (e *env) openStore(ctx context.Context, d dbFlags, mode openMode) (*sqlstore.Store, database, func(), error) {
	raw := d.url
	if raw == "" {
		raw = e.getenv(envDatabaseURL)
	}
	db, err := parseDatabaseURL(raw)
	if err != nil {
		return nil, db, nil, withCode(exitUsage, err)
	}
	if mode == openExisting && db.path != "" {
		if _, err := os.Stat(db.path); errors.Is(err, fs.ErrNotExist) {
			return nil, db, nil, fmt.Errorf("SQLite database %s does not exist (create it with \"byok migrate\")", db.path)
		}
	}
	conn, err := sqlx.Open(db.driver, db.dsn)
	if err != nil {
		return nil, db, nil, fmt.Errorf("opening %s: %w", db.display, err)
	}
	if db.driver == "sqlite" {
		// One writer at a time anyway; one connection keeps the pragmas
		// and avoids self-inflicted SQLITE_BUSY.
		conn.SetMaxOpenConns(1)
	}
	if mode != openNoConnect {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := conn.PingContext(pctx); err != nil {
			_ = conn.Close()
			return nil, db, nil, fmt.Errorf("connecting to %s: %w", db.display, err)
		}
	}
	store, err := sqlstore.New(conn, sqlstore.WithTable(d.table), sqlstore.WithLogger(e.logger()))
	if err != nil {
		_ = conn.Close()
		return nil, db, nil, withCode(exitUsage, fmt.Errorf("--table: %w", err))
	}
	closeAll := func() {
		_ = store.Close()
		_ = conn.Close()
	}
	return store, db, closeAll, nil
}

// secretFlags are the flags of every command that needs the master secrets.
type secretFlags struct {
	file string
}

func (s *secretFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.file, "secret-file", "", "read the current master secret from this `file` instead of $BYOK_SECRET")
}

// keyset is the keyring built from the given secrets and the ids of its keys.
type keyset struct {
	ring     *encrypt.Keyring
	primary  uint32
	previous []uint32
}

// role returns how a key id relates to the keyset: "primary", "previous"
// (listed: it still opens) or "unknown".
func (k *keyset) role(id uint32) string {
	if k == nil {
		return "unknown"
	}
	if id == k.primary {
		return "primary"
	}
	for _, p := range k.previous {
		if id == p {
			return "previous"
		}
	}
	return "unknown"
}

// errNoSecret is returned when a command needs the master secret and none is set.
var errNoSecret = errors.New("no master secret: set BYOK_SECRET (or --secret-file); \"byok keygen\" makes one")

// loadKeys builds the keyring from BYOK_SECRET (or --secret-file) and
// BYOK_PREVIOUS_SECRETS. It returns nil and no error when no secret is set
// and required is false. A previous secret equal to the current one or to
// another previous one is skipped with a warning. Errors name the secret
// by position, never by value, and are usage errors (exit 2).
func (e *env) loadKeys(s secretFlags, required bool) (*keyset, error) {
	current := e.getenv(envSecret)
	source := envSecret
	if s.file != "" {
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("--secret-file: %w", err))
		}
		current, source = string(b), "--secret-file"
		clear(b)
	}
	if strings.TrimSpace(current) == "" {
		if required {
			return nil, withCode(exitUsage, errNoSecret)
		}
		return nil, nil
	}
	primary, err := deriveKey(current)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("%s: %w", source, err))
	}
	ks := &keyset{primary: primary.ID()}
	var previous []*encrypt.MasterKey
	n := 0
	for part := range strings.SplitSeq(e.getenv(envPreviousSecret), ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		n++
		m, err := deriveKey(part)
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("%s, secret %d: %w", envPreviousSecret, n, err))
		}
		if ks.role(m.ID()) != "unknown" {
			fmt.Fprintf(e.stderr, "byok: warning: %s, secret %d: key %08x is already listed; ignored\n", envPreviousSecret, n, m.ID())
			continue
		}
		ks.previous = append(ks.previous, m.ID())
		previous = append(previous, m)
	}
	ks.ring, err = encrypt.NewKeyring(primary, previous...)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	return ks, nil
}

// deriveKey parses one secret and derives its keys, clearing the decoded bytes.
func deriveKey(secret string) (*encrypt.MasterKey, error) {
	b, err := encrypt.ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return encrypt.DeriveKeys(b)
}

// logger returns a logger for the store's messages (migrations applied) on
// stderr, without timestamps.
func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}
