package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginbyok/byok/encrypt"
)

func TestParseDatabaseURL(t *testing.T) {
	tests := []struct {
		in        string
		driver    string
		dsnPrefix string
		path      string
		display   string
		wantErr   bool
		dsnHasNot string
		dsnHasToo string
	}{
		{in: "postgres://u:pw@db:5432/app?sslmode=disable", driver: "postgres", dsnPrefix: "postgres://u:pw@db:5432/app", display: "postgres://u:xxxxx@db:5432/app?sslmode=disable"},
		{in: "PostgreSQL://u@db/app", driver: "postgres", dsnPrefix: "PostgreSQL://u@db/app", display: "postgresql://u@db/app"},
		{in: "/var/lib/app/byok.db", driver: "sqlite", dsnPrefix: "/var/lib/app/byok.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)", path: "/var/lib/app/byok.db"},
		{in: "byok.db", driver: "sqlite", dsnPrefix: "byok.db?", path: "byok.db", dsnHasToo: "_txlock=immediate"},
		{in: "sqlite:///tmp/x.db", driver: "sqlite", dsnPrefix: "/tmp/x.db?", path: "/tmp/x.db"},
		{in: "sqlite://rel/x.db", driver: "sqlite", dsnPrefix: "rel/x.db?", path: "rel/x.db"},
		{in: "sqlite:x.db", driver: "sqlite", dsnPrefix: "x.db?", path: "x.db"},
		{in: "file:/tmp/y.db?_pragma=busy_timeout(500)", driver: "sqlite", dsnPrefix: "file:/tmp/y.db?_pragma=busy_timeout(500)&_pragma=journal_mode(WAL)", path: "/tmp/y.db", dsnHasNot: "busy_timeout(10000)"},
		{in: "file:///tmp/z%20z.db", driver: "sqlite", dsnPrefix: "file:///tmp/z%20z.db?", path: "/tmp/z z.db"},
		{in: "file::memory:?cache=shared", driver: "sqlite", dsnPrefix: "file::memory:?cache=shared&", path: ""},
		{in: ":memory:", driver: "sqlite", dsnPrefix: ":memory:?", path: ""},
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: "mysql://u:p@h/db", wantErr: true},
		{in: "postgres://u:pw@[::1/db", wantErr: true},
		{in: "postgres:///db", wantErr: true},
		{in: "sqlite://", wantErr: true},
		{in: "x.db?a=%zz", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDatabaseURL(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseDatabaseURL(%q) = %+v, want an error", tt.in, got)
				}
				if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "u:p@") {
					t.Fatalf("error %q repeats the URL's password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDatabaseURL(%q): %v", tt.in, err)
			}
			if got.driver != tt.driver || !strings.HasPrefix(got.dsn, tt.dsnPrefix) || got.path != tt.path {
				t.Fatalf("parseDatabaseURL(%q) = %+v, want driver %q, dsn prefix %q, path %q", tt.in, got, tt.driver, tt.dsnPrefix, tt.path)
			}
			if tt.display != "" && got.display != tt.display {
				t.Fatalf("display = %q, want %q", got.display, tt.display)
			}
			if tt.dsnHasNot != "" && strings.Contains(got.dsn, tt.dsnHasNot) {
				t.Fatalf("dsn %q contains %q", got.dsn, tt.dsnHasNot)
			}
			if tt.dsnHasToo != "" && !strings.Contains(got.dsn, tt.dsnHasToo) {
				t.Fatalf("dsn %q lacks %q", got.dsn, tt.dsnHasToo)
			}
			if got.driver == "sqlite" && !strings.Contains(got.dsn, "busy_timeout") {
				t.Fatalf("sqlite dsn %q has no busy timeout", got.dsn)
			}
		})
	}
}

