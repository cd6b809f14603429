package index

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/data/ingest"
)

// TestEmbedOnARawFolder: a raw folder where a prepared dataset belongs is refused before the
// checkpoint is opened, with the prepare command that reads it.
func TestEmbedOnARawFolder(t *testing.T) {
	raw := t.TempDir()
	if err := os.WriteFile(filepath.Join(raw, "metadata.jsonl"), []byte(`{"file_name":"a.png","text":"a"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Embed(context.Background(), EmbedOptions{Checkpoint: filepath.Join(raw, "none.safetensors"),
		Data: raw, Out: filepath.Join(t.TempDir(), "e.parquet")})
	if !errors.Is(err, ingest.ErrNotPrepared) || !strings.Contains(err.Error(), "--source captions --captions "+raw) {
		t.Fatalf("error %v, want the prepare command", err)
	}
}
