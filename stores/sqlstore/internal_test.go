package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
)

// TestKeyIDScan: a key_id column reads into a uint32 only when it fits.
func TestKeyIDScan(t *testing.T) {
	for _, tt := range []struct {
		name string
		v    any
		want uint32
		ok   bool
	}{
		{"zero", int64(0), 0, true},
		{"largest", int64(math.MaxUint32), math.MaxUint32, true},
		{"text", []byte("7"), 7, true},
		{"negative", int64(-1), 0, false},
		{"over 32 bits", int64(math.MaxUint32 + 1), 0, false},
		{"null", nil, 0, false},
		{"not a number", "x", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := uint32(99)
			err := keyID{&got}.Scan(tt.v)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Fatalf("Scan(%v) = %d, %v; want %d", tt.v, got, err, tt.want)
				}
				return
			}
			if err == nil || got != 99 {
				t.Fatalf("Scan(%v) = %d, %v; want an error and no change", tt.v, got, err)
			}
		})
	}
}

// TestEvery runs the janitor's loop on synctest's fake clock: one call per
// interval, none after the context ends.
func TestEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var calls atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			every(ctx, time.Minute, func(context.Context) { calls.Add(1) })
		}()
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 3 {
			t.Errorf("%d calls in 3 intervals, want 3", n)
		}
		cancel()
		<-done
		time.Sleep(10 * time.Minute)
		if n := calls.Load(); n != 3 {
			t.Errorf("%d calls after the context ended", n)
		}
	})
}

// TestDescribe: driver errors are shown without anything that may quote a
// query argument.
func TestDescribe(t *testing.T) {
	const secret = "SENTINEL"
	for _, tc := range []struct {
		name     string
		err      error
		contains string
		hides    bool
	}{
		{"pg data error", &pq.Error{Code: "22P02", Message: `invalid input syntax for type integer: "` + secret + `"`}, "22P02", true},
		{"pg unique", &pq.Error{Code: "23505", Message: "duplicate key", Detail: "Key (user_id)=(" + secret + ")"}, "unique_violation", true},
		{"pg undefined table", &pq.Error{Code: "42P01", Message: `relation "byok_keys" does not exist`}, `relation "byok_keys" does not exist`, false},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, "connection refused", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := &dbError{op: "get", err: fmt.Errorf("wrapped: %w", tc.err)}
			msg := err.Error()
			if !strings.Contains(msg, tc.contains) {
				t.Errorf("%q lacks %q", msg, tc.contains)
			}
			if tc.hides && strings.Contains(msg, secret) {
				t.Errorf("%q shows the argument", msg)
			}
			if !errors.Is(err, stores.ErrUnavailable) || !errors.Is(err, tc.err) {
				t.Errorf("%v does not match ErrUnavailable and the driver error", err)
			}
		})
	}
}

// TestDeleteExpiredBatch: one janitor statement deletes at most batch rows
// (DeleteExpired repeats it until a short batch).
func TestDeleteExpiredBatch(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *sqlx.DB{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s, err := New(open(t), WithClock(func() time.Time { return now }), WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				r := stores.Record{Provider: "p", Ciphertext: []byte("x"), CreatedAt: now, ExpiresAt: now.Add(time.Second)}
				if _, err := s.Put(ctx, stores.Scope{UserID: fmt.Sprint(i)}, r); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(time.Second)
			for _, want := range []int64{4, 4, 2, 0} {
				res, err := s.db.ExecContext(ctx, s.q.deleteExpired, s.d.time(now), 4)
				if err != nil {
					t.Fatal(err)
				}
				if n, _ := res.RowsAffected(); n != want {
					t.Fatalf("one batch deleted %d rows, want %d", n, want)
				}
			}
		})
	}
}

func TestRenderMigrations(t *testing.T) {
	for _, name := range []string{"postgres", "sqlite"} {
		d := dialect{name: name, pg: name == "postgres"}
		schema, ms, err := loadMigrations(d, "k")
		if err != nil {
			t.Fatal(err)
		}
		if len(schema) != 1 || len(ms) == 0 || ms[0].version != 1 || len(ms[0].stmts) != 3 {
			t.Errorf("%s: schema %d statements, migrations %+v", name, len(schema), ms)
		}
		for _, stmt := range append(schema, ms[0].stmts...) {
			if strings.Contains(stmt, "{{") || strings.HasSuffix(stmt, ";") {
				t.Errorf("%s: badly rendered statement %q", name, stmt)
			}
		}
	}
}
