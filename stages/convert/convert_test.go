package convert

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/fusion/weights"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// TestRunConverts: a clipgo checkpoint goes to transformers' naming and back to a clipgo
// checkpoint with its config and values (BF16 rounding aside), and bad requests say what is
// wrong.
func TestRunConverts(t *testing.T) {
	cfg := fusion.Config{EmbedDim: 8, QuickGELU: true,
		Vision: vision.Config{ImageSize: 16, PatchSize: 8, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4},
		Text:   text.Config{ContextLength: 8, VocabSize: 300, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4}}
	params, err := fusion.WeightsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range params {
		for j := range p.Value {
			p.Value[j] = float32(i+j%7) / 8 // exact in BF16
		}
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.safetensors")
	if err := weights.Write(in, cfg, params, weights.Clipgo, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	r, err := Run(Config{In: in, Out: dir + "/hf", Format: weights.HuggingFace, DType: "bf16"})
	if err != nil || r.Model != cfg || r.Tensors != len(params) {
		t.Fatalf("to huggingface: %+v, %v", r, err)
	}
	// config.json says QuickGELU, so the way back needs no flag.
	back := filepath.Join(dir, "back.safetensors")
	if _, err := Run(Config{In: dir + "/hf/model.safetensors", Out: back, Format: weights.Clipgo}); err != nil {
		t.Fatal(err)
	}
	got, gotParams, err := fusion.ReadWeights(back, false)
	if err != nil || got != cfg {
		t.Fatalf("read back %+v, %v; want %+v", got, err, cfg)
	}
	for i, p := range params {
		for j, v := range p.Value {
			if gotParams[i].Value[j] != v {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, j, gotParams[i].Value[j], v)
			}
		}
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{In: in, Out: back, Format: weights.OpenCLIP, DType: "f8"}, "dtype"},
		{Config{In: in, Out: back, Format: "onnx"}, "format"},
		{Config{In: in, Format: weights.OpenCLIP}, "output"},
		{Config{In: dir + "/missing.safetensors", Out: back, Format: weights.OpenCLIP}, "missing.safetensors"},
	} {
		if _, err := Run(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v, want an error about %s", tc.c, err, tc.want)
		}
	}
}

// TestRunReadsARunDirectory: a run directory stands for its latest checkpoint, as for the
// evaluation commands.
func TestRunReadsARunDirectory(t *testing.T) {
	cfg := fusion.Config{EmbedDim: 8,
		Vision: vision.Config{ImageSize: 16, PatchSize: 8, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4},
		Text:   text.Config{ContextLength: 8, VocabSize: 300, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4}}
	params, err := fusion.WeightsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	if _, err := checkpoint.Save(run, 7, params, nil, checkpoint.Meta{Config: string(raw), Step: 7}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "open_clip.safetensors")
	if r, err := Run(Config{In: run, Out: out, Format: weights.OpenCLIP}); err != nil || r.Model != cfg {
		t.Fatalf("convert of a run directory: %+v, %v", r, err)
	}
}
