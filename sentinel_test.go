package byok_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/ginbyok/byok"
	"github.com/ginbyok/byok/stores"
)

// providerStandIn is a local stand-in for a provider's API: GET /models
// accepts good and refuses anything else with 401 and an error text that
// quotes the key it was given, as some providers do.
func providerStandIn(t *testing.T, good string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		if key == good {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"data":[]}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s. You can find your API key at https://platform.example/account/api-keys.","type":"invalid_request_error"}}`, key)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func sentinelKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "sk-SENTINEL-" + hex.EncodeToString(b)
}

func TestLiveCheck(t *testing.T) {
	good := sentinelKey(t)
	srv := providerStandIn(t, good)
	a := newApp(t, byok.WithProviders(byok.OpenAI.WithBaseURL(srv.URL+"/v1"), byok.Perplexity), byok.WithLiveCheck(srv.Client()))
	bad := sentinelKey(t)
	for _, kind := range kinds {
		w := a.do(req(kind, "POST", "/keys/openai", keyBody(kind, bad, "")))
		if w.Code != 422 {
			t.Fatalf("%s: refused key: %d %s", kind, w.Code, w.Body)
		}
		body := w.Body.String()
		if !strings.Contains(body, "Incorrect API key provided") || !strings.Contains(body, "HTTP 401") {
			t.Fatalf("%s: the provider's words are not shown: %s", kind, body)
		}
		if strings.Contains(body, bad) {
			t.Fatalf("%s: the refused key is echoed: %s", kind, body)
		}
	}
	if a.hasKey("openai") {
		t.Fatal("a refused key was stored")
	}
	a.store("openai", good, "")
	if !a.hasKey("openai") {
		t.Fatal("an accepted key was not stored")
	}
	// Providers without a check URL are stored without one.
	a.store("perplexity", "pplx-0123456789abcdefghij", "")

	// A provider that cannot be reached refuses the key too, saying so.
	srv.Close()
	w := a.do(req(kJSON, "POST", "/keys/openai", keyBody(kJSON, good, "")))
	if w.Code != 422 || !strings.Contains(w.Body.String(), "Could not check the key with OpenAI") {
		t.Fatalf("unreachable provider: %d %s", w.Code, w.Body)
	}
}

func TestValidator(t *testing.T) {
	a := newApp(t, byok.WithValidator(func(_ context.Context, provider, key string) error {
		if strings.HasSuffix(key, "mnop") {
			return fmt.Errorf("keys of the %s test org are not allowed here", provider)
		}
		return nil
	}))
	w := a.do(req(kJSON, "POST", "/keys/openai", keyBody(kJSON, openAIKey, "")))
	if w.Code != 422 || !strings.Contains(w.Body.String(), "Keys of the openai test org are not allowed here.") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	a.store("openai", openAIKey2, "")
}

