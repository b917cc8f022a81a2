package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestRecovererLogsNoPanicValue(t *testing.T) {
	gin.SetMode(gin.TestMode)
	const secret = "sk-proj-PANICSENTINEL0123456789abcdef"
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := gin.New()
	r.Use(recoverer(log), requestLog(log), securityHeaders)
	r.GET("/boom", func(*gin.Context) { panic("failed with key " + secret) })

	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/boom?api_key="+secret, nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	if strings.Contains(buf.String(), "PANICSENTINEL") || strings.Contains(w.Body.String(), "PANICSENTINEL") {
		t.Fatalf("the panic's value or the query reached the log or the response:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "panic while serving a request") || !strings.Contains(buf.String(), "type=string") {
		t.Fatalf("the panic was not logged:\n%s", buf.String())
	}
	if w.Header().Get("Content-Security-Policy") == "" {
		t.Error("no CSP on the 500")
	}
}
