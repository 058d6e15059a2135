package statuspage_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/duomq/duomq/internal/syncbuf"
)

// e2eWait bounds every wait of the browser tests.
const e2eWait = 60 * time.Second

// findChromium returns the browser's path. Without one the test fails on
// CI (scripts/setup.sh installs it there) and is skipped elsewhere.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is missing: scripts/setup.sh must install it (Debian package chromium) so that the status page e2e test runs")
	}
	t.Skip("status page e2e test not run: chromium not found; run scripts/setup.sh")
	return ""
}

// browser is a headless Chromium tab whose console errors and uncaught
// exceptions are collected.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex
	errors []string
}

// newBrowser starts Chromium with one tab; t.Cleanup stops it.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := findChromium(t)
	out := &syncbuf.Buffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1200),
		chromedp.CombinedOutput(out),
		// Chromium leaves a directory per run in TMPDIR: the test's own.
		chromedp.Env("TMPDIR="+t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // the sandbox refuses to run as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx}
	consoleDone := make(chan struct{})
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		<-consoleDone
		if t.Failed() {
			t.Logf("browser output:\n%s", tail(out.String(), 4000))
		}
	})
	// The first action starts the browser and binds it to ctx, which must
	// have no deadline (the waits below derive their own): bound it here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			close(consoleDone)
			t.Fatalf("start chromium (%s): %v\n%s", path, err, tail(out.String(), 4000))
		}
	case <-time.After(e2eWait):
		close(consoleDone)
		t.Fatalf("chromium (%s) not started within %v\n%s", path, e2eWait, tail(out.String(), 4000))
	}
	messages := chromedp.Console(ctx)
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// consoleErrors are the console errors and exceptions so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// navigate loads url and waits for the page's load event.
func (b *browser) navigate(url string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eWait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("load %s: %v", url, err)
	}
}

// do runs actions in the page.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("page: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page until it holds.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eWait)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(e2eWait)))
	if err != nil {
		problems := eval[string](b, `(document.getElementById('problems') || {}).innerText || ''`)
		b.t.Fatalf("page: not within %v: %s: %v\nproblems shown: %q\nconsole errors: %q", e2eWait, what, err, problems, b.consoleErrors())
	}
}

// screenshot saves a PNG of the whole page in $DUOMQ_TEST_ARTIFACTS (else
// a temporary directory) and logs its path.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("DUOMQ_TEST_ARTIFACTS")
	if dir == "" {
		dir = b.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, e2eWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// expectText checks that elements (by id) show texts.
func (b *browser) expectText(want map[string][]string) {
	b.t.Helper()
	for id, texts := range want {
		got := eval[string](b, fmt.Sprintf(`document.getElementById(%q).innerText`, id))
		for _, w := range texts {
			if !strings.Contains(got, w) {
				b.t.Errorf("#%s lacks %q:\n%s", id, w, got)
			}
		}
	}
}
