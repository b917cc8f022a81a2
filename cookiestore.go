package byok

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-contrib/sessions"
	gsessions "github.com/gorilla/sessions"
)

// cookieStore is the plugin's default session store when there is no Redis:
// the whole session in one cookie, sealed with AES-256-GCM under the
// session encryption key derived from the master secret (previous secrets'
// keys still open). The cookie's name and its issue time are authenticated,
// so a value cannot be moved to another cookie or kept past MaxAge.
//
// It replaces gorilla's securecookie store, whose gob decoding and HMAC
// setup cost more than the rest of a guarded request together. Values must
// have string keys and string, []byte, bool or int values — everything the
// plugin keeps in a session.
//
//	cookie = base64url( 0x01 | nonce (12) | GCM( issued (8, unix seconds) | values ) )
//	values = count (uvarint) | { key (uvarint length, bytes) | tag | value }…
type cookieStore struct {
	aeads   []cipher.AEAD // primary first
	now     func() time.Time
	options atomic.Pointer[gsessions.Options]
}

var _ sessions.Store = (*cookieStore)(nil)

const (
	cookieVersion   = 0x01
	cookieMaxLength = 4096 // what browsers keep per cookie
	cookieAD        = "ginbyok/session/v1\x00"
)

var (
	errCookie        = errors.New("byok: invalid session cookie")
	errCookieExpired = errors.New("byok: session cookie expired")
	errCookieValue   = errors.New("byok: session value of an unsupported type")
	errCookieLarge   = errors.New("byok: session too large for a cookie")
)

