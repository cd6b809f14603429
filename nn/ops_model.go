package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds the ops around the transformer blocks: embeddings, pooling, the joint
// embedding space and the contrastive loss, and Tap/Store, which copy values out of a run.

// Embedding returns table[ids[r]] + pos[r mod L] for each of the B·L ids: the token embedding
// gather plus the positional embedding, [B·L, W]. ids is read at every run (the caller refills
// it in place); every id must be in [0, V), which the caller checks. The table's gradient is a
// scatter-add of the row gradients (repeated ids accumulate); the rows written by the previous
// run are cleared instead of the whole [V, W] table.
func Embedding(table, pos *G.Node, ids []int32) (*G.Node, error) {
	if isF64(table) {
		return embedding[float64](table, pos, ids)
	}
	return embedding[float32](table, pos, ids)
}

func embedding[T Float](table, pos *G.Node, ids []int32) (*G.Node, error) {
	v, w, err := dims2("embedding", table)
	if err != nil {
		return nil, err
	}
	l, pw, err := dims2("embedding", pos)
	if err != nil {
		return nil, err
	}
	if pw != w || len(ids) == 0 || len(ids)%l != 0 {
		return nil, fmt.Errorf("embedding: table %v, positions %v and %d ids do not fit", table.Shape(), pos.Shape(), len(ids))
	}
	n := len(ids)
	return apply("embedding", tensor.Shape{n, w}, G.Nodes{table, pos}, func(y []T, in [][]T) {
		tab, p := in[0], in[1]
		for r, id := range ids {
			t, pr, yr := tab[int(id)*w:int(id+1)*w], p[(r%l)*w:(r%l+1)*w], y[r*w:(r+1)*w]
			for j := range yr {
				yr[j] = t[j] + pr[j]
			}
		}
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		var touched []int32 // rows of the gradient written by the last run
		dt, err := apply("embedding_grad_table", tensor.Shape{v, w}, G.Nodes{g}, func(d []T, in [][]T) {
			for _, id := range touched {
				clear(d[int(id)*w : int(id+1)*w])
			}
			touched = append(touched[:0], ids...)
			for r, id := range ids {
				dr, gr := d[int(id)*w:int(id+1)*w], in[0][r*w:(r+1)*w]
				for j := range dr {
					dr[j] += gr[j]
				}
			}
		}, nil)
		if err != nil {
			return nil, err
		}
		markPersistent(dt) // it clears only the rows the last run wrote
		dp, err := apply("embedding_grad_pos", tensor.Shape{l, w}, G.Nodes{g}, func(d []T, in [][]T) {
			periodicRowSum(d, in[0], l, w)
		}, nil)
		return G.Nodes{dt, dp}, err
	})
}

// ClassTokens assembles the vision tower's token sequences: for each of the B images, the
// class embedding cls [W] followed by its P patch embeddings (rows of x [B·P, W]), plus the
// positional embedding pos [P+1, W]; [B·(P+1), W].
func ClassTokens(x, cls, pos *G.Node) (*G.Node, error) {
	if isF64(x) {
		return classTokens[float64](x, cls, pos)
	}
	return classTokens[float32](x, cls, pos)
}

