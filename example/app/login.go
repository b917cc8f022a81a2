package app

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	byok "github.com/ginbyok/byok"
	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/html"
)

// Sign-in, the example's way.
//
// Who is signed in is kept in a cookie of the app's own, signed with HMAC-SHA256
// under a key derived (HKDF) from the master secret — not in the plugin's
// session. With REDIS_URL the session lives in Redis; if the signed-in user's
// identity lived there too, a Redis outage would sign everyone out, and the
// plugin could no longer serve their keys from the database, which it is
// built to do (DESIGN.md §4: "If Redis is down, signed-in users are served
// from SQL"). A self-contained signed cookie needs nothing but the secret to
// check, so signed-in users keep working while Redis is down.
//
// The cookie holds the user name and an expiry, both covered by the MAC; it
// is HttpOnly and SameSite=Lax, and Secure over HTTPS. This is a demo: there
// is no password, anyone may sign in as any name.

const (
	// loginCookie is the name of the sign-in cookie.
	loginCookie = "byok_example_user"
	// loginTTL is how long a sign-in lasts.
	loginTTL = 7 * 24 * time.Hour
	// loginInfo labels the HKDF derivation of the cookie key, so it is
	// unlike every key the plugin derives from the same secret.
	loginInfo = "ginbyok example: sign-in cookie v1"
	// maxUserLen bounds a user name.
	maxUserLen = 64
	// userKey is the gin context key of the signed-in user's name.
	userKey = "example.user"
)

// errBadUser is a user name that cannot be used.
var errBadUser = errors.New("use 1 to 64 letters, digits, dots, dashes, underscores or @")

// signer signs and checks sign-in cookies. It signs with the key of the
// current secret and accepts the keys of the previous ones, so rotating the
// secret signs nobody out.
type signer struct {
	keys [][]byte // keys[0] signs
}

// newSigner derives one cookie key per secret.
func newSigner(current string, previous ...string) (*signer, error) {
	s := &signer{}
	for _, sec := range append([]string{current}, previous...) {
		raw, err := encrypt.ParseSecret(sec)
		if err != nil {
			return nil, fmt.Errorf("%w: secret: %w", ErrConfig, err)
		}
		k, err := hkdf.Key(sha256.New, raw, nil, loginInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("example: deriving the sign-in key: %w", err)
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// mac is the cookie's MAC over the version, the user and the expiry.
func mac(key []byte, user string, exp int64) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("v1\x00"))
	h.Write([]byte(user))
	h.Write([]byte("\x00"))
	h.Write([]byte(strconv.FormatInt(exp, 10)))
	return h.Sum(nil)
}

// sign returns the cookie value for user, valid until exp:
// v1.<base64url user>.<unix exp>.<base64url mac>.
func (s *signer) sign(user string, exp time.Time) string {
	e := exp.Unix()
	return "v1." + base64.RawURLEncoding.EncodeToString([]byte(user)) + "." +
		strconv.FormatInt(e, 10) + "." + base64.RawURLEncoding.EncodeToString(mac(s.keys[0], user, e))
}

// verify returns the user a cookie value names, if its MAC checks under any
// key and it has not expired at now.
func (s *signer) verify(value string, now time.Time) (string, bool) {
	parts := strings.Split(value, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return "", false
	}
	u, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return "", false
	}
	user := string(u)
	ok := false
	for _, k := range s.keys {
		if hmac.Equal(got, mac(k, user, exp)) {
			ok = true
		}
	}
	if !ok || now.Unix() >= exp || checkUser(user) != nil {
		return "", false
	}
	return user, true
}

// checkUser accepts 1 to 64 ASCII letters, digits, '.', '-', '_' and '@'.
func checkUser(u string) error {
	if u == "" || len(u) > maxUserLen {
		return errBadUser
	}
	for _, r := range u {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '-', r == '_', r == '@':
		default:
			return errBadUser
		}
	}
	return nil
}

// identify puts the signed-in user's name on the gin context (userKey) when
// the request carries a valid sign-in cookie.
func identify(s *signer, now func() time.Time) gin.HandlerFunc {
	return func(c *gin.Context) {
		if ck, err := c.Request.Cookie(loginCookie); err == nil {
			if user, ok := s.verify(ck.Value, now()); ok {
				c.Set(userKey, user)
			}
		}
		c.Next()
	}
}

