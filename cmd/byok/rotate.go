package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

const rotateHelp = `Usage: byok rotate [flags]

Re-seals every stored key that is not under the primary key (the one from
BYOK_SECRET) under it. Each key is opened with whichever listed secret sealed
it (BYOK_SECRET or one of BYOK_PREVIOUS_SECRETS) and sealed again with a fresh
nonce and the same associated data; created and expiry times are kept.

It reads the table in primary-key order (user id, provider) in batches of
--batch rows; each batch is written in its own transaction, and a row is only
updated if its ciphertext is still the one that was read, so a key a user
replaces meanwhile is never overwritten (the batch is read again and retried).

Resuming: stop it at any time (Ctrl-C, SIGTERM, even a kill). Run the same
command again: it starts from the beginning, but rows already under the
primary key are skipped after reading their 5-byte header — no decryption, no
write — so it quickly catches up to where it stopped. A killed run loses at
most its uncommitted batch, which the database rolls back.

A row that no listed secret opens (sealed under an unlisted key, altered, or
moved from another user or provider) is listed on stdout by user id, provider
and key id, left as it was, and the run exits with code 3. Nothing is ever
deleted. After a complete run with no such rows, the stored check value is
sealed under the primary key too.

Workflow: "byok keygen" makes the new secret; set BYOK_SECRET to it and add
the old one to BYOK_PREVIOUS_SECRETS, for the app and for this command; run
"byok rotate"; when "byok status" shows no rows under the old key id, remove
the old secret from BYOK_PREVIOUS_SECRETS.

Exit codes: 0 done, 1 failure, 2 usage, 3 some rows not under the primary key
(listed), 4 wrong secret (the stored check value opens under none of the
given secrets; nothing is changed), 130 interrupted (the batch in flight is
finished first; a second signal kills at once).
`

// maxRewrites is how many times a batch is written before rows that keep
// changing under rotate are left for the next run.
const maxRewrites = 3

// rotateOptions are rotate's flags.
type rotateOptions struct {
	batch    int
	rate     float64       // re-sealed rows per second; 0: unlimited
	dryRun   bool          // count and check, write nothing
	progress time.Duration // between plain progress lines (not on a terminal)
}

// rotateStore is what rotate needs of the key store; *sqlstore.Store has it.
type rotateStore interface {
	Scan(ctx context.Context, afterUser, afterProvider string, limit int) ([]stores.Record, error)
	Rewrap(ctx context.Context, recs []sqlstore.Rewrapped) (int, error)
	CheckValue(ctx context.Context) ([]byte, error)
	SetCheckValue(ctx context.Context, cv []byte, replace bool) error
	Stats(ctx context.Context) (sqlstore.Stats, error)
}

// rotateResult counts what a rotate run did.
type rotateResult struct {
	Examined int // rows read
	Already  int // rows already under the primary key
	Resealed int // rows re-sealed (with --dry-run: that would be)
	Unopened int // rows no listed key opens, left as they were
	Busy     int // rows that kept changing while rotate ran, left for the next run
	Elapsed  time.Duration
}

// runRotate re-seals every row under the primary key.
func runRotate(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("rotate", rotateHelp)
	var d dbFlags
	var s secretFlags
	d.register(fs)
	s.register(fs)
	var o rotateOptions
	fs.IntVar(&o.batch, "batch", 1000, "rows per batch, each batch one transaction")
	fs.Float64Var(&o.rate, "rate", 0, "re-seal at most this many `rows` per second (token bucket; 0: no limit)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "count what would change and list rows that cannot be opened; write nothing")
	fs.DurationVar(&o.progress, "progress", 10*time.Second, "`interval` between progress lines when stderr is not a terminal (0: none)")
	if err := e.parseFlags(fs, args); err != nil {
		return err
	}
	if o.batch < 1 {
		return usageErrorf("--batch must be at least 1")
	}
	if o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0) {
		return usageErrorf("--rate must be a number of rows per second, 0 for no limit")
	}
	ks, err := e.loadKeys(s, true)
	if err != nil {
		return err
	}
	store, db, closeDB, err := e.openStore(ctx, d, openExisting)
	if err != nil {
		return err
	}
	defer closeDB()
	what := "re-sealing under"
	if o.dryRun {
		what = "dry run: counting rows not under"
	}
	fmt.Fprintf(e.stderr, "byok rotate: %s, table %s: %s key %08x\n", db.display, d.table, what, ks.primary)
	_, err = rotate(ctx, e, store, ks, o)
	return err
}

