package html_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ginbyok/byok/html/internal/sample"
	"github.com/ginbyok/byok/internal/testenv"
)

// browser starts Debian's chromium on a sample server (strict CSP) and
// returns a tab context, the server URL and a func that returns every
// console message so far.
func browser(t *testing.T) (context.Context, string, func() []chromedp.ConsoleMessage) {
	t.Helper()
	exe := testenv.Chromium(t)
	h, err := sample.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var msgs []chromedp.ConsoleMessage
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	}()
	return ctx, srv.URL, func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]chromedp.ConsoleMessage(nil), msgs...)
	}
}

// step runs actions with a time limit.
func step(ctx context.Context, t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// navClick clicks an element whose click loads a new page: the browser may
// end the click command with "navigated", which is what was asked for.
func navClick(ctx context.Context, t *testing.T, css string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := chromedp.Do(c, chromedp.Click(chromedp.CSS(css)))
	if err != nil && !strings.Contains(err.Error(), "navigated or closed") {
		t.Fatalf("click %s: %v", css, err)
	}
}

// waitFor evaluates expr until it is true, through page loads.
func waitFor(ctx context.Context, t *testing.T, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok, err := chromedp.Run(c, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func eval[T any](ctx context.Context, t *testing.T, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// shot saves a screenshot of the whole page when BYOK_SCREENSHOTS names a
// directory.
func shot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	saveShot(ctx, t, name, chromedp.FullScreenshot(100))
}

// viewShot saves a screenshot of the viewport (as a person sees it, with
// fixed and absolutely placed elements where they are).
func viewShot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	saveShot(ctx, t, name, chromedp.CaptureScreenshot())
}

func saveShot(ctx context.Context, t *testing.T, name string, capture chromedp.Action[[]byte]) {
	t.Helper()
	dir := os.Getenv("BYOK_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(ctx, capture)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowser(t *testing.T) {
	ctx, base, console := browser(t)

	t.Run("patterns compile in v mode and check keys", func(t *testing.T) {
		step(ctx, t, "open", chromedp.Navigate(base+"/keys?state=empty"), chromedp.WaitVisible(chromedp.ID("byok-card-openai-key")))
		cases := []struct {
			id, value string
			valid     bool
		}{
			{"byok-card-openai-key", "sk-" + strings.Repeat("a", 20), true},
			{"byok-card-openai-key", "sk-" + strings.Repeat("-_A9", 6), true},
			{"byok-card-openai-key", "sk-" + strings.Repeat("a", 19), false},
			{"byok-card-openai-key", "sk-" + strings.Repeat("a", 19) + "!", false},
			{"byok-card-openai-key", "xsk-" + strings.Repeat("a", 20), false},
			{"byok-card-anthropic-key", "sk-ant-" + strings.Repeat("b", 20), true},
			{"byok-card-anthropic-key", "sk-" + strings.Repeat("b", 24), false},
			{"byok-card-google-key", "AIza" + strings.Repeat("c", 35), true},
			{"byok-card-google-key", "AIza" + strings.Repeat("c", 34), false},
			{"byok-card-groq-key", "gsk_" + strings.Repeat("d", 20), true},
			{"byok-card-groq-key", "gsk-" + strings.Repeat("d", 20), false},
			{"byok-card-mistral-key", strings.Repeat("e", 32), true},
			{"byok-card-mistral-key", strings.Repeat("e", 31) + " ", false},
		}
		// 16px: underscores in keys stay visible (DejaVu Sans Mono clips
		// them at 14px) and phones do not zoom in on focus.
		if fs := eval[string](ctx, t, `getComputedStyle(document.getElementById('byok-card-openai-key')).fontSize`); fs != "16px" {
			t.Errorf("key input font size %s, want 16px", fs)
		}
		for _, c := range cases {
			js, _ := json.Marshal(c.value)
			got := eval[bool](ctx, t, fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = %s; const v = el.checkValidity(); el.value = ''; return v; })()`, c.id, js))
			if got != c.valid {
				t.Errorf("%s = %q: checkValidity() = %v, want %v", c.id, c.value, got, c.valid)
			}
		}
	})

	t.Run("skip link is first and visible on focus", func(t *testing.T) {
		step(ctx, t, "open", chromedp.Navigate(base+"/keys?state=filled"), chromedp.WaitVisible(chromedp.ID("byok-main")))
		step(ctx, t, "tab", chromedp.KeyEvent(kb.Tab))
		if got := eval[string](ctx, t, `document.activeElement.textContent`); got != "Skip to your keys" {
			t.Fatalf("first Tab focuses %q, want the skip link", got)
		}
		if top := eval[float64](ctx, t, `document.activeElement.getBoundingClientRect().top`); top < 0 {
			t.Errorf("focused skip link is off screen (top %v)", top)
		}
		if o := eval[string](ctx, t, `getComputedStyle(document.activeElement).outlineStyle`); o == "none" {
			t.Error("focused skip link has no outline")
		}
		step(ctx, t, "enter", chromedp.KeyEvent(kb.Enter))
		if got := eval[string](ctx, t, `document.activeElement.id`); got != "byok-main" {
			t.Errorf("after the skip link, focus is on %q, want byok-main", got)
		}
	})

	t.Run("dismiss buttons appear with JS and dismiss", func(t *testing.T) {
		step(ctx, t, "open", chromedp.Navigate(base+"/keys?state=filled"), chromedp.WaitVisible(chromedp.CSS(`main [data-byok-dismiss]`)))
		shot(ctx, t, "dashboard-filled")
		step(ctx, t, "dismiss", chromedp.Click(chromedp.CSS(`main [data-byok-dismiss]`)), chromedp.WaitNotPresent(chromedp.CSS(`main [data-byok-dismissible]`)))
	})

	t.Run("save, replace and delete in place with htmx", func(t *testing.T) {
		step(ctx, t, "open", chromedp.Navigate(base+"/keys"), chromedp.WaitVisible(chromedp.ID("byok-card-groq-key")))
		eval[bool](ctx, t, `window.byokMarker = true`)
		step(ctx, t, "save",
			chromedp.SendKeys(chromedp.ID("byok-card-groq-key"), "gsk_"+strings.Repeat("k", 24)+"WXYZ"),
			chromedp.Click(chromedp.CSS(`#byok-card-groq button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`#byok-card-groq code`)),
			chromedp.WaitVisible(chromedp.CSS(`#byok-toasts [data-byok-toast]`)))
		if !eval[bool](ctx, t, `window.byokMarker === true`) {
			t.Fatal("saving reloaded the page")
		}
		if got := eval[string](ctx, t, `document.querySelector('#byok-card-groq code').textContent`); got != "gsk…WXYZ" {
			t.Errorf("masked key %q", got)
		}
		// Focus moves once htmx has settled the swap (20 ms later).
		waitFor(ctx, t, `document.activeElement.id === 'byok-card-groq-title'`)
		if eval[int](ctx, t, `document.querySelectorAll('input[name=api_key]').length`) == 0 || eval[bool](ctx, t, `!!document.querySelector('#byok-card-groq input[name=api_key]') && document.querySelector('#byok-card-groq input[name=api_key]').value !== ''`) {
			t.Error("a typed key is still in the page")
		}
		if got := eval[string](ctx, t, `document.querySelector('[data-byok-count]').textContent + ' ' + document.querySelector('[data-byok-empty]').hidden + ' ' + document.querySelector('[data-byok-clear]').hidden`); got != "1 true false" {
			t.Errorf("after saving, count/empty hidden/clear hidden = %q, want 1 true false", got)
		}
		shot(ctx, t, "dashboard-saved")

		step(ctx, t, "open replace", chromedp.Click(chromedp.CSS(`#byok-card-groq details.dropdown > summary`)),
			chromedp.WaitVisible(chromedp.ID("byok-card-groq-key")))
		step(ctx, t, "replace",
			chromedp.SendKeys(chromedp.ID("byok-card-groq-key"), "gsk_"+strings.Repeat("n", 24)+"NEW1"),
			chromedp.Click(chromedp.CSS(`#byok-card-groq form button[type=submit]`)),
			chromedp.Poll[chromedp.Void](`document.querySelector('#byok-card-groq code')?.textContent === 'gsk…NEW1'`))

		step(ctx, t, "open delete", chromedp.Click(chromedp.CSS(`#byok-card-groq details.dropdown-end > summary`)),
			chromedp.WaitVisible(chromedp.CSS(`#byok-card-groq form[action$="/delete"] button`)))
		time.Sleep(300 * time.Millisecond) // the dropdown fades in
		viewShot(ctx, t, "delete-confirm")
		step(ctx, t, "delete", chromedp.Click(chromedp.CSS(`#byok-card-groq form[action$="/delete"] button`)),
			chromedp.WaitNotPresent(chromedp.CSS(`#byok-card-groq code`)),
			chromedp.WaitVisible(chromedp.ID("byok-card-groq-key")))
		if !eval[bool](ctx, t, `window.byokMarker === true`) {
			t.Fatal("deleting reloaded the page")
		}
		waitFor(ctx, t, `document.querySelector('[data-byok-count]').textContent === '0' && !document.querySelector('[data-byok-empty]').hidden && document.querySelector('[data-byok-clear]').hidden`)
	})

	t.Run("Escape closes a disclosure", func(t *testing.T) {
		step(ctx, t, "open", chromedp.Navigate(base+"/keys?state=filled"), chromedp.WaitVisible(chromedp.CSS(`#byok-card-openai details.dropdown-end > summary`)))
		step(ctx, t, "open delete", chromedp.Click(chromedp.CSS(`#byok-card-openai details.dropdown-end > summary`)),
			chromedp.WaitVisible(chromedp.CSS(`#byok-card-openai form[action$="/delete"] button`)),
			chromedp.Focus(chromedp.CSS(`#byok-card-openai form[action$="/delete"] button`)),
			chromedp.KeyEvent(kb.Escape))
		if eval[bool](ctx, t, `document.querySelector('#byok-card-openai details.dropdown-end').open`) {
			t.Error("Escape left the delete confirmation open")
		}
		if got := eval[string](ctx, t, `document.activeElement.textContent`); got != "Delete…" {
			t.Errorf("after Escape, focus is on %q, want the summary", got)
		}
	})

	t.Run("provider select swaps the key field", func(t *testing.T) {
		step(ctx, t, "open", chromedp.Navigate(base+"/gallery"), chromedp.WaitVisible(chromedp.ID("byok-multi-provider")))
		eval[bool](ctx, t, `(() => { const s = document.getElementById('byok-multi-provider'); s.value = 'anthropic'; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`)
		got := eval[map[string]string](ctx, t, `(() => { const i = document.getElementById('byok-multi-key'); return {
			placeholder: i.placeholder, pattern: i.getAttribute('pattern') || '', min: i.getAttribute('minlength') || '',
			label: document.querySelector('[data-byok-key-label]').textContent,
			help: document.querySelector('[data-byok-help]').textContent,
			target: document.getElementById('byok-multi').getAttribute('hx-target'),
			docs: document.querySelector('[data-byok-docs]').getAttribute('href') }; })()`)
		anthropic := sample.Providers()[1]
		want := map[string]string{
			"placeholder": anthropic.Placeholder, "pattern": anthropic.Pattern, "min": "27",
			"label": "Anthropic API key", "help": anthropic.Help, "target": "#byok-card-anthropic", "docs": anthropic.DocsURL,
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
		shot(ctx, t, "gallery")
	})

	t.Run("toasts leave by themselves", func(t *testing.T) {
		step(ctx, t, "open", chromedp.Navigate(base+"/gallery"), chromedp.WaitVisible(chromedp.CSS(`#byok-toasts [data-byok-timeout]`)))
		step(ctx, t, "wait", chromedp.WaitNotPresent(chromedp.CSS(`#byok-toasts [data-byok-timeout]`)))
		if n := eval[int](ctx, t, `document.querySelectorAll('#byok-toasts [data-byok-toast]').length`); n != 1 {
			t.Errorf("%d toasts left, want the one without a timeout", n)
		}
	})

	for _, state := range []string{"empty", "error", "need"} {
		step(ctx, t, "open "+state, chromedp.Navigate(base+"/keys?state="+state), chromedp.WaitVisible(chromedp.ID("byok-main")))
		shot(ctx, t, "dashboard-"+state)
	}

	// Nothing was blocked by the CSP, no pattern was rejected, no script failed.
	for _, m := range console() {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
			t.Errorf("console %s: %s (at %s:%d)", m.Type, m.Text, m.URL, m.Line)
		}
	}
}

// TestBrowserNoJS runs the forms with JavaScript off: plain posts, 303s and
// next.
func TestBrowserNoJS(t *testing.T) {
	ctx, base, console := browser(t)
	step(ctx, t, "disable js", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	step(ctx, t, "open", chromedp.Navigate(base+"/keys?need=openai&next=/demo/openai"), chromedp.WaitVisible(chromedp.ID("byok-card-openai-key")))
	if hidden := eval[bool](ctx, t, `document.querySelector('[data-byok-dismiss]') === null || document.querySelector('[data-byok-dismiss]').hidden`); !hidden {
		t.Error("a dismiss button shows without JavaScript")
	}
	step(ctx, t, "save and come back",
		chromedp.SendKeys(chromedp.ID("byok-card-openai-key"), "sk-"+strings.Repeat("q", 30)))
	navClick(ctx, t, `#byok-card-openai button[type=submit]`)
	waitFor(ctx, t, `location.pathname === '/demo/openai'`)

	step(ctx, t, "back to keys", chromedp.Navigate(base+"/keys"), chromedp.WaitVisible(chromedp.CSS(`#byok-card-openai code`)))
	step(ctx, t, "delete with the disclosure",
		chromedp.Click(chromedp.CSS(`#byok-card-openai details.dropdown-end > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#byok-card-openai form[action$="/delete"] button`)))
	navClick(ctx, t, `#byok-card-openai form[action$="/delete"] button`)
	waitFor(ctx, t, `document.readyState === 'complete' && !document.querySelector('#byok-card-openai code') && !!document.getElementById('byok-card-openai-key')`)
	if eval[bool](ctx, t, `!!document.querySelector('#byok-card-openai code')`) {
		t.Error("key still shown after delete")
	}
	for _, m := range console() {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			t.Errorf("console %s: %s", m.Type, m.Text)
		}
	}
}
