package fusion

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// Memory is an estimate of what training a model takes in memory, in bytes: the parameters,
// their gradients, AdamW's two moments, the activations one training step keeps for its
// backward pass (at a given batch), and what the process holds besides (Go runtime, the
// tokenizer, OpenBLAS, the input pipeline).
type Memory struct {
	ParamCount  int64 // parameters (float32 each)
	Params      int64
	Gradients   int64
	Optimizer   int64 // AdamW's exp_avg and exp_avg_sq
	Activations int64 // forward values and their gradients for one step of Batch pairs
	Overhead    int64 // the rest of the process, parameter-sized copies included
	Batch       int
}

// Total is the estimate of the process's peak resident memory.
func (m Memory) Total() int64 {
	return satAdd(m.Params, m.Gradients, m.Optimizer, m.Activations, m.Overhead)
}

// PerPair is the part of the estimate each pair of the batch adds.
func (m Memory) PerPair() int64 {
	if m.Batch <= 0 {
		return 0
	}
	return m.Activations / int64(m.Batch)
}

// String is the estimate for a log line: "568 MiB (7.2 M parameters 27 MiB, gradients 27 MiB,
// AdamW state 55 MiB, activations for batch 128 285 MiB, runtime 174 MiB)".
func (m Memory) String() string {
	return fmt.Sprintf("%s (%.1f M parameters %s, gradients %s, AdamW state %s, activations for batch %d %s, runtime %s)",
		Bytes(m.Total()), float64(m.ParamCount)/1e6, Bytes(m.Params), Bytes(m.Gradients), Bytes(m.Optimizer), m.Batch,
		Bytes(m.Activations), Bytes(m.Overhead))
}

// Bytes writes a byte count for people: "312 MiB", "1.9 GiB".
func Bytes(n int64) string {
	switch f := float64(n); {
	case f >= 1<<40:
		return fmt.Sprintf("%.1f TiB", f/(1<<40))
	case f >= 1<<30:
		return fmt.Sprintf("%.1f GiB", f/(1<<30))
	default:
		return fmt.Sprintf("%.0f MiB", f/(1<<20))
	}
}

// Calibration of EstimateMemory against the peak RSS (/usr/bin/time -v) of `clipgo pretrain`
// (3 steps on prepared synthetic shards, no validation, 2 cores, 2026-12-06; the table is in
// EstimateMemory's comment). The analytic activation count (the values one step's forward
// pass keeps, below) times activationFactor is what a pair of the batch adds to the peak:
// the count is of every intermediate, but gorgonia frees or reuses some of them. The ResNet
// count is scaled by resnetFactor on top: its convolutions keep more than the count (batch
// norm's centred and normalised maps, the transposes of channels-last products).
// paramCopies is what the process holds in parameter-sized buffers beyond the parameters,
// gradients and AdamW moments counted apart (the graph's value and gradient nodes beside the
// flat buffers, the checkpoint writer's); overheadBytes is the rest of the process: Go
// runtime, tokenizer (the CLIP vocabulary), OpenBLAS, the input pipeline's workers and
// prefetched batches.
const (
	activationFactor = 0.54
	resnetFactor     = 1.87
	paramCopies      = 3.2
	overheadBytes    = 86 << 20
	floatBytes       = 4
)

// EstimateMemory estimates, from the config alone and before anything is allocated, what
// training cfg at batch pairs per step (per process) takes: parameters, gradients, AdamW state
// (two moments) and the activations of one step, counted per token of each transformer block
// (layer norms, the qkv projection, attention scores and probabilities per head, the MLP's
// hidden width), per feature map of the ResNet tower (im2col of 3×3 convolutions, conv, batch
// norm and ReLU outputs at each stage's resolution), and the batch × batch logits of the
// contrastive loss (both directions, softmax and gradients).
//
// Calibrated against the measured peak RSS of a short `clipgo pretrain` (estimate / measured
// MiB, vocab 49,408 for all three):
//
//	tiny (context 32)       batch 32:  354 / 361 (-2%)    batch 128:  568 / 600 (-5%)
//	small (context 77)      batch 16:  818 / 792 (+3%)    batch 64:  1433 / 1334 (+7%)
//	rn50-tiny (context 32)  batch 16:  553 / 571 (-3%)    batch 64:   960 / 978 (-2%)
//
// so expect it within about ±10% of the peak for shapes like these (larger models and
// batches were not measured here); it is meant to refuse runs that cannot fit (a batch of
// 100,000, a vocabulary of millions), not to budget to the last megabyte. It saturates at
// math.MaxInt64 instead of overflowing.
func EstimateMemory(cfg Config, batch int) Memory {
	b := float64(max(batch, 0))
	var params, act float64 // counts of float32 values
	var vp, va float64
	if cfg.Vision.Type == vision.TypeResNet {
		vp, va = resnetCounts(cfg.Vision, cfg.EmbedDim)
		va *= resnetFactor
	} else {
		vp, va = vitCounts(cfg.Vision, cfg.EmbedDim)
	}
	tp, ta := textCounts(cfg.Text, cfg.EmbedDim)
	params = vp + tp + 1 // + logit_scale
	// Features, their L2 normalisation, the logits both ways, softmaxes and their gradients.
	act = b*(va+ta+6*float64(cfg.EmbedDim)) + 8*b*b
	return Memory{
		ParamCount:  sat(params),
		Params:      sat(params * floatBytes),
		Gradients:   sat(params * floatBytes),
		Optimizer:   sat(2 * params * floatBytes),
		Activations: sat(activationFactor * act * floatBytes),
		Overhead:    satAdd(overheadBytes, sat(paramCopies*params*floatBytes)),
		Batch:       batch,
	}
}

