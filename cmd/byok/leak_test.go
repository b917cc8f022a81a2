package main

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ginbyok/byok/internal/testenv"
)

// TestNoSecretOrKeyInOutput runs every command, on success and failure
// paths, with sentinel secrets, a sentinel database password and sentinel
// API keys, and checks that none of them (nor a ciphertext) appears in
// anything byok prints.
func TestNoSecretOrKeyInOutput(t *testing.T) {
	sentinelSecret := secretOf("SENTINEL-MASTER-SECRET-")
	sentinelPrevious := secretOf("SENTINEL-PREVIOUS-SECRET")
	sentinelUnlisted := secretOf("SENTINEL-UNLISTED-SECRET")
	const sentinelKey = "sk-SENTINEL-PLAINTEXT-KEY-"
	const sentinelPassword = "SENTINEL-DB-PASSWORD"
	badSecret := "SENTINEL-NOT-A-SECRET!!" + strings.Repeat("x", 30)
	shortSecret := base64.StdEncoding.EncodeToString([]byte("SENTINEL-SHORT"))

	forBackends(t, func(t *testing.T, kind string) {
		ctx := t.Context()
		b := newBackend(t, kind)
		url := b.url
		if kind == "postgres" {
			// The test server trusts loopback, so a password is accepted and
			// ignored: every command below runs with one in its URL.
			url = strings.Replace(url, "://byok@", "://byok:"+sentinelPassword+"@", 1)
			if url == b.url {
				t.Fatalf("cannot add a password to %s", testenv.DatabaseEnv)
			}
		}
		b.migrate(t)
		prevRing := mustRing(t, sentinelPrevious)
		recs := makeRecords(t, 40, prevRing)
		for i := range recs {
			recs[i].Ciphertext = mustSeal(t, prevRing, recs[i].UserID, recs[i].Provider, sentinelKey+recs[i].UserID)
		}
		recs = append(recs, sealRecord(t, mustRing(t, sentinelUnlisted), "zz-stray", "openai", sentinelKey+"stray", 3))
		b.seed(t, recs)
		b.setCheckValue(t, prevRing)

		good := map[string]string{envDatabaseURL: url, envSecret: sentinelSecret, envPreviousSecret: sentinelPrevious}
		with := func(k, v string) map[string]string {
			m := map[string]string{}
			for a, b := range good {
				m[a] = b
			}
			m[k] = v
			return m
		}
		wrong := map[string]string{envDatabaseURL: url, envSecret: sentinelUnlisted}
		runs := []struct {
			env  map[string]string
			args []string
		}{
			{good, []string{"keygen"}},
			{good, []string{"migrate", "--dry-run"}},
			{good, []string{"migrate"}},
			{good, []string{"status"}},
			{good, []string{"status", "--json"}},
			{good, []string{"rotate", "--dry-run"}},
			{good, []string{"rotate", "--batch", "7", "--progress", "1ns"}},
			{good, []string{"rotate"}},
			{good, []string{"cleanup", "--dry-run"}},
			{good, []string{"cleanup"}},
			{wrong, []string{"status"}},
			{wrong, []string{"rotate"}},
			{with(envSecret, badSecret), []string{"rotate"}},
			{with(envSecret, shortSecret), []string{"status"}},
			{with(envPreviousSecret, badSecret), []string{"status", "--json"}},
			{with(envDatabaseURL, "postgres://byok:"+sentinelPassword+"@127.0.0.1:1/db?connect_timeout=2"), []string{"status"}},
			{with(envDatabaseURL, "postgres://byok:"+sentinelPassword+"@[::1/db"), []string{"rotate"}},
			{with(envDatabaseURL, "mysql://byok:"+sentinelPassword+"@host/db"), []string{"cleanup"}},
		}
		forbidden := []string{sentinelSecret, sentinelPrevious, sentinelUnlisted, badSecret, shortSecret,
			"SENTINEL-MASTER", "SENTINEL-PREVIOUS", "SENTINEL-UNLISTED", "SENTINEL-NOT", "SENTINEL-SHORT",
			sentinelKey, sentinelPassword}
		for _, r := range recs {
			forbidden = append(forbidden, hex.EncodeToString(r.Ciphertext), base64.StdEncoding.EncodeToString(r.Ciphertext))
		}
		codes := map[int]bool{}
		for _, run := range runs {
			start := time.Now()
			r := runCLI(ctx, run.env, run.args...)
			codes[r.code] = true
			out := r.stdout + r.stderr
			if out == "" {
				t.Fatalf("%v printed nothing", run.args)
			}
			for _, f := range forbidden {
				if strings.Contains(out, f) || strings.Contains(strings.ToLower(out), strings.ToLower(f)) {
					t.Fatalf("%v (exit %d) printed %q:\n%s", run.args, r.code, f, out)
				}
			}
			t.Logf("%v: exit %d in %s", run.args, r.code, time.Since(start).Round(time.Millisecond))
		}
		for _, c := range []int{exitOK, exitFailure, exitUsage, exitUnopened, exitWrongSecret} {
			if !codes[c] {
				t.Errorf("no run ended with exit code %d: the sentinel check missed a path", c)
			}
		}
	})
}
