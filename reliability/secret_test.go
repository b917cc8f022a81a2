package reliability_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/example/app"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
)

// randomSecret returns a fresh master secret (32 random bytes, base64).
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// tableFingerprint is the number of rows of the key table and a digest of
// all of them, ciphertexts included, in a stable order.
func tableFingerprint(t *testing.T, db *sqlx.DB) (int, string) {
	t.Helper()
	var rows []struct {
		UserID     string `db:"user_id"`
		Provider   string `db:"provider"`
		Ciphertext []byte `db:"ciphertext"`
		KeyID      int64  `db:"key_id"`
	}
	if err := db.Select(&rows, "SELECT user_id, provider, ciphertext, key_id FROM "+byok.DefaultTable+" ORDER BY user_id, provider"); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, r := range rows {
		fmt.Fprintf(h, "%s\x00%s\x00%x\x00%d\n", r.UserID, r.Provider, r.Ciphertext, r.KeyID)
	}
	return len(rows), fmt.Sprintf("%x", h.Sum(nil))
}

// TestWrongSecretAtStart stores keys under secret A, then starts the app
// with secret B against the same database: Register fails with a clear
// error wrapping encrypt.ErrWrongSecret and nothing in the table changes.
// Started again with secret A, every key opens. PostgreSQL and SQLite.
func TestWrongSecretAtStart(t *testing.T) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		t.Run(dialect, func(t *testing.T) {
			var db *sqlx.DB
			if dialect == "postgres" {
				db = testenv.Postgres(t)
			} else {
				db = testenv.SQLite(t)
			}
			s := newStack(t, byok.WithDB(db))
			const users = 25
			stored := map[[2]string]string{}
			for i := range users {
				u := fmt.Sprintf("user-%02d", i)
				for _, p := range providers {
					k := newKey(p)
					if r := s.client(u).setKey(p, k, "never"); r.status != http.StatusCreated {
						t.Fatalf("store: %s", r)
					}
					stored[[2]string{u, p}] = k
				}
			}
			_ = s.kit.Close()
			n, before := tableFingerprint(t, db)
			if n != len(stored) {
				t.Fatalf("%d rows, %d keys stored", n, len(stored))
			}

			attempts := 0
			// Secret B alone, then B with another wrong one as "previous".
			for _, secrets := range [][]string{{secretB}, {secretB, randomSecret()}} {
				attempts++
				_, err := startStack(t, byok.WithDB(db), byok.WithSecret(secrets[0], secrets[1:]...))
				switch {
				case err == nil:
					t.Fatalf("Register with a wrong secret (%d given) succeeded", len(secrets))
				case !errors.Is(err, encrypt.ErrWrongSecret):
					t.Fatalf("Register with a wrong secret: %v, want an error wrapping encrypt.ErrWrongSecret", err)
				case !strings.Contains(err.Error(), "nothing was deleted") || !strings.Contains(err.Error(), "secret"):
					t.Errorf("the error does not say what happened: %v", err)
				}
				for _, k := range stored {
					if strings.Contains(err.Error(), k) || strings.Contains(err.Error(), secretA) || strings.Contains(err.Error(), secretB) {
						t.Fatalf("the error holds a key or a secret: %v", err)
					}
				}
				t.Logf("wrong secret (%s, %d given): %v", dialect, len(secrets), err)
			}
			if n2, after := tableFingerprint(t, db); n2 != n || after != before {
				t.Fatalf("the table changed after the failed starts: %d rows (was %d), digest %s (was %s)", n2, n, after, before)
			}

			// The right secret again: every key opens, through the manager
			// and the guarded route.
			ok := newStack(t, byok.WithDB(db))
			opened := 0
			for up, k := range stored {
				got, err := ok.kit.Keys().Get(context.Background(), stores.Scope{UserID: up[0]}, up[1])
				if err != nil || got.Reveal() != k {
					t.Errorf("%s/%s does not open with the right secret: %v", up[0], up[1], err)
					continue
				}
				if d, r := ok.client(up[0]).use(up[1]); d != sum(k) {
					t.Errorf("%s/%s on the guarded route: %s", up[0], up[1], r)
					continue
				}
				opened++
			}
			t.Logf("wrong secret (%s): %d failed starts, %d rows unchanged (digest %s…), %d/%d keys open with the right secret",
				dialect, attempts, n, before[:12], opened, len(stored))
		})
	}
}

// TestWrongSecretExample starts the example app on an SQLite data dir with
// secret A, stores a key, then starts it again with secret B: app.New fails
// with an error wrapping encrypt.ErrWrongSecret, the row is still there,
// and with secret A the key opens again.
func TestWrongSecretExample(t *testing.T) {
	dir := t.TempDir()
	a := exampleStack(t, app.Config{DataDir: dir, Secret: secretA})
	c := a.client("")
	if r := c.do("POST", "/login", strings.NewReader("user=alice"), "Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html"); r.status != http.StatusSeeOther {
		t.Fatalf("login: %s", r)
	}
	key := newKey("openai")
	if r := c.setKey("openai", key, "never"); r.status != http.StatusCreated {
		t.Fatalf("store: %s", r)
	}
	a.srv.Close()

	_, release, err := app.New(t.Context(), app.Config{DataDir: dir, Secret: secretB, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		release()
		t.Fatal("the example started with a wrong secret")
	}
	if !errors.Is(err, encrypt.ErrWrongSecret) {
		t.Fatalf("app.New with a wrong secret: %v, want an error wrapping encrypt.ErrWrongSecret", err)
	}
	t.Logf("wrong secret (example): %v", err)
	db, err2 := sqlx.Open("sqlite", testenv.SQLiteDSN(filepath.Join(dir, app.SQLiteFile)))
	if err2 != nil {
		t.Fatal(err2)
	}
	defer db.Close()
	if n, _ := tableFingerprint(t, db); n != 1 {
		t.Fatalf("%d rows after the failed start, want 1", n)
	}
	b := exampleStack(t, app.Config{DataDir: dir, Secret: secretA})
	c2 := b.client("")
	if r := c2.do("POST", "/login", strings.NewReader("user=alice"), "Content-Type", "application/x-www-form-urlencoded", "Accept", "text/html"); r.status != http.StatusSeeOther {
		t.Fatalf("login: %s", r)
	}
	r := c2.do("GET", "/demo/openai", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), encrypt.Mask(key)) {
		t.Fatalf("the key after restarting with the right secret: %s", r)
	}
}
