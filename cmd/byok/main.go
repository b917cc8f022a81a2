// Command byok is the operations tool for ginbyok: it makes master secrets,
// applies the SQL schema, re-seals stored keys under a new master secret,
// deletes expired keys and reports what the database holds.
//
// Install it with
//
//	go install github.com/ginbyok/byok/cmd/byok@latest
//
// and run "byok -h" for the commands, their flags and the exit codes. It is
// configured by the same environment variables as the example app:
// BYOK_SECRET, BYOK_PREVIOUS_SECRETS (comma-separated) and DATABASE_URL.
// It never prints a stored key or a master secret (except the new one that
// keygen prints).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal the run stops after its current batch;
		// restoring the default behaviour lets a second one kill at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Stdout, os.Stderr, os.Args[1:], os.Getenv)
	stop()
	os.Exit(code)
}
