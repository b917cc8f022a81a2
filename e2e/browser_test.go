package e2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/ginbyok/byok/example/app"
	"github.com/ginbyok/byok/internal/testenv"
)

// Keys the tests type: well-formed for their providers.
const (
	openaiKey      = "sk-proj-E2Eopenai0123456789abcdefghijKLMNOPqrst"
	openaiKey2     = "sk-proj-E2Ereplacement0123456789abcdefghijWXYZ"
	anthropicKey   = "sk-ant-api03-E2Eanthropic0123456789abcdefghijklmn"
	googleKey      = "AIzaSyE2Egoogle0123456789abcdefghijkl"
	screenshotsDir = "testdata/screenshots"
)

// stepTimeout bounds each scenario once its tab is open.
const stepTimeout = 30 * time.Second

// cspDirectives are what the Content-Security-Policy of every page must
// hold.
var cspDirectives = []string{"default-src 'self'", "script-src 'self'", "style-src 'self'",
	"img-src 'self' data:", "frame-ancestors 'none'", "form-action 'self'"}

func TestBrowser(t *testing.T) {
	chromium := testenv.Chromium(t)
	gin.SetMode(gin.TestMode)
	h, release, err := app.New(t.Context(), app.Config{
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // 127.0.0.1
	t.Cleanup(func() { srv.Close(); release() })
	if err := os.MkdirAll(screenshotsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, _ := filepath.Glob(filepath.Join(screenshotsDir, "fail-*.png"))
	for _, f := range stale {
		_ = os.Remove(f)
	}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil { // starts chromium
		t.Fatalf("starting chromium (%s): %v", chromium, err)
	}
	b := &browser{ctx: browserCtx, base: srv.URL}

	t.Run("ConsoleWatchSeesCSPViolations", b.consoleWatchSeesCSPViolations)
	t.Run("AddReplaceDeleteWithoutPageLoads", b.addReplaceDelete)
	t.Run("ErrorShownInTheCard", b.errorInTheCard)
	t.Run("GuardedPageToFormAndBack", b.guardedPageToFormAndBack)
	t.Run("SignInAndOut", b.signInAndOut)
	t.Run("KeyboardOnly", b.keyboardOnly)
	t.Run("JavaScriptDisabled", b.javaScriptDisabled)
}

// browser is the shared chromium and the app's URL.
type browser struct {
	ctx  context.Context
	base string
}

// tab is one scenario's tab, in a browser context of its own (its own
// cookies), watching the console.
type tab struct {
	t    *testing.T
	ctx  context.Context // the tab, bounded by stepTimeout
	root context.Context // the tab, unbounded (for a failure screenshot)
	base string
	cons *consoleWatch
}

// open opens a fresh tab. Unless allowErrors, the scenario fails when the
// page logged an error, threw, or had something blocked.
func (b *browser) open(t *testing.T, allowErrors bool) *tab {
	t.Helper()
	cons := &consoleWatch{}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(cons.listen))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	tctx, cancelT := context.WithTimeout(ctx, stepTimeout)
	t.Cleanup(cancelT)
	tb := &tab{t: t, ctx: tctx, root: ctx, base: b.base, cons: cons}
	if !allowErrors {
		t.Cleanup(func() {
			for _, m := range cons.errors() {
				t.Errorf("browser console: %s", m)
			}
		})
	}
	return tb
}

// consoleWatch collects what the console would show in red: console.error
// calls, uncaught exceptions, and error entries of the browser log (where
// Chromium reports CSP violations and failed loads).
type consoleWatch struct {
	mu       sync.Mutex
	msgs     []string
	allowed  []string
	requests []string // what the tab asked for, to explain a failure
}

// history returns the requests the tab made, oldest first.
func (c *consoleWatch) history() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.requests...)
}

// allow lets messages that contain s pass: an error the scenario causes on
// purpose.
func (c *consoleWatch) allow(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allowed = append(c.allowed, s)
}

