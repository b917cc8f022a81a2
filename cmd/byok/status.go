package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/sqlstore"
)

const statusHelp = `Usage: byok status [--json] [--database-url URL] [--table NAME] [--secret-file FILE]

Reports how many keys the table holds under each key id (marking the primary
key, the previous keys that still open, and unknown ones), how many have
expired, when the oldest was stored, and whether the given master secret
matches the stored check value. Without BYOK_SECRET it reports the counts and
skips the check.

Check value: "primary" (sealed under BYOK_SECRET's key), "previous" (under a
key from BYOK_PREVIOUS_SECRETS: run "byok rotate"), "unset" (none stored
yet), "unchecked" (no secret given), or "mismatch" (exit code 4: the secrets
given are not the ones the data was sealed with).

--json prints one object: database, table, rows, expired, oldest_created_at
(RFC 3339, null when empty), keys [{key_id (8 hex digits), rows, role}],
rows_to_rotate (rows not under the primary key; null without a secret),
check_value, check_value_key_id and secret_matches (null when unchecked or
unset).
`

// statusReport is what status prints; its JSON form is documented in statusHelp.
type statusReport struct {
	Database        string      `json:"database"`
	Table           string      `json:"table"`
	Rows            int         `json:"rows"`
	Expired         int         `json:"expired"`
	OldestCreatedAt *time.Time  `json:"oldest_created_at"`
	Keys            []keyStatus `json:"keys"`
	RowsToRotate    *int        `json:"rows_to_rotate"`
	CheckValue      string      `json:"check_value"`
	CheckValueKeyID string      `json:"check_value_key_id,omitempty"`
	SecretMatches   *bool       `json:"secret_matches"`
}

// keyStatus is the number of rows under one key id.
type keyStatus struct {
	KeyID string `json:"key_id"`
	Rows  int    `json:"rows"`
	Role  string `json:"role"` // primary, previous or unknown
}

// Check value states.
const (
	cvPrimary   = "primary"
	cvPrevious  = "previous"
	cvUnset     = "unset"
	cvUnchecked = "unchecked"
	cvMismatch  = "mismatch"
)

// runStatus reports what the database holds.
func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("status", statusHelp)
	var d dbFlags
	var s secretFlags
	d.register(fs)
	s.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := e.parseFlags(fs, args); err != nil {
		return err
	}
	ks, err := e.loadKeys(s, false)
	if err != nil {
		return err
	}
	store, db, closeDB, err := e.openStore(ctx, d, openExisting)
	if err != nil {
		return err
	}
	defer closeDB()
	rep, cvErr, err := status(ctx, store, ks)
	if err != nil {
		return fmt.Errorf("%s: %w", db.display, err)
	}
	rep.Database, rep.Table = db.display, d.table
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printStatus(e, rep)
	}
	if cvErr != nil {
		return wrongSecretError(cvErr)
	}
	return nil
}

// statusStore is what status needs of the key store; *sqlstore.Store has it.
type statusStore interface {
	Stats(ctx context.Context) (sqlstore.Stats, error)
	CheckValue(ctx context.Context) ([]byte, error)
}

// status gathers the report. cvErr is the check value's error when the
// given secrets do not open it.
func status(ctx context.Context, store statusStore, ks *keyset) (rep statusReport, cvErr error, err error) {
	st, err := store.Stats(ctx)
	if err != nil {
		return rep, nil, fmt.Errorf("counting rows: %w", err)
	}
	rep.Rows, rep.Expired = st.Total, st.Expired
	if !st.Oldest.IsZero() {
		t := st.Oldest.UTC()
		rep.OldestCreatedAt = &t
	}
	counts := st.ByKeyID
	var ids []uint32
	if ks != nil {
		ids = append(ids, ks.primary)
		ids = append(ids, ks.previous...)
		todo := st.Total - counts[ks.primary]
		rep.RowsToRotate = &todo
	}
	var others []uint32
	for id := range counts {
		if !slices.Contains(ids, id) {
			others = append(others, id)
		}
	}
	slices.SortFunc(others, func(a, b uint32) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return int(int64(a) - int64(b))
	})
	rep.Keys = []keyStatus{}
	for _, id := range append(ids, others...) {
		rep.Keys = append(rep.Keys, keyStatus{KeyID: fmt.Sprintf("%08x", id), Rows: counts[id], Role: ks.role(id)})
	}

	cv, err := store.CheckValue(ctx)
	switch {
	case errors.Is(err, stores.ErrNotFound):
		rep.CheckValue = cvUnset
		return rep, nil, nil
	case err != nil:
		return rep, nil, fmt.Errorf("reading the check value: %w", err)
	}
	if id, err := encrypt.KeyID(cv); err == nil {
		rep.CheckValueKeyID = fmt.Sprintf("%08x", id)
	}
	if ks == nil {
		rep.CheckValue = cvUnchecked
		return rep, nil, nil
	}
	match := encrypt.VerifyCheckValue(ks.ring, cv) == nil
	rep.SecretMatches = &match
	switch {
	case !match:
		rep.CheckValue = cvMismatch
		cvErr = encrypt.VerifyCheckValue(ks.ring, cv)
	case ks.ring.NeedsRewrap(cv):
		rep.CheckValue = cvPrevious
	default:
		rep.CheckValue = cvPrimary
	}
	return rep, cvErr, nil
}

// printStatus prints the report for people.
func printStatus(e *env, rep statusReport) {
	fmt.Fprintf(e.stdout, "database:    %s (table %s)\n", rep.Database, rep.Table)
	fmt.Fprintf(e.stdout, "rows:        %d (%d expired)\n", rep.Rows, rep.Expired)
	if rep.OldestCreatedAt != nil {
		fmt.Fprintf(e.stdout, "oldest key:  stored %s\n", rep.OldestCreatedAt.Format(time.RFC3339))
	}
	if rep.RowsToRotate != nil {
		fmt.Fprintf(e.stdout, "to rotate:   %d rows not under the primary key\n", *rep.RowsToRotate)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nkey id\trows\trole")
	for _, k := range rep.Keys {
		note := k.Role
		switch k.Role {
		case "previous":
			note += ` (still opens; "byok rotate" moves these to the primary key)`
		case "unknown":
			note += " (no given secret opens these)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", k.KeyID, k.Rows, note)
	}
	_ = tw.Flush()
	var cv string
	switch rep.CheckValue {
	case cvPrimary:
		cv = "matches: sealed under the primary key " + rep.CheckValueKeyID
	case cvPrevious:
		cv = "matches a previous key " + rep.CheckValueKeyID + ` (run "byok rotate")`
	case cvUnset:
		cv = "none stored yet (the app or a complete \"byok rotate\" stores one)"
	case cvUnchecked:
		cv = "not checked (no BYOK_SECRET given); sealed under key " + rep.CheckValueKeyID
	case cvMismatch:
		cv = "MISMATCH: sealed under key " + rep.CheckValueKeyID + ", which none of the given secrets opens"
	}
	fmt.Fprintf(e.stdout, "\ncheck value: %s\n", cv)
}
