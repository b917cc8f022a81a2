// Package testenv gives tests the real services the test command starts:
// Redis, PostgreSQL (a fresh database per test), SQLite files, private Redis
// servers that a test may kill and restart, a TCP proxy that can cut a
// connection, and Debian's Chromium.
//
// A service whose environment variable is unset skips the test with a clear
// message, and fails it when CI is set.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // postgres driver
	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // sqlite driver
)

// Environment variables the test command exports.
const (
	RedisEnv    = "BYOK_TEST_REDIS_URL"
	DatabaseEnv = "BYOK_TEST_DATABASE_URL"
	ChromiumEnv = "BYOK_CHROMIUM"
)

// need returns the value of env, or skips (fails under CI) the test.
func need(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	msg := fmt.Sprintf("%s is unset: this test needs %s; run scripts/test.sh, which starts it", env, what)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Unique returns a short random name that starts with the test's name,
// safe for SQL identifiers and Redis keys.
func Unique(t testing.TB) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
	if len(name) > 40 {
		name = name[:40]
	}
	return name + "_" + hex.EncodeToString(b[:])
}

// RedisURL returns the shared test Redis URL.
func RedisURL(t testing.TB) string {
	t.Helper()
	return need(t, RedisEnv, "Redis")
}

// Redis returns a client of the shared test Redis, closed when the test
// ends. Tests share one Redis: use Prefix for keys, never FLUSHDB.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("testenv: %s: %v", RedisEnv, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("testenv: redis ping: %v", err)
	}
	return c
}

// Prefix returns a unique Redis key prefix for this test, ending in ':'.
func Prefix(t testing.TB) string {
	t.Helper()
	return "t:" + Unique(t) + ":"
}

// PostgresURL creates a fresh database for this test on the shared server,
// drops it when the test ends, and returns its URL.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := need(t, DatabaseEnv, "PostgreSQL")
	admin, err := sqlx.Open("postgres", base)
	if err != nil {
		t.Fatalf("testenv: %s: %v", DatabaseEnv, err)
	}
	defer admin.Close()
	name := "t_" + Unique(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sqlx.Open("postgres", base)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: %s: %v", DatabaseEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres returns a connection pool to a fresh database for this test.
func Postgres(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", PostgresURL(t))
	if err != nil {
		t.Fatalf("testenv: open postgres: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("testenv: postgres ping: %v", err)
	}
	return db
}

// SQLitePath returns a path for a new SQLite file in the test's temp dir.
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "byok.db")
}

// SQLiteDSN is the data source name the project uses for SQLite files:
// WAL, a busy timeout and foreign keys, for the modernc.org/sqlite driver.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// SQLite returns a connection pool to a new SQLite file.
func SQLite(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("sqlite", SQLiteDSN(SQLitePath(t)))
	if err != nil {
		t.Fatalf("testenv: open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Chromium returns the path of Debian's chromium, or skips (fails under CI).
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return need(t, ChromiumEnv, "Debian's chromium")
}

func parseURL(raw string) (*url.URL, error) { return url.Parse(raw) }

// ViaProxy returns u (a postgres:// or redis:// URL) with its host and port
// replaced by the proxy's address.
func ViaProxy(u string, p *Proxy) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	parsed.Host = p.Addr
	return parsed.String()
}

// SyncBuffer is a bytes.Buffer safe for a logger's concurrent writes, for
// tests that capture logs and search them for a sentinel key.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
