package guards

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
)

// CrossOriginOptions configure CrossOrigin.
type CrossOriginOptions struct {
	// TrustedOrigins may send unsafe requests from another origin; each is
	// "scheme://host[:port]" exactly, e.g. "https://app.example.com".
	// Default none: same origin only.
	TrustedOrigins []string
	// Render renders the cross_origin problem for browsers and htmx; nil
	// means a minimal built-in page.
	Render RenderFunc
}

// CrossOrigin refuses unsafe requests (anything but GET, HEAD and OPTIONS)
// that a browser sent from another origin, with 403 cross_origin. It is
// net/http's CrossOriginProtection (Go 1.25+): Sec-Fetch-Site decides, and
// for older browsers the Origin header is compared with Host; requests
// carrying neither (non-browser clients) pass. No tokens are involved.
//
// It returns an error if a trusted origin is malformed.
func CrossOrigin(opts CrossOriginOptions) (gin.HandlerFunc, error) {
	p := http.NewCrossOriginProtection()
	for _, o := range opts.TrustedOrigins {
		if err := p.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("guards: trusted origin: %w", err)
		}
	}
	return func(c *gin.Context) {
		if err := p.Check(c.Request); err != nil {
			deny(c, httpx.CrossOrigin(), opts.Render)
			return
		}
		c.Next()
	}, nil
}