// newCookieStore returns a cookie store keyed by the encryption keys of
// keyPairs (authentication, encryption, … as encrypt.Keyring.SessionKeyPairs
// gives them; GCM authenticates, so the authentication keys are not used).
func newCookieStore(now func() time.Time, keyPairs ...[]byte) (*cookieStore, error) {
	s := &cookieStore{now: now}
	for i := 1; i < len(keyPairs); i += 2 {
		block, err := aes.NewCipher(keyPairs[i])
		if err != nil {
			return nil, fmt.Errorf("byok: session key: %w", err)
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("byok: session key: %w", err)
		}
		s.aeads = append(s.aeads, g)
	}
	if len(s.aeads) == 0 {
		return nil, errors.New("byok: no session encryption key")
	}
	s.Options(sessions.Options{Path: "/", MaxAge: int(sessionMaxAge / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return s, nil
}

// Options sets the cookie options of sessions created from now on. It
// implements sessions.Store.
func (s *cookieStore) Options(o sessions.Options) { s.options.Store(o.ToGorillaOptions()) }

// Get returns the named session of the request, cached per request by
// gorilla's registry. It implements gorilla's sessions.Store.
func (s *cookieStore) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return gsessions.GetRegistry(r).Get(s, name)
}

// New reads the named session from the request's cookie, or starts an empty
// one; the error says why a cookie present was not used. It implements
// gorilla's sessions.Store.
func (s *cookieStore) New(r *http.Request, name string) (*gsessions.Session, error) {
	sess := gsessions.NewSession(s, name)
	opts := *s.options.Load()
	sess.Options = &opts
	sess.IsNew = true
	ents, found, err := s.load(r, name)
	if err != nil || !found {
		return sess, err
	}
	for _, e := range ents {
		sess.Values[e.key] = e.val
	}
	sess.IsNew = false
	return sess, nil
}

// load reads the named session's values from the request's cookie. found
// is false when there is no such cookie.
func (s *cookieStore) load(r *http.Request, name string) (ents entries, found bool, err error) {
	v, ok := readCookie(r, name)
	if !ok {
		return nil, false, nil
	}
	ents, err = s.decode(name, v, s.options.Load().MaxAge)
	return ents, err == nil, err
}

// readCookie finds the value of the named cookie without parsing the others.
func readCookie(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			part := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// save writes values as the named cookie with opts.
func (s *cookieStore) save(w http.ResponseWriter, name string, ents entries, opts *gsessions.Options) error {
	if opts.MaxAge < 0 {
		http.SetCookie(w, gsessions.NewCookie(name, "", opts))
		return nil
	}
	v, err := s.encode(name, ents)
	if err != nil {
		return err
	}
	http.SetCookie(w, gsessions.NewCookie(name, v, opts))
	return nil
}

// Save writes the session as a cookie, or deletes the cookie when MaxAge is
// negative. It implements gorilla's sessions.Store.
func (s *cookieStore) Save(_ *http.Request, w http.ResponseWriter, sess *gsessions.Session) error {
	ents := make(entries, 0, len(sess.Values))
	for k, v := range sess.Values {
		ks, ok := k.(string)
		if !ok {
			return fmt.Errorf("%w: key of type %T", errCookieValue, k)
		}
		ents = append(ents, entry{ks, v})
	}
	return s.save(w, sess.Name(), ents, sess.Options)
}

// encode seals values for the cookie name.
func (s *cookieStore) encode(name string, ents entries) (string, error) {
	plain := make([]byte, 8, 64)
	binary.BigEndian.PutUint64(plain, uint64(s.now().Unix())) //nolint:gosec // times before 1970 do not occur; the value is only compared
	plain, err := appendEntries(plain, ents)
	if err != nil {
		return "", err
	}
	g := s.aeads[0]
	out := make([]byte, 1+g.NonceSize(), 1+g.NonceSize()+len(plain)+g.Overhead())
	out[0] = cookieVersion
	_, _ = rand.Read(out[1:])                                // crypto/rand.Read never fails (Go 1.24+)
	out = g.Seal(out, out[1:], plain, []byte(cookieAD+name)) //nolint:gosec // the nonce out[1:13] was just read from crypto/rand
	v := base64.RawURLEncoding.EncodeToString(out)
	if len(name)+len(v) > cookieMaxLength {
		return "", fmt.Errorf("%w: %w: %d bytes", errCookieLarge, ErrTooLarge, len(v))
	}
	return v, nil
}

// decode opens a cookie value and decodes its values.
func (s *cookieStore) decode(name, value string, maxAge int) (entries, error) {
	if len(value) > cookieMaxLength {
		return nil, errCookie
	}
	buf := make([]byte, base64.RawURLEncoding.DecodedLen(len(value)))
	n, err := base64.RawURLEncoding.Decode(buf, []byte(value))
	if err != nil {
		return nil, errCookie
	}
	buf = buf[:n]
	const nonce = 12
	if len(buf) < 1+nonce || buf[0] != cookieVersion {
		return nil, errCookie
	}
	ad := []byte(cookieAD + name)
	var plain []byte
	for i, g := range s.aeads {
		ct := buf[1+nonce:]
		if i < len(s.aeads)-1 {
			ct = bytes.Clone(ct) // Open in place destroys ct when it fails
		}
		if plain, err = g.Open(ct[:0], buf[1:1+nonce], ct, ad); err == nil {
			break
		}
	}
	if err != nil || len(plain) < 8 {
		return nil, errCookie
	}
	issued := int64(binary.BigEndian.Uint64(plain)) //nolint:gosec // authenticated value written by encode from a non-negative time
	if maxAge > 0 && s.now().Unix()-issued > int64(maxAge) {
		return nil, errCookieExpired
	}
	return decodeEntries(plain[8:])
}

// entry is one session value; entries are a session's values, in no order,
// with distinct keys. A handful of values are looked up faster in a slice
// than in a map, and decoded without building one.
type entry struct {
	key string
	val any
}

type entries []entry

func (es entries) index(key string) int {
	for i := range es {
		if es[i].key == key {
			return i
		}
	}
	return -1
}

// Value tags of the compact encoding.
const (
	tagString = 's'
	tagBytes  = 'b'
	tagTrue   = 't'
	tagFalse  = 'f'
	tagInt    = 'i'
)

// appendEntries appends the compact encoding of ents to buf.
func appendEntries(buf []byte, ents entries) ([]byte, error) {
	buf = binary.AppendUvarint(buf, uint64(len(ents)))
	for _, e := range ents {
		buf = appendChunk(buf, e.key)
		switch v := e.val.(type) {
		case string:
			buf = append(buf, tagString)
			buf = appendChunk(buf, v)
		case []byte:
			buf = append(buf, tagBytes)
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		case bool:
			if v {
				buf = append(buf, tagTrue)
			} else {
				buf = append(buf, tagFalse)
			}
		case int:
			buf = append(buf, tagInt)
			buf = binary.AppendVarint(buf, int64(v))
		default:
			return nil, fmt.Errorf("%w: %q holds a %T", errCookieValue, e.key, v)
		}
	}
	return buf, nil
}

func appendChunk(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decodeEntries decodes the compact encoding. Strings share one allocation;
// byte slices point into d, which the caller hands over. A key given twice
// keeps its last value.
func decodeEntries(d []byte) (entries, error) {
	n, w := binary.Uvarint(d)
	if w <= 0 || n > uint64(len(d)) {
		return nil, errCookie
	}
	d = d[w:]
	str := string(d) // one copy for every string key and value
	off := 0
	ents := make(entries, 0, n)
	chunk := func() (int, int, bool) {
		l, w := binary.Uvarint(d[off:])
		if w <= 0 || l > uint64(len(d)-off-w) { //nolint:gosec // off+w ≤ len(d): the difference is not negative
			return 0, 0, false
		}
		start := off + w
		off = start + int(l) //nolint:gosec // l ≤ len(d) was checked above
		return start, off, true
	}
	for range n {
		a, b, ok := chunk()
		if !ok || off >= len(d) {
			return nil, errCookie
		}
		e := entry{key: str[a:b]}
		tag := d[off]
		off++
		switch tag {
		case tagString:
			a, b, ok := chunk()
			if !ok {
				return nil, errCookie
			}
			e.val = str[a:b]
		case tagBytes:
			a, b, ok := chunk()
			if !ok {
				return nil, errCookie
			}
			e.val = d[a:b:b]
		case tagTrue, tagFalse:
			e.val = tag == tagTrue
		case tagInt:
			v, w := binary.Varint(d[off:])
			if w <= 0 || v < math.MinInt || v > math.MaxInt {
				return nil, errCookie
			}
			off += w
			e.val = int(v)
		default:
			return nil, errCookie
		}
		if i := ents.index(e.key); i >= 0 {
			ents[i] = e
		} else {
			ents = append(ents, e)
		}
	}
	if off != len(d) {
		return nil, errCookie
	}
	return ents, nil
}
