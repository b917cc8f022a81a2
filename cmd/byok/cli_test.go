package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ginbyok/byok/encrypt"
)

// encodeStd is base64 in the form GenerateSecret uses.
func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// cliResult is what one in-process run printed and returned.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs byok in-process with env as its whole environment.
func runCLI(ctx context.Context, env map[string]string, args ...string) cliResult {
	var stdout, stderr bytes.Buffer
	code := run(ctx, &stdout, &stderr, args, mapEnv(env))
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring of stdout
		stderr string // substring of stderr
	}{
		{name: "no arguments", args: nil, code: exitUsage, stderr: "Exit codes:"},
		{name: "help", args: []string{"-h"}, code: exitOK, stdout: "130  interrupted"},
		{name: "--help", args: []string{"--help"}, code: exitOK, stdout: "BYOK_PREVIOUS_SECRETS"},
		{name: "help command", args: []string{"help"}, code: exitOK, stdout: "4    wrong secret"},
		{name: "unknown command", args: []string{"rotat"}, code: exitUsage, stderr: `unknown command "rotat"`},
		{name: "rotate help", args: []string{"rotate", "-h"}, code: exitOK, stdout: "Resuming:"},
		{name: "rotate --help flags", args: []string{"rotate", "--help"}, code: exitOK, stdout: "-rate rows"},
		{name: "status help", args: []string{"status", "-help"}, code: exitOK, stdout: "--json prints"},
		{name: "cleanup help", args: []string{"cleanup", "-h"}, code: exitOK, stdout: "-batch"},
		{name: "migrate help", args: []string{"migrate", "-h"}, code: exitOK, stdout: "-dry-run"},
		{name: "keygen help", args: []string{"keygen", "-h"}, code: exitOK, stdout: "BYOK_PREVIOUS_SECRETS"},
		{name: "unknown flag", args: []string{"rotate", "--nope"}, code: exitUsage, stderr: "flag provided but not defined: -nope"},
		{name: "bad flag value", args: []string{"rotate", "--batch", "x"}, code: exitUsage, stderr: "invalid value"},
		{name: "zero batch", args: []string{"rotate", "--batch", "0"}, code: exitUsage, stderr: "--batch must be at least 1"},
		{name: "negative rate", args: []string{"rotate", "--rate", "-1"}, code: exitUsage, stderr: "--rate"},
		{name: "stray argument", args: []string{"status", "extra"}, code: exitUsage, stderr: `unexpected argument "extra"`},
		{name: "keygen argument", args: []string{"keygen", "extra"}, code: exitUsage, stderr: "unexpected argument"},
		{name: "rotate without secret", args: []string{"rotate"}, code: exitUsage, stderr: "no master secret"},
		{name: "status without database", args: []string{"status"}, code: exitUsage, stderr: "no database"},
		{name: "cleanup zero batch", args: []string{"cleanup", "--batch=0"}, code: exitUsage, stderr: "--batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t.Context(), nil, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Fatalf("stdout lacks %q:\n%s", tt.stdout, r.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("stderr lacks %q:\n%s", tt.stderr, r.stderr)
			}
		})
	}
}

func TestKeygen(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		r := runCLI(t.Context(), nil, "keygen")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("keygen: code %d, stderr %q", r.code, r.stderr)
		}
		s := strings.TrimSuffix(r.stdout, "\n")
		if strings.Contains(s, "\n") {
			t.Fatalf("keygen printed more than one line: %q", r.stdout)
		}
		b, err := encrypt.ParseSecret(s)
		if err != nil || len(b) != encrypt.MinSecretSize {
			t.Fatalf("keygen printed %d bytes (%v), want a %d-byte secret", len(b), err, encrypt.MinSecretSize)
		}
		if seen[s] {
			t.Fatal("keygen printed the same secret twice")
		}
		seen[s] = true
	}
}
