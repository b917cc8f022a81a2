package hybrid_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
)

// memSession is one browser's session: an in-memory stores.Session that
// counts its saves. It is safe for concurrent use.
type memSession struct {
	mu    sync.Mutex
	vals  map[any]any
	saves atomic.Int64
}

func newSession() *memSession { return &memSession{vals: map[any]any{}} }

func (s *memSession) Get(k any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vals[k]
}

func (s *memSession) Set(k, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[k] = v
}

func (s *memSession) Delete(k any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.vals, k)
}

func (s *memSession) Save() error { s.saves.Add(1); return nil }

// redisCounter is a go-redis hook that counts round trips and commands.
type redisCounter struct {
	trips, cmds atomic.Int64
	mu          sync.Mutex
	names       []string
}

func (h *redisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trips.Add(1)
		h.cmds.Add(1)
		h.mu.Lock()
		h.names = append(h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		h.cmds.Add(int64(len(cmds)))
		h.mu.Lock()
		for _, c := range cmds {
			h.names = append(h.names, c.Name())
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// take returns the command names seen since the last take and forgets them.
func (h *redisCounter) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.names
	h.names = nil
	return n
}

// openCounting opens a pool of driverName at dsn whose every statement
// (query, exec, prepared-statement execution, begin, commit, rollback,
// ping) adds one to n: the number of times the code talked to the database
// server.
func openCounting(t testing.TB, driverName, dsn string, n *atomic.Int64) *sqlx.DB {
	t.Helper()
	probe, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", driverName, err)
	}
	drv := probe.Driver()
	_ = probe.Close()
	db := sqlx.NewDb(sql.OpenDB(&countingConnector{dsn: dsn, drv: drv, n: n}), driverName)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

type countingConnector struct {
	dsn string
	drv driver.Driver
	n   *atomic.Int64
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var (
		conn driver.Conn
		err  error
	)
	if dc, ok := c.drv.(driver.DriverContext); ok {
		var ctr driver.Connector
		if ctr, err = dc.OpenConnector(c.dsn); err == nil {
			conn, err = ctr.Connect(ctx)
		}
	} else {
		conn, err = c.drv.Open(c.dsn)
	}
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: c.n}, nil
}

func (c *countingConnector) Driver() driver.Driver { return c.drv }

// countingConn forwards to the driver's connection and counts statements.
// Where the driver lacks an optional interface it answers as database/sql
// expects (driver.ErrSkip) so behaviour is unchanged.
type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) Prepare(q string) (driver.Stmt, error) {
	st, err := c.Conn.Prepare(q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, n: c.n}, nil
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	pc, ok := c.Conn.(driver.ConnPrepareContext)
	if !ok {
		return c.Prepare(q)
	}
	st, err := pc.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, n: c.n}, nil
}

func (c *countingConn) Begin() (driver.Tx, error) {
	c.n.Add(1)
	tx, err := c.Conn.Begin() //nolint:staticcheck // forwarding the method driver.Conn requires
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, n: c.n}, nil
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	bt, ok := c.Conn.(driver.ConnBeginTx)
	if !ok {
		return c.Begin()
	}
	c.n.Add(1)
	tx, err := bt.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, n: c.n}, nil
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := qc.QueryContext(ctx, q, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.n.Add(1)
	}
	return rows, err
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := ec.ExecContext(ctx, q, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.n.Add(1)
	}
	return res, err
}

func (c *countingConn) Ping(ctx context.Context) error {
	c.n.Add(1)
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingTx struct {
	driver.Tx
	n *atomic.Int64
}

func (t *countingTx) Commit() error   { t.n.Add(1); return t.Tx.Commit() }
func (t *countingTx) Rollback() error { t.n.Add(1); return t.Tx.Rollback() }

type countingStmt struct {
	driver.Stmt
	n *atomic.Int64
}

func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.n.Add(1)
	return s.Stmt.Exec(args) //nolint:staticcheck // forwarding the method driver.Stmt requires
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.n.Add(1)
	return s.Stmt.Query(args) //nolint:staticcheck // forwarding the method driver.Stmt requires
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if ec, ok := s.Stmt.(driver.StmtExecContext); ok {
		s.n.Add(1)
		return ec.ExecContext(ctx, args)
	}
	vals, err := plainValues(args)
	if err != nil {
		return nil, err
	}
	return s.Exec(vals)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if qc, ok := s.Stmt.(driver.StmtQueryContext); ok {
		s.n.Add(1)
		return qc.QueryContext(ctx, args)
	}
	vals, err := plainValues(args)
	if err != nil {
		return nil, err
	}
	return s.Query(vals)
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func plainValues(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("counting driver: named parameters need the driver's context interfaces")
		}
		out[i] = a.Value
	}
	return out, nil
}
