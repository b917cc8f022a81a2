package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// backend is one database the same cases run against.
type backend struct {
	name   string
	driver string
	dsn    func(t testing.TB) string // a fresh, empty database
}

var backends = []backend{
	{"postgres", "postgres", testenv.PostgresURL},
	{"sqlite", "sqlite", func(t testing.TB) string { return testenv.SQLiteDSN(testenv.SQLitePath(t)) }},
}

// each runs fn once per backend, as subtests.
func each(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

func (b backend) open(t testing.TB, dsn string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open(b.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// clock is a fake clock safe for the janitor goroutine to read.
type clock struct{ us atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.us.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMicro())
	return c
}
func (c *clock) now() time.Time      { return time.UnixMicro(c.us.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.us.Add(d.Microseconds()) }

var quiet = slog.New(slog.DiscardHandler)

// migrated returns a migrated store on db.
func migrated(t testing.TB, db *sqlx.DB, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(db, append([]sqlstore.Option{sqlstore.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func user(id string) stores.Scope { return stores.Scope{UserID: id} }

func rec(p string, c *clock) stores.Record {
	return stores.Record{Provider: p, Ciphertext: []byte("sealed:" + p), KeyID: 7, CreatedAt: c.now()}
}

func equal(a, b stores.Record) bool {
	return a.UserID == b.UserID && a.Provider == b.Provider && bytes.Equal(a.Ciphertext, b.Ciphertext) &&
		a.KeyID == b.KeyID && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.CreatedAt.Location() == time.UTC
}

func providers(recs []stores.Record) string {
	ps := make([]string, len(recs))
	for i, r := range recs {
		ps[i] = r.Provider
	}
	return strings.Join(ps, ",")
}

func count(t testing.TB, db *sqlx.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM "` + table + `"`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCRUD(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		t.Run("prepared", func(t *testing.T) { testCRUD(t, b) })
		t.Run("unprepared", func(t *testing.T) { testCRUD(t, b, sqlstore.WithoutPreparedStatements()) })
	})
}

func testCRUD(t *testing.T, b backend, opts ...sqlstore.Option) {
	ctx := t.Context()
	c := newClock()
	s := migrated(t, b.open(t, b.dsn(t)), append(opts, sqlstore.WithClock(c.now))...)
	alice, bob := user("alice"), user("bob")

	if _, err := s.Get(ctx, alice, "openai"); !errors.Is(err, stores.ErrNotFound) {
		t.Fatalf("Get on empty table: %v", err)
	}
	for _, p := range []string{"openai", "anthropic", "mistral"} {
		if replaced, err := s.Put(ctx, alice, rec(p, c)); err != nil || replaced {
			t.Fatalf("Put %s = %v, %v", p, replaced, err)
		}
	}
	if _, err := s.Put(ctx, bob, rec("openai", c)); err != nil {
		t.Fatal(err)
	}
	want := rec("anthropic", c)
	want.UserID, want.UpdatedAt = "alice", c.now()
	want.ExpiresAt = time.Time{}
	if got, err := s.Get(ctx, alice, "anthropic"); err != nil || !equal(got, want) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, want)
	}
	if l, err := s.List(ctx, alice); err != nil || providers(l) != "anthropic,mistral,openai" {
		t.Fatalf("List = %s, %v", providers(l), err)
	}

	c.add(time.Minute)
	r := rec("openai", c)
	r.Ciphertext, r.KeyID = []byte("second"), 9
	r.ExpiresAt = c.now().Add(time.Hour).Add(123456 * time.Nanosecond) // kept to the microsecond
	if replaced, err := s.Put(ctx, alice, r); err != nil || !replaced {
		t.Fatalf("replacing Put = %v, %v", replaced, err)
	}
	got, err := s.Get(ctx, alice, "openai")
	if err != nil || string(got.Ciphertext) != "second" || got.KeyID != 9 ||
		!got.ExpiresAt.Equal(r.ExpiresAt.Truncate(time.Microsecond)) || !got.UpdatedAt.Equal(c.now()) {
		t.Fatalf("after replace Get = %+v, %v", got, err)
	}
	if got, _ := s.Get(ctx, bob, "openai"); string(got.Ciphertext) != "sealed:openai" {
		t.Errorf("bob's key changed with alice's")
	}

	if existed, err := s.Delete(ctx, alice, "mistral"); err != nil || !existed {
		t.Fatalf("Delete = %v, %v", existed, err)
	}
	if existed, err := s.Delete(ctx, alice, "mistral"); err != nil || existed {
		t.Fatalf("second Delete = %v, %v", existed, err)
	}
	if n, err := s.Clear(ctx, alice); err != nil || n != 2 {
		t.Fatalf("Clear = %d, %v; want 2", n, err)
	}
	if l, err := s.List(ctx, alice); err != nil || len(l) != 0 {
		t.Fatalf("List after Clear = %v, %v", l, err)
	}
	if _, err := s.Get(ctx, bob, "openai"); err != nil {
		t.Errorf("Clear of alice removed bob's key: %v", err)
	}
	// Close releases the prepared statements; the store keeps working.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, bob, "openai"); err != nil {
		t.Errorf("Get after Close: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		c := newClock()
		s := migrated(t, b.open(t, b.dsn(t)), sqlstore.WithClock(c.now))
		anon := stores.Scope{AnonID: "a1"}
		if _, err := s.Put(ctx, anon, rec("openai", c)); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("anonymous Put: %v", err)
		}
		if _, err := s.Get(ctx, anon, "openai"); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("anonymous Get: %v", err)
		}
		if _, err := s.List(ctx, anon); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("anonymous List: %v", err)
		}
		if _, err := s.Delete(ctx, anon, "x"); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("anonymous Delete: %v", err)
		}
		if _, err := s.Clear(ctx, anon); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("anonymous Clear: %v", err)
		}
		expired := rec("openai", c)
		expired.ExpiresAt = c.now()
		other := rec("openai", c)
		other.UserID = "bob"
		for name, tc := range map[string]struct {
			scope stores.Scope
			r     stores.Record
		}{
			"no provider":   {user("u"), stores.Record{Ciphertext: []byte("x"), CreatedAt: c.now()}},
			"no ciphertext": {user("u"), stores.Record{Provider: "p", CreatedAt: c.now()}},
			"no created":    {user("u"), stores.Record{Provider: "p", Ciphertext: []byte("x")}},
			"bad utf8":      {user("u"), stores.Record{Provider: "p\xff", Ciphertext: []byte("x"), CreatedAt: c.now()}},
			"NUL":           {user("u\x00v"), rec("openai", c)},
			"long provider": {user("u"), stores.Record{Provider: strings.Repeat("p", 65), Ciphertext: []byte("x"), CreatedAt: c.now()}},
			"expired":       {user("u"), expired},
			"other user":    {user("u"), other},
		} {
			if _, err := s.Put(ctx, tc.scope, tc.r); !errors.Is(err, stores.ErrInvalidRecord) {
				t.Errorf("%s: %v, want ErrInvalidRecord", name, err)
			}
		}
	})
}

func TestExpiry(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		c := newClock()
		db := b.open(t, b.dsn(t))
		s := migrated(t, db, sqlstore.WithClock(c.now))
		u := user("u")
		short := rec("openai", c)
		short.ExpiresAt = c.now().Add(time.Hour)
		long := rec("groq", c)
		long.ExpiresAt = c.now().Add(2 * time.Hour)
		for _, r := range []stores.Record{short, long, rec("mistral", c)} {
			if _, err := s.Put(ctx, u, r); err != nil {
				t.Fatal(err)
			}
		}
		c.add(time.Hour - time.Microsecond)
		if _, err := s.Get(ctx, u, "openai"); err != nil {
			t.Fatalf("Get a microsecond before expiry: %v", err)
		}
		c.add(time.Microsecond) // exactly at expiry: expired
		if _, err := s.Get(ctx, u, "openai"); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("Get of an expired key: %v", err)
		}
		if l, _ := s.List(ctx, u); providers(l) != "groq,mistral" {
			t.Errorf("List = %s", providers(l))
		}
		if replaced, err := s.Put(ctx, u, rec("openai", c)); err != nil || replaced {
			t.Errorf("Put over an expired row = %v, %v; want false (new)", replaced, err)
		}
		if replaced, err := s.Put(ctx, u, rec("openai", c)); err != nil || !replaced {
			t.Errorf("Put over the live row = %v, %v; want true", replaced, err)
		}
		c.add(time.Hour)
		if existed, err := s.Delete(ctx, u, "groq"); err != nil || existed {
			t.Errorf("Delete of an expired row = %v, %v; want false", existed, err)
		}
		soon := rec("cohere", c)
		soon.ExpiresAt = c.now().Add(time.Second)
		if _, err := s.Put(ctx, u, soon); err != nil {
			t.Fatal(err)
		}
		c.add(time.Second)
		if n, err := s.Clear(ctx, u); err != nil || n != 2 {
			t.Errorf("Clear = %d, %v; want 2 live rows (openai, mistral)", n, err)
		}
		if n := count(t, db, sqlstore.DefaultTable); n != 0 {
			t.Errorf("Clear left %d rows", n)
		}
	})
}

// TestConcurrentUpsert is the Python original's failure: 50 goroutines on
// each of two replicas (two pools, two Stores) store the same (user,
// provider). Exactly one row, no error, exactly one Put saw no live row.
func TestConcurrentUpsert(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		dsn := b.dsn(t)
		c := newClock()
		dbs := []*sqlx.DB{b.open(t, dsn), b.open(t, dsn)}
		replicas := []*sqlstore.Store{migrated(t, dbs[0], sqlstore.WithClock(c.now)), migrated(t, dbs[1], sqlstore.WithClock(c.now))}
		const perReplica = 50
		var wg sync.WaitGroup
		var fresh atomic.Int32
		errs := make(chan error, 2*perReplica)
		for i, s := range replicas {
			for g := range perReplica {
				wg.Go(func() {
					r := rec("openai", c)
					r.Ciphertext = fmt.Appendf(nil, "ct-%d-%d", i, g)
					replaced, err := s.Put(t.Context(), user("alice"), r)
					if err != nil {
						errs <- err
					}
					if !replaced {
						fresh.Add(1)
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Put: %v", err)
		}
		if n := count(t, dbs[0], sqlstore.DefaultTable); n != 1 {
			t.Errorf("%d rows, want exactly 1", n)
		}
		if n := fresh.Load(); n != 1 {
			t.Errorf("%d Puts reported a new key, want exactly 1", n)
		}
		if got, err := replicas[1].Get(t.Context(), user("alice"), "openai"); err != nil || !bytes.HasPrefix(got.Ciphertext, []byte("ct-")) {
			t.Errorf("Get = %q, %v", got.Ciphertext, err)
		}
	})
}

func TestMigrate(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		t.Run("twice", func(t *testing.T) {
			s, err := sqlstore.New(b.open(t, b.dsn(t)))
			if err != nil {
				t.Fatal(err)
			}
			if cur, latest, err := s.SchemaVersion(ctx); err != nil || cur != 0 || latest < 1 {
				t.Fatalf("SchemaVersion before = %d, %d, %v", cur, latest, err)
			}
			if _, err := s.Get(ctx, user("u"), "p"); !errors.Is(err, stores.ErrUnavailable) {
				t.Errorf("Get before Migrate: %v, want ErrUnavailable", err)
			}
			for range 2 {
				if err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if cur, latest, err := s.SchemaVersion(ctx); err != nil || cur != latest {
				t.Fatalf("SchemaVersion after = %d, %d, %v", cur, latest, err)
			}
		})
		t.Run("concurrently", func(t *testing.T) {
			dsn := b.dsn(t)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				s, err := sqlstore.New(b.open(t, dsn))
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() { errs[i] = s.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("migrator %d: %v", i, err)
				}
			}
		})
		t.Run("dry run script", func(t *testing.T) {
			db := b.open(t, b.dsn(t))
			s, err := sqlstore.New(db)
			if err != nil {
				t.Fatal(err)
			}
			script := s.MigrationSQL()
			conn, err := db.Connx(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for round := range 2 { // the script is idempotent too
				for _, stmt := range script {
					if _, err := conn.ExecContext(ctx, stmt); err != nil {
						t.Fatalf("round %d: %s: %v", round, stmt, err)
					}
				}
			}
			conn.Close()
			if cur, latest, err := s.SchemaVersion(ctx); err != nil || cur != latest {
				t.Fatalf("after the script: version %d of %d, %v", cur, latest, err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			c := newClock()
			if _, err := s.Put(ctx, user("u"), rec("p", c)); err != nil {
				t.Fatal(err)
			}
			if b.name == "postgres" && !strings.Contains(strings.Join(script, "\n"), "pg_advisory_xact_lock") {
				t.Error("PostgreSQL script takes no advisory lock")
			}
		})
	})
}

func TestTables(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		c := newClock()
		db := b.open(t, b.dsn(t))
		def := migrated(t, db, sqlstore.WithClock(c.now))
		custom := migrated(t, db, sqlstore.WithClock(c.now), sqlstore.WithTable("user")) // a reserved word: identifiers are quoted
		if _, err := custom.Put(ctx, user("u"), rec("openai", c)); err != nil {
			t.Fatal(err)
		}
		if _, err := def.Get(ctx, user("u"), "openai"); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("default table sees the custom table's row: %v", err)
		}
		if n := count(t, db, "user"); n != 1 {
			t.Errorf("custom table has %d rows", n)
		}
		if err := custom.SetCheckValue(ctx, []byte("cv"), false); err != nil {
			t.Fatal(err)
		}
		if _, err := def.CheckValue(ctx); !errors.Is(err, stores.ErrNotFound) {
			t.Errorf("check value shared between tables: %v", err)
		}
	})
}

func TestOptions(t *testing.T) {
	db := testenv.SQLite(t)
	for _, name := range []string{"", "Byok", "1keys", "keys-x", "keys;drop", `k"`, strings.Repeat("k", 41), "schema.table"} {
		if _, err := sqlstore.New(db, sqlstore.WithTable(name)); err == nil {
			t.Errorf("table name %q accepted", name)
		}
	}
	if _, err := sqlstore.New(db, sqlstore.WithTable(strings.Repeat("k", 40))); err != nil {
		t.Errorf("40-character name: %v", err)
	}
	for name, o := range map[string]sqlstore.Option{
		"nil clock": sqlstore.WithClock(nil), "nil logger": sqlstore.WithLogger(nil),
		"negative interval": sqlstore.WithJanitor(-time.Second, 1), "negative batch": sqlstore.WithJanitor(time.Second, -1),
	} {
		if _, err := sqlstore.New(db, o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := sqlstore.New(sqlx.NewDb(db.DB, "mysql")); !errors.Is(err, sqlstore.ErrUnsupportedDriver) {
		t.Errorf("mysql driver name: %v", err)
	}
	if _, err := sqlstore.New(nil); err == nil {
		t.Error("nil db accepted")
	}
}

func TestDeleteExpired(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		c := newClock()
		db := b.open(t, b.dsn(t))
		s := migrated(t, db, sqlstore.WithClock(c.now))
		for i := range 25 {
			r := rec(fmt.Sprintf("p%02d", i%5), c)
			r.ExpiresAt = c.now().Add(time.Duration(1+i) * time.Minute)
			if _, err := s.Put(ctx, user(fmt.Sprintf("u%d", i/5)), r); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			if _, err := s.Put(ctx, user("keeper"), rec(fmt.Sprintf("p%d", i), c)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.DeleteExpired(ctx, 4); err != nil || n != 0 {
			t.Fatalf("DeleteExpired before any expiry = %d, %v", n, err)
		}
		c.add(10 * time.Minute) // 10 of 25 expired
		if n, err := s.DeleteExpired(ctx, 4); err != nil || n != 10 {
			t.Fatalf("DeleteExpired = %d, %v; want 10 (in batches of 4)", n, err)
		}
		c.add(time.Hour)
		if n, err := s.DeleteExpired(ctx, 0); err != nil || n != 15 {
			t.Fatalf("DeleteExpired = %d, %v; want 15", n, err)
		}
		if n := count(t, db, sqlstore.DefaultTable); n != 3 {
			t.Errorf("%d rows left, want the 3 that never expire", n)
		}
	})
}

// logCounter counts log records; safe for the janitor goroutine.
type logCounter struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	l.msgs = append(l.msgs, b.String())
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
func (l *logCounter) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

func TestJanitor(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		c := newClock()
		db := b.open(t, b.dsn(t))
		logs := &logCounter{}
		s := migrated(t, db, sqlstore.WithClock(c.now), sqlstore.WithLogger(slog.New(logs)),
			sqlstore.WithJanitor(10*time.Millisecond, 3))
		put := func(n int) {
			for i := range n {
				r := rec(fmt.Sprintf("p%d", i), c)
				r.Ciphertext = []byte("SENTINEL-ciphertext")
				r.ExpiresAt = c.now().Add(time.Minute)
				if _, err := s.Put(ctx, user(fmt.Sprintf("u%d", c.now().UnixMicro())), r); err != nil {
					t.Fatal(err)
				}
			}
		}
		put(7)
		c.add(time.Minute)
		if err := s.StartJanitor(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.StartJanitor(ctx); err == nil {
			t.Error("second StartJanitor accepted")
		}
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if !testenv.WaitFor(wait, func() bool { return count(t, db, sqlstore.DefaultTable) == 0 }) {
			t.Fatalf("janitor left %d expired rows", count(t, db, sqlstore.DefaultTable))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		after := len(logs.snapshot())
		put(2)
		c.add(time.Minute)
		time.Sleep(100 * time.Millisecond) // ten intervals
		if n := count(t, db, sqlstore.DefaultTable); n != 2 {
			t.Errorf("%d rows after Close, want 2: the janitor still runs", n)
		}
		msgs := logs.snapshot()
		if len(msgs) != after {
			t.Errorf("janitor logged after Close: %q", msgs[after:])
		}
		joined := strings.Join(msgs, "\n")
		if !strings.Contains(joined, "deleted=7") {
			t.Errorf("no deletion count logged: %q", joined)
		}
		if strings.Contains(joined, "SENTINEL") {
			t.Errorf("janitor logged key material: %q", joined)
		}
		if err := s.StartJanitor(ctx); !errors.Is(err, sqlstore.ErrClosed) {
			t.Errorf("StartJanitor after Close: %v", err)
		}

		off := migrated(t, db)
		if err := off.StartJanitor(ctx); !errors.Is(err, sqlstore.ErrJanitorOff) {
			t.Errorf("StartJanitor without WithJanitor: %v", err)
		}
		// Ending the context stops the janitor too; Close then returns at once.
		s2 := migrated(t, db, sqlstore.WithJanitor(time.Millisecond, 0))
		jctx, stop := context.WithCancel(ctx)
		if err := s2.StartJanitor(jctx); err != nil {
			t.Fatal(err)
		}
		stop()
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckValue(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s := migrated(t, b.open(t, b.dsn(t)))
		if _, err := s.CheckValue(ctx); !errors.Is(err, stores.ErrNotFound) {
			t.Fatalf("CheckValue unset: %v", err)
		}
		if err := s.SetCheckValue(ctx, []byte("cv-1"), false); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCheckValue(ctx, []byte("cv-1"), false); err != nil {
			t.Errorf("setting the same value again: %v", err)
		}
		if err := s.SetCheckValue(ctx, []byte("cv-2"), false); err != nil {
			t.Errorf("insert-if-absent over another value: %v, want nil (the stored value stays)", err)
		}
		if cv, err := s.CheckValue(ctx); err != nil || string(cv) != "cv-1" {
			t.Errorf("CheckValue = %q, %v", cv, err)
		}
		if err := s.SetCheckValue(ctx, []byte("cv-2"), true); err != nil {
			t.Fatal(err)
		}
		if cv, err := s.CheckValue(ctx); err != nil || string(cv) != "cv-2" {
			t.Errorf("CheckValue after replace = %q, %v", cv, err)
		}
		if err := s.SetCheckValue(ctx, nil, true); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("empty check value: %v", err)
		}
	})
}

func TestScanRewrapStats(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		c := newClock()
		s := migrated(t, b.open(t, b.dsn(t)), sqlstore.WithClock(c.now))
		var want []string
		for _, u := range []string{"carol", "alice", "bob"} {
			for _, p := range []string{"openai", "groq", "anthropic"} {
				r := rec(p, c)
				r.KeyID = 1
				if u == "bob" {
					r.KeyID = 2
					r.ExpiresAt = c.now().Add(time.Minute)
				}
				if _, err := s.Put(ctx, user(u), r); err != nil {
					t.Fatal(err)
				}
				c.add(time.Second)
			}
		}
		for _, u := range []string{"alice", "bob", "carol"} {
			for _, p := range []string{"anthropic", "groq", "openai"} {
				want = append(want, u+"/"+p)
			}
		}
		c.add(time.Hour) // bob's keys expire

		var got []stores.Record
		afterU, afterP := "", ""
		for pages := 0; ; pages++ {
			page, err := s.Scan(ctx, afterU, afterP, 4)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if len(page) < 4 {
				break
			}
			afterU, afterP = page[len(page)-1].UserID, page[len(page)-1].Provider
			if pages > 10 {
				t.Fatal("Scan does not advance")
			}
		}
		var keys []string
		for _, r := range got {
			keys = append(keys, r.UserID+"/"+r.Provider)
		}
		if strings.Join(keys, " ") != strings.Join(want, " ") {
			t.Fatalf("Scan order:\n got %v\nwant %v", keys, want)
		}
		if _, err := s.Scan(ctx, "", "", 0); err == nil {
			t.Error("Scan limit 0 accepted")
		}

		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 9 || st.Expired != 3 || st.ByKeyID[1] != 6 || st.ByKeyID[2] != 3 ||
			!st.Oldest.Equal(newClock().now()) {
			t.Errorf("Stats = %+v", st)
		}

		// Rewrap alice's keys to key 3; a concurrent replace of alice/groq
		// between Scan and Rewrap must win.
		if _, err := s.Put(ctx, user("alice"), stores.Record{Provider: "groq", Ciphertext: []byte("replaced"), KeyID: 1, CreatedAt: c.now()}); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Get(ctx, user("alice"), "openai")
		var rw []sqlstore.Rewrapped
		for _, r := range got[:3] {
			rw = append(rw, sqlstore.Rewrapped{UserID: r.UserID, Provider: r.Provider, Old: r.Ciphertext,
				New: append([]byte("rewrapped:"), r.Ciphertext...), KeyID: 3})
		}
		c.add(time.Minute)
		if n, err := s.Rewrap(ctx, rw); err != nil || n != 2 {
			t.Fatalf("Rewrap = %d, %v; want 2 (groq changed meanwhile)", n, err)
		}
		after, _ := s.Get(ctx, user("alice"), "openai")
		if string(after.Ciphertext) != "rewrapped:sealed:openai" || after.KeyID != 3 ||
			!after.CreatedAt.Equal(before.CreatedAt) || !after.ExpiresAt.Equal(before.ExpiresAt) || !after.UpdatedAt.Equal(c.now()) {
			t.Errorf("after Rewrap = %+v (before %+v)", after, before)
		}
		if g, _ := s.Get(ctx, user("alice"), "groq"); string(g.Ciphertext) != "replaced" {
			t.Errorf("Rewrap overwrote a concurrent replace: %q", g.Ciphertext)
		}
		if n, err := s.Rewrap(ctx, nil); err != nil || n != 0 {
			t.Errorf("empty Rewrap = %d, %v", n, err)
		}
		if _, err := s.Rewrap(ctx, []sqlstore.Rewrapped{{UserID: "u", Provider: "p", Old: []byte("x")}}); !errors.Is(err, stores.ErrInvalidRecord) {
			t.Errorf("Rewrap without New: %v", err)
		}
		if st, _ := s.Stats(ctx); st.ByKeyID[3] != 2 || st.ByKeyID[1] != 4 {
			t.Errorf("Stats after Rewrap = %+v", st)
		}
		if replaced, err := s.Put(ctx, user("alice"), rec("openai", c)); err != nil || !replaced {
			t.Errorf("Put after Rewrap = %v, %v; want replaced", replaced, err)
		}
	})
}

// TestUnavailable takes PostgreSQL away behind a proxy: every call fails
// with stores.ErrUnavailable, and no error shows a user id or ciphertext.
func TestUnavailable(t *testing.T) {
	ctx := t.Context()
	proxy := testenv.StartProxy(t, testenv.PostgresAddr(t))
	db := backends[0].open(t, testenv.ViaProxy(testenv.PostgresURL(t), proxy))
	c := newClock()
	s := migrated(t, db, sqlstore.WithClock(c.now))
	sentinel := user("SENTINEL-user")
	r := rec("openai", c)
	r.Ciphertext = []byte("SENTINEL-ciphertext")
	if _, err := s.Put(ctx, sentinel, r); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	calls := map[string]func(context.Context) error{
		"Put":  func(ctx context.Context) error { _, err := s.Put(ctx, sentinel, r); return err },
		"Get":  func(ctx context.Context) error { _, err := s.Get(ctx, sentinel, "openai"); return err },
		"List": func(ctx context.Context) error { _, err := s.List(ctx, sentinel); return err },
		"Delete": func(ctx context.Context) error {
			_, err := s.Delete(ctx, sentinel, "openai")
			return err
		},
		"Clear":         func(ctx context.Context) error { _, err := s.Clear(ctx, sentinel); return err },
		"Ping":          s.Ping,
		"Migrate":       s.Migrate,
		"CheckValue":    func(ctx context.Context) error { _, err := s.CheckValue(ctx); return err },
		"SetCheckValue": func(ctx context.Context) error { return s.SetCheckValue(ctx, r.Ciphertext, true) },
		"Scan":          func(ctx context.Context) error { _, err := s.Scan(ctx, "", "", 10); return err },
		"Stats":         func(ctx context.Context) error { _, err := s.Stats(ctx); return err },
		"DeleteExpired": func(ctx context.Context) error { _, err := s.DeleteExpired(ctx, 10); return err },
		"Rewrap": func(ctx context.Context) error {
			_, err := s.Rewrap(ctx, []sqlstore.Rewrapped{{UserID: sentinel.UserID, Provider: "openai", Old: r.Ciphertext, New: r.Ciphertext}})
			return err
		},
	}
	for name, call := range calls {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := call(cctx)
		cancel()
		if !errors.Is(err, stores.ErrUnavailable) {
			t.Errorf("%s with the database cut: %v, want ErrUnavailable", name, err)
		} else if strings.Contains(err.Error(), "SENTINEL") {
			t.Errorf("%s error shows an argument: %v", name, err)
		}
	}
	proxy.Restore()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if !testenv.WaitFor(wait, func() bool { _, err := s.Get(ctx, sentinel, "openai"); return err == nil }) {
		t.Fatal("store did not recover after the database came back")
	}
}

// TestSQLiteClosed: with SQLite the "unreachable" case is a closed pool.
func TestSQLiteClosed(t *testing.T) {
	db := testenv.SQLite(t)
	s := migrated(t, db)
	db.Close()
	if _, err := s.Get(t.Context(), user("u"), "p"); !errors.Is(err, stores.ErrUnavailable) {
		t.Errorf("Get on a closed pool: %v", err)
	}
}

func BenchmarkGet(b *testing.B) {
	for _, be := range backends {
		for _, mode := range []string{"prepared", "unprepared"} {
			b.Run(be.name+"/"+mode, func(b *testing.B) {
				c := newClock()
				opts := []sqlstore.Option{sqlstore.WithClock(c.now)}
				if mode == "unprepared" {
					opts = append(opts, sqlstore.WithoutPreparedStatements())
				}
				s := migrated(b, be.open(b, be.dsn(b)), opts...)
				ctx := context.Background()
				r := rec("openai", c)
				r.Ciphertext = bytes.Repeat([]byte{0xAB}, 33+164) // a sealed Anthropic-sized key
				for i := range 100 {
					if _, err := s.Put(ctx, user(fmt.Sprintf("user-%d", i)), r); err != nil {
						b.Fatal(err)
					}
				}
				u := user("user-42")
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Get(ctx, u, "openai"); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
