package reliability_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/example/app"
	"github.com/ginbyok/byok/internal/testenv"
)

// marker is in every sentinel key; found anywhere, even in part of a key,
// it is a leak.
const marker = "RELSENTINEL"

// sentinels returns fresh, well-formed keys that carry the marker.
func sentinels() map[string]string {
	return map[string]string{
		"openai-1":    "sk-proj-" + marker + "o1" + randText(24),
		"openai-2":    "sk-proj-" + marker + "o2" + randText(24),
		"openai-3":    "sk-proj-" + marker + "o3" + randText(24),
		"openai-anon": "sk-proj-" + marker + "oa" + randText(24),
		"anthropic-1": "sk-ant-api03-" + marker + "a1" + randText(24),
		"anthropic-2": "sk-ant-api03-" + marker + "a2" + randText(24),
		"anthropic-3": "sk-ant-api03-" + marker + "a3" + randText(24),
		"refused":     "sk-proj-" + marker + "xx" + randText(24) + "\x00",
	}
}

// needles are the byte strings whose presence means a key leaked: the
// marker, each key, any 10 characters of a key after its provider prefix
// (a mask shows at most 4), and each key hex- and base64-encoded (every
// alignment of base64, with the edge characters that depend on neighbours
// dropped).
func needles(keys map[string]string) map[string][]byte {
	n := map[string][]byte{"marker": []byte(marker)}
	for name, k := range keys {
		k = strings.TrimRight(k, "\x00")
		n[name] = []byte(k)
		// Any 10 characters of the key after its provider's prefix.
		body := strings.TrimPrefix(strings.TrimPrefix(k, "sk-ant-api03-"), "sk-proj-")
		for i := 0; i+10 <= len(body); i++ {
			n[fmt.Sprintf("%s[%d:%d]", name, i, i+10)] = []byte(body[i : i+10])
		}
		n[name+" hex"] = []byte(hex.EncodeToString([]byte(k)))
		n[name+" HEX"] = []byte(strings.ToUpper(hex.EncodeToString([]byte(k))))
		for off := range 3 {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				e := enc.EncodeToString([]byte(k[off:]))
				e = strings.TrimRight(e, "=")
				n[fmt.Sprintf("%s base64/%d", name, off)] = []byte(e[4 : len(e)-4])
			}
		}
	}
	return n
}

// leaks returns the needles found in b.
func leaks(b []byte, n map[string][]byte) []string {
	var found []string
	for name, nd := range n {
		if bytes.Contains(b, nd) {
			found = append(found, name)
		}
	}
	return found
}

// TestSentinelScanFindsLeaks makes sure the scan below can fail: a key
// planted plainly, hex-encoded, or base64-encoded at any offset inside
// other bytes is found.
func TestSentinelScanFindsLeaks(t *testing.T) {
	keys := sentinels()
	n := needles(map[string]string{"k": keys["openai-1"]})
	k := keys["openai-1"]
	for _, planted := range [][]byte{
		[]byte("log line: " + k + " end"),
		[]byte(`\x` + hex.EncodeToString([]byte("row:"+k))),
		[]byte("cookie=" + base64.RawURLEncoding.EncodeToString([]byte("\x01"+k+"\x02"))),
		[]byte("v=" + base64.StdEncoding.EncodeToString([]byte("ab"+k))),
		[]byte("just the middle: " + k[10:30]),
	} {
		if len(leaks(planted, n)) == 0 {
			t.Errorf("the scan misses a key in %q", planted)
		}
	}
	if l := leaks([]byte("sk-proj-…"+k[len(k)-4:]), n); len(l) != 0 {
		t.Errorf("the scan flags a mask: %v", l)
	}
}

// exampleStack runs the example app (app.New) on a test server, as a stack
// whose clients are anonymous until they sign in with POST /login.
func exampleStack(t *testing.T, cfg app.Config) *stack {
	t.Helper()
	s := &stack{t: t, logs: &syncBuffer{}, panics: &syncBuffer{}, health: "/"}
	cfg.Logger = slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, release, err := app.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	s.h = h
	s.srv = httptest.NewServer(h)
	s.tr = &http.Transport{}
	t.Cleanup(func() {
		s.srv.Close()
		s.tr.CloseIdleConnections()
		release()
	})
	return s
}

