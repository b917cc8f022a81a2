package byok_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ginbyok/byok"
)

// provFake returns a deterministic fake key body of n characters from
// charset: realistic in shape, never a real key.
func provFake(seed uint64, charset string, n int) string {
	r := rand.New(rand.NewPCG(seed, 0x6b6579))
	b := make([]byte, n)
	for i := range b {
		b[i] = charset[r.IntN(len(charset))]
	}
	return string(b)
}

const (
	provAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	provB64u  = provAlnum + "-_"
	provHex   = "0123456789abcdef"
	provAlpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// provValidKeys are realistic fake keys each provider must accept.
var provValidKeys = map[string][]string{
	"openai": {
		"sk-" + provFake(1, provAlnum, 48),
		"sk-proj-" + provFake(2, provB64u, 156),
		"sk-svcacct-" + provFake(3, provB64u, 150),
		"sk-admin-" + provFake(4, provB64u, 120),
	},
	"anthropic":  {"sk-ant-api03-" + provFake(5, provB64u, 93) + "AA", "sk-ant-admin01-" + provFake(6, provB64u, 90)},
	"google":     {"AIza" + provFake(7, provB64u, 35), "AQ.Ab8R" + provFake(8, provB64u, 40) + "." + provFake(9, provB64u, 20)},
	"mistral":    {provFake(10, provAlnum, 32)},
	"groq":       {"gsk_" + provFake(11, provAlnum, 52)},
	"xai":        {"xai-" + provFake(12, provAlnum, 80)},
	"openrouter": {"sk-or-v1-" + provFake(13, provHex, 64)},
	"deepseek":   {"sk-" + provFake(14, provHex, 32)},
	"cohere":     {provFake(15, provAlnum, 40)},
	"together":   {provFake(16, provHex, 64), "tgp_v1_" + provFake(17, provB64u, 43)},
	"huggingface": {
		"hf_" + provFake(18, provAlpha, 34),
	},
	"perplexity": {"pplx-" + provFake(19, provAlnum, 48)},
	"fireworks":  {"fw_" + provFake(20, provAlnum, 24), provFake(21, provAlnum, 48)},
	"replicate":  {"r8_" + provFake(22, provAlnum, 37)},
}

func TestBuiltinProviders(t *testing.T) {
	ps := byok.BuiltinProviders()
	if len(ps) < 14 {
		t.Fatalf("%d built-in providers, want at least 14", len(ps))
	}
	vars := []byok.Provider{byok.OpenAI, byok.Anthropic, byok.Google, byok.Mistral, byok.Groq, byok.XAI,
		byok.OpenRouter, byok.DeepSeek, byok.Cohere, byok.Together, byok.HuggingFace, byok.Perplexity,
		byok.Fireworks, byok.Replicate}
	seen := map[string]bool{}
	for _, p := range ps {
		t.Run(p.Name, func(t *testing.T) {
			if seen[p.Name] {
				t.Fatal("duplicate name")
			}
			seen[p.Name] = true
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.DocsURL, "https://") || p.Placeholder == "" || len(p.EnvVars) == 0 || p.BaseURL == "" {
				t.Fatalf("incomplete: %+v", p)
			}
			if p.CheckURL != "" && !strings.HasPrefix(p.CheckURL, p.BaseURL+"/") {
				t.Fatalf("CheckURL %q is not below BaseURL %q", p.CheckURL, p.BaseURL)
			}
			if len(provValidKeys[p.Name]) == 0 {
				t.Fatal("no sample keys in this test")
			}
			got, ok := byok.LookupProvider(p.Name)
			if !ok || got.Name != p.Name || got.CheckURL != p.CheckURL {
				t.Fatalf("LookupProvider(%q) = %+v, %v", p.Name, got, ok)
			}
		})
	}
	for _, v := range vars {
		if !seen[v.Name] {
			t.Errorf("exported provider %q is not built in", v.Name)
		}
	}
	if _, ok := byok.LookupProvider("nope"); ok {
		t.Error("LookupProvider found an unknown name")
	}
	// Changing the copy a caller got changes nothing built in.
	ps[0].CheckURL = "https://evil.example/"
	ps[0].EnvVars[0] = "EVIL"
	if p, _ := byok.LookupProvider(ps[0].Name); p.CheckURL == ps[0].CheckURL || p.EnvVars[0] == "EVIL" {
		t.Fatal("built-ins share state with returned copies")
	}
}

