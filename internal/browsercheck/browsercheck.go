// Package browsercheck looks at a generated HTML page in a real browser, headless Chromium:
// a screenshot at a given window width, and whether the page is wider than the window (a
// horizontal scroll bar on a phone). The report and search pages are checked with it by
// tests that run only when CLIPGO_BROWSER_CHECK=1 (make browser-check): Chromium is too heavy
// a dependency for every test run.
package browsercheck

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvVar turns the browser checks on.
const EnvVar = "CLIPGO_BROWSER_CHECK"

// ShotsVar names the directory the screenshots go to; os.TempDir()/clipgo-browser-check
// when unset, never the repository.
const ShotsVar = "CLIPGO_BROWSER_SHOTS"

// Widths are the window widths the pages are checked at: a laptop and a phone.
var Widths = []int{1280, 390}

// Browser is a headless Chromium.
type Browser struct{ bin string }

// Require returns the browser for a test, skipping the test unless EnvVar is 1, and failing
// it when EnvVar is 1 and no Chromium is installed (apt-get install chromium).
func Require(t *testing.T) Browser {
	t.Helper()
	if os.Getenv(EnvVar) != "1" {
		t.Skipf("a browser check: set %s=1 (make browser-check) with chromium installed", EnvVar)
	}
	for _, name := range []string{os.Getenv("CLIPGO_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if bin, err := exec.LookPath(name); err == nil {
			return Browser{bin: bin}
		}
	}
	t.Fatalf("%s=1 but no chromium on PATH (apt-get install chromium)", EnvVar)
	return Browser{}
}