// FuzzParseDatabaseURL checks that any DATABASE_URL is either rejected or
// mapped to a known driver, and that a postgres password never reaches the
// printable form or an error.
func FuzzParseDatabaseURL(f *testing.F) {
	for _, s := range []string{"postgres://u:pw@h/db", "byok.db", "file:x.db?mode=ro", "sqlite:///a/b.db", ":memory:", "sqlite:", "postgres://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		const pw = "Fz9SecretPw"
		withPw := strings.Replace(raw, "@", ":"+pw+"@", 1)
		for _, in := range []string{raw, withPw} {
			db, err := parseDatabaseURL(in)
			if err != nil {
				if strings.Contains(in, pw) && strings.Contains(err.Error(), pw) {
					t.Fatalf("error %q contains the password", err)
				}
				continue
			}
			switch db.driver {
			case "postgres":
				if strings.Contains(in, ":"+pw+"@") && strings.Contains(db.display, pw) {
					t.Fatalf("display %q of %q shows the password", db.display, in)
				}
			case "sqlite":
				if !strings.Contains(db.dsn, "?") {
					t.Fatalf("sqlite dsn %q has no query", db.dsn)
				}
			default:
				t.Fatalf("driver %q", db.driver)
			}
		}
	})
}

// secretOf returns a valid master secret whose decoded bytes spell word.
func secretOf(word string) string {
	b := []byte(strings.Repeat(word, 2+encrypt.MinSecretSize/len(word)))[:encrypt.MinSecretSize+8]
	return encodeStd(b)
}

func TestLoadKeys(t *testing.T) {
	cur, old, other := secretOf("Current-secret-1"), secretOf("Previous-secret-2"), secretOf("Other-secret-3xyz")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(cur+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		file     string
		required bool
		nilKeys  bool
		previous int
		code     int // exit code of the error, 0 for none
		warn     bool
	}{
		{name: "none optional", env: nil, nilKeys: true},
		{name: "none required", env: nil, required: true, code: exitUsage},
		{name: "current", env: map[string]string{envSecret: cur}},
		{name: "current and previous", env: map[string]string{envSecret: cur, envPreviousSecret: old + ", " + other + ","}, previous: 2},
		{name: "previous repeats current", env: map[string]string{envSecret: cur, envPreviousSecret: cur + "," + old}, previous: 1, warn: true},
		{name: "from file", env: map[string]string{envSecret: "ignored"}, file: file},
		{name: "missing file", file: file + ".missing", code: exitUsage},
		{name: "short", env: map[string]string{envSecret: "c2hvcnQ="}, code: exitUsage},
		{name: "not base64", env: map[string]string{envSecret: "!!!not base64 at all, Sentinel-Bad-Secret!!!"}, code: exitUsage},
		{name: "bad previous", env: map[string]string{envSecret: cur, envPreviousSecret: old + ",bad!"}, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			e := &env{stdout: &bytes.Buffer{}, stderr: &stderr, getenv: mapEnv(tt.env)}
			ks, err := e.loadKeys(secretFlags{file: tt.file}, tt.required)
			if tt.code != 0 {
				var ce *codeError
				if !errors.As(err, &ce) || ce.code != tt.code {
					t.Fatalf("err = %v, want exit code %d", err, tt.code)
				}
				for _, v := range tt.env {
					for part := range strings.SplitSeq(v, ",") {
						if p := strings.TrimSpace(part); len(p) > 6 && strings.Contains(err.Error(), p) {
							t.Fatalf("error %q contains a secret", err)
						}
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.nilKeys {
				if ks != nil {
					t.Fatal("keys without a secret")
				}
				return
			}
			if len(ks.previous) != tt.previous {
				t.Fatalf("previous keys = %d, want %d", len(ks.previous), tt.previous)
			}
			if (stderr.Len() > 0) != tt.warn {
				t.Fatalf("stderr = %q, want warning: %v", stderr.String(), tt.warn)
			}
			if ks.role(ks.primary) != "primary" || ks.ring.PrimaryID() != ks.primary {
				t.Fatal("primary key mismatch")
			}
		})
	}
}

// mapEnv returns a getenv over m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
