package sqlstore

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// migration is one numbered file of statements, rendered for a table.
type migration struct {
	version int
	name    string
	stmts   []string
}

// names are the quoted identifiers the migration templates use.
type names struct {
	Table, Meta, Schema, ExpiresIndex string
}

func namesFor(table string) names {
	q := func(s string) string { return `"` + s + `"` }
	return names{Table: q(table), Meta: q(table + "_meta"), Schema: q(table + "_schema"),
		ExpiresIndex: q(table + "_expires_at_idx")}
}

// loadMigrations renders the dialect's schema-table statements and its
// numbered migrations, in order, for table.
func loadMigrations(d dialect, table string) (schema []string, ms []migration, err error) {
	dir := path.Join("migrations", d.name)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, nil, err
	}
	n := namesFor(table)
	for _, e := range entries {
		stmts, err := render(path.Join(dir, e.Name()), n)
		if err != nil {
			return nil, nil, err
		}
		if e.Name() == "schema.sql" {
			schema = stmts
			continue
		}
		num, rest, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, nil, fmt.Errorf("sqlstore: migration file %s is not NNNN_name.sql", e.Name())
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(rest, ".sql"), stmts: stmts})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	return schema, ms, nil
}

// render executes one migration template and splits it into statements
// (a statement ends with ";" at the end of a line).
func render(file string, n names) ([]string, error) {
	src, err := fs.ReadFile(migrationFiles, file)
	if err != nil {
		return nil, err
	}
	t, err := template.New(file).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, n); err != nil {
		return nil, err
	}
	var stmts []string
	var cur strings.Builder
	for line := range strings.Lines(buf.String()) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		return nil, fmt.Errorf("sqlstore: %s: last statement lacks a ';'", file)
	}
	return stmts, nil
}

// lockKey is the PostgreSQL advisory lock that serialises migrations of
// one table: the low 63 bits of a 64-bit FNV-1a hash of its name, so the
// bigint key is never negative.
func lockKey(table string) int64 {
	h := fnv.New64a()
	h.Write([]byte("github.com/ginbyok/byok/stores/sqlstore:" + table))
	return int64(h.Sum64() & math.MaxInt64)
}

func (s *Store) recordVersion(v int) string {
	return fmt.Sprintf("INSERT INTO %s (version) VALUES (%d) ON CONFLICT (version) DO NOTHING", s.names.Schema, v)
}

// Migrate creates or upgrades the tables: the key table, <table>_meta and
// <table>_schema (applied versions). It runs in one transaction, applies
// only versions not yet recorded, and is safe to run on every start and
// from several replicas at once (PostgreSQL: a transaction-scoped advisory
// lock; SQLite: BEGIN IMMEDIATE).
func (s *Store) Migrate(ctx context.Context) error {
	// SQLite answers SQLITE_BUSY at once, without waiting for the busy
	// timeout, when several connections open a new file together and
	// switch it to WAL: replicas starting side by side on a fresh file
	// retry for a while instead of failing to start.
	var err error
	for attempt := 0; ; attempt++ {
		err = s.migrateOnce(ctx)
		if err == nil || s.d.pg || !sqliteBusy(err) || attempt >= migrateBusyRetries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(10+attempt*10) * time.Millisecond):
		}
	}
}

// migrateBusyRetries bounds Migrate's retries on SQLITE_BUSY (about 10 s).
const migrateBusyRetries = 45

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY (5) or one of its
// extended codes, as modernc.org/sqlite reports them (Code() int).
func sqliteBusy(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5
}

func (s *Store) migrateOnce(ctx context.Context) error {
	err := s.d.inWriteTx(ctx, s.db, s.d.migrationLock(lockKey(s.table)), func(q execer) error {
		for _, stmt := range s.schemaSQL {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		applied, err := appliedVersions(ctx, q, s.names.Schema)
		if err != nil {
			return err
		}
		for _, m := range s.migrations {
			if applied[m.version] {
				continue
			}
			for _, stmt := range m.stmts {
				if _, err := q.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if _, err := q.ExecContext(ctx, s.recordVersion(m.version)); err != nil {
				return err
			}
			s.log.InfoContext(ctx, "byok: sqlstore migration applied", "table", s.table, "version", m.version, "name", m.name)
		}
		return nil
	})
	if err != nil {
		return &dbError{op: "migrate", err: err}
	}
	return nil
}

func appliedVersions(ctx context.Context, q execer, schemaTable string) (map[int]bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT version FROM "+schemaTable)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// SchemaVersion returns the highest migration version recorded in the
// database, 0 if none, and the highest this package knows.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	latest = s.migrations[len(s.migrations)-1].version
	var exists bool
	if err := s.db.QueryRowContext(ctx, s.d.tableExistsSQL(), s.table+"_schema").Scan(&exists); err != nil {
		return 0, latest, &dbError{op: "schema version", err: err}
	}
	if !exists {
		return 0, latest, nil
	}
	applied, err := appliedVersions(ctx, s.db, s.names.Schema)
	if err != nil {
		return 0, latest, &dbError{op: "schema version", err: err}
	}
	for v := range applied {
		current = max(current, v)
	}
	return current, latest, nil
}

// MigrationSQL returns every statement Migrate would run on an empty
// database, in order and wrapped in the same transaction and lock, for a
// dry run (`byok migrate --dry-run`) or for applying by hand. Every
// statement is idempotent, so the script is safe to run on a migrated
// database too.
func (s *Store) MigrationSQL() []string {
	out := []string{s.d.begin()}
	lock := s.d.migrationLock(lockKey(s.table))
	if lock != "" {
		out = append(out, lock)
	}
	out = append(out, s.schemaSQL...)
	for _, m := range s.migrations {
		out = append(out, m.stmts...)
		out = append(out, s.recordVersion(m.version))
	}
	return append(out, "COMMIT")
}
