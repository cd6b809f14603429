// Package convert is the convert stage: a model's weights read in any naming clipgo reads
// (a clipgo checkpoint, an open_clip or OpenAI state dict, a Hugging Face CLIPModel) and
// written in the one asked for, so that a model trained here goes to open_clip or transformers
// and back.
package convert

import (
	"fmt"
	"strings"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/fusion/weights"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
)

// Config is what to convert.
type Config struct {
	In        string         // a run directory (its latest checkpoint), a Hugging Face model directory, or weights in any naming fusion.ReadWeights reads
	QuickGELU bool           // In's activation is QuickGELU (a state dict does not say)
	Out       string         // a .safetensors file, or a directory for weights.HuggingFace
	Format    weights.Format // the naming to write
	DType     string         // "f32" (the default when empty), "f16" or "bf16"
}

// Result says what was written.
type Result struct {
	Out     string
	Model   fusion.Config
	Tensors int
}

// Run converts cfg.In into cfg.Out.
func Run(cfg Config) (Result, error) {
	dtype, ok := map[string]safetensors.DType{"": safetensors.F32, "f32": safetensors.F32,
		"f16": safetensors.F16, "bf16": safetensors.BF16}[strings.ToLower(cfg.DType)]
	if !ok {
		return Result{}, fmt.Errorf("convert: dtype %q: want f32, f16 or bf16", cfg.DType)
	}
	if cfg.Out == "" {
		return Result{}, fmt.Errorf("convert: no output path")
	}
	in, err := evalmodel.WeightsFile(cfg.In)
	if err != nil {
		return Result{}, err
	}
	model, params, err := fusion.ReadWeights(in, cfg.QuickGELU)
	if err != nil {
		return Result{}, err
	}
	if err := weights.Write(cfg.Out, model, params, cfg.Format, dtype); err != nil {
		return Result{}, err
	}
	return Result{Out: cfg.Out, Model: model, Tensors: len(params)}, nil
}
