package prepare

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/internal/progress"
)

// TestCountTotal: an image folder's items are counted beside the work and become the bar's
// total (the rejected non-image is not an item); a source that makes its images is not
// counted.
func TestCountTotal(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"cat/a.png", "cat/b.jpg", "dog/c.png", "dog/notes.txt"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := ingest.ImageFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	bar := progress.New(io.Discard, nil, "prepare", -1)
	stop := countTotal(context.Background(), Config{Source: "imagefolder"}, src, bar)
	deadline := time.Now().Add(10 * time.Second)
	for bar.Total() < 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	if got := bar.Total(); got != 3 {
		t.Errorf("total %d, want the folder's 3 images", got)
	}

	syn, err := ingest.Synthetic(ingest.SyntheticOptions{N: 3, Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	bar = progress.New(io.Discard, nil, "prepare", -1)
	countTotal(context.Background(), Config{Source: "synthetic"}, syn, bar)()
	if got := bar.Total(); got != -1 {
		t.Errorf("synthetic: total %d, want none counted (its total comes from its options)", got)
	}
}