func (c *consoleWatch) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		c.mu.Lock()
		c.requests = append(c.requests, ev.Request.Method+" "+ev.Request.URL+" ("+string(ev.Type)+")")
		c.mu.Unlock()
		return
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = "uncaught: " + d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		msg += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level != cdplog.EntryLevelError {
			return
		}
		msg = "log " + string(ev.Entry.Source) + ": " + ev.Entry.Text
		if ev.Entry.URL != "" {
			msg += " (" + ev.Entry.URL + ")"
		}
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.allowed {
		if strings.Contains(msg, a) {
			return
		}
	}
	c.msgs = append(c.msgs, msg)
}

func (c *consoleWatch) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// do runs actions; on failure it saves a screenshot and stops the test.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.failShot()
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// navigate loads path and returns the response of the final document
// (after redirects).
func (tb *tab) navigate(path string) *network.Response {
	tb.t.Helper()
	res, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(tb.base+path))
	if err != nil {
		tb.failShot()
		tb.t.Fatalf("navigating to %s: %v", path, err)
	}
	return res
}

// loads runs an action that makes the browser load a page (a form post, a
// link) and waits for it.
func (tb *tab) loads(what string, a chromedp.Action[chromedp.Void]) *network.Response {
	tb.t.Helper()
	res, err := chromedp.RunResponse(tb.ctx, a)
	if err != nil {
		tb.failShot()
		tb.t.Fatalf("%s: %v", what, err)
	}
	return res
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.EvaluateAsDevTools[T](expr))
	if err != nil {
		tb.failShot()
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds.
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		tb.failShot()
		tb.t.Fatalf("waiting until %s (%s): %v", what, cond, err)
	}
}

// settledJS holds once htmx has finished every request and swap: new
// content is wired up only when the swap settles (htmx's settle delay), and
// a click before that would submit a form the plain way.
const settledJS = `document.querySelectorAll('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added').length === 0`

// waitSwap waits until cond holds and htmx has settled.
func (tb *tab) waitSwap(what, cond string) {
	tb.t.Helper()
	tb.waitFor(what, "("+cond+") && "+settledJS)
}

// text returns the text of the element sel, white space collapsed.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.failShot()
		tb.t.Fatalf("reading the text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// path is the current location without the origin.
func (tb *tab) path() string {
	tb.t.Helper()
	return strings.TrimPrefix(eval[string](tb, "location.pathname + location.search"), tb.base)
}

// activeID is the id of the focused element.
func (tb *tab) activeID() string {
	tb.t.Helper()
	return eval[string](tb, "document.activeElement ? document.activeElement.id : ''")
}

// screenshot saves a full-page PNG as testdata/screenshots/name.png.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	// Let the page settle (fonts, transitions) before the picture.
	tb.do("settling", chromedp.Sleep(150*time.Millisecond))
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotsDir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// failShot saves a screenshot of a failing scenario, best effort, and logs
// the tab's requests.
func (tb *tab) failShot() {
	tb.t.Logf("requests of the tab:\n  %s", strings.Join(tb.cons.history(), "\n  "))
	ctx, cancel := context.WithTimeout(tb.root, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		name := "fail-" + strings.NewReplacer("/", "-", " ", "-").Replace(tb.t.Name()) + ".png"
		_ = os.WriteFile(filepath.Join(screenshotsDir, name), png, 0o644)
	}
}

// wantCSP checks the response's Content-Security-Policy.
func wantCSP(t *testing.T, what string, res *network.Response) {
	t.Helper()
	if res == nil {
		t.Fatalf("%s: no response", what)
	}
	var csp string
	for k, v := range res.Headers {
		if strings.EqualFold(k, "Content-Security-Policy") {
			csp, _ = v.(string)
		}
	}
	if csp == "" {
		t.Fatalf("%s: no Content-Security-Policy header", what)
	}
	for _, d := range cspDirectives {
		if !strings.Contains(csp, d) {
			t.Errorf("%s: CSP %q lacks %q", what, csp, d)
		}
	}
}
