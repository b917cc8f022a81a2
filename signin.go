package byok

import (
	"context"
	"fmt"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/hybrid"
	"github.com/ginbyok/byok/stores/session"
)

// sessionEntries are the session values the plugin may keep: the anonymous
// id, the session-kept keys, the signed-in user's cache and a flash.
var sessionEntries = []string{anonKey, session.DefaultKey, hybrid.DefaultCacheKey, flashKey}

// AdoptAnonymousKeys makes the keys the visitor saved before signing in
// (kept in the session under their anonymous id) keys of the signed-in
// user, and returns how many it adopted.
//
// Call it right after the host signs the user in — in the sign-in request,
// once [WithUser] returns the new user there (set the value it reads on the
// gin context first), or in the next request. Keys are not adopted by
// themselves: on a shared computer that would hand a guest's keys to
// whoever signs in next, so the host decides, ideally by asking ("Keep the
// keys you added before signing in?").
//
// Each live anonymous key is opened, sealed again for the user, and stored
// where the user's keys live (SQL with [WithDB], else the session), keeping
// its creation and expiry times; a key.adopted event is audited. A provider
// the user already has a live key for keeps the user's key: the guest's key
// is not adopted and is deleted (key.deleted). Expired anonymous keys are
// dropped. Once every key is stored, the anonymous keys and id are removed
// from the session, which is saved once. A key that does not open (sealed
// under a secret no longer given) is audited as key.decrypt_failed and,
// with [WithDB], left in the session; without it the session holds one
// owner's keys at a time, and the user's replace it. A key the user stores
// in another session at the very same moment may be replaced by the
// adopted one.
//
// Without a signed-in user it fails with [ErrNotSignedIn]. When the storage
// cannot be reached it fails with an error wrapping [ErrUnavailable] (other
// store errors, such as [ErrTooLarge], likewise) and the session is left as
// it was: the anonymous keys stay. With [WithDB], keys stored before the
// failure are the user's already (the count returned with the error says
// how many), and a second call finishes the job; without it a failure
// undoes everything. No error, log line or event holds a key.
func (p *Plugin) AdoptAnonymousKeys(c *gin.Context) (int, error) {
	ctx := c.Request.Context()
	sess := p.session(c)
	var user string
	if p.opts.user != nil {
		user = p.opts.user(c)
	}
	if user == "" {
		if p.opts.user == nil {
			return 0, fmt.Errorf("%w: WithUser is not set", ErrNotSignedIn)
		}
		return 0, ErrNotSignedIn
	}
	if err := sessionUnavailable(sess); err != nil {
		return 0, fmt.Errorf("byok: adopting anonymous keys: reading the session: %w", err)
	}
	anonID, _ := sess.Get(anonKey).(string)
	if !validAnonID(anonID) {
		return 0, nil
	}

	held := &heldSession{Session: sess}
	before := takeSnapshot(sess)
	res, err := p.keys.adopt(ctx,
		stores.Scope{AnonID: anonID, Session: held},
		stores.Scope{UserID: user, Session: held})
	if err == nil && held.pending {
		if err = sess.Save(); err != nil {
			err = fmt.Errorf("byok: adopting anonymous keys: saving the session: %w: %w", ErrUnavailable, err)
		}
	}
	if err != nil {
		// Nothing leaves the anonymous side unless everything was stored.
		before.restore(sess)
		n := 0
		if p.sql != nil || p.opts.store != nil {
			// Keys stored before the failure stay the user's. (In a
			// session-only setup the restore above took them back.)
			n = len(res.adopted)
			p.auditAll(ctx, res.adopted)
		}
		p.log.WarnContext(ctx, "byok: anonymous keys not adopted", "user", user, "adopted_before_failure", n, "err", err)
		return n, err
	}
	p.auditAll(ctx, res.adopted)
	p.auditAll(ctx, res.dropped)
	if n := len(res.adopted) + len(res.dropped) + res.unreadable; n > 0 {
		p.log.InfoContext(ctx, "byok: anonymous keys adopted", "user", user,
			"adopted", len(res.adopted), "skipped", len(res.dropped), "unreadable", res.unreadable)
	}
	return len(res.adopted), nil
}

func (p *Plugin) auditAll(ctx context.Context, events []AuditEvent) {
	for _, e := range events {
		p.audit(ctx, e)
	}
}

// adoption is what [Manager.adopt] did, as the events to audit: keys
// adopted (key.adopted), and anonymous keys deleted because the user had
// one for the provider (key.deleted).
type adoption struct {
	adopted, dropped []AuditEvent
	unreadable       int
}

