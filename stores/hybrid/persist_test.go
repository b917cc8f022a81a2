package hybrid_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// newPersist returns the real SQL store on db, migrated.
func newPersist(t testing.TB, db *sqlx.DB, now func() time.Time) stores.Store {
	t.Helper()
	s, err := sqlstore.New(db, sqlstore.WithClock(now), sqlstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
