package tests

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/stages/evalfile"
)

// TestExplainCLI runs `clipgo explain` both ways on a tiny random checkpoint: one map of a
// text over an image file, and a synthetic split's pictures, which `clipgo report` then
// shows in a run directory.
func TestExplainCLI(t *testing.T) {
	bin := buildCLI(t)
	data := prepareSynthetic(t, 40)
	ckpt := safetyCheckpoint(t, 1)
	var jpg []byte
	for s, err := range shard.Samples(context.Background(), splitFiles(t, data, "zeroshot"), shard.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		jpg = s.JPG
		break
	}
	img := filepath.Join(t.TempDir(), "scene.jpg")
	if err := os.WriteFile(img, jpg, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "map.png")
	got, err := run(t, bin, "", "explain", "--checkpoint", ckpt, "--image", img, "--text", "a red triangle", "--out", out)
	if err != nil || !strings.Contains(got, "best at column") {
		t.Fatalf("explain --image: %v\n%s", err, got)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(f); err != nil {
		t.Errorf("%s: %v", out, err)
	}
	f.Close()

	runDir := filepath.Dir(ckpt) // the checkpoint's directory is a run directory to report on
	if err := os.WriteFile(filepath.Join(runDir, "metrics.jsonl"), []byte(`{"step":1,"loss":4.1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(runDir, "explain")
	if got, err := run(t, bin, "", "explain", "--checkpoint", ckpt, "--data", data, "--out", dir, "--maps", "2", "--points", "20"); err != nil {
		t.Fatalf("explain --data: %v\n%s", err, got)
	}
	ex, err := evalfile.ReadExplanation(dir)
	if err != nil || len(ex.Maps) != 2 || ex.Embedding == nil {
		t.Fatalf("explain index: %+v, %v", ex, err)
	}
	if got, err := run(t, bin, "", "report", runDir); err != nil {
		t.Fatalf("report: %v\n%s", err, got)
	}
	page, err := os.ReadFile(filepath.Join(runDir, "report", "report.html"))
	if err != nil || !strings.Contains(string(page), "What the model looks at") {
		t.Errorf("the report has no explain section (%v)", err)
	}
	for _, bad := range [][]string{
		{"explain", "--checkpoint", ckpt, "--out", out},
		{"explain", "--checkpoint", ckpt, "--image", img, "--data", data, "--out", out},
		{"explain", "--checkpoint", ckpt, "--image", img, "--text", "x", "--out", out, "--method", "gradcam"},
	} {
		if got, err := run(t, bin, "", bad...); err == nil {
			t.Errorf("clipgo %s passed:\n%s", strings.Join(bad, " "), got)
		}
	}
}
