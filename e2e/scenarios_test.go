package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ginbyok/byok/encrypt"
)

// consoleWatchSeesCSPViolations proves the console watch can fail: a page
// whose inline script and style a strict CSP blocks must be reported.
func (b *browser) consoleWatchSeesCSPViolations(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>bad</title><style>p{color:red}</style><p>x</p><script>console.log("ran")</script>`))
	}))
	defer bad.Close()
	tb := b.open(t, true)
	tb.do("loading a page with inline script", chromedp.Navigate(bad.URL))
	tb.waitFor("the violations are reported", "true")
	var got []string
	for range 50 {
		if got = tb.cons.errors(); len(got) >= 2 {
			break
		}
		tb.do("waiting", chromedp.Sleep(20*time.Millisecond))
	}
	if len(got) < 2 || !strings.Contains(strings.Join(got, "\n"), "Content Security Policy") {
		t.Fatalf("the console watch saw %q; want the two CSP violations (inline script and style)", got)
	}
}

// addReplaceDelete adds a key through the dashboard form, replaces it and
// deletes it (with the confirm step), each time in place: a marker set on
// window before the first submit survives, so no page was loaded.
func (b *browser) addReplaceDelete(t *testing.T) {
	tb := b.open(t, false)
	wantCSP(t, "GET /keys", tb.navigate("/keys"))
	if got := tb.text("[data-byok-summary]"); !strings.Contains(got, "0 of 6") {
		t.Fatalf("empty dashboard summary %q, want 0 of 6", got)
	}
	tb.screenshot("dashboard-empty")

	tb.do("setting the marker", chromedp.Evaluate[chromedp.Void](`window.__byokMarker = "still here"`))
	marker := func(step string) {
		t.Helper()
		if got := eval[string](tb, `String(window.__byokMarker)`); got != "still here" {
			t.Fatalf("after %s the window marker is %q: the page was reloaded", step, got)
		}
	}

	// Add.
	tb.do("typing the OpenAI key",
		chromedp.SendKeys(chromedp.CSS("#byok-card-openai-key"), openaiKey),
		chromedp.Click(chromedp.CSS("#byok-card-openai button[type=submit]")))
	mask := encrypt.Mask(openaiKey)
	tb.waitSwap("the OpenAI card shows the mask",
		`(document.querySelector('#byok-card-openai code')||{}).textContent === `+jsString(mask))
	marker("adding a key")
	card := tb.text("#byok-card-openai")
	for _, want := range []string{mask, "Saved", "added just now", "expires in 1 day"} {
		if !strings.Contains(card, want) {
			t.Errorf("the new card does not say %q:\n%s", want, card)
		}
	}
	tb.waitFor("a toast says the key was saved", `document.querySelector('#byok-toasts').textContent.includes('OpenAI key saved')`)
	tb.noKeyInDOM(openaiKey)

	tb.do("adding an Anthropic key",
		chromedp.SendKeys(chromedp.CSS("#byok-card-anthropic-key"), anthropicKey),
		chromedp.Click(chromedp.CSS("#byok-card-anthropic button[type=submit]")))
	tb.waitSwap("the Anthropic card shows the mask",
		`(document.querySelector('#byok-card-anthropic code')||{}).textContent === `+jsString(encrypt.Mask(anthropicKey)))
	marker("adding a second key")
	// The summary line is outside the swapped card; reload to see the
	// whole filled dashboard as a visitor coming back would.
	tb.navigate("/keys")
	if got := tb.text("[data-byok-summary]"); !strings.Contains(got, "2 of 6") {
		t.Errorf("filled dashboard summary %q, want 2 of 6", got)
	}
	tb.screenshot("dashboard-filled")
	tb.do("setting the marker again", chromedp.Evaluate[chromedp.Void](`window.__byokMarker = "still here"`))

	// Replace: the "Replace…" disclosure opens the form.
	tb.do("opening Replace…", chromedp.Click(chromedp.CSS("#byok-card-openai details:not(.dropdown-end) > summary")))
	tb.do("typing the new key",
		chromedp.WaitVisible(chromedp.CSS("#byok-card-openai-key")),
		chromedp.SendKeys(chromedp.CSS("#byok-card-openai-key"), openaiKey2),
		chromedp.Click(chromedp.CSS("#byok-card-openai form[data-byok-form] button[type=submit]")))
	tb.waitSwap("the card shows the new mask",
		`(document.querySelector('#byok-card-openai code')||{}).textContent === `+jsString(encrypt.Mask(openaiKey2)))
	marker("replacing the key")
	tb.waitFor("a toast says the key was updated", `document.querySelector('#byok-toasts').textContent.includes('OpenAI key replaced')`)
	tb.noKeyInDOM(openaiKey2)

	// Delete, through the confirm step.
	tb.do("opening Delete…", chromedp.Click(chromedp.CSS("#byok-card-openai details.dropdown-end > summary")))
	tb.do("confirming", chromedp.Click(chromedp.CSS(`#byok-card-openai form[action$="/delete"] button`)))
	tb.waitSwap("the card is empty again", `!document.querySelector('#byok-card-openai code') && !!document.querySelector('#byok-card-openai-key')`)
	marker("deleting the key")
	if got := tb.text("#byok-card-openai"); !strings.Contains(got, "Not set") {
		t.Errorf("the deleted card says %q, want Not set", got)
	}
	tb.waitFor("a toast says the key was deleted", `document.querySelector('#byok-toasts').textContent.includes('OpenAI key removed')`)
	// The page is still the same document, and the server agrees.
	tb.navigate("/keys")
	if got := tb.text("[data-byok-summary]"); !strings.Contains(got, "1 of 6") {
		t.Errorf("after the delete the summary says %q, want 1 of 6", got)
	}
}

