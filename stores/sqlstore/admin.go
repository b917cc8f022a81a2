package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/ginbyok/byok/stores"
)

// checkValueName is the meta row that holds the secret's check value.
const checkValueName = "check_value"

// CheckValue returns the stored check value (encrypt.NewCheckValue), or
// stores.ErrNotFound when none is stored yet.
func (s *Store) CheckValue(ctx context.Context) ([]byte, error) {
	var cv []byte
	err := s.db.QueryRowContext(ctx, s.q.checkValue, checkValueName).Scan(&cv)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, stores.ErrNotFound
	case err != nil:
		return nil, &dbError{op: "check value", err: err}
	}
	return cv, nil
}

// SetCheckValue stores cv. With replace it overwrites any stored value
// (after a deliberate secret change). Without, it stores cv only if no
// value is stored and otherwise leaves the stored one and returns nil, so
// two replicas starting at once do not fight: read CheckValue afterwards
// and verify what is actually stored.
func (s *Store) SetCheckValue(ctx context.Context, cv []byte, replace bool) error {
	if len(cv) == 0 {
		return fmt.Errorf("%w: empty check value", stores.ErrInvalidRecord)
	}
	q := s.q.addCheckValue
	if replace {
		q = s.q.setCheckValue
	}
	if _, err := s.db.ExecContext(ctx, q, checkValueName, cv); err != nil {
		return &dbError{op: "set check value", err: err}
	}
	return nil
}

// Scan returns up to limit rows (expired ones included) after the key
// (afterUser, afterProvider), ordered by user id then provider: keyset
// pagination for re-encrypting every row. Start with "", "" and continue
// from the last row returned; a short page is the last.
func (s *Store) Scan(ctx context.Context, afterUser, afterProvider string, limit int) ([]stores.Record, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("sqlstore: scan limit %d must be positive", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q.scan, afterUser, afterProvider, limit)
	if err != nil {
		return nil, &dbError{op: "scan", err: err}
	}
	defer rows.Close()
	out := make([]stores.Record, 0, min(limit, 1024))
	for rows.Next() {
		var r stores.Record
		if err := scanRecord(rows, &r, &r.UserID); err != nil {
			return nil, &dbError{op: "scan", err: err}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, &dbError{op: "scan", err: err}
	}
	return out, nil
}

// Rewrapped is one re-encrypted key for Rewrap: the row's current
// ciphertext (Old, as read by Scan) and its replacement (New, sealed under
// the key KeyID).
type Rewrapped struct {
	UserID, Provider string
	Old, New         []byte
	KeyID            uint32
}

// Rewrap replaces ciphertexts in one transaction. A row is changed only if
// it still holds Old, so a key replaced concurrently is never overwritten
// with a stale one; CreatedAt and ExpiresAt stay, UpdatedAt becomes now.
// It returns how many rows changed.
func (s *Store) Rewrap(ctx context.Context, recs []Rewrapped) (int, error) {
	for _, r := range recs {
		if err := validName("user id", r.UserID, MaxUserID); err != nil {
			return 0, err
		}
		if err := validName("provider", r.Provider, MaxProvider); err != nil {
			return 0, err
		}
		if len(r.Old) == 0 || len(r.New) == 0 {
			return 0, fmt.Errorf("%w: empty ciphertext", stores.ErrInvalidRecord)
		}
	}
	if len(recs) == 0 {
		return 0, nil
	}
	now := s.d.time(s.now())
	changed := 0
	if s.d.pg {
		// One statement per batch: PostgreSQL joins the batch as arrays, so
		// a rotation costs a round trip per batch instead of per row.
		users := make([]string, len(recs))
		provs := make([]string, len(recs))
		olds := make([][]byte, len(recs))
		news := make([][]byte, len(recs))
		kids := make([]int64, len(recs))
		for i, r := range recs {
			users[i], provs[i], olds[i], news[i], kids[i] = r.UserID, r.Provider, r.Old, r.New, int64(r.KeyID)
		}
		res, err := s.db.ExecContext(ctx, s.q.rewrapBatch, now, pq.Array(users), pq.Array(provs),
			pq.ByteaArray(olds), pq.ByteaArray(news), pq.Array(kids))
		if err != nil {
			return 0, &dbError{op: "rewrap", err: err}
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, &dbError{op: "rewrap", err: err}
		}
		return int(n), nil
	}
	err := s.d.inWriteTx(ctx, s.db, "", func(q execer) error {
		changed = 0
		for _, r := range recs {
			res, err := q.ExecContext(ctx, s.q.rewrap, r.New, int64(r.KeyID), now, r.UserID, r.Provider, r.Old)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			changed += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, &dbError{op: "rewrap", err: err}
	}
	return changed, nil
}

// Stats describes the table's rows.
type Stats struct {
	Total   int            // rows, expired included
	Expired int            // rows expired but not yet deleted by the janitor
	ByKeyID map[uint32]int // rows per encryption key id, expired included
	Oldest  time.Time      // earliest CreatedAt; zero if the table is empty
}

// Stats counts the table's rows per key id (to see whether a rotation is
// complete), the expired rows and the oldest row.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{ByKeyID: map[uint32]int{}}
	rows, err := s.db.QueryContext(ctx, s.q.stats, s.d.time(s.now()))
	if err != nil {
		return Stats{}, &dbError{op: "stats", err: err}
	}
	defer rows.Close()
	for rows.Next() {
		var kid uint32
		var total, expired int64
		var oldest time.Time
		if err := rows.Scan(keyID{&kid}, &total, &expired, nullTime{&oldest}); err != nil {
			return Stats{}, &dbError{op: "stats", err: err}
		}
		st.ByKeyID[kid] += int(total)
		st.Total += int(total)
		st.Expired += int(expired)
		if !oldest.IsZero() && (st.Oldest.IsZero() || oldest.Before(st.Oldest)) {
			st.Oldest = oldest
		}
	}
	if err := rows.Err(); err != nil {
		return Stats{}, &dbError{op: "stats", err: err}
	}
	return st, nil
}