// TestSentinel runs the whole example flow with recognisable keys, as a
// browser (forms and redirects), as htmx and as a JSON client, signed in
// and anonymous, in both storage setups (Redis sessions with PostgreSQL,
// and the embedded default: cookie sessions with an SQLite file). Then it
// searches the captured log, every response header and body, every key of
// the private Redis, a pg_dump of the database, and every file of the data
// dir (SQLite, its WAL) for the keys: they appear nowhere.
func TestSentinel(t *testing.T) {
	for _, setup := range []string{"redis+postgres", "embedded"} {
		t.Run(setup, func(t *testing.T) {
			keys := sentinels()
			cfg := app.Config{DataDir: t.TempDir(), Secret: secretA}
			var rs *testenv.RedisServer
			var dbURL string
			if setup == "redis+postgres" {
				rs = testenv.StartRedis(t)
				cfg.RedisURL = rs.URL()
				dbURL = testenv.PostgresURL(t)
				cfg.DatabaseURL = dbURL
			}
			s := exampleStack(t, cfg)
			tr := &transcript{}
			n := sentinelFlow(t, s, tr, keys)

			found := 0
			scan := func(what string, b []byte) {
				t.Helper()
				found++
				if l := leaks(b, needles(keys)); len(l) > 0 {
					t.Errorf("%s holds a key: %v", what, l)
				}
			}
			scan("the transcript of every response", []byte(tr.String()))
			scan("the log", []byte(s.logs.String()))
			var dumps []string
			if rs != nil {
				b := redisDump(t, rs)
				dumps = append(dumps, fmt.Sprintf("redis: %d bytes", len(b)))
				scan("the Redis dump", b)
				b = postgresDump(t, dbURL)
				dumps = append(dumps, fmt.Sprintf("postgres: %d bytes", len(b)))
				scan("the PostgreSQL dump", b)
			}
			files := 0
			err := filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				files++
				dumps = append(dumps, fmt.Sprintf("%s: %d bytes", d.Name(), len(b)))
				scan("data file "+d.Name(), b)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if setup == "embedded" && files < 2 {
				t.Errorf("the data dir holds %d files; want the SQLite file and the secret", files)
			}
			s.healthy()
			if p := s.logs.String(); strings.Contains(p, "panic") {
				t.Error("the app logged a panic")
			}
			t.Logf("sentinel (%s): %d requests, %d responses scanned, %d log bytes; dumps: %s; %d needles (%d keys: whole, any 10 characters, hex, base64) in %d places: no leak",
				setup, n, tr.n, len(s.logs.String()), strings.Join(dumps, ", "), len(needles(keys)), len(keys), found)
		})
	}
}

// sentinelFlow signs in, adds, replaces, uses, deletes and clears keys as
// every kind of client, and leaves some stored (sealed) for the dumps. It
// returns the number of requests.
func sentinelFlow(t *testing.T, s *stack, tr *transcript, keys map[string]string) int {
	t.Helper()
	html := []string{"Accept", "text/html"}
	htmx := []string{"Accept", "text/html", "HX-Request", "true"}
	formCT := []string{"Content-Type", "application/x-www-form-urlencoded"}
	form := func(pairs ...string) *strings.Reader {
		v := url.Values{}
		for i := 0; i+1 < len(pairs); i += 2 {
			v.Add(pairs[i], pairs[i+1])
		}
		return strings.NewReader(v.Encode())
	}
	n := 0
	expect := func(r response, status int, what string) response {
		t.Helper()
		n++
		if r.err != nil || r.status != status {
			t.Fatalf("%s: %s, want %d", what, r, status)
		}
		return r
	}
	// The example keeps the default write limit (10 a minute per user), so
	// the writes are shared by alice, carol (refused keys) and dave
	// (deletes and clears).
	login := func(user string) *client {
		c := s.client("")
		c.rec = tr
		expect(c.do("POST", "/login", form("user", user), with(html, formCT...)...), 303, user+"'s login")
		return c
	}
	alice := s.client("")
	alice.rec = tr
	expect(alice.do("GET", "/", nil, html...), 200, "home")
	expect(alice.do("POST", "/login", form("user", "alice"), with(html, formCT...)...), 303, "login")
	expect(alice.do("GET", "/demo/openai", nil, html...), 303, "guarded page without a key")
	// Add as a browser form, back to the demo page, which shows the mask.
	r := expect(alice.do("POST", "/keys/openai", form("api_key", keys["openai-1"], "ttl", "24h", "next", "/demo/openai"), with(html, formCT...)...), 303, "add (form)")
	if loc := r.header.Get("Location"); loc != "/demo/openai" {
		t.Fatalf("add (form) redirects to %q", loc)
	}
	page := expect(alice.do("GET", "/demo/openai", nil, html...), 200, "demo page")
	if !strings.Contains(string(page.body), ">"+encrypt.Mask(keys["openai-1"])+"<") {
		t.Errorf("the demo page does not show the mask %q", encrypt.Mask(keys["openai-1"]))
	}
	expect(alice.do("GET", "/keys", nil, html...), 200, "keys page with the flash")
	// Replace with htmx; add and replace anthropic as JSON.
	expect(alice.do("POST", "/keys/openai", form("api_key", keys["openai-2"], "ttl", "7d"), with(htmx, formCT...)...), 200, "replace (htmx)")
	expect(alice.setKey("anthropic", keys["anthropic-1"], "2h"), 201, "add (JSON)")
	expect(alice.setKey("anthropic", keys["anthropic-2"], "never"), 200, "replace (JSON)")
	// Use on the guarded routes.
	for _, p := range []string{"openai", "anthropic"} {
		expect(alice.do("GET", "/demo/"+p, nil), 200, "use "+p+" (JSON)")
		expect(alice.do("GET", "/demo/"+p, nil, html...), 200, "use "+p+" (page)")
	}
	expect(alice.do("GET", "/keys", nil), 200, "list (JSON)")
	expect(alice.do("GET", "/keys", nil, htmx...), 200, "list (htmx)")
	expect(alice.do("GET", "/keys/openai", nil), 200, "info (JSON)")
	// Another user sees nothing of alice's.
	bob := login("bob")
	expect(bob.do("GET", "/demo/openai", nil), 403, "bob on alice's provider")
	// Delete each way.
	expect(alice.deleteKey("openai"), 204, "delete (JSON)")
	expect(alice.do("POST", "/keys/anthropic/delete", nil, htmx...), 200, "delete (htmx)")
	expect(alice.do("GET", "/demo/anthropic", nil), 403, "after delete")
	// Refused keys: their text must not come back either.
	carol := login("carol")
	expect(carol.do("POST", "/keys/openai", form("api_key", keys["refused"]), with(html, formCT...)...), 422, "refused key (form)")
	expect(carol.do("POST", "/keys/openai", form("api_key", keys["refused"]), with(htmx, formCT...)...), 422, "refused key (htmx)")
	expect(carol.setKey("openai", keys["refused"], ""), 422, "refused key (JSON)")
	expect(carol.setKey("anthropic", keys["openai-3"], ""), 422, "an OpenAI key for Anthropic")
	// Delete by form, clear each way.
	dave := login("dave")
	expect(dave.setKey("openai", keys["openai-1"], ""), 201, "add")
	expect(dave.do("POST", "/keys/openai/delete", form("next", "/keys"), with(html, formCT...)...), 303, "delete (form)")
	expect(dave.setKey("openai", keys["openai-2"], ""), 201, "add")
	expect(dave.do("POST", "/keys/clear", form(), with(html, formCT...)...), 303, "clear (form)")
	expect(dave.setKey("anthropic", keys["anthropic-1"], ""), 201, "add")
	expect(dave.do("POST", "/keys/clear", nil, htmx...), 200, "clear (htmx)")
	expect(dave.setKey("anthropic", keys["anthropic-2"], ""), 201, "add")
	expect(dave.clear(), 204, "clear (JSON)")
	expect(dave.do("GET", "/demo/anthropic", nil), 403, "after clear")
	// Leave keys stored, sealed, for the dumps: alice's, and an anonymous
	// visitor's (in the session: Redis, or the encrypted cookie).
	expect(alice.setKey("openai", keys["openai-3"], "never"), 201, "store for the dump")
	expect(alice.setKey("anthropic", keys["anthropic-3"], "30d"), 201, "store for the dump")
	anon := s.client("")
	anon.rec = tr
	expect(anon.do("POST", "/keys/openai", form("api_key", keys["openai-anon"]), with(html, formCT...)...), 303, "anonymous add (form)")
	expect(anon.do("GET", "/demo/openai", nil), 200, "anonymous use")
	expect(anon.do("GET", "/keys", nil, html...), 200, "anonymous page")
	expect(alice.do("POST", "/logout", nil, html...), 303, "logout")
	expect(alice.do("GET", "/demo/openai", nil), 403, "signed out")
	return n
}

