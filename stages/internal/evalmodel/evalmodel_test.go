package evalmodel

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
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

// TestOpenAStateDict: a model saved as a bare state dict (no clipgo metadata, "module."
// names, no optimiser file), as open_clip's training saves it, opens for evaluation with the
// checkpoint's embeddings; --quick-gelu sets the activation a state dict cannot record.
func TestOpenAStateDict(t *testing.T) {
	cfg := fusion.Config{EmbedDim: 16,
		Vision: vision.Config{ImageSize: 16, PatchSize: 8, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4},
		Text:   text.Config{ContextLength: 8, VocabSize: 49408, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4}}
	ckpt := stagetest.Checkpoint(t, cfg, 3)
	ref, err := Open(ckpt, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	f, err := safetensors.OpenFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []safetensors.Tensor
	for _, info := range f.Tensors {
		v, err := f.Float32s(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: fusion.ModulePrefix + info.Name, DType: safetensors.F32, Shape: info.Shape, Data: v})
	}
	f.Close()
	sd := filepath.Join(t.TempDir(), "open_clip.safetensors")
	w, err := os.Create(sd)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(w, tensors, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, quick := range []bool{false, true} {
		m, err := Open(sd, 4, quick)
		if err != nil {
			t.Fatal(err)
		}
		want := cfg
		want.QuickGELU = quick
		if m.Config != want {
			t.Errorf("quick %v: config %+v, want %+v", quick, m.Config, want)
		}
		got, err := m.Enc.Texts([]string{"a dog", "two cats on a mat"})
		if err != nil {
			t.Fatal(err)
		}
		exp, err := ref.Enc.Texts([]string{"a dog", "two cats on a mat"})
		if err != nil {
			t.Fatal(err)
		}
		same := true
		for i := range got {
			same = same && got[i] == exp[i]
		}
		if same == quick {
			t.Errorf("quick-gelu %v: embeddings equal to the GELU checkpoint's: %v", quick, same)
		}
		m.Close()
	}
}
