// Package sqlstore persists signed-in users' sealed keys in PostgreSQL or
// SQLite, one row per (user, provider), through sqlx.
//
// One code path serves both databases; the dialect comes from the sqlx
// driver name: "postgres" (github.com/lib/pq) or "sqlite"
// (modernc.org/sqlite, pure Go). The program imports the driver it uses.
// For SQLite, open the file with WAL and a busy timeout, for example
//
//	file:byok.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate
//
// so concurrent writers wait for each other instead of failing.
//
// Call Migrate once at start (it is idempotent and safe from several
// replicas at once). Put is one upsert statement, so any number of
// concurrent Puts of one (user, provider) leave exactly one row. Get and List
// never return expired rows; the janitor (WithJanitor, StartJanitor)
// deletes them in batches. Errors from the database wrap
// stores.ErrUnavailable and never carry query arguments.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok/stores"
)

// DefaultTable is the default name of the key table.
const DefaultTable = "byok_keys"

// DefaultBatch is the janitor's batch size when none is given.
const DefaultBatch = 500

// Limits on identifiers, matching the session store so that every row can
// also be cached in a session.
const (
	MaxUserID   = 255
	MaxProvider = 64
)

// Errors of this package; database failures wrap stores.ErrUnavailable.
var (
	// ErrUnsupportedDriver means the *sqlx.DB's driver is neither
	// "postgres" nor "sqlite".
	ErrUnsupportedDriver = errors.New("sqlstore: unsupported driver")
	// ErrClosed means the Store was closed.
	ErrClosed = errors.New("sqlstore: store closed")

	errUnavailable = stores.ErrUnavailable
)

var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Store keeps records in a SQL table. It implements stores.Store for
// signed-in scopes (Scope.UserID); an anonymous scope is an
// stores.ErrInvalidRecord error. It is safe for concurrent use.
type Store struct {
	db         *sqlx.DB
	d          dialect
	table      string
	names      names
	now        func() time.Time
	log        *slog.Logger
	interval   time.Duration
	batch      int
	schemaSQL  []string
	migrations []migration
	q          queries
	prepare    bool
	pGet       prepared
	pList      prepared
	pPut       prepared

	mu      sync.Mutex
	closed  bool
	stop    context.CancelFunc
	stopped chan struct{}
}

var _ stores.Store = (*Store)(nil)

type options struct {
	noPrepare bool
	table     string
	now       func() time.Time
	log       *slog.Logger
	interval  time.Duration
	batch     int
}

// Option configures a Store.
type Option func(*options) error

// WithTable sets the key table's name; <name>_meta and <name>_schema are
// created beside it. Default "byok_keys". It must be a lowercase SQL
// identifier of at most 40 characters ([a-z_][a-z0-9_]*); change it to run
// two independent stores in one database.
func WithTable(name string) Option {
	return func(o *options) error {
		if !identRe.MatchString(name) {
			return fmt.Errorf("sqlstore: table name %q is not a lowercase identifier of at most 40 characters", name)
		}
		o.table = name
		return nil
	}
}

// WithClock sets the clock for expiry, UpdatedAt defaults and the janitor's
// cut-off. Default time.Now; tests inject a fake clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("sqlstore: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithLogger sets the logger for migrations and the janitor (counts only,
// never keys). Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("sqlstore: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithJanitor makes StartJanitor delete expired rows every interval, batch
// rows per statement (0: DefaultBatch). Default off (interval 0). An
// interval of a few minutes is plenty: expired rows are never served.
func WithJanitor(interval time.Duration, batch int) Option {
	return func(o *options) error {
		if interval < 0 || batch < 0 {
			return fmt.Errorf("sqlstore: negative janitor interval %v or batch %d", interval, batch)
		}
		o.interval, o.batch = interval, batch
		return nil
	}
}

// WithoutPreparedStatements makes Get, List and Put send their SQL each
// time instead of preparing it once per connection. Prepared statements save
// PostgreSQL a round trip per call; turn them off behind a connection pooler
// that cannot keep them (PgBouncer in transaction mode before 1.21).
func WithoutPreparedStatements() Option {
	return func(o *options) error {
		o.noPrepare = true
		return nil
	}
}

// New returns a Store on db, whose driver must be "postgres" or "sqlite".
// It does not touch the database; call Migrate before first use.
func New(db *sqlx.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: nil *sqlx.DB")
	}
	o := options{table: DefaultTable, now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	d, err := dialectFor(db.DriverName())
	if err != nil {
		return nil, err
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.batch == 0 {
		o.batch = DefaultBatch
	}
	schema, ms, err := loadMigrations(d, o.table)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, d: d, table: o.table, names: namesFor(o.table), now: o.now, log: o.log,
		interval: o.interval, batch: o.batch, schemaSQL: schema, migrations: ms}
	s.q = buildQueries(db, s.names)
	s.prepare = !o.noPrepare
	s.pGet.query, s.pList.query, s.pPut.query = s.q.get, s.q.list, s.q.put
	return s, nil
}