// errorInTheCard posts a key the server refuses (the browser's own checks
// taken off, as an old browser would) and sees the reason in the card.
func (b *browser) errorInTheCard(t *testing.T) {
	tb := b.open(t, false)
	// Chromium logs every 4xx answer to a fetch as an error; the 422 that
	// carries the refusal is the point of this scenario.
	tb.cons.allow("the server responded with a status of 422 (Unprocessable Entity) (" + tb.base + "/keys/openai)")
	tb.navigate("/keys")
	tb.do("setting the marker", chromedp.Evaluate[chromedp.Void](`window.__byokMarker = "still here"`))
	tb.do("typing a malformed key",
		chromedp.RemoveAttribute(chromedp.CSS("#byok-card-openai-key"), "pattern"),
		chromedp.RemoveAttribute(chromedp.CSS("#byok-card-openai-key"), "minlength"),
		chromedp.SendKeys(chromedp.CSS("#byok-card-openai-key"), "sk-short"),
		chromedp.Click(chromedp.CSS("#byok-card-openai button[type=submit]")))
	tb.waitSwap("the card shows the error", `document.querySelector('#byok-card-openai-key[aria-invalid="true"]') !== null`)
	if got := eval[string](tb, `String(window.__byokMarker)`); got != "still here" {
		t.Fatalf("the error reloaded the page")
	}
	card := tb.text("#byok-card-openai")
	if !strings.Contains(strings.ToLower(card), "short") && !strings.Contains(strings.ToLower(card), "key") {
		t.Errorf("the card does not say what is wrong:\n%s", card)
	}
	if got := tb.activeID(); got != "byok-card-openai-key" {
		t.Errorf("focus is on %q, want the key input at fault", got)
	}
	tb.screenshot("dashboard-error")
}

