package sqlstore

import (
	"context"
	"errors"
	"time"
)

// DeleteExpired deletes rows expired at the clock's now, batch rows per
// statement (batch <= 0: DefaultBatch) so no statement holds locks for
// long, until none are left or ctx ends. It returns how many it deleted.
func (s *Store) DeleteExpired(ctx context.Context, batch int) (int, error) {
	if batch <= 0 {
		batch = DefaultBatch
	}
	now := s.d.time(s.now())
	total := 0
	for {
		res, err := s.db.ExecContext(ctx, s.q.deleteExpired, now, batch)
		if err != nil {
			return total, &dbError{op: "delete expired", err: err}
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, &dbError{op: "delete expired", err: err}
		}
		total += int(n)
		if n < int64(batch) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// ErrJanitorOff means StartJanitor was called on a Store built without
// WithJanitor.
var ErrJanitorOff = errors.New("sqlstore: janitor not configured (WithJanitor)")

// StartJanitor runs DeleteExpired every interval (WithJanitor) in a
// goroutine until ctx ends or Close is called. It logs each run's count at
// debug level (info when rows were deleted) and failures at warn. It may be
// called once per Store.
func (s *Store) StartJanitor(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.interval <= 0:
		return ErrJanitorOff
	case s.stopped != nil:
		return errors.New("sqlstore: janitor already started")
	}
	ctx, s.stop = context.WithCancel(ctx)
	s.stopped = make(chan struct{})
	go func() {
		defer close(s.stopped)
		every(ctx, s.interval, s.sweep)
	}()
	return nil
}

// sweep is one janitor run.
func (s *Store) sweep(ctx context.Context) {
	n, err := s.DeleteExpired(ctx, s.batch)
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopping: not a failure.
	case err != nil:
		s.log.WarnContext(ctx, "byok: sqlstore janitor failed", "table", s.table, "deleted", n, "err", err)
	case n > 0:
		s.log.InfoContext(ctx, "byok: sqlstore janitor deleted expired keys", "table", s.table, "deleted", n)
	default:
		s.log.DebugContext(ctx, "byok: sqlstore janitor found nothing expired", "table", s.table)
	}
}

// every calls fn(ctx) every interval until ctx ends; fn runs to completion
// before the next tick is awaited.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// Close stops the janitor, if running, waits for it to finish, and closes
// the Store's prepared statements. It does not close the *sqlx.DB, which
// belongs to the caller. The Store's other methods keep working (they
// prepare their statements again); only StartJanitor fails with ErrClosed.
func (s *Store) Close() error {
	defer func() {
		s.pGet.close()
		s.pList.close()
		s.pPut.close()
	}()
	s.mu.Lock()
	s.closed = true
	stop, stopped := s.stop, s.stopped
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-stopped
	}
	return nil
}
