package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// Secrets used by the tests: the old one the rows are seeded under, the
// new one rotate moves them to, and one nobody lists.
var (
	oldSecret   = secretOf("old-master-secret/")
	newSecret   = secretOf("new-master-secret+")
	otherSecret = secretOf("unlisted-secret_!")
)

// mustRing builds a keyring from secrets.
func mustRing(t testing.TB, current string, previous ...string) *encrypt.Keyring {
	t.Helper()
	r, err := encrypt.KeyringFromSecrets(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// backend is one database the CLI is tested against.
type backend struct {
	name  string
	url   string // DATABASE_URL as the CLI gets it
	db    *sqlx.DB
	store *sqlstore.Store
}

// backendKinds are the databases every integration test runs on.
var backendKinds = []string{"postgres", "sqlite"}

// newBackend gives a fresh, empty (not migrated) database of kind.
func newBackend(t testing.TB, kind string) *backend {
	t.Helper()
	b := &backend{name: kind}
	var err error
	switch kind {
	case "postgres":
		b.url = testenv.PostgresURL(t)
		b.db, err = sqlx.Open("postgres", b.url)
	case "sqlite":
		path := testenv.SQLitePath(t)
		b.url = path
		b.db, err = sqlx.Open("sqlite", testenv.SQLiteDSN(path))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.db.Close() })
	b.store, err = sqlstore.New(b.db)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// env returns the CLI's environment for this backend with the given secrets.
func (b *backend) env(current string, previous ...string) map[string]string {
	m := map[string]string{envDatabaseURL: b.url}
	if current != "" {
		m[envSecret] = current
	}
	if len(previous) > 0 {
		m[envPreviousSecret] = strings.Join(previous, ",")
	}
	return m
}

// migrate applies the schema through the CLI.
func (b *backend) migrate(t testing.TB) {
	t.Helper()
	if r := runCLI(context.Background(), b.env(""), "migrate"); r.code != 0 {
		t.Fatalf("migrate: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// plaintextFor is the API key seeded for a row: recognisable, unique.
func plaintextFor(user, provider string) string {
	return "sk-test-" + provider + "-" + user + "-0123456789abcdef"
}

var seedBase = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

// makeRecords returns n records of users with two providers each, sealed
// under ring with the right associated data. Every tenth row has expired,
// every third never expires, the rest expire in the future; creation times
// differ by row.
func makeRecords(t testing.TB, n int, ring *encrypt.Keyring) []stores.Record {
	t.Helper()
	providers := []string{"anthropic", "openai"}
	recs := make([]stores.Record, 0, n)
	for i := range n {
		user := fmt.Sprintf("user-%07d", i/2)
		provider := providers[i%2]
		recs = append(recs, sealRecord(t, ring, user, provider, plaintextFor(user, provider), i))
	}
	return recs
}

// sealRecord builds the record for row i of (user, provider) holding pt.
func sealRecord(t testing.TB, ring *encrypt.Keyring, user, provider, pt string, i int) stores.Record {
	t.Helper()
	ct, err := ring.Seal([]byte(pt), encrypt.AssociatedData(stores.Scope{UserID: user}.Owner(), provider))
	if err != nil {
		t.Fatal(err)
	}
	created := seedBase.Add(-time.Duration(i) * time.Second)
	r := stores.Record{UserID: user, Provider: provider, Ciphertext: ct, KeyID: ring.PrimaryID(),
		CreatedAt: created, UpdatedAt: created.Add(time.Minute)}
	switch {
	case i%10 == 0:
		r.ExpiresAt = time.Now().Add(-time.Duration(i+1) * time.Minute).Truncate(time.Microsecond).UTC()
	case i%3 == 0:
	default:
		r.ExpiresAt = time.Now().Add(time.Duration(i+1) * time.Hour).Truncate(time.Microsecond).UTC()
	}
	return r
}

const seedCols = "user_id, provider, ciphertext, key_id, created_at, updated_at, expires_at"

// seed inserts recs verbatim (expired ones too) into the migrated table:
// COPY in one transaction on PostgreSQL, multi-row INSERTs in one
// transaction on SQLite.
func (b *backend) seed(t testing.TB, recs []stores.Record) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	switch b.name {
	case "postgres":
		stmt, err := tx.PrepareContext(ctx, "COPY "+sqlstore.DefaultTable+" ("+seedCols+") FROM STDIN")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			var exp any
			if !r.ExpiresAt.IsZero() {
				exp = r.ExpiresAt
			}
			if _, err := stmt.ExecContext(ctx, r.UserID, r.Provider, r.Ciphertext, int64(r.KeyID), r.CreatedAt, r.UpdatedAt, exp); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := stmt.ExecContext(ctx); err != nil {
			t.Fatal(err)
		}
		if err := stmt.Close(); err != nil {
			t.Fatal(err)
		}
	case "sqlite":
		const per = 200
		row := "(?, ?, ?, ?, ?, ?, ?)"
		for start := 0; start < len(recs); start += per {
			chunk := recs[start:min(start+per, len(recs))]
			q := "INSERT INTO " + sqlstore.DefaultTable + " (" + seedCols + ") VALUES " +
				strings.TrimSuffix(strings.Repeat(row+",", len(chunk)), ",")
			args := make([]any, 0, 7*len(chunk))
			for _, r := range chunk {
				var exp any
				if !r.ExpiresAt.IsZero() {
					exp = r.ExpiresAt.UnixMicro()
				}
				args = append(args, r.UserID, r.Provider, r.Ciphertext, int64(r.KeyID), r.CreatedAt.UnixMicro(), r.UpdatedAt.UnixMicro(), exp)
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// snapshot reads every row (expired ones too) through the store's Scan.
func (b *backend) snapshot(t testing.TB) map[rowKey]stores.Record {
	t.Helper()
	out := map[rowKey]stores.Record{}
	var u, p string
	for {
		recs, err := b.store.Scan(context.Background(), u, p, 5000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out[rowKey{r.UserID, r.Provider}] = r
		}
		if len(recs) < 5000 {
			return out
		}
		u, p = recs[len(recs)-1].UserID, recs[len(recs)-1].Provider
	}
}

// setCheckValue stores a check value sealed under ring's primary key.
func (b *backend) setCheckValue(t testing.TB, ring *encrypt.Keyring) {
	t.Helper()
	cv, err := encrypt.NewCheckValue(ring)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.store.SetCheckValue(context.Background(), cv, true); err != nil {
		t.Fatal(err)
	}
}

// checkValueKey returns the key id the stored check value is sealed under.
func (b *backend) checkValueKey(t testing.TB) uint32 {
	t.Helper()
	cv, err := b.store.CheckValue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id, err := encrypt.KeyID(cv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// verifyRotated checks that every row of before (except those in skip,
// which must be byte-for-byte unchanged) is now under ring's primary key,
// opens to its plaintext, and kept its created and expiry times; and that
// no row appeared or vanished.
func verifyRotated(t testing.TB, before, after map[rowKey]stores.Record, ring *encrypt.Keyring, plaintext func(user, provider string) string, skip map[rowKey]bool) {
	t.Helper()
	if len(after) != len(before) {
		t.Fatalf("%d rows after rotate, %d before", len(after), len(before))
	}
	bad := 0
	fail := func(format string, a ...any) {
		bad++
		if bad <= 5 {
			t.Errorf(format, a...)
		}
	}
	for k, old := range before {
		cur, ok := after[k]
		if !ok {
			fail("row %v vanished", k)
			continue
		}
		if !cur.CreatedAt.Equal(old.CreatedAt) || !cur.ExpiresAt.Equal(old.ExpiresAt) {
			fail("row %v: created %v expires %v, was %v %v", k, cur.CreatedAt, cur.ExpiresAt, old.CreatedAt, old.ExpiresAt)
		}
		if skip[k] {
			if string(cur.Ciphertext) != string(old.Ciphertext) || cur.KeyID != old.KeyID {
				fail("row %v should be untouched but changed", k)
			}
			continue
		}
		if ring.NeedsRewrap(cur.Ciphertext) || cur.KeyID != ring.PrimaryID() {
			fail("row %v still needs rewrap (key column %08x)", k, cur.KeyID)
			continue
		}
		pt, err := ring.Open(cur.Ciphertext, encrypt.AssociatedData(stores.Scope{UserID: k.user}.Owner(), k.provider))
		if err != nil || string(pt) != plaintext(k.user, k.provider) {
			fail("row %v does not open to its key: %v", k, err)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d rows wrong", bad, len(before))
	}
}

// forBackends runs f as a subtest on every backend kind.
func forBackends(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range backendKinds {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

// mustSeal seals pt for (user, provider) under ring.
func mustSeal(t testing.TB, ring *encrypt.Keyring, user, provider, pt string) []byte {
	t.Helper()
	ct, err := ring.Seal([]byte(pt), encrypt.AssociatedData(stores.Scope{UserID: user}.Owner(), provider))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}