// redisDump returns every key of the private Redis with its value, read
// by type (GET, HGETALL, LRANGE, SMEMBERS, ZRANGE), and DUMP's bytes.
func redisDump(t *testing.T, rs *testenv.RedisServer) []byte {
	t.Helper()
	ctx := context.Background()
	rdb := rs.Client()
	var out bytes.Buffer
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	n := 0
	for iter.Next(ctx) {
		k := iter.Val()
		n++
		fmt.Fprintf(&out, "%s ", k)
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			out.WriteString(rdb.Get(ctx, k).Val())
		case "hash":
			fmt.Fprint(&out, rdb.HGetAll(ctx, k).Val())
		case "list":
			fmt.Fprint(&out, rdb.LRange(ctx, k, 0, -1).Val())
		case "set":
			fmt.Fprint(&out, rdb.SMembers(ctx, k).Val())
		case "zset":
			fmt.Fprint(&out, rdb.ZRangeWithScores(ctx, k, 0, -1).Val())
		default:
			fmt.Fprintf(&out, "(type %s)", typ)
		}
		if d, err := rdb.Dump(ctx, k).Result(); err == nil {
			out.WriteString(d)
		}
		out.WriteByte('\n')
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the Redis dump is empty: the app did not use Redis")
	}
	return out.Bytes()
}

// postgresDump returns pg_dump's plain dump of the database, or, without
// pg_dump, every row of every table as text.
func postgresDump(t *testing.T, dbURL string) []byte {
	t.Helper()
	if path, err := exec.LookPath("pg_dump"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, "--no-owner", "--dbname="+dbURL).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		if !bytes.Contains(out, []byte("COPY public.byok_keys")) {
			t.Fatalf("pg_dump holds no byok_keys table:\n%s", out)
		}
		return out
	}
	db, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	if err := db.Select(&tables, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, tb := range tables {
		var rows []string
		if err := db.Select(&rows, fmt.Sprintf("SELECT t::text FROM %q t", tb)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s\n%s\n", tb, strings.Join(rows, "\n"))
	}
	return out.Bytes()
}
