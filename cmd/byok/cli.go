package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes. They are documented in the top-level help and in README.md.
const (
	exitOK          = 0   // the command did what was asked
	exitFailure     = 1   // an error: database unreachable, query failed, …
	exitUsage       = 2   // bad flags or configuration: unknown command, missing or malformed secret or database URL
	exitUnopened    = 3   // rotate: some rows are still not under the primary key (listed on stdout)
	exitWrongSecret = 4   // the stored check value opens under none of the given secrets
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM after the batch in flight; run it again to resume
)

const usageText = `byok — operations tool for ginbyok (bring-your-own-key for Gin)

Usage:
  byok <command> [flags]

Commands:
  keygen    print a new random master secret (for BYOK_SECRET)
  migrate   create or update the key table; idempotent; --dry-run prints the SQL
  rotate    re-seal every stored key under the primary (BYOK_SECRET) key, in batches
  cleanup   delete expired keys, in batches
  status    rows per key id, expired rows, oldest key, whether the secret matches

Run "byok <command> -h" for a command's flags.

Configuration (the same environment variables as the example app):
  BYOK_SECRET            the current master secret (base64 or hex, at least 32 bytes);
                         --secret-file reads it from a file instead
  BYOK_PREVIOUS_SECRETS  comma-separated older secrets that still open stored keys
  DATABASE_URL           postgres://… (lib/pq), or SQLite: a file path, file:…, or
                         sqlite://path; --database-url overrides it
Secrets are read from the environment or a file, never from the command line,
and byok never prints a stored key or a secret (keygen prints only the new one).

Exit codes:
  0    success
  1    failure (database unreachable, a query failed, …)
  2    usage: unknown command or flag, missing or malformed secret or DATABASE_URL
  3    rotate: some rows are still not under the primary key — no listed secret
       opens them, or they kept changing while rotate ran; they are listed on
       stdout and left as they were
  4    wrong secret: the stored check value opens under none of the given secrets
  130  interrupted (SIGINT or SIGTERM): the batch in flight was finished first;
       run the same command again to resume
`

// env is what a command runs with: where it writes and how it reads the
// environment. Tests build one around buffers and a map.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrTTY      bool // progress is redrawn in place (\r) rather than printed as lines
}

// commands maps each subcommand's name to the function that runs it with
// the arguments after the name.
var commands = map[string]func(ctx context.Context, e *env, args []string) error{
	"keygen":  runKeygen,
	"migrate": runMigrate,
	"rotate":  runRotate,
	"cleanup": runCleanup,
	"status":  runStatus,
}

// run parses args (without the program name), runs the command and returns
// the process exit code. Everything a command prints goes to stdout (its
// result) or stderr (progress and errors).
func run(ctx context.Context, stdout, stderr io.Writer, args []string, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv, stderrTTY: isTerminal(stderr)}
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(stderr, "byok: unknown command %q (commands: %s); run \"byok -h\" for help\n",
			args[0], strings.Join(names, ", "))
		return exitUsage
	}
	return e.report(args[0], cmd(ctx, e, args[1:]))
}

// report prints err (if any) on stderr and returns its exit code.
func (e *env) report(name string, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	code := exitFailure
	var ce *codeError
	if errors.As(err, &ce) {
		code = ce.code
	}
	fmt.Fprintf(e.stderr, "byok %s: %v\n", name, err)
	return code
}

// codeError is an error that ends the process with a given exit code.
type codeError struct {
	code int
	err  error
}

func (c *codeError) Error() string { return c.err.Error() }
func (c *codeError) Unwrap() error { return c.err }

// withCode returns err marked with an exit code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codeError{code: code, err: err}
}

// usageErrorf returns a usage error (exit code 2).
func usageErrorf(format string, a ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, a...))
}

// errInterrupted ends a command stopped by a signal (exit code 130).
var errInterrupted = withCode(exitInterrupted, errors.New("interrupted"))

// newFlagSet returns a flag set for a subcommand whose help is help.
func newFlagSet(name, help string) *flag.FlagSet {
	fs := flag.NewFlagSet("byok "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), help)
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. Help goes to stdout and returns
// flag.ErrHelp (exit 0); a bad flag or a stray argument is a usage error.
func (e *env) parseFlags(fs *flag.FlagSet, args []string) error {
	var msg bytes.Buffer
	fs.SetOutput(&msg)
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(e.stdout)
		fs.Usage()
		return flag.ErrHelp
	case err != nil:
		return usageErrorf("%v (run \"%s -h\" for help)", err, fs.Name())
	case fs.NArg() > 0:
		return usageErrorf("unexpected argument %q (run \"%s -h\" for help)", fs.Arg(0), fs.Name())
	}
	return nil
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
