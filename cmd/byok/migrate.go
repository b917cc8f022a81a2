package main

import (
	"context"
	"fmt"
	"strings"
)

const migrateHelp = `Usage: byok migrate [--dry-run] [--database-url URL] [--table NAME]

Creates the key table, its index and the schema version table, or brings an
older schema up to date. It is idempotent: running it again changes nothing.
With --dry-run it prints the SQL for the database's dialect and touches
nothing (a missing SQLite file is not created).
`

// runMigrate applies the schema, or prints it with --dry-run.
func runMigrate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("migrate", migrateHelp)
	var d dbFlags
	d.register(fs)
	dry := fs.Bool("dry-run", false, "print the SQL instead of running it")
	if err := e.parseFlags(fs, args); err != nil {
		return err
	}
	mode := openCreate
	if *dry {
		mode = openNoConnect
	}
	store, db, closeDB, err := e.openStore(ctx, d, mode)
	if err != nil {
		return err
	}
	defer closeDB()
	if *dry {
		for _, stmt := range store.MigrationSQL() {
			stmt = strings.TrimSpace(stmt)
			if !strings.HasSuffix(stmt, ";") {
				stmt += ";"
			}
			fmt.Fprintln(e.stdout, stmt)
		}
		return nil
	}
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating %s: %w", db.display, err)
	}
	fmt.Fprintf(e.stdout, "schema of table %s in %s is up to date\n", d.table, db.display)
	return nil
}