// blockCounts returns a transformer block's parameters and the values it keeps per sample of
// tokens tokens.
func blockCounts(width, heads, tokens int, mlpRatio float64) (params, act float64) {
	w, h, t, n := float64(width), math.Round(float64(width)*mlpRatio), float64(tokens), float64(heads)
	params = 2*w + 3*w*w + 3*w + w*w + w + 2*w + w*h + h + h*w + w
	// Per token: ln_1 (3w), qkv (3w) and its per-head copies (3w), the attention output and
	// its merge (2w), out_proj and the residual (2w), ln_2 (3w), c_fc (h) and GELU (4h),
	// c_proj and the residual (2w); per head, the scores, their scaling and softmax (3·t).
	act = t * (18*w + 5*h + 3*n*t)
	return params, act
}

func vitCounts(c vision.Config, embed int) (params, act float64) {
	w, p := float64(c.Width), float64(c.PatchSize)
	grid := float64(c.ImageSize / max(c.PatchSize, 1))
	tokens := grid*grid + 1
	params = 3*p*p*w + w + tokens*w + 2*w + 2*w + w*float64(embed)
	act = 3*float64(c.ImageSize)*float64(c.ImageSize)*2 + tokens*6*w // patches (im2col), embedding, ln_pre
	bp, ba := blockCounts(c.Width, c.Heads, int(tokens), c.MLPRatio)
	params += float64(c.Layers) * bp
	act += float64(c.Layers)*ba + 4*w
	return params, act
}

func textCounts(c text.Config, embed int) (params, act float64) {
	w, t := float64(c.Width), float64(c.ContextLength)
	params = float64(c.VocabSize)*w + t*w + 2*w + w*float64(embed)
	act = t * 4 * w // gathered embeddings, positional add, ln_final
	bp, ba := blockCounts(c.Width, c.Heads, c.ContextLength, c.MLPRatio)
	params += float64(c.Layers) * bp
	act += float64(c.Layers) * ba
	return params, act
}

// resnetCounts follows vision.NewModifiedResNet: the stem (three 3×3 convolutions, the first of
// stride 2, and a 2×2 pool), four stages of Bottlenecks (1×1, 3×3, pool when strided, 1×1 to
// 4·planes, a downsample path at each stage's first block) and the attention pool.
func resnetCounts(c vision.Config, embed int) (params, act float64) {
	// conv adds a k×k convolution from in to out channels over a map of side s (its output),
	// with batch norm and ReLU: its im2col copy (k > 1), output, normalisation and activation.
	conv := func(in, out, k int, s float64) {
		fi, fo, hw := float64(in), float64(out), s*s
		params += fi*fo*float64(k*k) + 4*fo // weight; bn weight, bias (+ running stats)
		if k > 1 {
			act += hw * fi * float64(k*k)
		}
		act += 4 * hw * fo
	}
	s := float64(c.ImageSize) / 2
	w := c.Width
	act += 3 * float64(c.ImageSize) * float64(c.ImageSize) * 10 // the stride-2 3×3 im2col of the pixels
	conv(3, w/2, 3, s)
	conv(w/2, w/2, 3, s)
	conv(w/2, w, 3, s)
	s /= 2
	act += s * s * float64(w) // the pool
	in := w
	for i, blocks := range c.StageLayers {
		planes := w << i
		for j := range blocks {
			conv(in, planes, 1, s)
			conv(planes, planes, 3, s)
			if i > 0 && j == 0 {
				s /= 2
				act += s * s * float64(planes+in) // the pools of the block and its downsample path
			}
			conv(planes, 4*planes, 1, s)
			if j == 0 {
				conv(in, 4*planes, 1, s)
			}
			act += 2 * s * s * float64(4*planes) // the residual sum and its ReLU
			in = 4 * planes
		}
	}
	// The attention pool over grid² + 1 tokens of width 32·Width.
	width := float64(c.FeatureWidth())
	tokens := s*s + 1
	params += tokens*width + 3*(width*width+width) + width*float64(embed) + float64(embed)
	act += tokens * (8*width + 3*float64(c.Heads)*tokens)
	return params, act
}

// sat converts a count to int64, saturating.
func sat(f float64) int64 {
	if f >= math.MaxInt64 || math.IsNaN(f) {
		return math.MaxInt64
	}
	return int64(f)
}

func satAdd(xs ...int64) int64 {
	var s int64
	for _, x := range xs {
		if s > math.MaxInt64-x {
			return math.MaxInt64
		}
		s += x
	}
	return s
}