func classTokens[T Float](x, cls, pos *G.Node) (*G.Node, error) {
	bp, w, err := dims2("class_tokens", x)
	if err != nil {
		return nil, err
	}
	t, pw, err := dims2("class_tokens", pos)
	if err != nil {
		return nil, err
	}
	if err := vecLen("class_tokens", cls, w); err != nil {
		return nil, err
	}
	if pw != w || t < 2 || bp%(t-1) != 0 {
		return nil, fmt.Errorf("class_tokens: patches %v and positions %v do not fit", x.Shape(), pos.Shape())
	}
	p, b := t-1, bp/(t-1)
	return apply("class_tokens", tensor.Shape{b * t, w}, G.Nodes{x, cls, pos}, func(y []T, in [][]T) {
		for i := range b {
			copy(y[i*t*w:], in[1])
			copy(y[(i*t+1)*w:(i+1)*t*w], in[0][i*p*w:(i+1)*p*w])
		}
		addPeriodic(y, y, in[2], t, w)
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := apply("class_tokens_grad_x", tensor.Shape{bp, w}, G.Nodes{g}, func(d []T, in [][]T) {
			for i := range b {
				copy(d[i*p*w:(i+1)*p*w], in[0][(i*t+1)*w:(i+1)*t*w])
			}
		}, nil)
		if err != nil {
			return nil, err
		}
		dc, err := apply("class_tokens_grad_cls", tensor.Shape{w}, G.Nodes{g}, func(d []T, in [][]T) {
			acc := make([]float64, w)
			for i := range b {
				for j, v := range in[0][i*t*w : (i*t+1)*w] {
					acc[j] += float64(v)
				}
			}
			for j, v := range acc {
				d[j] = T(v)
			}
		}, nil)
		if err != nil {
			return nil, err
		}
		dp, err := apply("class_tokens_grad_pos", tensor.Shape{t, w}, G.Nodes{g}, func(d []T, in [][]T) {
			periodicRowSum(d, in[0], t, w)
		}, nil)
		return G.Nodes{dx, dc, dp}, err
	})
}

// GatherRows returns the rows idx of x [N, C]: [len(idx), C]. idx is read at every run (the
// caller may refill it in place, e.g. with each caption's EOT position); indices must be in
// [0, N). The gradient scatters back, adding where an index repeats.
func GatherRows(x *G.Node, idx []int) (*G.Node, error) {
	if isF64(x) {
		return gatherRows[float64](x, idx)
	}
	return gatherRows[float32](x, idx)
}

func gatherRows[T Float](x *G.Node, idx []int) (*G.Node, error) {
	n, c, err := dims2("gather_rows", x)
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("gather_rows: no indices")
	}
	return apply("gather_rows", tensor.Shape{len(idx), c}, G.Nodes{x}, func(y []T, in [][]T) {
		for i, r := range idx {
			copy(y[i*c:(i+1)*c], in[0][r*c:(r+1)*c])
		}
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := apply("gather_rows_grad", tensor.Shape{n, c}, G.Nodes{g}, func(d []T, in [][]T) {
			clear(d)
			for i, r := range idx {
				dr := d[r*c : (r+1)*c]
				for j, v := range in[0][i*c : (i+1)*c] {
					dr[j] += v
				}
			}
		}, nil)
		return G.Nodes{dx}, err
	})
}

// NormEps is F.normalize's floor on the norm.
const NormEps = 1e-12

// L2Normalize scales each row of x [N, C] to unit Euclidean norm (x / max(‖x‖, 1e-12), as
// F.normalize(x, dim=-1)).
func L2Normalize(x *G.Node) (*G.Node, error) {
	if isF64(x) {
		return l2Normalize[float64](x)
	}
	return l2Normalize[float32](x)
}

func rowNorm[T Float](x []T) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return max(math.Sqrt(s), NormEps)
}

func l2Normalize[T Float](x *G.Node) (*G.Node, error) {
	n, c, err := dims2("l2_normalize", x)
	if err != nil {
		return nil, err
	}
	return apply("l2_normalize", tensor.Shape{n, c}, G.Nodes{x}, func(y []T, in [][]T) {
		for r := range n {
			xr, yr := in[0][r*c:(r+1)*c], y[r*c:(r+1)*c]
			inv := 1 / rowNorm(xr)
			for j, v := range xr {
				yr[j] = T(float64(v) * inv)
			}
		}
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// dx = (gy − y·(y·gy)) / ‖x‖
		dx, err := apply("l2_normalize_grad", tensor.Shape{n, c}, G.Nodes{in[0], g}, func(d []T, v [][]T) {
			for r := range n {
				xr, gr, dr := v[0][r*c:(r+1)*c], v[1][r*c:(r+1)*c], d[r*c:(r+1)*c]
				nrm := rowNorm(xr)
				var dot float64
				for j, xv := range xr {
					dot += float64(xv) / nrm * float64(gr[j])
				}
				for j, xv := range xr {
					dr[j] = T((float64(gr[j]) - float64(xv)/nrm*dot) / nrm)
				}
			}
		}, nil)
		return G.Nodes{dx}, err
	})
}

