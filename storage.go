package byok

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-contrib/sessions"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/hybrid"
	"github.com/ginbyok/byok/stores/redisstore"
	"github.com/ginbyok/byok/stores/session"
	"github.com/ginbyok/byok/stores/sqlstore"
)

// sessionMaxAge is the lifetime of the sessions the plugin creates: as long
// as the longest default key lifetime, so a key kept in a session is not
// lost before it expires.
const sessionMaxAge = 30 * 24 * time.Hour

// janitorBatch is how many expired rows the janitor deletes per statement.
const janitorBatch = 500

// sessionStore returns the gin-contrib store of the plugin's own sessions:
// the one given, a Redis store, or an encrypted, signed cookie store, all
// keyed from the master secret.
func (p *Plugin) sessionStore(ring *encrypt.Keyring) (sessions.Store, error) {
	o := p.opts
	if o.sessionStore != nil {
		return o.sessionStore, nil
	}
	cookieOpts := sessions.Options{
		Path:     "/",
		MaxAge:   int(sessionMaxAge / time.Second),
		Secure:   p.requireHTTPS,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if o.redis != nil {
		s, err := redisstore.NewStore(o.redis, ring.SessionKeyPairs(),
			redisstore.WithPrefix(o.redisPrefix+"sess:"),
			redisstore.WithDefaultOptions(cookieOpts))
		if err != nil {
			return nil, fmt.Errorf("byok: redis sessions: %w", err)
		}
		return s, nil
	}
	s, err := newCookieStore(o.clock, ring.SessionKeyPairs()...)
	if err != nil {
		return nil, err
	}
	s.Options(cookieOpts)
	return s, nil
}

// keyStore builds the store of the keys: the one given; with a database,
// the hybrid store (SQL for signed-in users, cached in their session and,
// with Redis, invalidated across replicas; the session for anonymous
// visitors); else the session alone. With a database it also migrates and
// checks the master secret.
func (p *Plugin) keyStore(ctx context.Context, aead encrypt.AEAD) (stores.Store, error) {
	o := p.opts
	if o.store != nil {
		return o.store, nil
	}
	sess, err := session.New(session.WithClock(o.clock), session.WithLogger(o.logger))
	if err != nil {
		return nil, fmt.Errorf("byok: session store: %w", err)
	}
	if o.db == nil {
		return sess, nil
	}
	sql, err := sqlstore.New(o.db, sqlstore.WithTable(o.table), sqlstore.WithClock(o.clock), sqlstore.WithLogger(o.logger))
	if err != nil {
		return nil, fmt.Errorf("%w: WithTable: %w", ErrConfig, err)
	}
	if err := startCheck(ctx, "reaching the database", sql.Ping); err != nil {
		return nil, err
	}
	if err := startCheck(ctx, "migrating the database", sql.Migrate); err != nil {
		return nil, err
	}
	if err := startCheck(ctx, "checking the master secret", func(ctx context.Context) error {
		return checkSecret(ctx, sql, aead)
	}); err != nil {
		return nil, err
	}
	if ring, ok := aead.(*encrypt.Keyring); ok {
		p.warnUnknownKeys(ctx, sql, ring)
	}
	p.sql = sql
	h, err := hybrid.New(sess, sql, o.redis,
		hybrid.WithEpochPrefix(o.redisPrefix+"epoch:"), hybrid.WithClock(o.clock), hybrid.WithLogger(o.logger))
	if err != nil {
		return nil, fmt.Errorf("byok: hybrid store: %w", err)
	}
	if _, ok := p.sessions.(*redisstore.Store); ok && o.sessionStore == nil && o.redis != nil {
		// The plugin's own sessions live in the same Redis as the epochs:
		// a session load also reads the user's epoch (see ownSession).
		p.epochKey = h.EpochKey
	}
	return h, nil
}

// startCheck runs one start-up step against the database with a timeout.
func startCheck(ctx context.Context, what string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		if errors.Is(err, encrypt.ErrWrongSecret) {
			return fmt.Errorf("byok: %s: %w", what, err)
		}
		return fmt.Errorf("byok: %s: %w: %w", what, ErrUnavailable, err)
	}
	return nil
}

