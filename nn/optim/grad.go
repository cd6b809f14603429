package optim

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/nn"
)

// GradNorm returns the global L2 norm of all gradients, sqrt(Σ g²) over every element of
// every param, accumulated in float64 (torch accumulates in float32; the difference is far
// below what clipping or logging can see). It is +Inf or NaN when a gradient is.
func GradNorm(params []*nn.Param) float64 {
	var sum float64
	for _, p := range params {
		sum += sumSquares(p.Grad)
	}
	return math.Sqrt(sum)
}

// sumSquares is Σ g² in float64 with four independent accumulators, so that the adds
// pipeline instead of waiting on one another (four times faster on large gradients).
func sumSquares(g []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(g); i += 4 {
		a, b, c, d := float64(g[i]), float64(g[i+1]), float64(g[i+2]), float64(g[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(g); i++ {
		s0 += float64(g[i]) * float64(g[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ with the L2 norm: it returns the global
// gradient norm before clipping and, when maxNorm/(norm+1e-6) < 1, multiplies every gradient
// by that factor (in float32, as torch does). A non-finite norm is returned without touching
// the gradients (torch would scale them all by NaN): check it, or GradsFinite, and skip the
// step.
func ClipGradNorm(params []*nn.Param, maxNorm float64) float64 {
	norm := GradNorm(params)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	if coef := maxNorm / (norm + 1e-6); coef < 1 {
		ScaleGrads(params, float32(coef))
	}
	return norm
}

// GradsFinite reports whether every gradient element is finite; if not, it also returns the
// name of the first param holding a NaN or Inf, so the trainer can skip the step and log why.
func GradsFinite(params []*nn.Param) (ok bool, name string) {
	for _, p := range params {
		if !finite(p.Grad) {
			return false, p.Name
		}
	}
	return true, ""
}

// finite reports whether every element of g is finite: g−g is 0 for finite g and NaN for
// ±Inf and NaN, and NaN survives any sum, so four branch-free accumulators decide it.
func finite(g []float32) bool {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(g); i += 4 {
		s0 += g[i] - g[i]
		s1 += g[i+1] - g[i+1]
		s2 += g[i+2] - g[i+2]
		s3 += g[i+3] - g[i+3]
	}
	for ; i < len(g); i++ {
		s0 += g[i] - g[i]
	}
	return s0+s1+s2+s3 == 0
}

// ZeroGrads sets every gradient to 0 (before accumulating a new step).
func ZeroGrads(params []*nn.Param) {
	for _, p := range params {
		clear(p.Grad)
	}
}

// ScaleGrads multiplies every gradient by s, e.g. 1/k after accumulating k micro-batches.
func ScaleGrads(params []*nn.Param, s float32) {
	for _, p := range params {
		for i := range p.Grad {
			p.Grad[i] *= s
		}
	}
}

// AddGrads adds src's gradients into dst's, param by param (gradient accumulation from a
// second model replica or micro-batch). The lists must match in order, name and size; on a
// mismatch nothing is added.
func AddGrads(dst, src []*nn.Param) error {
	if len(dst) != len(src) {
		return fmt.Errorf("add grads: %d params into %d", len(src), len(dst))
	}
	for i := range dst {
		if dst[i].Name != src[i].Name || len(dst[i].Grad) != len(src[i].Grad) {
			return fmt.Errorf("add grads: param %d is %q (%d elements) in dst but %q (%d elements) in src",
				i, dst[i].Name, len(dst[i].Grad), src[i].Name, len(src[i].Grad))
		}
	}
	for i := range dst {
		d, s := dst[i].Grad, src[i].Grad
		for j := range d {
			d[j] += s[j]
		}
	}
	return nil
}
