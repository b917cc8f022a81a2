package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

func TestMigrate(t *testing.T) {
	forBackends(t, func(t *testing.T, kind string) {
		b := newBackend(t, kind)
		ctx := t.Context()
		tableExists := func() bool {
			q := "SELECT to_regclass('byok_keys') IS NOT NULL"
			if kind == "sqlite" {
				q = "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'byok_keys')"
			}
			var ok bool
			if err := b.db.GetContext(ctx, &ok, q); err != nil {
				t.Fatal(err)
			}
			return ok
		}

		r := runCLI(ctx, b.env(""), "migrate", "--dry-run")
		if r.code != 0 {
			t.Fatalf("migrate --dry-run: %d %s", r.code, r.stderr)
		}
		for _, want := range []string{`CREATE TABLE IF NOT EXISTS "byok_keys"`, `"byok_keys_meta"`, "COMMIT;"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("migrate --dry-run lacks %q:\n%s", want, r.stdout)
			}
		}
		if kind == "sqlite" {
			if _, err := os.Stat(b.url); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("migrate --dry-run created the SQLite file (stat: %v)", err)
			}
		} else if tableExists() {
			t.Fatal("migrate --dry-run created the table")
		}

		for range 2 { // idempotent
			r = runCLI(ctx, b.env(""), "migrate")
			if r.code != 0 || !strings.Contains(r.stdout, "up to date") {
				t.Fatalf("migrate: %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		}
		if !tableExists() {
			t.Fatal("migrate did not create the table")
		}
		r = runCLI(ctx, b.env(""), "migrate", "--table", "other_keys")
		if r.code != 0 || !strings.Contains(r.stdout, "other_keys") {
			t.Fatalf("migrate --table: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = runCLI(ctx, b.env(""), "migrate", "--table", "Bad-Name")
		if r.code != exitUsage {
			t.Fatalf("migrate --table Bad-Name: %d, want %d", r.code, exitUsage)
		}
	})
}

func TestMissingSQLiteFile(t *testing.T) {
	path := t.TempDir() + "/none.db"
	for _, cmd := range []string{"status", "cleanup", "rotate"} {
		r := runCLI(t.Context(), map[string]string{envDatabaseURL: path, envSecret: newSecret}, cmd)
		if r.code != exitFailure || !strings.Contains(r.stderr, "does not exist") {
			t.Fatalf("%s on a missing file: %d %q", cmd, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a command created the missing SQLite file")
	}
}

func TestRotate(t *testing.T) {
	forBackends(t, func(t *testing.T, kind string) {
		ctx := t.Context()
		b := newBackend(t, kind)
		b.migrate(t)
		oldRing := mustRing(t, oldSecret)
		newRing := mustRing(t, newSecret, oldSecret)
		recs := makeRecords(t, 1234, oldRing)
		// Two rows no listed secret opens: one sealed under an unlisted key,
		// one copied from another user (its associated data does not match).
		stray := sealRecord(t, mustRing(t, otherSecret), "zz-stray", "openai", plaintextFor("zz-stray", "openai"), 7)
		moved := recs[5]
		moved.UserID = "zz-moved"
		recs = append(recs, stray, moved)
		b.seed(t, recs)
		b.setCheckValue(t, oldRing)
		before := b.snapshot(t)
		skip := map[rowKey]bool{{stray.UserID, stray.Provider}: true, {moved.UserID, moved.Provider}: true}
		env := b.env(newSecret, oldSecret)

		// Dry run: counts, lists the two, changes nothing.
		r := runCLI(ctx, env, "rotate", "--dry-run", "--batch", "100")
		if r.code != exitUnopened {
			t.Fatalf("rotate --dry-run: exit %d, want %d\n%s%s", r.code, exitUnopened, r.stdout, r.stderr)
		}
		for _, want := range []string{"would re-seal 1234", "not opened 2", "dry run: nothing was changed",
			fmt.Sprintf(`not opened: user "zz-stray" provider "openai" key %08x: sealed under a key that is not listed`, mustRing(t, otherSecret).PrimaryID()),
			fmt.Sprintf(`not opened: user "zz-moved" provider %q key %08x: fails authentication`, moved.Provider, oldRing.PrimaryID())} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("rotate --dry-run output lacks %q:\n%s", want, r.stdout)
			}
		}
		if got := b.snapshot(t); !sameRows(before, got) {
			t.Fatal("rotate --dry-run changed rows")
		}

		// The real run re-seals all but the two, which stay as they were.
		r = runCLI(ctx, env, "rotate", "--batch", "100")
		if r.code != exitUnopened || strings.Count(r.stdout, "not opened: ") != 2 || !strings.Contains(r.stdout, "re-sealed 1234 ") {
			t.Fatalf("rotate: exit %d, want %d\n%s%s", r.code, exitUnopened, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "2 rows are not under the primary key") {
			t.Fatalf("rotate stderr: %s", r.stderr)
		}
		verifyRotated(t, before, b.snapshot(t), newRing, plaintextFor, skip)
		if b.checkValueKey(t) != oldRing.PrimaryID() {
			t.Fatal("an incomplete rotate replaced the check value")
		}

		// Without the two, the run completes and seals the check value anew.
		for k := range skip {
			if _, err := b.store.Delete(ctx, stores.Scope{UserID: k.user}, k.provider); err != nil {
				t.Fatal(err)
			}
			delete(before, k)
		}
		r = runCLI(ctx, env, "rotate", "--batch", "7")
		if r.code != 0 || !strings.Contains(r.stdout, "re-sealed 0 ") || !strings.Contains(r.stdout, "already under key") {
			t.Fatalf("rotate again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if b.checkValueKey(t) != newRing.PrimaryID() {
			t.Fatal("a complete rotate did not seal the check value under the primary key")
		}
		verifyRotated(t, before, b.snapshot(t), newRing, plaintextFor, nil)

		// The old secret can go now.
		r = runCLI(ctx, b.env(newSecret), "rotate")
		if r.code != 0 {
			t.Fatalf("rotate without the old secret: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// sameRows reports whether two snapshots hold identical rows.
func sameRows(a, b map[rowKey]stores.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !bytes.Equal(x.Ciphertext, y.Ciphertext) || x.KeyID != y.KeyID ||
			!x.CreatedAt.Equal(y.CreatedAt) || !x.UpdatedAt.Equal(y.UpdatedAt) || !x.ExpiresAt.Equal(y.ExpiresAt) {
			return false
		}
	}
	return true
}

// meddler is a store on which a user replaces or deletes a key whenever
// rotate writes a batch.
type meddler struct {
	*sqlstore.Store
	calls  int
	before func(call int)
}

func (m *meddler) Rewrap(ctx context.Context, recs []sqlstore.Rewrapped) (int, error) {
	m.calls++
	m.before(m.calls)
	return m.Store.Rewrap(ctx, recs)
}

func TestRotateConcurrentWrites(t *testing.T) {
	const user, provider = "user-0000003", "openai"
	tests := []struct {
		name string
		// write is what the "user" does before rotate's n-th write.
		write func(t *testing.T, b *backend, n int)
		code  int
		want  string // in stdout
		final func(t *testing.T, b *backend, rec stores.Record, found bool)
	}{
		{
			name: "replaced by an app on the new secret",
			write: func(t *testing.T, b *backend, n int) {
				if n == 1 {
					put(t, b, mustRing(t, newSecret, oldSecret), user, provider, "sk-replaced-by-user")
				}
			},
			code: 0, want: "re-sealed 39 ",
			final: func(t *testing.T, b *backend, rec stores.Record, found bool) {
				mustOpenTo(t, mustRing(t, newSecret), rec, "sk-replaced-by-user")
			},
		},
		{
			name: "replaced once by an app still on the old secret",
			write: func(t *testing.T, b *backend, n int) {
				if n == 1 {
					put(t, b, mustRing(t, oldSecret), user, provider, "sk-replaced-old")
				}
			},
			code: 0, want: "re-sealed 40 ",
			final: func(t *testing.T, b *backend, rec stores.Record, found bool) {
				mustOpenTo(t, mustRing(t, newSecret), rec, "sk-replaced-old")
			},
		},
		{
			name: "replaced on every write by an app on the old secret",
			write: func(t *testing.T, b *backend, n int) {
				put(t, b, mustRing(t, oldSecret), user, provider, fmt.Sprintf("sk-replaced-%d", n))
			},
			code: exitUnopened, want: fmt.Sprintf("still changing: user %q provider %q", user, provider),
			final: func(t *testing.T, b *backend, rec stores.Record, found bool) {
				mustOpenTo(t, mustRing(t, oldSecret), rec, "sk-replaced-3")
			},
		},
		{
			name: "deleted",
			write: func(t *testing.T, b *backend, n int) {
				if n == 1 {
					if _, err := b.store.Delete(context.Background(), stores.Scope{UserID: user}, provider); err != nil {
						t.Fatal(err)
					}
				}
			},
			code: 0, want: "re-sealed 39 ",
			final: func(t *testing.T, b *backend, rec stores.Record, found bool) {
				if found {
					t.Fatal("rotate brought back a deleted key")
				}
			},
		},
	}
	forBackends(t, func(t *testing.T, kind string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := newBackend(t, kind)
				b.migrate(t)
				recs := makeRecords(t, 40, mustRing(t, oldSecret))
				for i := range recs { // Put refuses expired rows; none are here
					recs[i].ExpiresAt = time.Time{}
				}
				b.seed(t, recs)
				ks := mustKeys(t, newSecret, oldSecret)
				m := &meddler{Store: b.store, before: func(n int) { tt.write(t, b, n) }}
				var stdout, stderr bytes.Buffer
				e := &env{stdout: &stdout, stderr: &stderr, getenv: mapEnv(nil)}
				_, err := rotate(t.Context(), e, m, ks, rotateOptions{batch: 1000})
				if code := e.report("rotate", err); code != tt.code || !strings.Contains(stdout.String(), tt.want) {
					t.Fatalf("exit %d, want %d; stdout lacks %q?\n%s%s", code, tt.code, tt.want, stdout.String(), stderr.String())
				}
				rec, found := b.snapshot(t)[rowKey{user, provider}]
				tt.final(t, b, rec, found)
			})
		}
	})
}

// put stores pt for (user, provider) sealed under ring, as the app would.
func put(t *testing.T, b *backend, ring *encrypt.Keyring, user, provider, pt string) {
	t.Helper()
	ct, err := ring.Seal([]byte(pt), encrypt.AssociatedData(stores.Scope{UserID: user}.Owner(), provider))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.store.Put(context.Background(), stores.Scope{UserID: user},
		stores.Record{Provider: provider, Ciphertext: ct, KeyID: ring.PrimaryID(), CreatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
}

// mustOpenTo checks that rec is sealed under ring's primary key and holds pt.
func mustOpenTo(t *testing.T, ring *encrypt.Keyring, rec stores.Record, pt string) {
	t.Helper()
	if ring.NeedsRewrap(rec.Ciphertext) {
		t.Fatal("row is not under the expected key")
	}
	got, err := ring.Open(rec.Ciphertext, encrypt.AssociatedData(stores.Scope{UserID: rec.UserID}.Owner(), rec.Provider))
	if err != nil || string(got) != pt {
		t.Fatalf("row opens to a different key (%v): the user's write was overwritten", err)
	}
}

// mustKeys builds a keyset as the CLI does.
func mustKeys(t testing.TB, current string, previous ...string) *keyset {
	t.Helper()
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{},
		getenv: mapEnv(map[string]string{envSecret: current, envPreviousSecret: strings.Join(previous, ",")})}
	ks, err := e.loadKeys(secretFlags{}, true)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestRotateProgressOnTerminal(t *testing.T) {
	b := newBackend(t, "sqlite")
	b.migrate(t)
	b.seed(t, makeRecords(t, 300, mustRing(t, oldSecret)))
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: mapEnv(nil), stderrTTY: true}
	// 300 rows at 600 rows/s in batches of 10 (the rate caps the batch)
	// take about half a second: several redraws.
	if _, err := rotate(t.Context(), e, b.store, mustKeys(t, newSecret, oldSecret), rotateOptions{batch: 100, rate: 600}); err != nil {
		t.Fatal(err)
	}
	out := stderr.String()
	if strings.Count(out, "\r") < 2 || !strings.HasSuffix(out, "\n") || !strings.Contains(out, "rows/s, ETA ") {
		t.Fatalf("progress on a terminal should redraw one line:\n%q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("progress on a terminal printed several lines:\n%q", out)
	}
}

func TestStatus(t *testing.T) {
	forBackends(t, func(t *testing.T, kind string) {
		ctx := t.Context()
		b := newBackend(t, kind)
		b.migrate(t)
		oldRing, otherRing := mustRing(t, oldSecret), mustRing(t, otherSecret)
		recs := makeRecords(t, 100, oldRing) // rows 0, 10, …, 90 have expired
		recs = append(recs, sealRecord(t, otherRing, "zz-stray", "openai", "sk-x", 1), sealRecord(t, otherRing, "zz-stray", "groq", "sk-y", 2))
		b.seed(t, recs)
		oldID, newID, otherID := fmt.Sprintf("%08x", oldRing.PrimaryID()), fmt.Sprintf("%08x", mustRing(t, newSecret).PrimaryID()), fmt.Sprintf("%08x", otherRing.PrimaryID())

		status := func(env map[string]string, wantCode int) statusReport {
			t.Helper()
			r := runCLI(ctx, env, "status", "--json")
			if r.code != wantCode {
				t.Fatalf("status --json: exit %d, want %d\n%s%s", r.code, wantCode, r.stdout, r.stderr)
			}
			var rep statusReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("status --json printed %q: %v", r.stdout, err)
			}
			return rep
		}

		// No secret, no check value.
		rep := status(b.env(""), 0)
		if rep.Rows != 102 || rep.Expired != 10 || rep.CheckValue != cvUnset || rep.SecretMatches != nil || rep.RowsToRotate != nil {
			t.Fatalf("status without secret: %+v", rep)
		}
		if rep.OldestCreatedAt == nil || !rep.OldestCreatedAt.Equal(seedBase.Add(-99*time.Second)) {
			t.Fatalf("oldest = %v, want %v", rep.OldestCreatedAt, seedBase.Add(-99*time.Second))
		}
		wantKeys := []keyStatus{{oldID, 100, "unknown"}, {otherID, 2, "unknown"}}
		if fmt.Sprint(rep.Keys) != fmt.Sprint(wantKeys) {
			t.Fatalf("keys = %v, want %v", rep.Keys, wantKeys)
		}

		// Mid-rotation: new primary, old previous; check value under the old key.
		b.setCheckValue(t, oldRing)
		rep = status(b.env(newSecret, oldSecret), 0)
		wantKeys = []keyStatus{{newID, 0, "primary"}, {oldID, 100, "previous"}, {otherID, 2, "unknown"}}
		if fmt.Sprint(rep.Keys) != fmt.Sprint(wantKeys) || rep.CheckValue != cvPrevious || rep.CheckValueKeyID != oldID ||
			rep.SecretMatches == nil || !*rep.SecretMatches || rep.RowsToRotate == nil || *rep.RowsToRotate != 102 {
			t.Fatalf("status mid-rotation: %+v", rep)
		}
		if rep.Database == "" || rep.Table != "byok_keys" {
			t.Fatalf("status names %q table %q", rep.Database, rep.Table)
		}
		rep = status(b.env(""), 0)
		if rep.CheckValue != cvUnchecked || rep.CheckValueKeyID != oldID {
			t.Fatalf("status without secret, check value stored: %+v", rep)
		}

		// After a rotation (the strays listed, so exit 3) and a fresh check value.
		if r := runCLI(ctx, b.env(newSecret, oldSecret), "rotate"); r.code != exitUnopened {
			t.Fatalf("rotate: %d %s", r.code, r.stderr)
		}
		b.setCheckValue(t, mustRing(t, newSecret))
		rep = status(b.env(newSecret), 0)
		wantKeys = []keyStatus{{newID, 100, "primary"}, {otherID, 2, "unknown"}}
		if fmt.Sprint(rep.Keys) != fmt.Sprint(wantKeys) || rep.CheckValue != cvPrimary || *rep.RowsToRotate != 2 || rep.Expired != 10 {
			t.Fatalf("status after rotation: %+v", rep)
		}

		// Text form.
		r := runCLI(ctx, b.env(newSecret), "status")
		for _, want := range []string{"rows:        102 (10 expired)", newID + "  100   primary", "matches: sealed under the primary key " + newID, "oldest key:  stored 2025-03-04T05:04:28Z"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Fatalf("status (exit %d) lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
			}
		}
	})
}

func TestWrongSecret(t *testing.T) {
	forBackends(t, func(t *testing.T, kind string) {
		ctx := t.Context()
		b := newBackend(t, kind)
		b.migrate(t)
		oldRing := mustRing(t, oldSecret)
		b.seed(t, makeRecords(t, 50, oldRing))
		b.setCheckValue(t, oldRing)
		before := b.snapshot(t)
		wrong := b.env(otherSecret, newSecret)

		r := runCLI(ctx, wrong, "status")
		if r.code != exitWrongSecret || !strings.Contains(r.stdout, "MISMATCH") || !strings.Contains(r.stderr, "opens under none of the given secrets") {
			t.Fatalf("status with a wrong secret: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = runCLI(ctx, wrong, "status", "--json")
		var rep statusReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != exitWrongSecret ||
			rep.CheckValue != cvMismatch || rep.SecretMatches == nil || *rep.SecretMatches {
			t.Fatalf("status --json with a wrong secret: exit %d, %+v (%v)", r.code, rep, err)
		}
		for _, args := range [][]string{{"rotate"}, {"rotate", "--dry-run"}} {
			r = runCLI(ctx, wrong, args...)
			if r.code != exitWrongSecret || !strings.Contains(r.stderr, "nothing was changed") {
				t.Fatalf("%v with a wrong secret: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
			}
		}
		if !sameRows(before, b.snapshot(t)) {
			t.Fatal("rotate with a wrong secret changed rows")
		}
	})
}

func TestCleanup(t *testing.T) {
	forBackends(t, func(t *testing.T, kind string) {
		ctx := t.Context()
		b := newBackend(t, kind)
		b.migrate(t)
		b.seed(t, makeRecords(t, 365, mustRing(t, oldSecret))) // 37 expired (i % 10 == 0)

		r := runCLI(ctx, b.env(""), "cleanup", "--dry-run")
		if r.code != 0 || !strings.Contains(r.stdout, "37 expired rows would be deleted (of 365)") {
			t.Fatalf("cleanup --dry-run: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if n := len(b.snapshot(t)); n != 365 {
			t.Fatalf("cleanup --dry-run deleted rows: %d left", n)
		}
		r = runCLI(ctx, b.env(""), "cleanup", "--batch", "10")
		if r.code != 0 || !strings.Contains(r.stdout, "deleted 37 expired rows") {
			t.Fatalf("cleanup: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		rows := b.snapshot(t)
		if len(rows) != 328 {
			t.Fatalf("%d rows left, want 328", len(rows))
		}
		for _, rec := range rows {
			if rec.Expired(time.Now()) {
				t.Fatalf("expired row %s/%s left", rec.UserID, rec.Provider)
			}
		}
		r = runCLI(ctx, b.env(""), "cleanup")
		if r.code != 0 || !strings.Contains(r.stdout, "deleted 0 expired rows") {
			t.Fatalf("cleanup again: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}
