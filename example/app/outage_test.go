package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ginbyok/byok/encrypt"
	"github.com/ginbyok/byok/example/app"
	"github.com/ginbyok/byok/internal/testenv"
)

// TestSignedInUsersSurviveARedisOutage is why the sign-in lives in a signed
// cookie of the app's own and not in the Redis session: with Redis down the
// app still knows who is signed in, and the plugin serves their keys from
// the database.
func TestSignedInUsersSurviveARedisOutage(t *testing.T) {
	rs := testenv.StartRedis(t)
	s := start(t, app.Config{DataDir: t.TempDir(), RedisURL: rs.URL(), RedisPrefix: testenv.Prefix(t)})
	c := newClient(t, s.URL)
	c.login("heidi")
	c.setKey("openai", openaiKey, http.StatusCreated)
	c.wantDemo("openai", encrypt.Mask(openaiKey))

	rs.Stop()
	if home := c.get("/"); home.status != http.StatusOK || !strings.Contains(home.body, "Signed in as <span class=\"font-semibold\">heidi</span>") {
		t.Fatalf("GET / with Redis down: %d; the user is no longer signed in", home.status)
	}
	c.wantDemo("openai", encrypt.Mask(openaiKey))

	rs.Start()
	c.wantDemo("openai", encrypt.Mask(openaiKey))
	noSentinel(t, "the log", s.log.String())
}
