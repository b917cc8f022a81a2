// Command example is the byok demo app: `go run ./example`, then open
// http://127.0.0.1:8080. With no settings it needs nothing but this
// checkout: keys go to an SQLite file and sessions to signed, encrypted
// cookies, under a secret generated once into example/data/secret (0600).
//
// Environment: ADDR (default 127.0.0.1:8080), BYOK_SECRET (else the
// generated one), BYOK_PREVIOUS_SECRETS (comma-separated older secrets),
// REDIS_URL (sessions in Redis), DATABASE_URL (postgres://…, instead of
// SQLite), BYOK_DATA_DIR (default example/data). The app itself is package
// example/app.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/example/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// run builds the app from the environment, serves it until ctx ends, then
// shuts it down gracefully. ready, when set, is told the URL once the
// server listens.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer, ready func(url string)) error {
	gin.SetMode(gin.ReleaseMode)
	log := slog.New(slog.NewTextHandler(logOut, nil))
	cfg := app.ConfigFromEnv(getenv)
	cfg.Logger = log

	handler, release, err := app.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer release()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s (set ADDR to change it): %w", cfg.Addr, err)
	}
	url := "http://" + ln.Addr().String()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "url", url)
	if ready != nil {
		ready(url)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
