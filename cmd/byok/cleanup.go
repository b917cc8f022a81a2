package main

import (
	"context"
	"fmt"
	"time"
)

const cleanupHelp = `Usage: byok cleanup [--batch N] [--dry-run] [--database-url URL] [--table NAME]

Deletes the keys whose expiry time has passed, --batch rows per statement, and
prints how many it deleted. The app's janitor does the same on an interval;
this is for when it is off or for a one-off purge. Interrupting it (exit code
130) rolls back the statement in flight and keeps what was deleted before it;
run it again to go on.
`

// cleanupStore is what cleanup needs of the key store; *sqlstore.Store has it.
type cleanupStore interface {
	DeleteExpired(ctx context.Context, batch int) (int, error)
}

// runCleanup deletes expired rows in batches.
func runCleanup(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("cleanup", cleanupHelp)
	var d dbFlags
	d.register(fs)
	batch := fs.Int("batch", 1000, "rows deleted per statement")
	dry := fs.Bool("dry-run", false, "count the expired rows, delete nothing")
	if err := e.parseFlags(fs, args); err != nil {
		return err
	}
	if *batch < 1 {
		return usageErrorf("--batch must be at least 1")
	}
	store, db, closeDB, err := e.openStore(ctx, d, openExisting)
	if err != nil {
		return err
	}
	defer closeDB()
	if *dry {
		st, err := store.Stats(ctx)
		if err != nil {
			return fmt.Errorf("counting rows in %s: %w", db.display, err)
		}
		fmt.Fprintf(e.stdout, "cleanup: %d expired rows would be deleted (of %d); dry run: nothing was changed\n", st.Expired, st.Total)
		return nil
	}
	return cleanup(ctx, e, store, *batch)
}

// cleanup deletes expired rows, batch rows per statement, until none is
// left or ctx ends. A signal cancels the statement in flight, which the
// database rolls back whole; the batches before it stay deleted.
func cleanup(ctx context.Context, e *env, store cleanupStore, batch int) error {
	start := time.Now()
	n, err := store.DeleteExpired(ctx, batch)
	fmt.Fprintf(e.stdout, "cleanup: deleted %d expired rows in %s (batches of %d)\n",
		n, time.Since(start).Round(time.Millisecond), batch)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(e.stderr, "byok cleanup: interrupted; rows deleted so far stay deleted; run it again to go on")
		return errInterrupted
	case err != nil:
		return fmt.Errorf("deleting expired rows: %w", err)
	}
	return nil
}
