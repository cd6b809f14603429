package report

import (
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/internal/browsercheck"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

// TestReportInBrowser lays two reports out in headless Chromium at 1280 and 390 px: one with
// 48 classes (top confusions, a matrix wider than the page, retrieval examples) and one with
// 10 classes, one of them without images. Neither may be wider than the window; the
// screenshots are left in browsercheck.ShotsDir to look at. Runs with CLIPGO_BROWSER_CHECK=1
// (make browser-check).
func TestReportInBrowser(t *testing.T) {
	b := browsercheck.Require(t)
	for name, run := range map[string]string{
		"report-48-classes": fakeRun(t, true),
		"report-explain":    explainRun(t),
		"report-10-classes": func() string {
			counts, names := fakeConfusion(10)
			counts[3] = make([]int, 10)
			return zeroshotRun(t, counts, names, nil, "")
		}(),
	} {
		path, err := Write(Options{RunDir: run, Out: filepath.Join(t.TempDir(), name)})
		stagetest.Must(t, err)
		browsercheck.Check(t, b, path, name)
	}
}