// rotate does the work of runRotate on an open store.
func rotate(ctx context.Context, e *env, store rotateStore, ks *keyset, o rotateOptions) (rotateResult, error) {
	var res rotateResult
	// dbctx is not cancelled by a signal, so the batch in flight is written
	// and committed; ctx is checked between batches.
	dbctx := context.WithoutCancel(ctx)

	cv, cvErr := store.CheckValue(dbctx)
	switch {
	case errors.Is(cvErr, stores.ErrNotFound):
		cv = nil
	case cvErr != nil:
		return res, fmt.Errorf("reading the check value: %w", cvErr)
	default:
		if err := encrypt.VerifyCheckValue(ks.ring, cv); err != nil {
			return res, wrongSecretError(err)
		}
	}

	todo := -1
	if st, err := store.Stats(dbctx); err == nil {
		todo = st.Total - st.ByKeyID[ks.primary]
	}

	batch := o.batch
	var limiter *rate.Limiter
	if o.rate > 0 && !o.dryRun {
		burst := max(1, int(o.rate))
		batch = min(batch, burst)
		limiter = rate.NewLimiter(rate.Limit(o.rate), burst)
		limiter.AllowN(time.Now(), burst) // start empty: no initial burst above the rate
	}

	r := &rotator{e: e, ring: ks.ring, primary: ks.primary, res: &res, dry: o.dryRun}
	p := newProgress(e.stderr, e.stderrTTY, o.progress)
	line := func() string { return r.progressLine(p.elapsed(), todo) }
	var afterUser, afterProvider string
	interrupted := false
scan:
	for {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		reported := map[rowKey]bool{}
		var recs []stores.Record
		for attempt := 0; ; attempt++ {
			var err error
			recs, err = store.Scan(dbctx, afterUser, afterProvider, batch)
			if err != nil {
				p.finish()
				return res, fmt.Errorf("reading rows after (%q, %q): %w", afterUser, afterProvider, err)
			}
			if len(recs) == 0 {
				break scan
			}
			updates := r.plan(recs, reported, attempt == 0)
			if o.dryRun || len(updates) == 0 {
				res.Resealed += len(updates)
				break
			}
			if attempt == maxRewrites {
				r.reportBusy(updates)
				break
			}
			if limiter != nil {
				if err := limiter.WaitN(ctx, len(updates)); err != nil {
					interrupted = true // the batch was read, not written
					break scan
				}
			}
			n, err := store.Rewrap(dbctx, updates)
			if err != nil {
				p.finish()
				return res, fmt.Errorf("writing a batch after (%q, %q): %w", afterUser, afterProvider, err)
			}
			res.Resealed += n
			if n == len(updates) {
				break
			}
			// Some rows changed since they were read: read the batch again.
		}
		last := recs[len(recs)-1]
		afterUser, afterProvider = last.UserID, last.Provider
		p.update(line)
		if len(recs) < batch {
			break
		}
	}
	res.Elapsed = p.elapsed()
	p.finish()
	r.summary(ks, o.dryRun)

	switch {
	case interrupted:
		fmt.Fprintf(e.stderr, "byok rotate: interrupted after %d rows re-sealed; run the same command again to resume (rows already under the primary key are skipped)\n", res.Resealed)
		return res, errInterrupted
	case res.Unopened+res.Busy > 0:
		return res, withCode(exitUnopened, fmt.Errorf("%d rows are not under the primary key (listed on stdout) and were left as they were", res.Unopened+res.Busy))
	case o.dryRun:
		return res, nil
	}
	if cv == nil || ks.ring.NeedsRewrap(cv) {
		fresh, err := encrypt.NewCheckValue(ks.ring)
		if err != nil {
			return res, err
		}
		if err := store.SetCheckValue(dbctx, fresh, true); err != nil {
			return res, fmt.Errorf("storing the check value: %w", err)
		}
		fmt.Fprintf(e.stdout, "check value: sealed under key %08x\n", ks.primary)
	}
	return res, nil
}

// wrongSecretError explains a check value that the given secrets do not open.
func wrongSecretError(err error) error {
	return withCode(exitWrongSecret, fmt.Errorf("%w: the stored check value opens under none of the given secrets, so BYOK_SECRET and BYOK_PREVIOUS_SECRETS do not include the secret this database was sealed with; nothing was changed", err))
}

// rowKey names a row.
type rowKey struct{ user, provider string }

// rotator holds one rotate run's state.
type rotator struct {
	e       *env
	ring    *encrypt.Keyring
	primary uint32
	res     *rotateResult
	dry     bool
}

