// Package sample holds fixed view data for the html package's golden tests
// and its preview server: a handful of providers, TTL choices and pages in
// every state the dashboard can be in.
package sample

import (
	"regexp"
	"time"

	"github.com/ginbyok/byok/html"
)

// Now is the fixed "now" every sample is relative to.
var Now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// Providers returns the sample providers, in display order.
func Providers() []html.Provider {
	p := func(name, display, placeholder, expr string, minLen, maxLen int, docs, help string) html.Provider {
		return html.Provider{
			Name: name, DisplayName: display, Placeholder: placeholder,
			Pattern: html.HTMLPattern(regexp.MustCompile(expr)),
			MinLen:  minLen, MaxLen: maxLen, DocsURL: docs, Help: help,
		}
	}
	return []html.Provider{
		p("openai", "OpenAI", "sk-…", `^sk-[A-Za-z0-9_-]{20,}$`, 23, 200, "https://platform.openai.com/api-keys", "Starts with sk-. Encrypted before it is stored."),
		p("anthropic", "Anthropic", "sk-ant-…", `^sk-ant-[A-Za-z0-9_-]{20,}$`, 27, 200, "https://console.anthropic.com/settings/keys", "Starts with sk-ant-. Encrypted before it is stored."),
		p("google", "Google Gemini", "AIza…", `^AIza[0-9A-Za-z_-]{35}$`, 39, 39, "https://aistudio.google.com/app/apikey", ""),
		p("groq", "Groq", "gsk_…", `^gsk_[A-Za-z0-9]{20,}$`, 24, 200, "https://console.groq.com/keys", "Starts with gsk_. Encrypted before it is stored."),
		p("mistral", "Mistral", "32 letters and digits", `^[A-Za-z0-9]{32}$`, 32, 32, "https://console.mistral.ai/api-keys", ""),
		p("xai", "xAI Grok", "xai-…", `^xai-[A-Za-z0-9]{20,}$`, 24, 200, "", "Starts with xai-."),
	}
}

// TTLChoices returns the sample "keep for" options, 24 hours by default.
func TTLChoices() []html.TTLChoice {
	return []html.TTLChoice{
		{Value: "1h", Label: "1 hour"},
		{Value: "24h", Label: "24 hours", Default: true},
		{Value: "7d", Label: "7 days"},
		{Value: "30d", Label: "30 days"},
		{Value: "never", Label: "Until I remove it"},
	}
}

// Empty returns a KeyView with no key for every sample provider.
func Empty() []html.KeyView {
	var keys []html.KeyView
	for _, p := range Providers() {
		keys = append(keys, html.KeyView{Provider: p})
	}
	return keys
}

// Filled returns KeyViews where OpenAI was added 3 hours ago and expires in
// 2 days, Anthropic was added 2 days ago (replaced 5 minutes ago) and never
// expires, Google Gemini has expired, and the rest have no key.
func Filled() []html.KeyView {
	keys := Empty()
	keys[0].HasKey = true
	keys[0].Masked = "sk-…x9Qa"
	keys[0].CreatedAt = Now.Add(-3 * time.Hour)
	keys[0].UpdatedAt = keys[0].CreatedAt
	keys[0].ExpiresAt = Now.Add(45 * time.Hour)

	keys[1].HasKey = true
	keys[1].Masked = "sk-ant-…7fK2"
	keys[1].CreatedAt = Now.Add(-50 * time.Hour)
	keys[1].UpdatedAt = Now.Add(-5 * time.Minute)

	keys[2].HasKey = true
	keys[2].Masked = "AIza…m3Pw"
	keys[2].CreatedAt = Now.Add(-8 * 24 * time.Hour)
	keys[2].UpdatedAt = keys[2].CreatedAt
	keys[2].ExpiresAt = Now.Add(-24 * time.Hour)
	keys[2].Expired = true
	return keys
}

// Page returns a sample page in one of these states: "empty" (no keys),
// "filled" (some keys, an alert and a toast), "error" (filled, and a key
// posted for Groq was rejected), "need" (a guard asked for OpenAI and
// Anthropic, with a next path), "many-alerts" (five alerts) and "none" (no
// providers configured). Any other state is "empty".
func Page(state string) html.Page {
	p := html.Page{
		Title:      "API keys",
		AppName:    "Acme Chat",
		Prefix:     "/keys",
		AssetsPath: "/keys/assets",
		HomeURL:    "/",
		Keys:       Empty(),
		TTLChoices: TTLChoices(),
		Now:        Now,
		User:       "ada@example.com",
	}
	switch state {
	case "filled":
		p.Keys = Filled()
		p.Alerts = []html.Alert{{Kind: html.KindInfo, Style: html.StyleSoft, Dismissible: true,
			Message: "Keys you add here are used only for your own requests."}}
		p.Toasts = []html.Toast{{Kind: html.KindSuccess, Message: "OpenAI key saved (sk-…x9Qa)", Timeout: -1}}
	case "error":
		p.Keys = Filled()
		p.Error = &html.Problem{
			Title: "That key doesn't look right", Code: "invalid_key", Status: 422,
			Detail: "Groq keys start with gsk_ followed by at least 20 letters and digits.",
			Field:  "api_key", Provider: "groq",
		}
	case "need":
		p.User = ""
		p.Need = []string{"openai", "anthropic"}
		p.Next = "/demo/openai?model=gpt-4o"
	case "many-alerts":
		p.Keys = Filled()
		p.Alerts = []html.Alert{
			{Kind: html.KindWarning, Title: "Google Gemini key expired", Message: "Add a new key to keep using Gemini."},
			{Kind: html.KindInfo, Style: html.StyleSoft, Message: "Keys are kept for 24 hours unless you choose otherwise."},
			{Kind: html.KindSuccess, Style: html.StyleOutline, Message: "Anthropic key replaced."},
			{Kind: html.KindError, Message: "The OpenAI key check timed out; it was saved anyway."},
			{Kind: html.KindInfo, Message: "Rotate keys you have shared with anyone."},
		}
	case "none":
		p.Keys = nil
	}
	return p
}
