package byok

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/hybrid"
	"github.com/ginbyok/byok/stores/redisstore"
)

// anonKey is the session entry that holds an anonymous visitor's id.
const anonKey = "byok.anon"

// anonIDLen is the length of an anonymous id: 16 random bytes, base64url.
const anonIDLen = 22

// ctxSession is the gin context key under which the plugin keeps the session
// it opened itself (when the host has no sessions middleware). It is not
// sessions.DefaultKey, so a host using SessionsMany is not disturbed.
type ctxSession struct{}

// session returns the request's session: the host's gin-contrib session when
// its middleware ran, else the plugin's own, opened lazily (the cookie is
// read only when a value is first needed).
func (p *Plugin) session(c *gin.Context) stores.Session {
	if v, ok := c.Get(sessions.DefaultKey); ok {
		if s, ok := v.(sessions.Session); ok {
			return s
		}
	}
	if v, ok := c.Get(ctxSession{}); ok {
		if s, ok := v.(*ownSession); ok && s.r == c.Request {
			return s
		}
	}
	s := &ownSession{store: p.sessions, name: p.opts.sessionName, r: c.Request, w: c.Writer, p: p}
	c.Set(ctxSession{}, s)
	return s
}

// scope builds the request's scope. With create, an anonymous visitor
// without an id gets one (stored in the session, saved with the next write).
func (p *Plugin) scope(c *gin.Context, create bool) stores.Scope {
	sc := stores.Scope{Session: p.session(c)}
	if p.opts.user != nil {
		sc.UserID = p.opts.user(c)
	}
	if o, ok := sc.Session.(*ownSession); ok && sc.UserID != "" && p.epochKey != nil {
		o.readWith(p.epochKey(sc.UserID))
	}
	if id, ok := sc.Session.Get(anonKey).(string); ok && validAnonID(id) {
		sc.AnonID = id
	} else if create && sc.UserID == "" {
		sc.AnonID = newAnonID()
		sc.Session.Set(anonKey, sc.AnonID)
	}
	return sc
}

