package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/example/app"
	"github.com/ginbyok/byok/internal/testenv"
)

// TestGuestKeysAtSignIn: a key saved as a guest works after signing in with
// the "keep" box ticked (also from another browser: it is in the database),
// the home page says so once, and signing out leaves the browser nothing;
// with the box unticked the key stays behind and goes at sign-out.
func TestGuestKeysAtSignIn(t *testing.T) {
	setups := []struct {
		name string
		cfg  func(t *testing.T) app.Config
	}{
		{"sqlite and cookies", func(t *testing.T) app.Config { return app.Config{DataDir: t.TempDir()} }},
		{"redis and postgres", func(t *testing.T) app.Config {
			return app.Config{DataDir: t.TempDir(), RedisURL: testenv.RedisURL(t), DatabaseURL: testenv.PostgresURL(t),
				RedisPrefix: testenv.Prefix(t)}
		}},
	}
	tests := []struct {
		name string
		keep bool
	}{
		{"kept", true},
		{"not kept", false},
	}
	for _, setup := range setups {
		t.Run(setup.name, func(t *testing.T) {
			s := start(t, setup.cfg(t))
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					user := "ivan-" + strings.ReplaceAll(tt.name, " ", "-")
					c := newClient(t, s.URL)
					c.setKey("openai", openaiKey, http.StatusCreated)
					c.wantDemo("openai", encrypt.Mask(openaiKey))
					home := c.get("/")
					if !strings.Contains(home.body, `name="keep_keys"`) || !strings.Contains(home.body, "Keep the key saved in this browser as a guest") {
						t.Fatalf("the sign-in form does not offer to keep the guest's key:\n%s", home.body)
					}

					form := url.Values{"user": {user}}
					if tt.keep {
						form.Set("keep_keys", "on")
					}
					r := c.postForm("/login", form)
					if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
						t.Fatalf("POST /login: %d to %q", r.status, r.header.Get("Location"))
					}
					home = c.get("/")
					const notice = "The key you saved as a guest is now kept with your account."
					if strings.Contains(home.body, notice) != tt.keep {
						t.Fatalf("notice shown = %v, want %v:\n%s", !tt.keep, tt.keep, home.body)
					}
					if again := c.get("/"); strings.Contains(again.body, notice) {
						t.Fatal("the notice is shown twice")
					}
					other := newClient(t, s.URL)
					other.login(user)
					if tt.keep {
						c.wantDemo("openai", encrypt.Mask(openaiKey))
						other.wantDemo("openai", encrypt.Mask(openaiKey))
						if log := s.log.String(); !strings.Contains(log, "guest keys moved to the account") || !strings.Contains(log, "keys=1") {
							t.Errorf("the log does not count the adopted keys:\n%s", log)
						}
					} else {
						c.wantKeyRequired("openai")
						other.wantKeyRequired("openai")
					}

					out := c.postForm("/logout", nil)
					if out.status != http.StatusSeeOther {
						t.Fatalf("POST /logout: %d", out.status)
					}
					base, _ := url.Parse(s.URL)
					for _, ck := range c.http.Jar.Cookies(base) {
						if ck.Name == "byok" {
							t.Errorf("the plugin's session cookie survived sign-out")
						}
					}
					// The guest left behind has no key, kept or not.
					c.wantKeyRequired("openai")
					if tt.keep {
						other.wantDemo("openai", encrypt.Mask(openaiKey))
					}
					noSentinel(t, "the home page", home.body)
					noSentinel(t, "the log", s.log.String())
				})
			}
		})
	}
}

// TestGuestKeysAtSignInDuringRedisOutage: with the session store (Redis)
// down, the sign-in still works, the guest's key is not moved, and the home
// page says so.
func TestGuestKeysAtSignInDuringRedisOutage(t *testing.T) {
	rs := testenv.StartRedis(t)
	s := start(t, app.Config{DataDir: t.TempDir(), RedisURL: rs.URL(), RedisPrefix: testenv.Prefix(t)})
	c := newClient(t, s.URL)
	c.setKey("openai", openaiKey, http.StatusCreated)

	rs.Stop()
	r := c.postForm("/login", url.Values{"user": {"judy"}, "keep_keys": {"on"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST /login with Redis down: %d", r.status)
	}
	home := c.get("/")
	if !strings.Contains(home.body, "Signed in as <span class=\"font-semibold\">judy</span>") ||
		!strings.Contains(home.body, "could not be moved to your account") {
		t.Fatalf("GET / after a failed move does not say so:\n%s", home.body)
	}
	if log := s.log.String(); !strings.Contains(log, "guest keys not moved to the account") {
		t.Errorf("the failure is not logged:\n%s", log)
	}
	rs.Start()
	c.wantKeyRequired("openai")
	noSentinel(t, "the log", s.log.String())
}