// adopt moves anon's live keys to user (see [Plugin.AdoptAnonymousKeys]).
// Both scopes share one session, whose saves the caller holds back.
func (m *Manager) adopt(ctx context.Context, anon, user stores.Scope) (adoption, error) {
	var res adoption
	recs, err := m.store.List(ctx, anon)
	if err != nil {
		return res, fmt.Errorf("byok: listing anonymous keys: %w", err)
	}
	if len(recs) == 0 {
		anon.Session.Delete(anonKey)
		return res, anon.Session.Save()
	}
	theirs, err := m.store.List(ctx, user)
	if err != nil {
		return res, fmt.Errorf("byok: listing the user's keys: %w", err)
	}
	has := make(map[string]bool, len(theirs))
	for _, r := range theirs {
		has[r.Provider] = true
	}

	from, to := anon.Owner(), user.Owner()
	now := m.p.now()
	done := map[string]bool{} // providers whose anonymous key may go
	for _, rec := range recs {
		if rec.Expired(now) {
			continue // dropped with the entry
		}
		if has[rec.Provider] {
			done[rec.Provider] = true
			res.dropped = append(res.dropped, AuditEvent{Action: EventKeyDeleted, Owner: from, Provider: rec.Provider,
				Reason: "not adopted at sign-in: " + to + " already has a key for this provider"})
			continue
		}
		plain, err := m.aead.Decrypt(rec.Ciphertext, encrypt.AssociatedData(from, rec.Provider))
		if err != nil {
			res.unreadable++
			m.p.audit(ctx, AuditEvent{Action: EventKeyDecryptFailed, Owner: from, Provider: rec.Provider, Reason: decryptReason(err)})
			continue
		}
		fp := m.ring.Fingerprint(string(plain))
		ct, err := m.aead.Encrypt(plain, encrypt.AssociatedData(to, rec.Provider))
		clear(plain)
		if err != nil {
			return res, fmt.Errorf("byok: sealing the %s key: %w", rec.Provider, err)
		}
		next := stores.Record{
			UserID:     user.UserID,
			Provider:   rec.Provider,
			Ciphertext: ct,
			KeyID:      m.keyID(ct),
			CreatedAt:  rec.CreatedAt,
			UpdatedAt:  now,
			ExpiresAt:  rec.ExpiresAt,
		}
		replaced, err := m.store.Put(ctx, user, next)
		if err != nil {
			return res, fmt.Errorf("byok: adopting the %s key: %w", rec.Provider, err)
		}
		if replaced {
			m.p.log.WarnContext(ctx, "byok: an adopted key replaced one stored meanwhile", "provider", rec.Provider, "owner", to)
		}
		done[rec.Provider] = true
		res.adopted = append(res.adopted, AuditEvent{Action: EventKeyAdopted, UserID: user.UserID, Owner: to,
			Provider: rec.Provider, Fingerprint: fp, Reason: "saved before sign-in as " + from})
	}

	// Every key is stored: remove the anonymous ones. Those still listed
	// are deleted one by one. When the anonymous and the user's keys share
	// one session entry (a session-only setup), the user's keys have
	// replaced them already and the anonymous scope lists nothing.
	left, err := m.store.List(ctx, anon)
	if err != nil {
		return res, fmt.Errorf("byok: listing anonymous keys: %w", err)
	}
	remain := 0
	for _, r := range left {
		if !done[r.Provider] {
			remain++
			continue
		}
		if _, err := m.store.Delete(ctx, anon, r.Provider); err != nil {
			return res, fmt.Errorf("byok: removing the anonymous %s key: %w", r.Provider, err)
		}
	}
	if remain == 0 {
		anon.Session.Delete(anonKey)
	}
	return res, anon.Session.Save()
}

// ForgetSession removes everything the plugin keeps in the request's
// session: the anonymous visitor's id and keys, the signed-in user's cached
// copies, a pending notice. Call it when the user signs out, so that a
// shared browser keeps nothing of theirs. Keys kept in SQL ([WithDB]) stay
// the user's; keys kept only in the session (a signed-in user without
// [WithDB], or an anonymous visitor) are gone, and a key.cleared event says
// how many. With the plugin's own session the whole session is deleted
// (the cookie expires; with [WithRedis] the stored session is deleted); a
// host's session loses the plugin's entries only.
//
// It fails with an error wrapping [ErrUnavailable] when the session could
// not be saved or its server-side copy not be reached (the plugin's own
// cookie is expired all the same).
func (p *Plugin) ForgetSession(c *gin.Context) error {
	ctx := c.Request.Context()
	sess := p.session(c)
	if owner, n := p.sessionKeys(sess); n > 0 {
		e := AuditEvent{Action: EventKeyCleared, Owner: owner, Count: n, Reason: "session forgotten at sign-out"}
		if u, ok := strings.CutPrefix(owner, "u:"); ok {
			e.UserID = u
		}
		p.audit(ctx, e)
	}
	var err error
	if o, ok := sess.(*ownSession); ok {
		err = o.destroy()
	} else {
		for _, k := range sessionEntries {
			sess.Delete(k)
		}
		err = sess.Save()
	}
	if err != nil {
		return fmt.Errorf("byok: forgetting the session: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// sessionKeys reads the owner and the number of live keys of the session's
// key entry, without opening any.
func (p *Plugin) sessionKeys(sess stores.Session) (owner string, n int) {
	var b []byte
	switch v := sess.Get(session.DefaultKey).(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return "", 0
	}
	owner, recs, err := session.Decode(b)
	if err != nil {
		return "", 0
	}
	now := p.now()
	for _, r := range recs {
		if !r.Expired(now) {
			n++
		}
	}
	return owner, n
}

// heldSession is a session whose saves are held back: Save only notes that
// one is due, so a series of store calls becomes one save at the end, and
// nothing is saved if one of them fails.
type heldSession struct {
	stores.Session
	pending bool
}

// Save notes that the session must be saved.
func (h *heldSession) Save() error {
	h.pending = true
	return nil
}

// snapshot is the value of each of the plugin's session entries at one
// moment.
type snapshot map[string]any

func takeSnapshot(sess stores.Session) snapshot {
	s := snapshot{}
	for _, k := range sessionEntries {
		s[k] = sess.Get(k)
	}
	return s
}

// restore puts the entries back as they were, in memory; the session is
// not saved.
func (s snapshot) restore(sess stores.Session) {
	for k, v := range s {
		if v == nil {
			sess.Delete(k)
		} else {
			sess.Set(k, v)
		}
	}
}
