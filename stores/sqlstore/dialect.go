package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq/pqerror"
)

// dialect is every difference between PostgreSQL and SQLite the store
// knows about. Everything else is one code path.
type dialect struct {
	name string // "postgres" or "sqlite": the migrations directory
	pg   bool
}

// dialectFor picks the dialect from the database/sql driver name.
func dialectFor(driverName string) (dialect, error) {
	switch driverName {
	case "postgres":
		return dialect{name: "postgres", pg: true}, nil
	case "sqlite":
		return dialect{name: "sqlite"}, nil
	}
	return dialect{}, fmt.Errorf("%w: %q (want \"postgres\" from github.com/lib/pq or \"sqlite\" from modernc.org/sqlite)",
		ErrUnsupportedDriver, driverName)
}

// time converts t to a query argument: TIMESTAMPTZ in PostgreSQL, INTEGER
// unix microseconds in SQLite. The zero time is NULL.
func (d dialect) time(t time.Time) any {
	switch {
	case t.IsZero():
		return nil
	case d.pg:
		return t.UTC()
	default:
		return t.UnixMicro()
	}
}

// tableExistsSQL is a query with one argument, an unquoted table name in
// the current schema, that returns whether the table exists.
func (d dialect) tableExistsSQL() string {
	if d.pg {
		return "SELECT to_regclass(quote_ident($1)) IS NOT NULL"
	}
	return "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?)"
}

// begin is the statement that starts a write transaction in MigrationSQL's
// script. SQLite's BEGIN IMMEDIATE takes the write lock at once (waiting up
// to the busy timeout), so a read-then-write transaction never fails to
// upgrade its lock.
func (d dialect) begin() string {
	if d.pg {
		return "BEGIN"
	}
	return "BEGIN IMMEDIATE"
}

// migrationLock is the statement that serialises migrators of one table,
// or "" when begin already does (SQLite). PostgreSQL takes a
// transaction-scoped advisory lock, released with the transaction.
func (d dialect) migrationLock(key int64) string {
	if d.pg {
		return fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", key)
	}
	return ""
}

// execer is what a transaction body runs statements on.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inWriteTx runs lock (if not "") and fn in a write transaction, and
// commits if both succeed. PostgreSQL uses an ordinary transaction; SQLite
// holds one connection and runs BEGIN IMMEDIATE itself, whatever the DSN's
// _txlock says.
func (d dialect) inWriteTx(ctx context.Context, db *sqlx.DB, lock string, fn func(q execer) error) error {
	if d.pg {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		if lock != "" {
			if _, err := tx.ExecContext(ctx, lock); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, d.begin()); err != nil {
		return err
	}
	body := func() error {
		if lock != "" {
			if _, err := conn.ExecContext(ctx, lock); err != nil {
				return err
			}
		}
		return fn(conn)
	}
	if err := body(); err != nil {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			// A connection stuck in a transaction must not go back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return err
	}
	return nil
}

// nullTime scans a time column of either dialect: TIMESTAMPTZ arrives as
// time.Time, SQLite's INTEGER microseconds as int64, NULL as the zero time.
type nullTime struct{ t *time.Time }

// Scan implements sql.Scanner.
func (n nullTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*n.t = time.Time{}
	case time.Time:
		*n.t = v.UTC()
	case int64:
		*n.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("sqlstore: cannot read a %T as a time", v)
	}
	return nil
}

// keyID scans a key_id column into a uint32. A value outside 0..2^32-1
// (a row this package did not write) is an error, not a silent wrap to
// another key id.
type keyID struct{ id *uint32 }

// Scan implements sql.Scanner.
func (k keyID) Scan(v any) error {
	var n sql.NullInt64
	if err := n.Scan(v); err != nil {
		return fmt.Errorf("sqlstore: key id: %w", err)
	}
	if !n.Valid || n.Int64 < 0 || n.Int64 > math.MaxUint32 {
		return errors.New("sqlstore: key id NULL or out of range")
	}
	*k.id = uint32(n.Int64)
	return nil
}

// dbError is a database failure as callers see it: it matches
// stores.ErrUnavailable and the driver's error with errors.Is/As, but its
// text is built only from what cannot carry query arguments (see describe).
type dbError struct {
	op  string
	err error
}

func (e *dbError) Error() string {
	return "sqlstore: " + e.op + ": storage unavailable: " + describe(e.err)
}

func (e *dbError) Unwrap() []error { return []error{errUnavailable, e.err} }

// describe renders a driver error without query arguments. PostgreSQL
// errors give their SQLSTATE and condition name, and their message except
// for data and integrity errors (classes 22 and 23), whose messages may
// quote a value. SQLite errors give their result code and message (SQLite
// reports schema names, not bound values). Anything else (network,
// context, database/sql) is shown as is.
func describe(err error) string {
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		code := pqerror.Code(pg.SQLState())
		if len(code) != 5 {
			return "postgres error"
		}
		msg := "postgres error " + string(code) + " (" + code.Name() + ")"
		if c := code.Class(); c != "22" && c != "23" {
			msg += ": " + err.Error()
		}
		return msg
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		return fmt.Sprintf("sqlite error %d: %s", lite.Code(), err.Error())
	}
	return err.Error()
}
