package byok

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"

	"github.com/ginbyok/byok/stores"
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

// ownSession is the plugin's session when the host has none: a gorilla
// session of the configured store, loaded on first use. It implements
// stores.Session.
type ownSession struct {
	store sessions.Store
	name  string
	r     *http.Request
	w     http.ResponseWriter
	p     *Plugin
	s     *gsessions.Session
	dirty bool
}

func (o *ownSession) load() *gsessions.Session {
	if o.s == nil {
		var s *gsessions.Session
		var err error
		if cs, ok := o.store.(*cookieStore); ok {
			s, err = cs.New(o.r, o.name) // read once per request by ownSession itself
		} else {
			s, err = o.store.Get(o.r, o.name)
		}
		if err != nil {
			// An invalid or outdated cookie (or an unreachable store) gives a
			// new, empty session, as gin-contrib/sessions does.
			o.p.log.DebugContext(o.r.Context(), "byok: session not loaded; starting a new one", "err", err)
		}
		if s == nil {
			s = gsessions.NewSession(o.store, o.name)
		}
		o.s = s
	}
	return o.s
}

// Get returns the session value under key.
func (o *ownSession) Get(key any) any { return o.load().Values[key] }

// Set sets the session value under key.
func (o *ownSession) Set(key, val any) {
	o.load().Values[key] = val
	o.dirty = true
}

// Delete removes the session value under key.
func (o *ownSession) Delete(key any) {
	delete(o.load().Values, key)
	o.dirty = true
}

// Save writes the session (its cookie, and its server-side copy if any) when
// it changed.
func (o *ownSession) Save() error {
	if !o.dirty {
		return nil
	}
	if err := o.load().Save(o.r, o.w); err != nil {
		return err
	}
	o.dirty = false
	return nil
}
