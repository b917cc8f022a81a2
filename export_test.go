package byok

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"

	"github.com/gin-gonic/gin"
)

// OwnSessionEntries returns the names of the values in the plugin's own
// session as the request's cookie (and, with Redis, the stored session)
// carries it, sorted. It is for tests that look inside the session.
func OwnSessionEntries(p *Plugin, r *http.Request) ([]string, error) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = r
	s, ok := p.session(c).(*ownSession)
	if !ok {
		return nil, errors.New("not the plugin's own session")
	}
	s.load()
	if s.loadErr != nil {
		return nil, s.loadErr
	}
	var names []string
	if s.cs != nil {
		for _, e := range s.ents {
			names = append(names, e.key)
		}
	} else {
		for k := range s.s.Values {
			names = append(names, fmt.Sprint(k))
		}
	}
	slices.Sort(names)
	return names, nil
}

// OwnSessionValueSize returns the length of a []byte value in the plugin's
// own session as the request carries it (0 if there is none).
func OwnSessionValueSize(p *Plugin, r *http.Request, name string) int {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = r
	b, _ := p.session(c).Get(name).([]byte)
	return len(b)
}
