package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// interruptRows is how many rows TestRotateInterruptedAndResumed rotates on
// each database.
// (20,000 on SQLite under -race; see there).
var interruptRows = map[string]int{"postgres": 100_000, "sqlite": 100_000}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// TestMain removes the byok binary the signal tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// byokBinary builds the byok command once (without -race: the signal tests
// check behaviour; the in-process tests run the same code under -race) and
// returns its path.
func byokBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		// go test puts its own go command first on PATH.
		goBin, err := exec.LookPath("go")
		if err != nil {
			binErr = err
			return
		}
		if binDir, binErr = os.MkdirTemp("", "byok-cli-test-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "byok")
		out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestRotateInterruptedAndResumed seeds 100,000 rows under an old secret,
// runs "byok rotate" as a process, interrupts it with SIGINT once progress
// shows rows done, and runs it again. Afterwards every row opens under the
// new secret alone, none needs rewrapping, created and expiry times are
// unchanged, and the two runs re-sealed every row exactly once.
func TestRotateInterruptedAndResumed(t *testing.T) {
	bin := byokBinary(t)
	forBackends(t, func(t *testing.T, kind string) {
		n := interruptRows[kind]
		if kind == "sqlite" && raceEnabled {
			// The race detector slows the pure-Go SQLite in this process
			// (seeding, reading back) about tenfold; the byok process is
			// not race-built and rotates 100,000 SQLite rows in ~4 s.
			n = 20_000
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		b := newBackend(t, kind)
		b.migrate(t)
		oldRing, newRing := mustRing(t, oldSecret), mustRing(t, newSecret)
		start := time.Now()
		b.seed(t, makeRecords(t, n, oldRing))
		b.setCheckValue(t, oldRing)
		before := b.snapshot(t)
		t.Logf("%s: seeded and read %d rows in %s", kind, n, time.Since(start).Round(time.Millisecond))
		procEnv := []string{envSecret + "=" + newSecret, envPreviousSecret + "=" + oldSecret, envDatabaseURL + "=" + b.url}

		// First run, slowed to about five seconds by --rate so the signal
		// surely lands midway: once a tenth of the rows are done.
		cmd := exec.CommandContext(ctx, bin, "rotate", "--batch", "1000", "--rate", strconv.Itoa(n/5), "--progress", "50ms")
		cmd.Env = procEnv
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		pipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		progressRe := regexp.MustCompile(`^rotate: (\d+) of (\d+) rows re-sealed .* rows/s, ETA `)
		var stderr strings.Builder
		signalled := false
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			stderr.WriteString(line + "\n")
			if m := progressRe.FindStringSubmatch(line); m != nil && !signalled && atoi(m[1]) >= n/10 {
				if m[2] != strconv.Itoa(n) {
					t.Errorf("progress expects %s rows, want %d: %q", m[2], n, line)
				}
				if err := cmd.Process.Signal(os.Interrupt); err != nil {
					t.Fatal(err)
				}
				signalled = true
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		err = cmd.Wait()
		var exit *exec.ExitError
		if !signalled || !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
			t.Fatalf("first run: signalled %v, %v (want exit code %d)\nstdout:\n%s\nstderr:\n%s", signalled, err, exitInterrupted, stdout.String(), stderr.String())
		}
		m := regexp.MustCompile(`interrupted after (\d+) rows re-sealed; run the same command again to resume`).FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("first run did not say where it stopped:\n%s", stderr.String())
		}
		first, _ := strconv.Atoi(m[1])
		if first <= 0 || first >= n {
			t.Fatalf("interrupted after %d of %d rows: not midway", first, n)
		}
		st, err := b.store.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.ByKeyID[newRing.PrimaryID()] != first || st.ByKeyID[oldRing.PrimaryID()] != n-first {
			t.Fatalf("after the interrupted run: %v rows per key, want %d new and %d old", st.ByKeyID, first, n-first)
		}
		if b.checkValueKey(t) != oldRing.PrimaryID() {
			t.Fatal("an interrupted run replaced the check value")
		}
		t.Logf("%s: first run interrupted after %d rows:\n%s", kind, first, lastLines(stderr.String(), 2))

		// Second run resumes at full speed.
		cmd = exec.CommandContext(ctx, bin, "rotate", "--progress", "0")
		cmd.Env = procEnv
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("second run: %v\n%s", err, out)
		}
		m = regexp.MustCompile(`examined (\d+) rows in .*: re-sealed (\d+) \((\d+) rows/s\), already under key [0-9a-f]{8} (\d+), not opened 0, still changing 0`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("second run's summary:\n%s", out)
		}
		examined, _ := strconv.Atoi(m[1])
		second, _ := strconv.Atoi(m[2])
		already, _ := strconv.Atoi(m[4])
		if examined != n || second != n-first || already != first {
			t.Fatalf("second run examined %d, re-sealed %d, skipped %d; want %d, %d, %d", examined, second, already, n, n-first, first)
		}
		t.Logf("%s: second run: %s", kind, strings.TrimSpace(string(out)))
		if strings.Contains(stdout.String()+stderr.String()+string(out), "sk-test-") {
			t.Fatal("rotate printed a key")
		}

		// Every row opens under the new secret alone, times unchanged.
		verifyRotated(t, before, b.snapshot(t), newRing, plaintextFor, nil)
		if b.checkValueKey(t) != newRing.PrimaryID() {
			t.Fatal("the check value is not under the new key after a complete run")
		}
		// A third run with only the new secret has nothing to do.
		cmd = exec.CommandContext(ctx, bin, "rotate")
		cmd.Env = procEnv[:1:1]
		cmd.Env = append(cmd.Env, procEnv[2])
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "re-sealed 0 ") {
			t.Fatalf("third run: %v\n%s", err, out)
		}
	})
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestRotateSIGTERM stops a rate-limited rotate with SIGTERM: it exits with
// code 130 and has committed whole batches only.
func TestRotateSIGTERM(t *testing.T) {
	bin := byokBinary(t)
	b := newBackend(t, "sqlite")
	b.migrate(t)
	const n = 2000
	b.seed(t, makeRecords(t, n, mustRing(t, oldSecret)))
	cmd := exec.CommandContext(t.Context(), bin, "rotate", "--rate", "1000", "--batch", "100", "--progress", "10ms")
	cmd.Env = []string{envSecret + "=" + newSecret, envPreviousSecret + "=" + oldSecret, envDatabaseURL + "=" + b.url}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(pipe)
	sent := false
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if !sent && strings.HasPrefix(sc.Text(), "rotate: ") {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !sent || !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
		t.Fatalf("SIGTERM: %v (want exit %d)\n%s", err, exitInterrupted, stderr.String())
	}
	st, err := b.store.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	done := st.ByKeyID[mustRing(t, newSecret).PrimaryID()]
	if done == 0 || done == n || done%100 != 0 {
		t.Fatalf("%d of %d rows re-sealed after SIGTERM: want whole batches of 100, midway", done, n)
	}
}