// ShotsDir returns the directory for screenshots, made if need be.
func ShotsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(ShotsVar)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "clipgo-browser-check")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (b Browser) run(ctx context.Context, size string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	home, err := os.MkdirTemp("", "browsercheck-profile-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + home, size, "--virtual-time-budget=5000"}
	cmd := exec.CommandContext(ctx, b.bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", b.bin, err, lastLines(stderr.String(), 20))
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Layout is what the browser measured of a page laid out in one window width.
type Layout struct {
	Viewport    int      // window.innerWidth: the width the page was laid out for
	ClientWidth int      // document.documentElement.clientWidth
	ScrollWidth int      // document.documentElement.scrollWidth: wider than ClientWidth is overflow
	Wide        []string // the outermost elements reaching past the right edge, not in a scrolled box (tag.class:width:text), at most 10
}

// Overflows says whether the page is wider than its window.
func (l Layout) Overflows() bool { return l.ScrollWidth > l.ClientWidth }

// measure goes at the end of a copy of the page: once the page has loaded, it sends its
// widths to the frame around it.
const measure = `<script>
addEventListener("load", () => {
  const d = document.documentElement, wide = [];
  const past = e => e.getBoundingClientRect().right > d.clientWidth + 0.5;
  const clipped = e => { for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) if (getComputedStyle(a).overflowX !== "visible") return true; return false; };
  for (const e of document.body.querySelectorAll("*")) {
    if (past(e) && !past(e.parentElement) && !clipped(e) && wide.length < 10) {
      wide.push(e.tagName.toLowerCase() + "." + e.className + ":" + Math.round(e.getBoundingClientRect().width) + ":" + (e.textContent || "").trim().slice(0, 30).replace(/[,<\s]+/g, " "));
    }
  }
  parent.postMessage("viewport=" + innerWidth + " client=" + d.clientWidth + " scroll=" + d.scrollWidth + " wide=" + wide.join(","), "*");
});
</script>`

// HeightVar sets the height of the windows, and so how much of a long page the screenshot
// shows: 1600 px unless set.
const HeightVar = "CLIPGO_BROWSER_HEIGHT"

func frameHeight() int {
	if h, err := strconv.Atoi(os.Getenv(HeightVar)); err == nil && h >= 200 && h <= 30000 {
		return h
	}
	return 1600
}

// A Chromium window is at least 500 px wide, so a page is laid out at each width inside an
// iframe of that width, side by side in one wrapper page, which also collects what each
// frame measured into its DOM for --dump-dom. One run measures every width, a second takes
// the screenshot of them all.
const wrapper = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
body { margin: 0; display: flex; gap: 20px; align-items: flex-start; background: #888; }
iframe { border: 0; height: {{H}}px; background: white; flex: none; }
</style></head><body>
{{FRAMES}}
<script>
addEventListener("message", e => {
  const p = document.createElement("pre");
  p.className = "browsercheck";
  p.textContent = e.data;
  document.body.appendChild(p);
});
</script>
</body></html>`

var measured = regexp.MustCompile(`<pre class="browsercheck">viewport=(\d+) client=(\d+) scroll=(\d+) wide=([^<]*)</pre>`)

// Measure lays page out at each of Widths and returns what the browser measured at each
// width, and the path of one screenshot of the page at all the widths side by side, taken
// into shots. It works on a copy of the page with a small script added; the page itself is
// not changed.
func (b Browser) Measure(ctx context.Context, page, shots, name string) (map[int]Layout, string, error) {
	raw, err := os.ReadFile(page)
	if err != nil {
		return nil, "", err
	}
	i := bytes.LastIndex(raw, []byte("</body>"))
	if i < 0 {
		return nil, "", fmt.Errorf("%s: no </body>", page)
	}
	dir, err := os.MkdirTemp("", "browsercheck-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "page.html"), slices.Concat(raw[:i:i], []byte(measure), raw[i:]), 0o644); err != nil {
		return nil, "", err
	}
	var frames strings.Builder
	total := 0
	for _, w := range Widths {
		fmt.Fprintf(&frames, "<iframe src=\"page.html\" style=\"width: %dpx\"></iframe>\n", w)
		total += w + 20
	}
	wrap := strings.NewReplacer("{{H}}", strconv.Itoa(frameHeight()), "{{FRAMES}}", frames.String()).Replace(wrapper)
	wrapPath := filepath.Join(dir, "wrapper.html")
	if err := os.WriteFile(wrapPath, []byte(wrap), 0o644); err != nil {
		return nil, "", err
	}
	size := fmt.Sprintf("--window-size=%d,%d", total, frameHeight())
	dom, err := b.run(ctx, size, "--dump-dom", "file://"+wrapPath)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	got := map[int]Layout{}
	for _, m := range measured.FindAllSubmatch(dom, -1) {
		l := Layout{Viewport: atoi(m[1]), ClientWidth: atoi(m[2]), ScrollWidth: atoi(m[3])}
		if w := strings.TrimSpace(string(m[4])); w != "" {
			l.Wide = strings.Split(w, ",")
		}
		got[l.Viewport] = l
	}
	shot := filepath.Join(shots, name+".png")
	if _, err := b.run(ctx, size, "--screenshot="+shot, "file://"+wrapPath); err != nil {
		return got, "", fmt.Errorf("%s: %w", name, err)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		return got, "", fmt.Errorf("%s: no screenshot written to %s", name, shot)
	}
	return got, shot, nil
}

// Check measures page (Measure) and fails t when it is wider than the window at any of
// Widths, or was not measured at one. It returns the screenshot's path, for a person to
// look at.
func Check(t *testing.T, b Browser, page, name string) string {
	t.Helper()
	got, shot, err := b.Measure(t.Context(), page, ShotsDir(t), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range Widths {
		l, ok := got[w]
		if !ok {
			t.Errorf("%s: no measurement at %d px (the browser measured %v)", name, w, got)
			continue
		}
		t.Logf("%s at %d px: client width %d, scroll width %d", name, w, l.ClientWidth, l.ScrollWidth)
		if l.Overflows() {
			t.Errorf("%s at %d px: the page is %d px wide in a %d px window; too wide: %v", name, w, l.ScrollWidth, l.ClientWidth, l.Wide)
		}
	}
	t.Logf("%s: screenshot at %s px side by side (look at it): %s", name, strings.Trim(fmt.Sprint(Widths), "[]"), shot)
	return shot
}

func atoi(b []byte) int { n, _ := strconv.Atoi(string(b)); return n }
