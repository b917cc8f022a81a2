package byok

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/internal/httpx"
)

// handleSetNamed is POST {prefix}: the multi-provider form (byok/multi-form)
// names the provider in a field instead of the path. Form field or JSON
// member "provider"; everything else is POST {prefix}/{provider}.
func (p *Plugin) handleSetNamed(c *gin.Context) {
	kind := httpx.KindOf(c.Request)
	name, prob := readProviderField(c)
	if prob != nil {
		p.fail(c, kind, *prob, "", "")
		return
	}
	if _, ok := p.keys.Provider(name); !ok {
		p.fail(c, kind, httpx.UnknownProvider(), "", "")
		return
	}
	c.Params = append(c.Params, gin.Param{Key: "provider", Value: name})
	p.handleSet(c)
}

// readProviderField reads "provider" from a form or JSON body, leaving the
// body readable again for handleSet.
func readProviderField(c *gin.Context) (string, *httpx.Problem) {
	r := c.Request
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data":
		if err := parseForm(r); err != nil {
			return "", bodyProblem(err, "The form could not be read.")
		}
		return r.PostForm.Get("provider"), nil
	case isJSON(mt):
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return "", bodyProblem(err, "The request body could not be read.")
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		var body struct {
			Provider string `json:"provider"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			pr := httpx.BadRequest("The request body is not valid JSON.")
			return "", &pr
		}
		return body.Provider, nil
	}
	pr := httpx.UnsupportedMediaType()
	return "", &pr
}