// setLoginCookie writes the sign-in cookie; an empty value with maxAge -1
// deletes it.
func setLoginCookie(c *gin.Context, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     loginCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.Request.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}

// loginHandler signs the form's "user" in and sends the browser home; a
// name that cannot be used gets the home page again with the error.
//
// When the form's "keep_keys" box is ticked (the home page offers it to a
// guest who saved keys, ticked), the keys saved as a guest become the
// user's. It is asked, not assumed: on a shared computer they may be
// someone else's. Only their number is logged and shown.
func loginHandler(s *signer, pg *pages, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		user := strings.TrimSpace(c.PostForm("user"))
		if err := checkUser(user); err != nil {
			pg.renderHome(c, http.StatusUnprocessableEntity, user, "That name cannot be used: "+err.Error()+".")
			return
		}
		setLoginCookie(c, s.sign(user, pg.now().Add(loginTTL)), int(loginTTL/time.Second))
		if c.PostForm("keep_keys") != "" {
			// The plugin learns the user through WithUser, from the gin
			// context, which identify filled from the request's cookie:
			// the new cookie counts from the next request, so set it here.
			c.Set(userKey, user)
			n, err := pg.kit.AdoptAnonymousKeys(c)
			switch {
			case err != nil:
				log.WarnContext(c.Request.Context(), "guest keys not moved to the account", "user", user, "err", err)
				setNotice(c, noticeNotAdopted)
			case n > 0:
				log.InfoContext(c.Request.Context(), "guest keys moved to the account", "user", user, "keys", n)
				setNotice(c, noticeAdopted+strconv.Itoa(n))
			}
		}
		c.Redirect(http.StatusSeeOther, "/")
	}
}

// logoutHandler removes everything the plugin kept in the browser's session
// (so a shared browser keeps nothing), deletes the sign-in cookie and sends
// the browser home.
func logoutHandler(kit *byok.Plugin, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := kit.ForgetSession(c); err != nil {
			log.WarnContext(c.Request.Context(), "the key session was not fully removed at sign-out", "err", err)
		}
		setLoginCookie(c, "", -1)
		c.Redirect(http.StatusSeeOther, "/")
	}
}

// The notice cookie carries what a sign-in did across its redirect, to be
// shown once on the home page: noticeAdopted and a count, or
// noticeNotAdopted.
const (
	noticeCookie     = "byok_example_notice"
	noticeAdopted    = "adopted:"
	noticeNotAdopted = "not-adopted"
)

// setNotice sets the notice cookie for the next page; an empty value with
// maxAge -1 deletes it.
func setNotice(c *gin.Context, value string) {
	maxAge := 60
	if value == "" {
		maxAge = -1
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     noticeCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.Request.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
}

// takeNotice reads and deletes the notice cookie and returns the alert it
// stands for, or nil.
func takeNotice(c *gin.Context) *html.Alert {
	ck, err := c.Request.Cookie(noticeCookie)
	if err != nil {
		return nil
	}
	setNotice(c, "")
	if ck.Value == noticeNotAdopted {
		return &html.Alert{Kind: html.KindWarning, Style: html.StyleSoft,
			Message: "The keys you saved as a guest could not be moved to your account just now (storage is unavailable). Please add them again."}
	}
	v, ok := strings.CutPrefix(ck.Value, noticeAdopted)
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n < 1 || n > 99 {
		return nil
	}
	what := "The key you saved as a guest is"
	if n > 1 {
		what = "The " + v + " keys you saved as a guest are"
	}
	return &html.Alert{Kind: html.KindSuccess, Style: html.StyleSoft, Message: what + " now kept with your account."}
}

// sameOrigin refuses cross-origin form posts (net/http's
// CrossOriginProtection: Sec-Fetch-Site, then Origin), so another site cannot
// sign a visitor in or out.
func sameOrigin(cop *http.CrossOriginProtection, pg *pages) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := cop.Check(c.Request); err != nil {
			pg.renderError(c, http.StatusForbidden, "Cross-origin request refused",
				"This form can only be sent from this site's own pages.")
			c.Abort()
			return
		}
		c.Next()
	}
}