func TestCheckFormat(t *testing.T) {
	for _, p := range byok.BuiltinProviders() {
		t.Run(p.Name, func(t *testing.T) {
			for _, k := range provValidKeys[p.Name] {
				if err := p.CheckFormat(k); err != nil {
					t.Errorf("rejects a well-formed key (len %d): %v", len(k), err)
				}
			}
			good := provValidKeys[p.Name][0]
			bad := map[string]string{
				"empty":            "",
				"space inside":     good[:len(good)/2] + " " + good[len(good)/2+1:],
				"trailing newline": good + "\n",
				"leading space":    " " + good,
				"tab":              good[:10] + "\t" + good[11:],
				"NUL":              good[:10] + "\x00" + good[11:],
				"DEL":              good[:10] + "\x7f" + good[11:],
				"non-ASCII":        good[:10] + "é" + good[12:],
				"CRLF injection":   good[:10] + "\r\nX-Evil: 1",
				"too long":         good + strings.Repeat("a", byok.MaxKeyLength),
				"too short":        good[:min(len(good), max(p.MinLen, 1))-1],
			}
			if p.Prefix != "" {
				bad["wrong prefix"] = "zz" + good[2:]
			}
			for name, k := range bad {
				err := p.CheckFormat(k)
				if !errors.Is(err, byok.ErrMalformedKey) {
					t.Errorf("%s: err = %v, want ErrMalformedKey", name, err)
					continue
				}
				if len(k) >= 6 && strings.Contains(err.Error(), k) {
					t.Errorf("%s: error echoes the key: %v", name, err)
				}
			}
		})
	}
}

func TestCheckFormatCustom(t *testing.T) {
	p := byok.Provider{Name: "acme", DisplayName: "Acme", Prefix: "ak_", MinLen: 10, MaxLen: 20}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for k, ok := range map[string]bool{"ak_1234567": true, "ak_123456": false, "ak_1234567890123456789": false, "bk_1234567": false, "ak_!#$%&'()*": true} {
		if err := p.CheckFormat(k); (err == nil) != ok {
			t.Errorf("CheckFormat(%q) = %v, want ok=%v", k, err, ok)
		}
	}
	// Defaults: MinLen 1, MaxLen 512.
	d := byok.Provider{Name: "d", DisplayName: "D"}
	if d.CheckFormat("x") != nil || d.CheckFormat(strings.Repeat("x", 512)) != nil || d.CheckFormat(strings.Repeat("x", 513)) == nil {
		t.Error("default bounds are not 1..512")
	}
}

func TestValidate(t *testing.T) {
	ok := byok.Provider{Name: "my-llm_2", DisplayName: "My LLM", Pattern: regexp.MustCompile(`^k-[a-z]+$`),
		CheckURL: "https://llm.example/v1/me", DocsURL: "https://llm.example/keys"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := map[string]func(p *byok.Provider){
		"empty name":        func(p *byok.Provider) { p.Name = "" },
		"upper name":        func(p *byok.Provider) { p.Name = "OpenAI" },
		"slash name":        func(p *byok.Provider) { p.Name = "a/b" },
		"long name":         func(p *byok.Provider) { p.Name = strings.Repeat("a", 33) },
		"leading dash":      func(p *byok.Provider) { p.Name = "-a" },
		"no display name":   func(p *byok.Provider) { p.DisplayName = " " },
		"negative min":      func(p *byok.Provider) { p.MinLen = -1 },
		"min above max":     func(p *byok.Provider) { p.MinLen, p.MaxLen = 30, 20 },
		"max above cap":     func(p *byok.Provider) { p.MaxLen = byok.MaxKeyLength + 1 },
		"unanchored":        func(p *byok.Provider) { p.Pattern = regexp.MustCompile(`k-[a-z]+`) },
		"http check":        func(p *byok.Provider) { p.CheckURL = "http://llm.example/v1/me" },
		"ftp check":         func(p *byok.Provider) { p.CheckURL = "ftp://llm.example/" },
		"relative check":    func(p *byok.Provider) { p.CheckURL = "/v1/me" },
		"userinfo check":    func(p *byok.Provider) { p.CheckURL = "https://u:p@llm.example/" },
		"javascript docs":   func(p *byok.Provider) { p.DocsURL = "javascript:alert(1)" },
		"space in prefix":   func(p *byok.Provider) { p.Prefix = "a b" },
		"http base not lo.": func(p *byok.Provider) { p.BaseURL = "http://10.0.0.1" },
	}
	for name, mut := range tests {
		t.Run(name, func(t *testing.T) {
			p := ok
			mut(&p)
			if err := p.Validate(); !errors.Is(err, byok.ErrInvalidProvider) {
				t.Fatalf("Validate = %v, want ErrInvalidProvider", err)
			}
		})
	}
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x"} {
		p := ok
		p.CheckURL = u
		if err := p.Validate(); err != nil {
			t.Errorf("loopback %s: %v", u, err)
		}
	}
}

