package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // the program imports the driver it uses

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// Example stores a signed-in user's sealed key in SQLite, with the janitor
// deleting expired rows every five minutes.
func Example() {
	dir, _ := os.MkdirTemp("", "byok-example")
	defer os.RemoveAll(dir)
	db, err := sqlx.Open("sqlite", "file:"+filepath.Join(dir, "byok.db")+
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		panic(err)
	}
	defer db.Close()

	ctx := context.Background()
	keys, err := sqlstore.New(db, sqlstore.WithJanitor(5*time.Minute, 0))
	if err != nil {
		panic(err)
	}
	if err := keys.Migrate(ctx); err != nil {
		panic(err)
	}
	if err := keys.StartJanitor(ctx); err != nil {
		panic(err)
	}
	defer keys.Close()

	scope := stores.Scope{UserID: "42"}
	sealed := []byte("ciphertext from encrypt.Keyring.Seal")
	replaced, err := keys.Put(ctx, scope, stores.Record{Provider: "openai", Ciphertext: sealed, KeyID: 1, CreatedAt: time.Now()})
	fmt.Println(replaced, err)
	rec, err := keys.Get(ctx, scope, "openai")
	fmt.Println(rec.Provider, rec.KeyID, err)
	// Output:
	// false <nil>
	// openai 1 <nil>
}

// ExampleStore_MigrationSQL prints the script `byok migrate --dry-run` shows.
func ExampleStore_MigrationSQL() {
	db, _ := sqlx.Open("sqlite", "file::memory:")
	defer db.Close()
	keys, _ := sqlstore.New(db, sqlstore.WithTable("api_keys"))
	script := keys.MigrationSQL()
	fmt.Println(script[0])
	fmt.Println(script[len(script)-2])
	// Output:
	// BEGIN IMMEDIATE
	// INSERT INTO "api_keys_schema" (version) VALUES (1) ON CONFLICT (version) DO NOTHING
}