// plan returns the rows of recs re-sealed under the primary key, ready for
// Rewrap. Rows already under the primary key are skipped; rows that do not
// open are reported once (reported remembers them across re-reads of a
// batch). first says whether this is the batch's first read, which counts.
func (r *rotator) plan(recs []stores.Record, reported map[rowKey]bool, first bool) []sqlstore.Rewrapped {
	var out []sqlstore.Rewrapped
	if first {
		r.res.Examined += len(recs)
	}
	for _, rec := range recs {
		id, err := encrypt.KeyID(rec.Ciphertext)
		if err == nil && id == r.primary {
			if first {
				r.res.Already++
			}
			continue
		}
		ad := encrypt.AssociatedData(stores.Scope{UserID: rec.UserID}.Owner(), rec.Provider)
		var sealed []byte
		if err == nil {
			if r.dry {
				var pt []byte
				pt, err = r.ring.Open(rec.Ciphertext, ad)
				clear(pt)
			} else {
				sealed, err = r.ring.Rewrap(rec.Ciphertext, ad)
			}
		}
		if err != nil {
			k := rowKey{rec.UserID, rec.Provider}
			if !reported[k] {
				reported[k] = true
				r.res.Unopened++
				r.reportUnopened(rec, err)
			}
			continue
		}
		out = append(out, sqlstore.Rewrapped{UserID: rec.UserID, Provider: rec.Provider,
			Old: rec.Ciphertext, New: sealed, KeyID: r.primary})
	}
	return out
}

// reportUnopened lists a row that no listed key opens: who, which provider,
// which key and why — never the ciphertext.
func (r *rotator) reportUnopened(rec stores.Record, err error) {
	key := "????????"
	if id, kerr := encrypt.KeyID(rec.Ciphertext); kerr == nil {
		key = fmt.Sprintf("%08x", id)
	}
	why := "cannot be opened"
	switch {
	case errors.Is(err, encrypt.ErrUnknownKey):
		why = "sealed under a key that is not listed (add its secret to BYOK_PREVIOUS_SECRETS)"
	case errors.Is(err, encrypt.ErrAuth):
		why = "fails authentication (altered, or moved from another user or provider)"
	case errors.Is(err, encrypt.ErrMalformed):
		why = "is not a ciphertext this version can read (malformed)"
	}
	fmt.Fprintf(r.e.stdout, "not opened: user %q provider %q key %s: %s\n", rec.UserID, rec.Provider, key, why)
}

// reportBusy lists rows that changed under every rewrite of their batch.
func (r *rotator) reportBusy(updates []sqlstore.Rewrapped) {
	for _, u := range updates {
		r.res.Busy++
		fmt.Fprintf(r.e.stdout, "still changing: user %q provider %q: replaced %d times while rotate ran; left for the next run\n", u.UserID, u.Provider, maxRewrites)
	}
}

// progressLine is one progress report.
func (r *rotator) progressLine(elapsed time.Duration, todo int) string {
	verb := "re-sealed"
	if r.dry {
		verb = "to re-seal"
	}
	done := r.res.Resealed + r.res.Unopened + r.res.Busy
	perSec := perSecond(done, elapsed)
	if todo < 0 {
		return fmt.Sprintf("rotate: %d rows %s, %d not opened, %.0f rows/s", r.res.Resealed, verb, r.res.Unopened, perSec)
	}
	pct := 100.0
	if todo > 0 {
		pct = min(100, 100*float64(done)/float64(todo))
	}
	return fmt.Sprintf("rotate: %d of %d rows %s (%.0f%%), %d not opened, %.0f rows/s, ETA %s",
		r.res.Resealed, todo, verb, pct, r.res.Unopened, perSec, eta(todo-done, perSec))
}

// summary prints what the run did on stdout.
func (r *rotator) summary(ks *keyset, dry bool) {
	res := r.res
	verb := "re-sealed"
	if dry {
		verb = "would re-seal"
	}
	fmt.Fprintf(r.e.stdout, "rotate: examined %d rows in %s: %s %d (%.0f rows/s), already under key %08x %d, not opened %d, still changing %d\n",
		res.Examined, res.Elapsed.Round(time.Millisecond), verb, res.Resealed, perSecond(res.Resealed, res.Elapsed),
		ks.primary, res.Already, res.Unopened, res.Busy)
	if dry {
		fmt.Fprintln(r.e.stdout, "dry run: nothing was changed")
	}
}