func TestWithBaseURL(t *testing.T) {
	tests := []struct {
		p    byok.Provider
		base string
		want string
	}{
		{byok.OpenAI, "http://127.0.0.1:9999/", "http://127.0.0.1:9999/models"},
		{byok.OpenAI, "https://proxy.example/openai/v1", "https://proxy.example/openai/v1/models"},
		{byok.Google, "https://eu.example/v1beta", "https://eu.example/v1beta/models"},
		{byok.HuggingFace, "http://localhost:1/api", "http://localhost:1/api/whoami-v2"},
		{byok.Perplexity, "https://p.example", ""},
		{byok.Provider{Name: "x", DisplayName: "X", CheckURL: "https://a.example/v2/me?x=1"}, "https://b.example", "https://b.example/v2/me?x=1"},
	}
	for _, tt := range tests {
		got := tt.p.WithBaseURL(tt.base)
		if got.CheckURL != tt.want {
			t.Errorf("%s.WithBaseURL(%q).CheckURL = %q, want %q", tt.p.Name, tt.base, got.CheckURL, tt.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", tt.p.Name, err)
		}
	}
	if byok.OpenAI.CheckURL != "https://api.openai.com/v1/models" {
		t.Fatal("WithBaseURL changed the original")
	}
	if err := byok.OpenAI.WithBaseURL("http://evil.example/v1").Validate(); !errors.Is(err, byok.ErrInvalidProvider) {
		t.Fatalf("plain http to a remote host accepted: %v", err)
	}
}

// provStandIn is a local stand-in for a provider's check endpoint.
type provStandIn struct {
	srv  *httptest.Server
	hits atomic.Int32
}

func newProvStandIn(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *provStandIn {
	t.Helper()
	s := &provStandIn{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// provNoLeak fails the test if text holds the key or any 8-byte run of it.
func provNoLeak(t *testing.T, what, text, key string) {
	t.Helper()
	for i := 0; i+8 <= len(key); i++ {
		if strings.Contains(text, key[i:i+8]) {
			t.Fatalf("%s leaks the key (run %q at %d): %s", what, key[i:i+8], i, text)
		}
	}
}

func TestCheckKey(t *testing.T) {
	good := "sk-proj-" + provFake(100, provB64u, 60)
	sentinel := "sk-proj-SENTINEL" + provFake(101, provB64u, 50)

	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	openAIish := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if key == good {
			writeJSON(w, 200, map[string]any{"data": []any{}})
			return
		}
		// Like OpenAI, echo (here: the whole) key back in the error.
		writeJSON(w, 401, map[string]any{"error": map[string]any{
			"message": "Incorrect API key provided: " + key + ". You can find your API key at https://platform.openai.com/account/api-keys.",
			"type":    "invalid_request_error", "code": "invalid_api_key"}})
	}

	t.Run("ok", func(t *testing.T) {
		s := newProvStandIn(t, openAIish)
		p := byok.OpenAI.WithBaseURL(s.srv.URL + "/v1")
		if err := p.CheckKey(t.Context(), s.srv.Client(), good); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("401 with the provider's words, key redacted", func(t *testing.T) {
		s := newProvStandIn(t, openAIish)
		p := byok.OpenAI.WithBaseURL(s.srv.URL + "/v1")
		err := p.CheckKey(t.Context(), nil, sentinel)
		if !errors.Is(err, byok.ErrKeyRejected) {
			t.Fatalf("err = %v, want ErrKeyRejected", err)
		}
		var ce *byok.CheckError
		if !errors.As(err, &ce) || ce.Status != 401 || ce.Provider != "openai" {
			t.Fatalf("CheckError = %+v", ce)
		}
		if !strings.Contains(ce.Message, "Incorrect API key provided: [REDACTED]") {
			t.Fatalf("message %q lacks the provider's words", ce.Message)
		}
		provNoLeak(t, "error", err.Error(), sentinel)
		provNoLeak(t, "message", ce.Message, sentinel)
		provNoLeak(t, "%+v", fmt.Sprintf("%+v %#v", err, err), sentinel)
	})

	t.Run("partial echo redacted", func(t *testing.T) {
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			k := r.Header.Get("Authorization")[len("Bearer "):]
			writeJSON(w, 403, map[string]any{"message": "key " + k[:20] + "… is disabled; tail " + k[len(k)-12:]})
		})
		err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(t.Context(), nil, sentinel)
		if !errors.Is(err, byok.ErrKeyRejected) {
			t.Fatalf("err = %v", err)
		}
		provNoLeak(t, "error", err.Error(), sentinel)
	})

	t.Run("anthropic headers", func(t *testing.T) {
		key := provValidKeys["anthropic"][0]
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("x-api-key") != key || r.Header.Get("anthropic-version") == "" || r.Header.Get("Authorization") != "" {
				writeJSON(w, 401, map[string]any{"type": "error", "error": map[string]any{"type": "authentication_error", "message": "invalid x-api-key"}})
				return
			}
			writeJSON(w, 200, map[string]any{"data": []any{}})
		})
		p := byok.Anthropic.WithBaseURL(s.srv.URL + "/v1")
		if err := p.CheckKey(t.Context(), nil, key); err != nil {
			t.Fatal(err)
		}
		err := p.CheckKey(t.Context(), nil, provValidKeys["anthropic"][1])
		var ce *byok.CheckError
		if !errors.As(err, &ce) || ce.Message != "invalid x-api-key" {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("google 400 API_KEY_INVALID", func(t *testing.T) {
		key := provValidKeys["google"][0]
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("x-goog-api-key") != key || r.URL.Path != "/v1beta/models" {
				t.Errorf("request %s %v", r.URL, r.Header)
			}
			writeJSON(w, 400, map[string]any{"error": map[string]any{"code": 400,
				"message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}})
		})
		err := byok.Google.WithBaseURL(s.srv.URL+"/v1beta").CheckKey(t.Context(), nil, key)
		var ce *byok.CheckError
		if !errors.Is(err, byok.ErrKeyRejected) || !errors.As(err, &ce) || ce.Message != "API key not valid. Please pass a valid API key." {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("500 is unavailable", func(t *testing.T) {
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream \x1b[31mboom\x00", http.StatusInternalServerError)
		})
		err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(t.Context(), nil, good)
		var ce *byok.CheckError
		if !errors.Is(err, byok.ErrCheckUnavailable) || errors.Is(err, byok.ErrKeyRejected) || !errors.As(err, &ce) || ce.Status != 500 {
			t.Fatalf("err = %v", err)
		}
		if strings.ContainsAny(ce.Message, "\x1b\x00\n") || ce.Message != "upstream [31mboom" {
			t.Fatalf("message not cleaned: %q", ce.Message)
		}
	})

	t.Run("429 is unavailable", func(t *testing.T) {
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) })
		if err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(t.Context(), nil, good); !errors.Is(err, byok.ErrCheckUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(ctx, nil, good)
		if !errors.Is(err, byok.ErrCheckUnavailable) || !strings.Contains(err.Error(), "in time") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		s := newProvStandIn(t, openAIish)
		p := byok.OpenAI.WithBaseURL(s.srv.URL + "/v1")
		s.srv.Close()
		if err := p.CheckKey(t.Context(), nil, good); !errors.Is(err, byok.ErrCheckUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("redirect not followed", func(t *testing.T) {
		elsewhere := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {})
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.srv.URL+"/steal", http.StatusFound)
		})
		p := byok.Anthropic.WithBaseURL(s.srv.URL + "/v1")
		err := p.CheckKey(t.Context(), s.srv.Client(), provValidKeys["anthropic"][0])
		if !errors.Is(err, byok.ErrCheckUnavailable) || elsewhere.hits.Load() != 0 {
			t.Fatalf("err = %v, redirect target hit %d times", err, elsewhere.hits.Load())
		}
	})

	t.Run("malformed key is not sent", func(t *testing.T) {
		s := newProvStandIn(t, openAIish)
		err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(t.Context(), nil, "sk-short\r\nX: y")
		if !errors.Is(err, byok.ErrMalformedKey) || s.hits.Load() != 0 {
			t.Fatalf("err = %v, hits %d", err, s.hits.Load())
		}
	})

	t.Run("no check URL", func(t *testing.T) {
		if err := byok.Perplexity.CheckKey(t.Context(), nil, provValidKeys["perplexity"][0]); !errors.Is(err, byok.ErrNoCheckURL) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("HTML body gives no message", func(t *testing.T) {
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("<html><script>alert(1)</script></html>"))
		})
		err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(t.Context(), nil, good)
		var ce *byok.CheckError
		if !errors.As(err, &ce) || strings.Contains(ce.Message, "<") || ce.Message == "" {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("long message is capped", func(t *testing.T) {
		s := newProvStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, map[string]any{"error": strings.Repeat("blah ", 1000), "error_description": "x"})
		})
		err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(t.Context(), nil, good)
		var ce *byok.CheckError
		if !errors.As(err, &ce) || len([]rune(ce.Message)) > 300 || !strings.HasSuffix(ce.Message, "…") {
			t.Fatalf("message %d runes: %q", len([]rune(ce.Message)), ce.Message)
		}
	})

	t.Run("default timeout applies without a deadline", func(t *testing.T) {
		// A context without a deadline still returns: the stand-in answers
		// at once, so this only proves no deadline is required.
		s := newProvStandIn(t, openAIish)
		if err := byok.OpenAI.WithBaseURL(s.srv.URL+"/v1").CheckKey(context.Background(), nil, good); err != nil {
			t.Fatal(err)
		}
	})
}

func TestKeysFromEnv(t *testing.T) {
	env := []string{
		"PATH=/usr/bin",
		"API_KEY_OPENAI=sk-from-prefixed",
		"OPENAI_API_KEY=sk-from-conventional",
		"ANTHROPIC_API_KEY=  sk-ant-trimmed  ",
		"GOOGLE_API_KEY=AIza-google",
		"GEMINI_API_KEY=AIza-gemini",
		"HF_TOKEN=hf_x",
		"API_KEY_MY_LLM=custom",
		"API_KEY_BAD%NAME=x",
		"API_KEY_EMPTY=",
		"MISTRAL_API_KEY=",
		"API_KEY_GROQ=first",
		"API_KEY_GROQ=second",
		"noequals",
		"=novalue",
	}
	got := byok.KeysFromEnv("", env)
	want := map[string]string{
		"openai": "sk-from-prefixed", "anthropic": "sk-ant-trimmed", "google": "AIza-gemini",
		"huggingface": "hf_x", "my_llm": "custom", "groq": "second",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	other := byok.KeysFromEnv("BYOK_", []string{"BYOK_OPENAI=a", "API_KEY_OPENAI=b", "ANTHROPIC_API_KEY=c"})
	if other["openai"] != "a" || other["anthropic"] != "c" || len(other) != 2 {
		t.Fatalf("custom prefix: %v", other)
	}

	custom := byok.Provider{Name: "my-llm", DisplayName: "Mine", EnvVars: []string{"MYLLM_TOKEN"}}
	forP := byok.KeysFromEnvFor("", []string{"API_KEY_MY_LLM=x", "OPENAI_API_KEY=y", "MYLLM_TOKEN=z"}, []byok.Provider{custom})
	if len(forP) != 1 || forP["my-llm"] != "x" {
		t.Fatalf("KeysFromEnvFor: %v", forP)
	}
	forP = byok.KeysFromEnvFor("", []string{"MYLLM_TOKEN=z"}, []byok.Provider{custom})
	if forP["my-llm"] != "z" {
		t.Fatalf("KeysFromEnvFor EnvVars: %v", forP)
	}
}

func TestInputPattern(t *testing.T) {
	type sample struct {
		pattern string
		keys    []string
		bad     []string
	}
	var samples []sample
	for _, p := range byok.BuiltinProviders() {
		ip := p.InputPattern()
		if ip == "" {
			t.Errorf("%s: no input pattern derived from %s", p.Name, p.Pattern)
			continue
		}
		re := regexp.MustCompile("^(?:" + ip + ")$")
		for _, k := range provValidKeys[p.Name] {
			if !re.MatchString(k) {
				t.Errorf("%s: input pattern %q rejects a well-formed key", p.Name, ip)
			}
		}
		samples = append(samples, sample{ip, provValidKeys[p.Name], []string{"has space", "é"}})
	}
	custom := byok.Provider{Name: "c", DisplayName: "C", Pattern: regexp.MustCompile(`^(?i)abc\d+$`)}
	if got := custom.InputPattern(); got != "" {
		t.Errorf("complex pattern derived as %q", got)
	}
	custom.HTMLPattern = "abc[0-9]+"
	if got := custom.InputPattern(); got != "abc[0-9]+" {
		t.Errorf("HTMLPattern not used: %q", got)
	}

	// The browser compiles the pattern attribute with the v flag; check
	// each derived pattern there too when Node is installed.
	node, err := exec.LookPath("node")
	if err != nil {
		t.Log("node not installed: JavaScript v-flag check skipped")
		return
	}
	js := `const s=JSON.parse(require('fs').readFileSync(0,'utf8'));let bad=[];
for(const x of s){let re;try{re=new RegExp('^(?:'+x.pattern+')$','v')}catch(e){bad.push(x.pattern+': '+e.message);continue}
for(const k of x.keys){if(!re.test(k))bad.push(x.pattern+' rejects a good key')}
for(const k of x.bad){if(re.test(k))bad.push(x.pattern+' accepts '+k)}}
console.log(JSON.stringify(bad))`
	in, _ := json.Marshal(func() []map[string]any {
		var out []map[string]any
		for _, s := range samples {
			out = append(out, map[string]any{"pattern": s.pattern, "keys": s.keys, "bad": s.bad})
		}
		return out
	}())
	cmd := exec.CommandContext(t.Context(), node, "-e", js)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var problems []string
	if err := json.Unmarshal(out, &problems); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	for _, p := range problems {
		t.Error("JavaScript: " + p)
	}
}

// provMessages returns every error text CheckFormat can give for p: the
// text must depend on the provider only, never on the key.
func provMessages(p byok.Provider) map[string]bool {
	name := p.DisplayName
	lo, hi := max(p.MinLen, 1), p.MaxLen
	if hi == 0 {
		hi = 512
	}
	pre := byok.ErrMalformedKey.Error() + ": "
	return map[string]bool{
		pre + "the " + name + " key is empty":                                                         true,
		pre + fmt.Sprintf("%s keys have at most %d characters", name, hi):                             true,
		pre + "the " + name + " key contains spaces, line breaks or other characters keys never have": true,
		pre + fmt.Sprintf("%s keys have at least %d characters", name, lo):                            true,
		pre + fmt.Sprintf("%s keys start with %q", name, p.Prefix):                                    true,
		pre + "the key does not have the shape of " + name + " keys":                                  true,
	}
}

func FuzzCheckFormat(f *testing.F) {
	for _, keys := range provValidKeys {
		for _, k := range keys {
			f.Add(k)
		}
	}
	f.Add("sk-\x00")
	f.Add("")
	ps := byok.BuiltinProviders()
	ps = append(ps, byok.Provider{Name: "loose", DisplayName: "Loose"})
	msgs := make([]map[string]bool, len(ps))
	for i, p := range ps {
		msgs[i] = provMessages(p)
	}
	f.Fuzz(func(t *testing.T, key string) {
		for i, p := range ps {
			err := p.CheckFormat(key)
			if err == nil {
				lo, hi := max(p.MinLen, 1), p.MaxLen
				if hi == 0 {
					hi = 512
				}
				if len(key) < lo || len(key) > hi || !strings.HasPrefix(key, p.Prefix) {
					t.Fatalf("%s accepted a key of length %d", p.Name, len(key))
				}
				for j := 0; j < len(key); j++ {
					if key[j] <= ' ' || key[j] >= 0x7f {
						t.Fatalf("%s accepted byte %#x", p.Name, key[j])
					}
				}
				continue
			}
			if !errors.Is(err, byok.ErrMalformedKey) {
				t.Fatalf("%s: %v does not wrap ErrMalformedKey", p.Name, err)
			}
			if !msgs[i][err.Error()] {
				t.Fatalf("%s: error text depends on the key: %q", p.Name, err)
			}
		}
	})
}

// ExampleProvider_CheckFormat shows the offline check a key passes before
// it is stored.
func ExampleProvider_CheckFormat() {
	fmt.Println(byok.OpenAI.CheckFormat("sk-proj-0123456789abcdefghijABCDEFGHIJ"))
	fmt.Println(byok.Anthropic.CheckFormat("sk-0123456789abcdefghijABCDEFGHIJ0123456789"))
	fmt.Println(byok.OpenAI.CheckFormat("sk-proj-0123456789 abcdefghij"))
	// Output:
	// <nil>
	// byok: malformed key: Anthropic keys start with "sk-ant-"
	// byok: malformed key: the OpenAI key contains spaces, line breaks or other characters keys never have
}

// ExampleProvider_CheckKey checks a key against a provider's live API; here
// a local stand-in plays OpenAI.
func ExampleProvider_CheckKey() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"Incorrect API key provided."}}`))
	}))
	defer srv.Close()

	openai := byok.OpenAI.WithBaseURL(srv.URL + "/v1")
	err := openai.CheckKey(context.Background(), nil, "sk-proj-0123456789abcdefghijABCDEFGHIJ")
	var ce *byok.CheckError
	if errors.Is(err, byok.ErrKeyRejected) && errors.As(err, &ce) {
		fmt.Println(ce.Status, ce.Message)
	}
	// Output: 401 Incorrect API key provided.
}

// ExampleKeysFromEnv imports keys the way the Python original's helpers do.
func ExampleKeysFromEnv() {
	keys := byok.KeysFromEnv("", []string{"API_KEY_OPENAI=sk-a", "ANTHROPIC_API_KEY=sk-ant-b", "HOME=/root"})
	fmt.Println(len(keys), keys["openai"], keys["anthropic"])
	// Output: 2 sk-a sk-ant-b
}

// FuzzCheckKeyMessage feeds arbitrary provider answers (with the key put
// wherever the input says KEY) to CheckKey: whatever the provider says, the
// error never holds the key or any 8-character run of it, nor a control
// character.
func FuzzCheckKeyMessage(f *testing.F) {
	f.Add(`{"error":{"message":"Incorrect API key provided: KEY."}}`, "application/json")
	f.Add(`{"error":"KEY","error_description":"bad KEY"}`, "application/json")
	f.Add(`{"message":"\u0073k-proj-KEY\u0000\u202e"}`, "application/json")
	f.Add("plain KEY\r\nnext line", "text/plain")
	f.Add(`{"detail":"sk-proj-SENTINEL`+"\x00"+`KEY"}`, "application/json")
	key := "sk-proj-SENTINEL" + provFake(200, provB64u, 60)
	var body, ctype atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype.Load().(string))
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	f.Cleanup(srv.Close)
	p := byok.OpenAI.WithBaseURL(srv.URL + "/v1")
	client := srv.Client()
	f.Fuzz(func(t *testing.T, b, ct string) {
		body.Store(strings.ReplaceAll(b, "KEY", key))
		if strings.ContainsFunc(ct, func(r rune) bool { return r < ' ' || r >= 0x7f }) {
			ct = "application/json" // not a header value a server can send
		}
		ctype.Store(ct)
		err := p.CheckKey(context.Background(), client, key)
		if !errors.Is(err, byok.ErrKeyRejected) {
			t.Fatalf("err = %v (body %q, content type %q)", err, b, ct)
		}
		msg := err.Error()
		provNoLeak(t, "error", msg, key)
		for _, r := range msg {
			if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("control character %U in %q", r, msg)
			}
		}
	})
}
