package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browser drives Debian's chromium (headless) through the DevTools
// protocol: the web console as a user sees it. Screenshots go to the
// test's artifact directory (go test -artifacts keeps them under
// -outputdir; without the flag a temporary directory removed after the
// test) or to $CONSOLE_SCREENSHOTS.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	dir   string
	n     int
	start time.Time

	mu       sync.Mutex
	problems []string // CSP refusals, uncaught exceptions
	urls     []string // every URL the page requested
}

// chromiumPath finds the browser: $CHROMIUM, else chromium on PATH.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("REQUIRE_DB") != "" || os.Getenv("REQUIRE_BROWSER") != "" {
			t.Fatal("chromium not found (apt-get install -y chromium, or set CHROMIUM)")
		}
		t.Skip("chromium not found (apt-get install -y chromium); REQUIRE_BROWSER=1 makes this a failure")
	}
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	b := &browser{t: t, ctx: ctx, base: base, dir: dir, start: time.Now()}
	t.Cleanup(func() {
		at := time.Now()
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		t.Logf("chromium stopped in %s", time.Since(at))
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("%5.1fs chromium started", time.Since(b.start).Seconds())
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	}()
	reqs := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range reqs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.urls = append(b.urls, ev.Request.URL+ev.Request.URLFragment)
			b.mu.Unlock()
		}
	}()
	t.Logf("console screenshots: %s", dir)
	return b
}

// check fails the test on a CSP refusal or an uncaught exception so far.
func (b *browser) check() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser console: %s", p)
	}
	b.problems = nil
}

func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.shot("failure")
		b.t.Fatalf("%s: %v", what, err)
	}
}

func js(s string) string { q, _ := json.Marshal(s); return string(q) }

// eval runs a JavaScript expression.
func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.shot("failure")
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition (true when met).
func (b *browser) waitFor(what, cond string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if evalJS[bool](b, "!!("+cond+")") {
			return
		}
		if time.Now().After(deadline) {
			b.shot("failure")
			b.t.Fatalf("%s: not within %s (%s); page: %.400s", what, timeout, cond, evalJS[string](b, "document.querySelector('main')?.innerText || document.body.innerText"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// text is the text of the first element matching sel ("" when none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return evalJS[string](b, "document.querySelector("+js(sel)+")?.textContent ?? ''")
}

func (b *browser) exists(sel string) bool {
	b.t.Helper()
	return evalJS[bool](b, "!!document.querySelector("+js(sel)+")")
}

// page goes to a console route (the fragment) and waits for its heading.
func (b *browser) page(route, heading string) {
	b.t.Helper()
	evalJS[chromedp.Void](b, "location.hash = "+js("#/"+route))
	b.waitFor("page "+route, "document.querySelector('main h1')?.textContent === "+js(heading)+" && !document.querySelector('main .loading')", 15*time.Second)
}

// idle waits until the page has settled (no request in flight for a while):
// the console renders after its API calls.
func (b *browser) idle() {
	b.t.Helper()
	time.Sleep(400 * time.Millisecond)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// typeIn types text into the field (real key events).
func (b *browser) typeIn(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// choose sets a select's value as a user would (a change event).
func (b *browser) choose(sel, value string) {
	b.t.Helper()
	ok := evalJS[bool](b, `(() => { const s = document.querySelector(`+js(sel)+`); if (!s) return false;
		s.value = `+js(value)+`; s.dispatchEvent(new Event('change', {bubbles: true})); return s.value === `+js(value)+`; })()`)
	if !ok {
		b.shot("failure")
		b.t.Fatalf("choose %s in %s", value, sel)
	}
}

// unlabelled lists the visible form controls without a label (a <label
// for>, a wrapping label or aria-label) and buttons without a name.
const unlabelled = `[...document.querySelectorAll('input, select, textarea, button')].filter(e => {
	if (e.type === 'hidden' || e.hidden || e.closest('[hidden]') || e.offsetParent === null) return false;
	if (e.tagName === 'BUTTON') return !(e.textContent.trim() || e.getAttribute('aria-label'));
	return !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby');
}).map(e => e.outerHTML.slice(0, 120))`

// shot writes a full-page screenshot (PNG) named after the step, and checks
// that every visible control of the page has a label.
func (b *browser) shot(name string) {
	b.t.Helper()
	if name != "failure" {
		for _, html := range evalJS[[]string](b, unlabelled) {
			b.t.Errorf("%s: a control without a label: %s", name, html)
		}
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.n++
	file := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.n, name))
	b.t.Logf("%5.1fs %s", time.Since(b.start).Seconds(), filepath.Base(file))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
	}
}

func (b *browser) requestedURLs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.urls...)
}

// pressKeys sends keys to whatever has the focus (Tab, Enter, Escape).
func (b *browser) pressKeys(keys string) {
	b.t.Helper()
	b.do("keys", chromedp.KeyEvent(keys))
}
