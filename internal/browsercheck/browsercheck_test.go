package browsercheck

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMeasureSeesOverflow: a page with a 600 px wide block overflows a 390 px window and not
// a 1280 px one; a page that wraps fits both. Without this, a check that always passed
// would look the same as a page that fits.
func TestMeasureSeesOverflow(t *testing.T) {
	b := Require(t)
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		body string
		wide map[int]bool
	}{
		"fixed": {`<div style="width: 600px">a block of a fixed width</div>`, map[int]bool{1280: false, 390: true}},
		"wraps": {`<div style="max-width: 600px">a block that narrows</div>`, map[int]bool{1280: false, 390: false}},
	} {
		page := filepath.Join(dir, name+".html")
		if err := os.WriteFile(page, []byte("<!DOCTYPE html><html><body>"+tc.body+"</body></html>"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, shot, err := b.Measure(t.Context(), page, dir, name)
		if err != nil {
			t.Fatal(err)
		}
		for w, want := range tc.wide {
			if l, ok := got[w]; !ok || l.Overflows() != want {
				t.Errorf("%s at %d px: measured %+v (found %v), want overflow %v", name, w, l, ok, want)
			}
		}
		if _, err := os.Stat(shot); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