// queries are the store's statements, rebound for the dialect.
type queries struct {
	put, get, list, del, clear, deleteExpired string
	checkValue, setCheckValue, addCheckValue  string
	scan, rewrap, rewrapBatch, stats          string
}

const cols = "provider, ciphertext, key_id, created_at, updated_at, expires_at"

func buildQueries(db *sqlx.DB, n names) queries {
	t := n.Table
	live := "(expires_at IS NULL OR expires_at > ?)"
	return queries{
		// version restarts at 1 when the row it overwrites had expired, so
		// version > 1 means a live key was replaced.
		put: db.Rebind(`INSERT INTO ` + t + ` (user_id, ` + cols + `, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (user_id, provider) DO UPDATE SET ciphertext = excluded.ciphertext, key_id = excluded.key_id,
 created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at,
 version = CASE WHEN ` + t + `.expires_at IS NULL OR ` + t + `.expires_at > ? THEN ` + t + `.version + 1 ELSE 1 END
RETURNING version`),
		get:   db.Rebind(`SELECT ` + cols + ` FROM ` + t + ` WHERE user_id = ? AND provider = ? AND ` + live),
		list:  db.Rebind(`SELECT ` + cols + ` FROM ` + t + ` WHERE user_id = ? AND ` + live + ` ORDER BY provider`),
		del:   db.Rebind(`DELETE FROM ` + t + ` WHERE user_id = ? AND provider = ? RETURNING expires_at`),
		clear: db.Rebind(`DELETE FROM ` + t + ` WHERE user_id = ? RETURNING expires_at`),
		deleteExpired: db.Rebind(`DELETE FROM ` + t + ` WHERE (user_id, provider) IN
 (SELECT user_id, provider FROM ` + t + ` WHERE expires_at <= ? LIMIT ?)`),
		checkValue:    db.Rebind(`SELECT value FROM ` + n.Meta + ` WHERE name = ?`),
		setCheckValue: db.Rebind(`INSERT INTO ` + n.Meta + ` (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`),
		addCheckValue: db.Rebind(`INSERT INTO ` + n.Meta + ` (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`),
		scan: db.Rebind(`SELECT user_id, ` + cols + ` FROM ` + t + ` WHERE (user_id, provider) > (?, ?)
 ORDER BY user_id, provider LIMIT ?`),
		rewrap: db.Rebind(`UPDATE ` + t + ` SET ciphertext = ?, key_id = ?, updated_at = ?, version = version + 1
 WHERE user_id = ? AND provider = ? AND ciphertext = ?`),
		// PostgreSQL only: the whole batch as parallel arrays, one statement.
		rewrapBatch: `UPDATE ` + t + ` AS t SET ciphertext = v.new, key_id = v.kid, updated_at = $1, version = t.version + 1
 FROM unnest($2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bigint[]) AS v(user_id, provider, old, new, kid)
 WHERE t.user_id = v.user_id AND t.provider = v.provider AND t.ciphertext = v.old`,
		stats: db.Rebind(`SELECT key_id, COUNT(*), COALESCE(SUM(CASE WHEN expires_at <= ? THEN 1 ELSE 0 END), 0), MIN(created_at)
 FROM ` + t + ` GROUP BY key_id`),
	}
}

// validName checks a user id or provider before it reaches SQL: non-empty
// UTF-8 without NUL (PostgreSQL rejects those, SQLite would accept them).
func validName(what, s string, limit int) error {
	if s == "" || len(s) > limit || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s must be 1 to %d bytes of UTF-8", stores.ErrInvalidRecord, what, limit)
	}
	for i := range len(s) {
		if s[i] == 0 {
			return fmt.Errorf("%w: %s contains NUL", stores.ErrInvalidRecord, what)
		}
	}
	return nil
}

func userOf(scope stores.Scope) (string, error) {
	if scope.UserID == "" {
		return "", fmt.Errorf("%w: sqlstore needs a user id (anonymous keys live in the session)", stores.ErrInvalidRecord)
	}
	return scope.UserID, validName("user id", scope.UserID, MaxUserID)
}

// Put stores rec for (scope.UserID, rec.Provider) with one upsert and
// reports whether a live row was replaced (a row that had expired counts as
// absent). A zero UpdatedAt is set to the clock's now. Times are kept to
// the microsecond.
func (s *Store) Put(ctx context.Context, scope stores.Scope, rec stores.Record) (bool, error) {
	user, err := userOf(scope)
	if err != nil {
		return false, err
	}
	if err := rec.Validate(); err != nil {
		return false, err
	}
	if err := validName("provider", rec.Provider, MaxProvider); err != nil {
		return false, err
	}
	if rec.UserID != "" && rec.UserID != user {
		return false, fmt.Errorf("%w: record user id differs from the scope's", stores.ErrInvalidRecord)
	}
	now := s.now()
	if rec.Expired(now) {
		return false, fmt.Errorf("%w: already expired", stores.ErrInvalidRecord)
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = now
	}
	var version int64
	err = s.queryRow(ctx, &s.pPut, user, rec.Provider, rec.Ciphertext, int64(rec.KeyID),
		s.d.time(rec.CreatedAt), s.d.time(rec.UpdatedAt), s.d.time(rec.ExpiresAt), s.d.time(now)).Scan(&version)
	if err != nil {
		return false, &dbError{op: "put", err: err}
	}
	return version > 1, nil
}