// guardedPageToFormAndBack opens a guarded page without a key, lands on the
// form with that provider asked for, saves, and comes back through next.
func (b *browser) guardedPageToFormAndBack(t *testing.T) {
	tb := b.open(t, false)
	res := tb.navigate("/demo/openai")
	wantCSP(t, "the key form after the guard", res)
	if got := tb.path(); got != "/keys?need=openai&next=%2Fdemo%2Fopenai" {
		t.Fatalf("the guard sent the browser to %q, want /keys?need=openai&next=%%2Fdemo%%2Fopenai", got)
	}
	if got := tb.text("#byok-card-openai"); !strings.Contains(got, "Required") {
		t.Errorf("the OpenAI card is not marked as required:\n%s", got)
	}
	if got := tb.text("main"); !strings.Contains(got, "A key is needed to continue") {
		t.Errorf("the page does not say a key is needed")
	}
	if got := tb.activeID(); got != "byok-card-openai-key" {
		t.Errorf("focus is on %q, want the OpenAI key input", got)
	}
	tb.screenshot("guard-key-needed")
	res = tb.loads("saving the key", chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS("#byok-card-openai-key"), openaiKey),
		chromedp.Click(chromedp.CSS("#byok-card-openai button[type=submit]"))))
	wantCSP(t, "the demo page", res)
	if got := tb.path(); got != "/demo/openai" {
		t.Fatalf("after saving the browser is at %q, want /demo/openai", got)
	}
	if got := tb.text("[data-demo-masked]"); got != encrypt.Mask(openaiKey) {
		t.Errorf("the demo page shows %q, want the mask %q", got, encrypt.Mask(openaiKey))
	}
	tb.noKeyInDOM(openaiKey)
	tb.screenshot("demo-page")
	wantCSP(t, "GET /", tb.navigate("/"))
	tb.screenshot("home-guest")
}