// TestSentinel stores recognisable keys through every route and client kind,
// on every backend, lets the provider stand-in quote a refused key back,
// reads them through guards, and then looks for the plaintext in everything
// the plugin produced: log lines (at debug level), audit events, response
// headers and bodies, every Redis value under the test prefix, and every
// SQL row.
func TestSentinel(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			sentinels := []string{sentinelKey(t), sentinelKey(t), sentinelKey(t), sentinelKey(t)}
			refused := sentinelKey(t)
			srv := providerStandIn(t, "")
			accepted := map[string]bool{}
			for _, s := range sentinels {
				accepted[s] = true
			}
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				if accepted[key] {
					_, _ = w.Write([]byte(`{"data":[]}`))
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s"}}`, key)
			})
			opts, db, rdb, prefix := be.opts(t)
			opts = append(opts,
				byok.WithProviders(byok.OpenAI.WithBaseURL(srv.URL+"/v1"), byok.Anthropic),
				byok.WithLiveCheck(srv.Client()))
			a := newApp(t, opts...)
			a.engine.GET("/chat", a.p.RequireKey("openai"), func(c *gin.Context) {
				c.String(200, "len=%d", len(byok.Key(c, "openai")))
			})
			users := []string{"", "alice"}
			for _, user := range users {
				a.setUser(user)
				for i, kind := range kinds {
					key := sentinels[i]
					a.do(req(kind, "POST", "/keys/openai", keyBody(kind, key, "7d")))
					a.do(req(kind, "POST", "/keys/openai", keyBody(kind, sentinels[3], "never")))
					a.do(req(kind, "POST", "/keys/openai", keyBody(kind, key, "")))
					a.do(req(kind, "POST", "/keys/anthropic", keyBody(kind, key, "")))  // wrong shape
					a.do(req(kind, "POST", "/keys/openai", keyBody(kind, refused, ""))) // refused by the provider
					a.do(req(kind, "POST", "/keys/openai", keyBody(kind, key, "3d")))   // ttl not allowed
					a.do(req(kind, "POST", "/keys/openai?next="+url.QueryEscape(key), keyBody(kind, key, "")))
					a.do(req(kind, "GET", "/chat", nil))
					a.do(req(kind, "GET", "/keys", nil))
					a.do(req(kind, "GET", "/keys/openai", nil))
					a.do(req(kind, "GET", "/keys?need=openai&next=/chat", nil))
				}
				a.do(req(kJSON, "DELETE", "/keys/openai", nil))
				a.do(req(kJSON, "GET", "/chat", nil))
				a.do(req(kJSON, "POST", "/keys/openai", keyBody(kJSON, sentinels[0], "never")))
				if w := a.do(req(kJSON, "GET", "/chat", nil)); w.Code != 200 {
					t.Fatalf("user %q: guard after storing: %d %s", user, w.Code, w.Body)
				}
			}
			// The keys were really stored and are readable.
			if db != nil {
				k, err := a.p.Keys().Get(context.Background(), stores.Scope{UserID: "alice"}, "openai")
				if err != nil || k.Reveal() != sentinels[0] {
					t.Fatalf("stored key: %v", err)
				}
			}

			all := append(append([]string{}, sentinels...), refused)
			where := map[string]string{"logs": a.logs.String()}
			a.mu.Lock()
			where["audit"] = fmt.Sprintf("%+v %#v", a.events, a.events)
			where["responses"] = strings.Join(a.seen, "\n")
			a.mu.Unlock()
			if rdb != nil {
				where["redis"] = redisDump(t, rdb, prefix)
				if where["redis"] == "" {
					t.Fatal("nothing in Redis under the test prefix")
				}
			}
			if db != nil {
				where["sql"] = sqlDump(t, db)
				if !strings.Contains(where["sql"], "alice") {
					t.Fatal("no rows of alice in SQL")
				}
			}
			for place, text := range where {
				for _, s := range all {
					for _, form := range []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s)),
						base64.RawURLEncoding.EncodeToString([]byte(s)), strings.TrimPrefix(s, "sk-")} {
						if strings.Contains(text, form) {
							t.Errorf("%s holds a key (as %q)", place, form[:12])
						}
					}
				}
			}
		})
	}
}

// redisDump returns every value under prefix, as raw bytes.
func redisDump(t *testing.T, rdb redis.UniversalClient, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(k + "=")
		switch typ {
		case "string":
			v, _ := rdb.Get(ctx, k).Result()
			b.WriteString(v)
		default:
			v, _ := rdb.Dump(ctx, k).Result()
			b.WriteString(v)
		}
		b.WriteByte('\n')
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// sqlDump returns every row of every table, byte columns as raw bytes.
func sqlDump(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var tables []string
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if db.DriverName() == "postgres" {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
	}
	if err := db.Select(&tables, q); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		dumpTable(t, db, table, &b)
	}
	return b.String()
}

func dumpTable(t *testing.T, db *sqlx.DB, table string, b *strings.Builder) {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		cols, err := sqlx.SliceScan(rows)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			switch v := c.(type) {
			case []byte:
				b.Write(v)
			default:
				fmt.Fprint(b, v)
			}
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