// Logits returns exp(scale)·img·txtᵀ, [M, N], for img [M, E] and txt [N, E] (normalised
// features) and the learnable log-scale scale (one element). M = N = B in one process; in a
// data-parallel step, M is this rank's rows and N the gathered global batch.
func Logits(img, txt, scale *G.Node) (*G.Node, error) {
	if isF64(img) {
		return logits[float64](img, txt, scale)
	}
	return logits[float32](img, txt, scale)
}

func logits[T Float](img, txt, scale *G.Node) (*G.Node, error) {
	m, e, err := dims2("logits", img)
	if err != nil {
		return nil, err
	}
	n, e2, err := dims2("logits", txt)
	if err != nil {
		return nil, err
	}
	if e2 != e || scale.Shape().TotalSize() != 1 {
		return nil, fmt.Errorf("logits: image %v, text %v and scale %v do not fit", img.Shape(), txt.Shape(), scale.Shape())
	}
	exp := func(s []T) T { return T(math.Exp(float64(s[0]))) }
	sshape := scale.Shape().Clone()
	return apply("logits", tensor.Shape{m, n}, G.Nodes{img, txt, scale}, func(y []T, in [][]T) {
		gemm(false, true, m, n, e, exp(in[2]), in[0], e, in[1], e, 0, y, n)
	}, func(in G.Nodes, out, g *G.Node) (G.Nodes, error) {
		// d img [M,E] = s·g[M,N]·txt[N,E]; d txt [N,E] = s·gᵀ[N,M]·img[M,E]; d scale = Σ y∘g.
		di, err := apply("logits_grad_img", tensor.Shape{m, e}, G.Nodes{in[1], in[2], g}, func(d []T, v [][]T) {
			gemm(false, false, m, e, n, exp(v[1]), v[2], n, v[0], e, 0, d, e)
		}, nil)
		if err != nil {
			return nil, err
		}
		dt, err := apply("logits_grad_txt", tensor.Shape{n, e}, G.Nodes{in[0], in[2], g}, func(d []T, v [][]T) {
			gemm(true, false, n, e, m, exp(v[1]), v[2], n, v[0], e, 0, d, e)
		}, nil)
		if err != nil {
			return nil, err
		}
		ds, err := apply("logits_grad_scale", sshape, G.Nodes{out, g}, func(d []T, v [][]T) {
			var s float64
			for i, l := range v[0] {
				s += float64(l) * float64(v[1][i])
			}
			d[0] = T(s)
		}, nil)
		return G.Nodes{di, dt, ds}, err
	})
}

// ContrastiveLoss is CLIP's symmetric cross-entropy over in-batch negatives for logits [B, B]
// (row i: image i against every text): the mean of the image→text and text→image
// cross-entropies with the diagonal as targets, from max-subtracted log-softmaxes. A scalar.
func ContrastiveLoss(logits *G.Node) (*G.Node, error) {
	if isF64(logits) {
		return contrastiveLoss[float64](logits)
	}
	return contrastiveLoss[float32](logits)
}

// softmaxCE returns −log softmax(row)[target] and writes softmax(row) into p, reading row
// elements at stride apart.
func softmaxCE[T Float](l []T, n, stride, target int, p []float64) float64 {
	m := math.Inf(-1)
	for j := range n {
		m = max(m, float64(l[j*stride]))
	}
	var z float64
	for j := range n {
		p[j] = math.Exp(float64(l[j*stride]) - m)
		z += p[j]
	}
	for j := range n {
		p[j] /= z
	}
	return -(float64(l[target*stride]) - m - math.Log(z))
}

