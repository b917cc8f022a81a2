package bench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/internal/testenv"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// Environment of BenchmarkMillionRows.
const (
	// millionEnv turns the benchmark on: it seeds a table for about a minute.
	millionEnv = "BYOK_BENCH_1M"
	// rowsEnv changes the number of rows (default 1,000,000).
	rowsEnv = "BYOK_BENCH_ROWS"
)

// probedUsers is how many of the seeded users get a real ciphertext, a
// session and guarded requests in the guarded_miss case.
const probedUsers = 1000

// BenchmarkMillionRows measures cache-miss reads from PostgreSQL with a
// million rows in the key table, and reports their latency distribution
// (p50-us, p99-us, max-us) besides the mean:
//
//   - sqlstore_get: sqlstore.Get of a random user's key, one at a time —
//     what the plugin does when there is no session cache.
//   - guarded_miss: the redis host app of BenchmarkRoute on that table: a
//     guarded request of one of 1,000 signed-in users, picked at random,
//     whose session cache is stale, so the read goes to SQL (one List) and
//     the cache is refilled.
//
// Rows are seeded with one INSERT … SELECT generate_series: user-1 …
// user-N, provider openai, a ciphertext of the real size. Get and List
// return a ciphertext without opening it, so only the probed users' rows
// hold ciphertexts sealed for them (one UPDATE). It is skipped unless
// BYOK_BENCH_1M is set; use -benchtime=20000x for 20,000 lookups:
//
//	. /tmp/byok-dev.env && BYOK_BENCH_1M=1 go test -run '^$' -bench MillionRows -benchtime=20000x -timeout 30m ./bench
func BenchmarkMillionRows(b *testing.B) {
	if os.Getenv(millionEnv) == "" {
		b.Skipf("set %s=1 to seed a table of a million rows (about a minute) and read from it", millionEnv)
	}
	rows := 1_000_000
	if v := os.Getenv(rowsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < probedUsers {
			b.Fatalf("%s=%q: want a number of rows ≥ %d", rowsEnv, v, probedUsers)
		}
		rows = n
	}
	ctx := context.Background()
	db := testenv.Postgres(b)
	st, err := sqlstore.New(db, sqlstore.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	secret := newSecret(b)
	rng := rand.New(rand.NewPCG(1, 2))
	probed := seedMillion(b, db, secret, rows, rng)

	b.Run("sqlstore_get", func(b *testing.B) {
		lat := make([]time.Duration, 0, 20000)
		b.ReportAllocs()
		for b.Loop() {
			u := stores.Scope{UserID: userName(1 + rng.IntN(rows))}
			t := time.Now()
			if _, err := st.Get(ctx, u, provider); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
		}
		reportLatency(b, lat)
	})

	b.Run("guarded_miss", func(b *testing.B) {
		clk := &clock{}
		a := newRedisApp(b, clk, db, secret, true)
		reqs := make([]*http.Request, len(probed))
		for i, u := range probed {
			a.jar = map[string]string{}
			reqs[i] = request("/guarded", a.login(b, u))
		}
		a.check(b, reqs[0], true)
		w := &discardWriter{h: http.Header{}}
		lat := make([]time.Duration, 0, 20000)
		b.ReportAllocs()
		for b.Loop() {
			clk.advance(staleStep)
			r := reqs[rng.IntN(len(reqs))].Clone(ctx)
			clear(w.h)
			w.code = 0
			t := time.Now()
			a.engine.ServeHTTP(w, r)
			lat = append(lat, time.Since(t))
			if w.code != http.StatusOK {
				b.Fatalf("guarded request answered %d", w.code)
			}
		}
		reportLatency(b, lat)
	})
}

// userName is the id of the n-th seeded user.
func userName(n int) string { return "user-" + strconv.Itoa(n) }

// seedMillion fills the key table with rows users (user-1 … user-rows) and
// seals a real key for probedUsers of them, chosen at random, whom it
// returns.
func seedMillion(b *testing.B, db *sqlx.DB, secret string, rows int, rng *rand.Rand) []string {
	b.Helper()
	ctx := context.Background()
	ring, err := encrypt.KeyringFromSecrets(secret)
	if err != nil {
		b.Fatal(err)
	}
	// A ciphertext of the right size and key id, sealed for nobody: Get and
	// List never open it.
	filler, err := ring.Encrypt([]byte(apiKey), encrypt.AssociatedData("u:nobody", provider))
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := db.ExecContext(ctx, `INSERT INTO byok_keys (user_id, provider, ciphertext, key_id, created_at, updated_at, expires_at)
		SELECT 'user-' || g, $1, $2::bytea, $3, now(), now(), NULL FROM generate_series(1, $4::int) AS g`,
		provider, filler, int64(ring.PrimaryID()), rows); err != nil {
		b.Fatalf("seeding: %v", err)
	}
	users := make([]string, 0, probedUsers)
	cts := make(pq.ByteaArray, 0, probedUsers)
	seen := map[int]bool{}
	for len(users) < probedUsers {
		n := 1 + rng.IntN(rows)
		if seen[n] {
			continue
		}
		seen[n] = true
		u := userName(n)
		ct, err := ring.Encrypt([]byte(apiKey), encrypt.AssociatedData(stores.Scope{UserID: u}.Owner(), provider))
		if err != nil {
			b.Fatal(err)
		}
		users, cts = append(users, u), append(cts, ct)
	}
	res, err := db.ExecContext(ctx, `UPDATE byok_keys AS k SET ciphertext = v.ct
		FROM unnest($1::text[], $2::bytea[]) AS v(u, ct) WHERE k.user_id = v.u AND k.provider = $3`,
		pq.Array(users), cts, provider)
	if err != nil {
		b.Fatalf("sealing the probed users' keys: %v", err)
	}
	if n, _ := res.RowsAffected(); n != probedUsers {
		b.Fatalf("sealed %d probed keys, want %d", n, probedUsers)
	}
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE byok_keys`); err != nil {
		b.Fatalf("analyze: %v", err)
	}
	var count int
	if err := db.GetContext(ctx, &count, `SELECT count(*) FROM byok_keys`); err != nil || count != rows {
		b.Fatalf("table holds %d rows (%v), want %d", count, err, rows)
	}
	b.Logf("seeded %d rows in %s", rows, time.Since(start).Round(time.Millisecond))
	return users
}

// reportLatency reports the median, the 99th percentile and the maximum of
// lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(p * float64(len(lat)-1))
		return float64(lat[i]) / float64(time.Microsecond)
	}
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Microsecond), "max-us")
	b.Logf("%d lookups: p50 %s, p99 %s, max %s", len(lat),
		fmt.Sprintf("%.0fµs", pct(0.50)), fmt.Sprintf("%.0fµs", pct(0.99)), lat[len(lat)-1].Round(time.Microsecond))
}
