package hybrid_test

// TEMPORARY: a minimal SQL store used until stores/sqlstore lands.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok/stores"
)

type fakeSQL struct {
	db  *sqlx.DB
	now func() time.Time
}

func newPersist(t testing.TB, db *sqlx.DB, now func() time.Time) stores.Store {
	t.Helper()
	_, err := db.Exec(`CREATE TABLE IF NOT EXISTS byok_keys (user_id TEXT NOT NULL, provider TEXT NOT NULL, ciphertext BYTEA NOT NULL, key_id BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, expires_at BIGINT, PRIMARY KEY (user_id, provider))`)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSQL{db: db, now: now}
}

func unavail(err error) error {
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", stores.ErrUnavailable, err)
	}
	return err
}

func (f *fakeSQL) Ping(ctx context.Context) error { return unavail(f.db.PingContext(ctx)) }

func (f *fakeSQL) Put(ctx context.Context, sc stores.Scope, r stores.Record) (bool, error) {
	var exp sql.NullInt64
	if !r.ExpiresAt.IsZero() {
		exp = sql.NullInt64{Int64: r.ExpiresAt.UnixMicro(), Valid: true}
	}
	now := f.now().UnixMicro()
	var old int
	_ = f.db.GetContext(ctx, &old, f.db.Rebind(`SELECT count(*) FROM byok_keys WHERE user_id=? AND provider=? AND (expires_at IS NULL OR expires_at > ?)`), sc.UserID, r.Provider, now)
	_, err := f.db.ExecContext(ctx, f.db.Rebind(`INSERT INTO byok_keys VALUES (?,?,?,?,?,?,?) ON CONFLICT (user_id, provider) DO UPDATE SET ciphertext=excluded.ciphertext, key_id=excluded.key_id, created_at=excluded.created_at, updated_at=excluded.updated_at, expires_at=excluded.expires_at`),
		sc.UserID, r.Provider, r.Ciphertext, int64(r.KeyID), r.CreatedAt.UnixMicro(), now, exp)
	return old > 0, unavail(err)
}

type row struct {
	Provider   string        `db:"provider"`
	Ciphertext []byte        `db:"ciphertext"`
	KeyID      int64         `db:"key_id"`
	Created    int64         `db:"created_at"`
	Updated    int64         `db:"updated_at"`
	Expires    sql.NullInt64 `db:"expires_at"`
	UserID     string        `db:"user_id"`
}

func (r row) rec() stores.Record {
	out := stores.Record{UserID: r.UserID, Provider: r.Provider, Ciphertext: r.Ciphertext, KeyID: uint32(r.KeyID),
		CreatedAt: time.UnixMicro(r.Created).UTC(), UpdatedAt: time.UnixMicro(r.Updated).UTC()}
	if r.Expires.Valid {
		out.ExpiresAt = time.UnixMicro(r.Expires.Int64).UTC()
	}
	return out
}

func (f *fakeSQL) List(ctx context.Context, sc stores.Scope) ([]stores.Record, error) {
	var rows []row
	err := f.db.SelectContext(ctx, &rows, f.db.Rebind(`SELECT * FROM byok_keys WHERE user_id=? AND (expires_at IS NULL OR expires_at > ?) ORDER BY provider`), sc.UserID, f.now().UnixMicro())
	if err != nil {
		return nil, unavail(err)
	}
	out := make([]stores.Record, len(rows))
	for i, r := range rows {
		out[i] = r.rec()
	}
	return out, nil
}

func (f *fakeSQL) Get(ctx context.Context, sc stores.Scope, p string) (stores.Record, error) {
	var r row
	err := f.db.GetContext(ctx, &r, f.db.Rebind(`SELECT * FROM byok_keys WHERE user_id=? AND provider=? AND (expires_at IS NULL OR expires_at > ?)`), sc.UserID, p, f.now().UnixMicro())
	if errors.Is(err, sql.ErrNoRows) {
		return stores.Record{}, stores.ErrNotFound
	}
	if err != nil {
		return stores.Record{}, unavail(err)
	}
	return r.rec(), nil
}

func (f *fakeSQL) Delete(ctx context.Context, sc stores.Scope, p string) (bool, error) {
	res, err := f.db.ExecContext(ctx, f.db.Rebind(`DELETE FROM byok_keys WHERE user_id=? AND provider=?`), sc.UserID, p)
	if err != nil {
		return false, unavail(err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (f *fakeSQL) Clear(ctx context.Context, sc stores.Scope) (int, error) {
	res, err := f.db.ExecContext(ctx, f.db.Rebind(`DELETE FROM byok_keys WHERE user_id=?`), sc.UserID)
	if err != nil {
		return 0, unavail(err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