// newAnonID returns 16 random bytes, base64url without padding.
func newAnonID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func validAnonID(s string) bool {
	if len(s) != anonIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// ownSession is the plugin's session when the host has none, loaded on
// first use. With the plugin's cookie store it keeps the values itself (no
// gorilla session, no map); with any other store it is a gorilla session of
// that store. It implements stores.Session.
type ownSession struct {
	store sessions.Store
	name  string
	r     *http.Request
	w     http.ResponseWriter
	p     *Plugin
	dirty bool

	loaded  bool
	loadErr error        // why the stored session could not be read, if it could not
	cs      *cookieStore // the fast path, when the store is the plugin's cookie store
	ents    entries      // values, with cs
	s       *gsessions.Session

	// With the plugin's Redis sessions: the key of the user's epoch, read
	// with the session in the same round trip, and what was read (for
	// hybrid.EpochSource; the value serves this request only).
	epochKey string
	epoch    redisstore.Fetched
	hasEpoch bool
}

var _ hybrid.EpochSource = (*ownSession)(nil)

// readWith asks the session to read key (a user's epoch) when it loads,
// in the same Redis round trip. It does nothing once the session is loaded.
func (o *ownSession) readWith(key string) {
	if !o.loaded {
		o.epochKey = key
	}
}

// Epoch returns the epoch read with the session in this request. It
// implements hybrid.EpochSource.
func (o *ownSession) Epoch(key string) (epoch string, found, ok bool) {
	o.load()
	if !o.hasEpoch || key != o.epochKey {
		return "", false, false
	}
	return o.epoch.Value, o.epoch.Found, true
}

// ForgetEpoch drops the epoch read with the session. It implements
// hybrid.EpochSource.
func (o *ownSession) ForgetEpoch(key string) {
	if key == o.epochKey {
		o.hasEpoch, o.epoch = false, redisstore.Fetched{}
	}
}

func (o *ownSession) load() {
	if o.loaded {
		return
	}
	o.loaded = true
	var err error
	if cs, ok := o.store.(*cookieStore); ok {
		o.cs = cs
		o.ents, _, err = cs.load(o.r, o.name)
	} else if rs, ok := o.store.(*redisstore.Store); ok && o.epochKey != "" {
		var fetched []redisstore.Fetched
		o.s, fetched, err = rs.LoadWith(o.r, o.name, o.epochKey)
		if len(fetched) == 1 {
			o.epoch, o.hasEpoch = fetched[0], true
		}
	} else {
		o.s, err = o.store.Get(o.r, o.name)
		if o.s == nil {
			o.s = gsessions.NewSession(o.store, o.name)
		}
	}
	if err != nil {
		// An invalid or outdated cookie (or an unreachable store) gives a
		// new, empty session, as gin-contrib/sessions does.
		o.loadErr = err
		o.p.log.DebugContext(o.r.Context(), "byok: session not loaded; starting a new one", "err", err)
	}
}

// Get returns the session value under key.
func (o *ownSession) Get(key any) any {
	o.load()
	if o.cs == nil {
		return o.s.Values[key]
	}
	if k, ok := key.(string); ok {
		if i := o.ents.index(k); i >= 0 {
			return o.ents[i].val
		}
	}
	return nil
}

// Set sets the session value under key.
func (o *ownSession) Set(key, val any) {
	o.load()
	o.dirty = true
	if o.cs == nil {
		o.s.Values[key] = val
		return
	}
	k, ok := key.(string)
	if !ok {
		o.p.log.Error("byok: session keys must be strings", "type", fmt.Sprintf("%T", key))
		return
	}
	if i := o.ents.index(k); i >= 0 {
		o.ents[i].val = val
	} else {
		o.ents = append(o.ents, entry{k, val})
	}
}

// Delete removes the session value under key.
func (o *ownSession) Delete(key any) {
	o.load()
	o.dirty = true
	if o.cs == nil {
		delete(o.s.Values, key)
		return
	}
	if k, ok := key.(string); ok {
		if i := o.ents.index(k); i >= 0 {
			o.ents = append(o.ents[:i], o.ents[i+1:]...)
		}
	}
}

// Save writes the session (its cookie, and its server-side copy if any) when
// it changed.
func (o *ownSession) Save() error {
	if !o.dirty {
		return nil
	}
	var err error
	if o.cs != nil {
		err = o.cs.save(o.w, o.name, o.ents, o.cs.options.Load())
	} else {
		err = o.s.Save(o.r, o.w)
	}
	if err != nil {
		return err
	}
	o.dirty = false
	return nil
}

// destroy deletes the whole session: the cookie is expired and, with a
// server-side store, the stored session is deleted. Every value in it is the
// plugin's, since the plugin's own session has a name of its own. It fails
// with an error wrapping stores.ErrUnavailable when the stored session could
// not be read or deleted; the cookie is expired in any case.
func (o *ownSession) destroy() error {
	o.load()
	o.dirty = false
	if o.cs != nil {
		o.ents = nil
		opts := *o.cs.options.Load()
		opts.MaxAge = -1
		return o.cs.save(o.w, o.name, nil, &opts)
	}
	keep := o.s.Options
	var gone gsessions.Options
	if keep != nil {
		gone = *keep
	} else {
		gone.Path = "/"
	}
	gone.MaxAge = -1
	o.s.Values = map[any]any{}
	o.s.Options = &gone
	err := o.s.Save(o.r, o.w)
	// Values set later in this request go to a new session.
	o.s = gsessions.NewSession(o.store, o.name)
	o.s.Options = keep
	if err == nil && errors.Is(o.loadErr, stores.ErrUnavailable) {
		err = o.loadErr // the cookie is gone, but the stored session could not be reached
	}
	return err
}

// sessionUnavailable returns the error that kept the plugin's own session
// from being read when its store could not be reached (the session then
// reads as new and empty); nil otherwise, and for a host's session.
func sessionUnavailable(s stores.Session) error {
	o, ok := s.(*ownSession)
	if !ok {
		return nil
	}
	o.load()
	if errors.Is(o.loadErr, stores.ErrUnavailable) {
		return o.loadErr
	}
	return nil
}