// scanRecord reads the cols columns (after any leading dest).
func scanRecord(row interface{ Scan(...any) error }, r *stores.Record, lead ...any) error {
	dest := append(lead, &r.Provider, &r.Ciphertext, keyID{&r.KeyID},
		nullTime{&r.CreatedAt}, nullTime{&r.UpdatedAt}, nullTime{&r.ExpiresAt})
	return row.Scan(dest...)
}

// Get returns the live row for (scope.UserID, provider), or
// stores.ErrNotFound.
func (s *Store) Get(ctx context.Context, scope stores.Scope, provider string) (stores.Record, error) {
	user, err := userOf(scope)
	if err != nil {
		return stores.Record{}, err
	}
	if err := validName("provider", provider, MaxProvider); err != nil {
		return stores.Record{}, err
	}
	r := stores.Record{UserID: user}
	err = scanRecord(s.queryRow(ctx, &s.pGet, user, provider, s.d.time(s.now())), &r)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return stores.Record{}, stores.ErrNotFound
	case err != nil:
		return stores.Record{}, &dbError{op: "get", err: err}
	}
	return r, nil
}

// List returns the scope's live rows ordered by provider.
func (s *Store) List(ctx context.Context, scope stores.Scope) ([]stores.Record, error) {
	user, err := userOf(scope)
	if err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, &s.pList, user, s.d.time(s.now()))
	if err != nil {
		return nil, &dbError{op: "list", err: err}
	}
	defer rows.Close()
	var out []stores.Record
	for rows.Next() {
		r := stores.Record{UserID: user}
		if err := scanRecord(rows, &r); err != nil {
			return nil, &dbError{op: "list", err: err}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, &dbError{op: "list", err: err}
	}
	return out, nil
}

// Delete removes the row for (scope.UserID, provider) and reports whether a
// live one existed.
func (s *Store) Delete(ctx context.Context, scope stores.Scope, provider string) (bool, error) {
	user, err := userOf(scope)
	if err != nil {
		return false, err
	}
	if err := validName("provider", provider, MaxProvider); err != nil {
		return false, err
	}
	n, err := s.deleteLive(ctx, s.q.del, user, provider)
	if err != nil {
		return false, &dbError{op: "delete", err: err}
	}
	return n > 0, nil
}

// Clear removes every row of the scope's user and returns how many were
// live.
func (s *Store) Clear(ctx context.Context, scope stores.Scope) (int, error) {
	user, err := userOf(scope)
	if err != nil {
		return 0, err
	}
	n, err := s.deleteLive(ctx, s.q.clear, user)
	if err != nil {
		return 0, &dbError{op: "clear", err: err}
	}
	return n, nil
}

// deleteLive runs a DELETE … RETURNING expires_at and counts the rows that
// were live.
func (s *Store) deleteLive(ctx context.Context, query string, args ...any) (int, error) {
	now := s.now()
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var exp time.Time
		if err := rows.Scan(nullTime{&exp}); err != nil {
			return 0, err
		}
		if exp.IsZero() || exp.After(now) {
			n++
		}
	}
	return n, rows.Err()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return &dbError{op: "ping", err: err}
	}
	return nil
}

// prepared is a statement prepared on first use. database/sql prepares it
// again on each new connection by itself.
type prepared struct {
	query string
	stmt  atomic.Pointer[sql.Stmt]
}

// get returns the prepared statement, preparing it if needed.
func (p *prepared) get(ctx context.Context, db *sqlx.DB) (*sql.Stmt, error) {
	if st := p.stmt.Load(); st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, err
	}
	if !p.stmt.CompareAndSwap(nil, st) {
		_ = st.Close() //nolint:sqlclosecheck // another goroutine cached its statement first: this duplicate is closed at once, not deferred
		return p.get(ctx, db)
	}
	return st, nil
}

// close releases the statement; the next get prepares it again.
func (p *prepared) close() {
	if st := p.stmt.Swap(nil); st != nil {
		_ = st.Close() //nolint:sqlclosecheck // closes the cached statement for Store.Close; nothing to defer
	}
}

// errRow is a row whose query could not even be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queryRow runs p's query for one row, prepared unless disabled.
func (s *Store) queryRow(ctx context.Context, p *prepared, args ...any) interface{ Scan(...any) error } {
	if !s.prepare {
		return s.db.QueryRowContext(ctx, p.query, args...)
	}
	st, err := p.get(ctx, s.db) //nolint:sqlclosecheck // cached in p for the Store's life, closed by Store.Close, not per query
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs p's query, prepared unless disabled.
func (s *Store) query(ctx context.Context, p *prepared, args ...any) (*sql.Rows, error) {
	if !s.prepare {
		return s.db.QueryContext(ctx, p.query, args...)
	}
	st, err := p.get(ctx, s.db) //nolint:sqlclosecheck // cached in p for the Store's life, closed by Store.Close, not per query
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}
