package evalmodel

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

func TestDescribe(t *testing.T) {
	txt := text.Config{ContextLength: 32, VocabSize: 49408, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4}
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		vision vision.Config
		config string // config.yaml beside the checkpoint; "fifo": a named pipe
		want   string
	}{
		{"vit", vision.Config{ImageSize: 32, PatchSize: 4, Width: 128, Layers: 2}, "", "ViT-4/32 w128 L2, text w128 L2 ctx32, embed 128"},
		{"vit with preset", vision.Config{ImageSize: 32, PatchSize: 4, Width: 128, Layers: 2}, "model_preset: tiny\n", "tiny ViT-4/32 w128 L2, text w128 L2 ctx32, embed 128"},
		{"resnet", vision.Config{Type: vision.TypeResNet, StageLayers: vision.StageLayers{1, 1, 1, 1}, Width: 32, ImageSize: 64}, "", "RN[1,1,1,1] w32 64px, text w128 L2 ctx32, embed 128"},
		{"config is a named pipe", vision.Config{ImageSize: 32, PatchSize: 4, Width: 128, Layers: 2}, "fifo", "ViT-4/32 w128 L2, text w128 L2 ctx32, embed 128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := filepath.Join(dir, tc.name)
			if err := os.MkdirAll(run, 0o755); err != nil {
				t.Fatal(err)
			}
			cfgPath := filepath.Join(run, "config.yaml")
			switch tc.config {
			case "":
			case "fifo":
				if err := syscall.Mkfifo(cfgPath, 0o644); err != nil {
					t.Skipf("mkfifo: %v", err)
				}
			default:
				if err := os.WriteFile(cfgPath, []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := Describe(filepath.Join(run, "step-000001.safetensors"), fusion.Config{EmbedDim: 128, Vision: tc.vision, Text: txt})
			if got != tc.want {
				t.Errorf("Describe = %q, want %q", got, tc.want)
			}
		})
	}
}
