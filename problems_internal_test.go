package byok

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/stores"
	"github.com/ginbyok/byok/stores/hybrid"
)

// A storage failure says "nothing was changed" only when that is true: a
// write that reached SQL but could not invalidate the caches says so.
func TestStorageUnavailableWording(t *testing.T) {
	p := &Plugin{log: slog.New(slog.DiscardHandler)}
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodPost, "/keys/openai", nil)
	tests := []struct {
		name    string
		err     error
		nothing bool
	}{
		{"clean outage", fmt.Errorf("put: %w", stores.ErrUnavailable), true},
		{"not invalidated", fmt.Errorf("put: %w; %w", hybrid.ErrNotInvalidated, stores.ErrUnavailable), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, stores.ErrUnavailable) {
				t.Fatal("test error must be an ErrUnavailable")
			}
			pr := p.problemOf(c, tt.err, "openai")
			if pr.Status != 503 || pr.Code != "storage_unavailable" {
				t.Fatalf("problem = %d %s", pr.Status, pr.Code)
			}
			if got := strings.Contains(pr.Detail, "Nothing was changed"); got != tt.nothing {
				t.Errorf("detail %q: says nothing changed = %v, want %v", pr.Detail, got, tt.nothing)
			}
		})
	}
}
