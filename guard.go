package byok

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
)

// guardSet holds the request guards of the key routes.
type guardSet struct {
	https       gin.HandlerFunc // nil when HTTPS is not required
	crossOrigin gin.HandlerFunc
	rate        gin.HandlerFunc // nil when there is no write limit
}

// newGuards builds the guards from the options. (Interim: replaced by the
// guards package as soon as it lands.)
func (p *Plugin) newGuards() (*guardSet, error) {
	cop := http.NewCrossOriginProtection()
	for _, o := range p.opts.origins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, optErr("WithTrustedOrigins", "%v", err)
		}
	}
	g := &guardSet{}
	g.crossOrigin = func(c *gin.Context) {
		if err := cop.Check(c.Request); err != nil {
			p.problemPage(c, httpx.CrossOrigin())
			return
		}
		c.Next()
	}
	return g, nil
}