func contrastiveLoss[T Float](logits *G.Node) (*G.Node, error) {
	b, b2, err := dims2("contrastive_loss", logits)
	if err != nil {
		return nil, err
	}
	if b != b2 {
		return nil, fmt.Errorf("contrastive_loss: logits %v are not square", logits.Shape())
	}
	return apply("contrastive_loss", nil, G.Nodes{logits}, func(y []T, in [][]T) {
		p := make([]float64, b)
		var loss float64
		for i := range b {
			loss += softmaxCE(in[0][i*b:], b, 1, i, p) // image i → texts
			loss += softmaxCE(in[0][i:], b, b, i, p)   // text i → images
		}
		y[0] = T(loss / float64(2*b))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// d/dl[i][j] = (softmax_row_i[j] − δij + softmax_col_j[i] − δij) / 2B
		dl, err := apply("contrastive_loss_grad", tensor.Shape{b, b}, G.Nodes{in[0], g}, func(d []T, v [][]T) {
			l, scale := v[0], float64(v[1][0])/float64(2*b)
			p := make([]float64, b)
			for i := range b {
				softmaxCE(l[i*b:], b, 1, i, p)
				for j := range b {
					d[i*b+j] = T(p[j] * scale)
				}
			}
			for j := range b {
				softmaxCE(l[j:], b, b, j, p)
				for i := range b {
					d[i*b+j] += T(p[i] * scale)
				}
				d[j*b+j] -= T(2 * scale)
			}
		}, nil)
		return G.Nodes{dl}, err
	})
}

// Tap is the identity that also copies x's value into dst at every run, so that features,
// logits and the loss can be read after a run without relying on the machine's registers.
// dst is a []float32 or []float64 of x's size and dtype.
func Tap(x *G.Node, dst any) (*G.Node, error) {
	if isF64(x) {
		return tap[float64](x, dst)
	}
	return tap[float32](x, dst)
}

func tap[T Float](x *G.Node, dst any) (*G.Node, error) {
	d, ok := dst.([]T)
	if !ok || len(d) != max(1, x.Shape().TotalSize()) {
		return nil, fmt.Errorf("tap %s: destination %T of length %d for shape %v", x.Name(), dst, lenOf(dst), x.Shape())
	}
	return apply("tap", x.Shape(), G.Nodes{x}, func(y []T, in [][]T) {
		copy(d, in[0])
		copy(y, in[0])
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) { return G.Nodes{g}, nil })
}

// Store is a sink that copies x's value into dst at every run: how gradients reach
// Param.Grad. Its own output is a dummy scalar.
func Store(x *G.Node, dst any) (*G.Node, error) {
	if isF64(x) {
		return store[float64](x, dst)
	}
	return store[float32](x, dst)
}

func store[T Float](x *G.Node, dst any) (*G.Node, error) {
	d, ok := dst.([]T)
	if !ok || len(d) != max(1, x.Shape().TotalSize()) {
		return nil, fmt.Errorf("store %s: destination %T of length %d for shape %v", x.Name(), dst, lenOf(dst), x.Shape())
	}
	return apply("store", nil, G.Nodes{x}, func(y []T, in [][]T) {
		parallelCopy(d, in[0])
		y[0] = 0
	}, nil)
}

// parallelCopy is copy(dst, src) spread over goroutines when large (the token embedding's
// gradient is 12.6 M values at the full vocabulary).
func parallelCopy[T Float](dst, src []T) {
	if len(src) < 1<<18 {
		copy(dst, src)
		return
	}
	parallelRows(len(src), func(lo, hi int) { copy(dst[lo:hi], src[lo:hi]) })
}

func lenOf(v any) int {
	switch s := v.(type) {
	case []float32:
		return len(s)
	case []float64:
		return len(s)
	}
	return -1
}

// Hook is the identity that calls f each time the node runs: a timestamp between the
// forward pass (everything x depends on) and the backward pass (everything that depends on
// it), for benchmarks. f must not touch the graph.
func Hook(x *G.Node, f func()) (*G.Node, error) {
	if isF64(x) {
		return hook[float64](x, f)
	}
	return hook[float32](x, f)
}

func hook[T Float](x *G.Node, f func()) (*G.Node, error) {
	return apply("hook", x.Shape(), G.Nodes{x}, func(y []T, in [][]T) {
		copy(y, in[0])
		f()
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) { return G.Nodes{g}, nil })
}
