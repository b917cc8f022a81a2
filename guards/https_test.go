package guards_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/guards"
)

func httpsEngine(t *testing.T, trusted []string, mode guards.HTTPSMode) *gin.Engine {
	t.Helper()
	r := gin.New()
	if err := r.SetTrustedProxies(trusted); err != nil {
		t.Fatal(err)
	}
	r.Use(guards.RequireHTTPS(guards.HTTPSOptions{Mode: mode}))
	r.POST("/keys/openai", func(c *gin.Context) { c.String(200, "stored") })
	return r
}

func TestRequireHTTPS(t *testing.T) {
	const proxy = "10.1.2.3"
	tests := []struct {
		name    string
		trusted []string
		remote  string
		header  map[string]string
		tls     bool
		want    int
	}{
		{"plain http, no proxy", []string{proxy}, "203.0.113.5:4000", nil, false, 403},
		{"direct TLS", []string{proxy}, "203.0.113.5:4000", nil, true, 200},
		{"trusted proxy says https", []string{proxy}, proxy + ":4000", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"}, false, 200},
		{"trusted proxy, list of protos", []string{proxy}, proxy + ":4000", map[string]string{"X-Forwarded-Proto": "HTTPS, http", "X-Forwarded-For": "198.51.100.9"}, false, 200},
		{"trusted proxy without X-Forwarded-For", []string{proxy}, proxy + ":4000", map[string]string{"X-Forwarded-Proto": "https"}, false, 200},
		{"trusted proxy, client is the proxy host", []string{proxy}, proxy + ":4000", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": proxy}, false, 200},
		{"trusted proxy CIDR", []string{"10.0.0.0/8"}, proxy + ":4000", map[string]string{"X-Forwarded-Proto": "https"}, false, 200},
		{"trusted proxy says http", []string{proxy}, proxy + ":4000", map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-For": "198.51.100.9"}, false, 403},
		{"untrusted peer claims https", []string{proxy}, "203.0.113.5:4000", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"}, false, 403},
		{"untrusted peer, spoofed XFF of the proxy", []string{proxy}, "203.0.113.5:4000", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": proxy}, false, 403},
		{"no trusted proxies", nil, proxy + ":4000", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"}, false, 403},
		{"localhost is not special", []string{proxy}, "127.0.0.1:4000", map[string]string{"Host": "localhost", "X-Forwarded-Proto": "https"}, false, 403},
		{"probe address as peer", []string{proxy}, "192.0.2.254:4000", map[string]string{"X-Forwarded-Proto": "https"}, false, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httpsEngine(t, tt.trusted, guards.HTTPSAlways)
			req := httptest.NewRequest(http.MethodPost, "http://localhost/keys/openai", nil)
			req.RemoteAddr = tt.remote
			req.Header.Set("Accept", "application/json")
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if tt.want == 403 && !strings.Contains(w.Body.String(), `"code":"https_required"`) {
				t.Fatalf("body %s", w.Body)
			}
			// The probe must not leave its request behind.
			if req.Header.Get("X-Real-Ip") != "" {
				t.Fatal("probe headers leaked into the request")
			}
		})
	}
}

func TestRequireHTTPSForwardedByClientIPOff(t *testing.T) {
	r := httpsEngine(t, []string{"10.1.2.3"}, guards.HTTPSAlways)
	r.ForwardedByClientIP = false
	req := httptest.NewRequest(http.MethodPost, "/keys/openai", nil)
	req.RemoteAddr = "10.1.2.3:1"
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", "198.51.100.9")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != 403 {
		t.Fatalf("status %d: forwarded headers used although the engine ignores them", w.Code)
	}
}

func TestRequireHTTPSClients(t *testing.T) {
	r := httpsEngine(t, nil, guards.HTTPSAlways)
	for _, cl := range []struct {
		c      client
		status int
		ct     string
	}{{jsonClient, 403, "application/problem+json"}, {browserClient, 403, "text/html; charset=utf-8"}, {htmxClient, 200, "text/html; charset=utf-8"}} {
		w := serve(r, http.MethodPost, "/keys/openai", cl.c)
		if w.Code != cl.status || w.Header().Get("Content-Type") != cl.ct || !strings.Contains(w.Body.String(), "HTTPS") {
			t.Errorf("%s: %d %q %s", cl.c.name, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
}

func TestRequireHTTPSModes(t *testing.T) {
	defer gin.SetMode(gin.TestMode)
	for _, tt := range []struct {
		ginMode string
		mode    guards.HTTPSMode
		want    int
	}{
		{gin.ReleaseMode, guards.HTTPSInRelease, 403},
		{gin.DebugMode, guards.HTTPSInRelease, 200},
		{gin.TestMode, guards.HTTPSInRelease, 200},
		{gin.DebugMode, guards.HTTPSAlways, 403},
		{gin.ReleaseMode, guards.HTTPSNever, 200},
	} {
		gin.SetMode(tt.ginMode)
		r := httpsEngine(t, nil, tt.mode)
		w := serve(r, http.MethodPost, "/keys/openai", jsonClient)
		if w.Code != tt.want {
			t.Errorf("gin %s, mode %d: status %d, want %d", tt.ginMode, tt.mode, w.Code, tt.want)
		}
	}
}

// TestRequireHTTPSRealServers runs the guard behind real listeners: a TLS
// server passes, and a plain one refuses.
func TestRequireHTTPSRealServers(t *testing.T) {
	r := httpsEngine(t, nil, guards.HTTPSAlways)
	tlsSrv := httptest.NewTLSServer(r)
	defer tlsSrv.Close()
	plain := httptest.NewServer(r)
	defer plain.Close()
	for _, s := range []struct {
		srv  *httptest.Server
		want int
	}{{tlsSrv, 200}, {plain, 403}} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.srv.URL+"/keys/openai", nil)
		req.Header.Set("X-Forwarded-Proto", "https") // from the client itself: ignored
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != s.want {
			t.Errorf("%s: %d, want %d", s.srv.URL, resp.StatusCode, s.want)
		}
	}
}

// TestRequireHTTPSEngineSettings shows the guard following the engine's own
// client-IP settings: custom RemoteIPHeaders and a TrustedPlatform.
func TestRequireHTTPSEngineSettings(t *testing.T) {
	send := func(r *gin.Engine, remote string, h map[string]string) int {
		req := httptest.NewRequest(http.MethodPost, "/keys/openai", nil)
		req.RemoteAddr = remote
		for k, v := range h {
			req.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code
	}
	r := httpsEngine(t, []string{"10.1.2.3"}, guards.HTTPSAlways)
	r.RemoteIPHeaders = []string{"X-Client-IP"}
	if got := send(r, "10.1.2.3:1", map[string]string{"X-Forwarded-Proto": "https", "X-Client-IP": "198.51.100.9"}); got != 200 {
		t.Errorf("custom RemoteIPHeaders from the trusted proxy: %d", got)
	}
	if got := send(r, "203.0.113.5:1", map[string]string{"X-Forwarded-Proto": "https", "X-Client-IP": "198.51.100.9"}); got != 403 {
		t.Errorf("custom RemoteIPHeaders from an untrusted peer: %d", got)
	}

	r = httpsEngine(t, nil, guards.HTTPSAlways)
	r.TrustedPlatform = gin.PlatformCloudflare
	if got := send(r, "203.0.113.5:1", map[string]string{"X-Forwarded-Proto": "https", "CF-Connecting-IP": "198.51.100.9"}); got != 200 {
		t.Errorf("trusted platform: %d", got)
	}
	if got := send(r, "203.0.113.5:1", map[string]string{"X-Forwarded-Proto": "https"}); got != 403 {
		t.Errorf("trusted platform header absent: %d", got)
	}
}