// checkSecret verifies the stored check value, or stores one on first
// start. If two replicas start at once, the one that loses the race reads
// and verifies the winner's value.
func checkSecret(ctx context.Context, sql *sqlstore.Store, aead encrypt.AEAD) error {
	cv, err := sql.CheckValue(ctx)
	if errors.Is(err, stores.ErrNotFound) {
		fresh, ferr := encrypt.NewCheckValue(aead)
		if ferr != nil {
			return fmt.Errorf("making the check value: %w", ferr)
		}
		if err := sql.SetCheckValue(ctx, fresh, false); err != nil {
			return fmt.Errorf("storing the check value: %w", err)
		}
		cv, err = sql.CheckValue(ctx)
	}
	if err != nil {
		return fmt.Errorf("reading the check value: %w", err)
	}
	if err := encrypt.VerifyCheckValue(aead, cv); err != nil {
		return fmt.Errorf("the secret given to WithSecret (or WithKeyring/WithAEAD) is not the one the stored keys were sealed with; "+
			"pass the old secret as a previous secret to WithSecret, or run `byok rotate`; nothing was deleted: %w", err)
	}
	// Sealed under a previous key: seal it again under the current one, so
	// the current secret alone is accepted once the keys are rotated.
	if rw, ok := aead.(rewrapper); ok && rw.NeedsRewrap(cv) {
		fresh, err := encrypt.NewCheckValue(aead)
		if err != nil {
			return fmt.Errorf("making the check value: %w", err)
		}
		if err := sql.SetCheckValue(ctx, fresh, true); err != nil {
			return fmt.Errorf("storing the check value: %w", err)
		}
	}
	return nil
}

// warnUnknownKeys logs, at start, how many stored keys are sealed under a
// key the keyring does not hold (an old secret dropped before every row was
// re-sealed): those keys read as missing until the secret is given again.
func (p *Plugin) warnUnknownKeys(ctx context.Context, sql *sqlstore.Store, ring *encrypt.Keyring) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	st, err := sql.Stats(ctx)
	if err != nil {
		p.log.WarnContext(ctx, "byok: could not count keys per secret", "err", err)
		return
	}
	for id, n := range st.ByKeyID {
		if id != 0 && !knowsKeyID(ring, id) {
			p.log.WarnContext(ctx, "byok: stored keys are sealed under a secret that was not given; they read as missing "+
				"until it is passed to WithSecret as a previous secret (nothing is deleted)", "keys", n, "key_id", fmt.Sprintf("%08x", id))
		}
	}
}

// knowsKeyID reports whether the keyring holds the key with this id: it
// answers a ciphertext header naming an unknown id with ErrUnknownKey, and
// any other with an authentication failure.
func knowsKeyID(ring *encrypt.Keyring, id uint32) bool {
	fake := make([]byte, encrypt.HeaderSize+encrypt.NonceSize+encrypt.TagSize)
	fake[0] = encrypt.Version
	binary.BigEndian.PutUint32(fake[1:], id)
	_, err := ring.Decrypt(fake, nil)
	return !errors.Is(err, encrypt.ErrUnknownKey)
}

// janitor deletes expired rows every interval until ctx ends.
func (p *Plugin) janitor(ctx context.Context, every time.Duration) {
	defer close(p.janitorDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.sweep(ctx)
		}
	}
}

// sweep deletes every expired row (sqlstore.DeleteExpired works through
// them in batches of janitorBatch) and audits the count. The plugin runs its
// own ticker rather than sqlstore's StartJanitor so that each sweep is
// audited as key.expired.
func (p *Plugin) sweep(ctx context.Context) int {
	total, err := p.sql.DeleteExpired(ctx, janitorBatch)
	if err != nil && ctx.Err() == nil {
		p.log.WarnContext(ctx, "byok: janitor: deleting expired keys failed", "err", err)
	}
	if total > 0 {
		p.audit(ctx, AuditEvent{Action: EventKeyExpired, Count: total, Reason: "deleted by the janitor"})
	}
	return total
}
