package eval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/data/ingest"
)

// TestRetrievalOnARawFolder: a raw folder where a prepared dataset belongs is refused before
// the checkpoint is opened, with the prepare command that reads it.
func TestRetrievalOnARawFolder(t *testing.T) {
	raw := t.TempDir()
	for _, name := range []string{"cat/1.jpg", "dog/2.jpg"} {
		p := filepath.Join(raw, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Retrieval(context.Background(), RetrievalOptions{Checkpoint: filepath.Join(raw, "none.safetensors"),
		Data: raw, Out: filepath.Join(t.TempDir(), "r.json")})
	if !errors.Is(err, ingest.ErrNotPrepared) || !strings.Contains(err.Error(), "clipgo prepare --out "+raw+"-prepared --source imagefolder --root "+raw) {
		t.Fatalf("error %v, want the prepare command", err)
	}
}
