package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/stages/runlog"
)

// TestDescribeRunMarksBest: a run directory with best.safetensors (train.early_stop) says so.
func TestDescribeRunMarksBest(t *testing.T) {
	dir := t.TempDir()
	has := func() bool {
		var notes []string
		for _, f := range describeRun(dir, "", &notes) {
			if f.Name == "best model" && strings.Contains(f.Value, runlog.BestName) {
				return true
			}
		}
		return false
	}
	if has() {
		t.Error("a best model named in a run without one")
	}
	if err := os.WriteFile(filepath.Join(dir, runlog.BestName), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Error("best.safetensors not named")
	}
}