// signInAndOut signs in through the home page's form, sees the user on the
// home page and the key page, saves a key as that user, and signs out.
func (b *browser) signInAndOut(t *testing.T) {
	tb := b.open(t, false)
	tb.navigate("/")
	tb.loads("signing in", chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS("#user"), "ada"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button`))))
	if got := tb.text("h1"); got != "Welcome, ada" {
		t.Fatalf("after signing in the home page says %q, want Welcome, ada", got)
	}
	tb.navigate("/demo/mistral")
	tb.loads("saving a Mistral key", chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS("#byok-card-mistral-key"), "E2Emistral0123456789abcdefghijkl"),
		chromedp.Click(chromedp.CSS("#byok-card-mistral button[type=submit]"))))
	if got := tb.path(); got != "/demo/mistral" {
		t.Fatalf("after saving the browser is at %q, want /demo/mistral", got)
	}
	tb.navigate("/keys")
	if got := tb.text("header"); !strings.Contains(got, "Signed in as ada") {
		t.Errorf("the key page's header says %q, want Signed in as ada", got)
	}
	tb.navigate("/")
	if got := tb.text(`[data-demo="mistral"]`); !strings.Contains(got, "Key saved") {
		t.Errorf("the home page's Mistral card says %q, want Key saved", got)
	}
	tb.screenshot("home-signed-in")
	tb.loads("signing out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	if got := tb.text("header"); !strings.Contains(got, "Guest session") {
		t.Errorf("after signing out the header says %q", got)
	}
	// ada's key stays hers: the guest is asked for one.
	tb.navigate("/demo/mistral")
	if got := tb.path(); !strings.HasPrefix(got, "/keys?need=mistral") {
		t.Errorf("a guest opened ada's demo: at %q", got)
	}
}

// keyboardOnly does the guarded flow and a delete with Tab and Enter alone.
func (b *browser) keyboardOnly(t *testing.T) {
	tb := b.open(t, false)
	tb.navigate("/demo/anthropic")
	if got := tb.activeID(); got != "byok-card-anthropic-key" {
		t.Fatalf("focus is on %q, want the Anthropic key input (autofocus)", got)
	}
	tb.do("typing the key", chromedp.KeyEvent(anthropicKey))
	// Tab order: the key, the help line's "Get a key" link, "Keep for",
	// "Save key".
	tb.do("Tab", chromedp.KeyEvent(kb.Tab))
	if got := eval[string](tb, `document.activeElement.textContent.trim()`); !strings.HasPrefix(got, "Get a key") {
		t.Fatalf("after one Tab focus is on %q, want the Get a key link", got)
	}
	tb.do("Tab", chromedp.KeyEvent(kb.Tab))
	if got := tb.activeID(); got != "byok-card-anthropic-ttl" {
		t.Fatalf("after two Tabs focus is on %q, want the Keep for select", got)
	}
	tb.do("Tab", chromedp.KeyEvent(kb.Tab))
	if got := eval[string](tb, `document.activeElement.textContent.trim()`); got != "Save key" {
		t.Fatalf("after three Tabs focus is on %q, want the Save key button", got)
	}
	tb.loads("pressing Enter on Save key", chromedp.KeyEvent(kb.Enter))
	if got := tb.path(); got != "/demo/anthropic" {
		t.Fatalf("after saving by keyboard the browser is at %q, want /demo/anthropic", got)
	}
	if got := tb.text("[data-demo-masked]"); got != encrypt.Mask(anthropicKey) {
		t.Errorf("the demo page shows %q, want %q", got, encrypt.Mask(anthropicKey))
	}

	// Delete from the dashboard: Tab from the top of the page to the card's
	// "Delete…", Enter opens the confirmation, Tab, Enter confirms.
	tb.navigate("/keys")
	found := false
	for range 80 {
		tb.do("Tab", chromedp.KeyEvent(kb.Tab))
		if eval[bool](tb, `!!document.activeElement.closest('#byok-card-anthropic details.dropdown-end') && document.activeElement.tagName === 'SUMMARY'`) {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("Tab never reached the Anthropic card's Delete… button")
	}
	if eval[bool](tb, `getComputedStyle(document.activeElement).outlineStyle === 'none' && getComputedStyle(document.activeElement).boxShadow === 'none'`) {
		t.Error("the focused Delete… button shows no focus ring")
	}
	tb.do("Enter opens the confirmation", chromedp.KeyEvent(kb.Enter))
	tb.do("Tab to the confirm button", chromedp.KeyEvent(kb.Tab))
	if got := eval[string](tb, `document.activeElement.textContent.trim()`); got != "Yes, delete it" {
		t.Fatalf("focus is on %q, want Yes, delete it", got)
	}
	tb.do("Enter confirms", chromedp.KeyEvent(kb.Enter))
	tb.waitSwap("the card is empty", `!document.querySelector('#byok-card-anthropic code') && !!document.querySelector('#byok-card-anthropic-key')`)
	tb.waitFor("focus follows the new card", `!!document.activeElement.closest('#byok-card-anthropic')`)
}

// javaScriptDisabled does the guarded flow, then a delete, with scripts off:
// plain form posts answered by 303s.
func (b *browser) javaScriptDisabled(t *testing.T) {
	tb := b.open(t, false)
	if _, err := chromedp.Call(tb.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("turning JavaScript off: %v", err)
	}
	tb.navigate("/demo/google")
	if got := tb.path(); !strings.HasPrefix(got, "/keys?need=google") {
		t.Fatalf("the guard sent the browser to %q, want the Google form", got)
	}
	if eval[bool](tb, `typeof window.htmx !== 'undefined'`) {
		t.Fatal("htmx ran: JavaScript is not off")
	}
	tb.loads("saving the key", chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS("#byok-card-google-key"), googleKey),
		chromedp.Click(chromedp.CSS("#byok-card-google button[type=submit]"))))
	if got := tb.path(); got != "/demo/google" {
		t.Fatalf("after saving the browser is at %q, want /demo/google", got)
	}
	if got := tb.text("[data-demo-masked]"); got != encrypt.Mask(googleKey) {
		t.Errorf("the demo page shows %q, want %q", got, encrypt.Mask(googleKey))
	}

	tb.navigate("/keys")
	tb.do("opening Delete…", chromedp.Click(chromedp.CSS("#byok-card-google details.dropdown-end > summary")))
	tb.loads("confirming", chromedp.Click(chromedp.CSS(`#byok-card-google form[action$="/delete"] button`)))
	if got := tb.path(); got != "/keys" {
		t.Fatalf("after deleting the browser is at %q, want /keys", got)
	}
	if got := tb.text("#byok-card-google"); !strings.Contains(got, "Not set") {
		t.Errorf("the Google card says %q after the delete, want Not set", got)
	}
	if got := tb.text("#byok-toasts"); !strings.Contains(got, "Google Gemini key removed") {
		t.Errorf("no flash after the delete; toasts say %q", got)
	}
}

// noKeyInDOM fails if the page holds the key anywhere, input values included.
func (tb *tab) noKeyInDOM(key string) {
	tb.t.Helper()
	js := `document.documentElement.outerHTML.includes(` + jsString(key) + `) || ` +
		`Array.from(document.querySelectorAll('input')).some(i => i.value.includes(` + jsString(key) + `))`
	if eval[bool](tb, js) {
		tb.t.Error("the page still holds the plaintext key")
	}
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}
