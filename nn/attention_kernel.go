package nn

import (
	"math"
	"runtime"
)

// attention is the core of multi-head self-attention over a fused projection: per sequence b
// and head h, with q, k, v the head's columns of qkv [batch·seq, 3·width],
//
//	o = softmax(q·d^-½ · kᵀ + mask) · v
//
// written into the head's columns of o [batch·seq, width] (heads concatenated, as the
// reference's transpose+reshape). The forward pass keeps the probabilities for the backward
// pass; the causal mask sets scores above the diagonal to −∞ (their probabilities are zero).
type attention[T Float] struct {
	batch, seq, heads, width int
	causal                   bool
	probs                    []T   // [batch·heads, seq, seq]
	scratch                  [][]T // per worker [seq, seq]
}

func newAttention[T Float](batch, seq, heads, width int, causal bool) *attention[T] {
	return &attention[T]{batch: batch, seq: seq, heads: heads, width: width, causal: causal,
		probs: make([]T, batch*heads*seq*seq)}
}

func (a *attention[T]) headDim() int { return a.width / a.heads }

// blocks returns the offsets of q, k, v of head h of sequence b inside qkv and of its output
// inside o.
func (a *attention[T]) blocks(b, h int) (q, k, v, o int) {
	d, w := a.headDim(), a.width
	row := b * a.seq
	return row*3*w + h*d, row*3*w + w + h*d, row*3*w + 2*w + h*d, row*w + h*d
}

func (a *attention[T]) forward(o, qkv []T) {
	L, d, w := a.seq, a.headDim(), a.width
	scale := T(1 / math.Sqrt(float64(d)))
	parallel(a.batch*a.heads, func(_, bh int) {
		b, h := bh/a.heads, bh%a.heads
		qo, ko, vo, oo := a.blocks(b, h)
		p := a.probs[bh*L*L : (bh+1)*L*L]
		Gemm(false, true, L, L, d, scale, qkv[qo:], 3*w, qkv[ko:], 3*w, 0, p, L)
		for i := range L {
			n := L
			if a.causal {
				n = i + 1
			}
			softmaxRow(p[i*L:(i+1)*L], n)
		}
		Gemm(false, false, L, d, L, 1, p, L, qkv[vo:], 3*w, 0, o[oo:], w)
	})
}

// backward writes dqkv from the output gradient do, using the probabilities of the last
// forward pass: dv = pᵀ·do, dp = do·vᵀ, ds = p∘(dp − rowsum(dp∘p)), dq = d^-½·ds·k,
// dk = d^-½·dsᵀ·q.
func (a *attention[T]) backward(dqkv, qkv, do []T) {
	L, d, w := a.seq, a.headDim(), a.width
	scale := T(1 / math.Sqrt(float64(d)))
	if a.scratch == nil {
		a.scratch = make([][]T, runtime.GOMAXPROCS(0))
	}
	parallel(a.batch*a.heads, func(wk, bh int) {
		if len(a.scratch[wk]) != L*L {
			a.scratch[wk] = make([]T, L*L)
		}
		ds := a.scratch[wk]
		b, h := bh/a.heads, bh%a.heads
		qo, ko, vo, oo := a.blocks(b, h)
		p := a.probs[bh*L*L : (bh+1)*L*L]
		Gemm(true, false, L, d, L, 1, p, L, do[oo:], w, 0, dqkv[vo:], 3*w)
		Gemm(false, true, L, L, d, 1, do[oo:], w, qkv[vo:], 3*w, 0, ds, L)
		for i := range L {
			pr, sr := p[i*L:(i+1)*L], ds[i*L:(i+1)*L]
			var dot float64
			for j := range pr {
				dot += float64(pr[j]) * float64(sr[j])
			}
			for j := range pr {
				sr[j] = pr[j] * (sr[j] - T(dot))
			}
		}
		Gemm(false, false, L, d, L, scale, ds, L, qkv[ko:], 3*w, 0, dqkv[qo:], 3*w)
		Gemm(true, false, L, d, L, scale, ds, L, qkv[qo:], 3*w, 0, dqkv[ko:], 3*w)
	})
}
