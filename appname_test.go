package byok_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok"
)

func TestAppNameAndHomeURL(t *testing.T) {
	a := newApp(t, byok.WithAppName("Acme <Chat>"), byok.WithHomeURL("/home"))
	w := a.do(req(kHTML, http.MethodGet, "/keys", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /keys: %d", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{"Acme &lt;Chat&gt;", `href="/home"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "Acme <Chat>") {
		t.Error("app name not escaped")
	}
}

func TestHomeURLMustBeSameSite(t *testing.T) {
	for _, bad := range []string{"https://evil.example/", "//evil.example", "javascript:alert(1)", `/\evil`} {
		_, err := byok.Register(gin.New(), byok.WithSecret(secretA), byok.WithHomeURL(bad))
		if !errors.Is(err, byok.ErrConfig) {
			t.Errorf("WithHomeURL(%q): err = %v, want ErrConfig", bad, err)
		}
	}
}
