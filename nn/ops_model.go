package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds the ops around the transformer blocks: embeddings, pooling, normalisation,
// and Tap/Store/Hook, which copy values out of a run or mark a moment in it.

// Embedding returns table[ids[r]] + pos[r mod L] for each of the B·L ids: the token embedding
// gather plus the positional embedding, [B·L, W]. ids is read at every run (the caller refills
// it in place); every id must be in [0, V), which the caller checks. The table's gradient is a
// scatter-add of the row gradients (repeated ids accumulate); the rows written by the previous
// run are cleared instead of the whole [V, W] table.
func Embedding(table, pos *G.Node, ids []int32) (*G.Node, error) {
	if IsFloat64(table) {
		return embedding[float64](table, pos, ids)
	}
	return embedding[float32](table, pos, ids)
}

func embedding[T Float](table, pos *G.Node, ids []int32) (*G.Node, error) {
	v, w, err := Matrix("embedding", table)
	if err != nil {
		return nil, err
	}
	l, pw, err := Matrix("embedding", pos)
	if err != nil {
		return nil, err
	}
	if pw != w || len(ids) == 0 || len(ids)%l != 0 {
		return nil, fmt.Errorf("embedding: table %v, positions %v and %d ids do not fit", table.Shape(), pos.Shape(), len(ids))
	}
	n := len(ids)
	return Apply("embedding", tensor.Shape{n, w}, G.Nodes{table, pos}, func(y []T, in [][]T) {
		tab, p := in[0], in[1]
		for r, id := range ids {
			t, pr, yr := tab[int(id)*w:int(id+1)*w], p[(r%l)*w:(r%l+1)*w], y[r*w:(r+1)*w]
			for j := range yr {
				yr[j] = t[j] + pr[j]
			}
		}
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		var touched []int32 // rows of the gradient written by the last run
		dt, err := Apply("embedding_grad_table", tensor.Shape{v, w}, G.Nodes{g}, func(d []T, in [][]T) {
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
		MarkPersistent(dt) // it clears only the rows the last run wrote
		dp, err := Apply("embedding_grad_pos", tensor.Shape{l, w}, G.Nodes{g}, func(d []T, in [][]T) {
			periodicRowSum(d, in[0], l, w)
		}, nil)
		return G.Nodes{dt, dp}, err
	})
}

// ClassTokens assembles the vision tower's token sequences: for each of the B images, the
// class embedding cls [W] followed by its P patch embeddings (rows of x [B·P, W]), plus the
// positional embedding pos [P+1, W]; [B·(P+1), W].
func ClassTokens(x, cls, pos *G.Node) (*G.Node, error) {
	if IsFloat64(x) {
		return classTokens[float64](x, cls, pos)
	}
	return classTokens[float32](x, cls, pos)
}

func classTokens[T Float](x, cls, pos *G.Node) (*G.Node, error) {
	bp, w, err := Matrix("class_tokens", x)
	if err != nil {
		return nil, err
	}
	t, pw, err := Matrix("class_tokens", pos)
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
	return Apply("class_tokens", tensor.Shape{b * t, w}, G.Nodes{x, cls, pos}, func(y []T, in [][]T) {
		for i := range b {
			copy(y[i*t*w:], in[1])
			copy(y[(i*t+1)*w:(i+1)*t*w], in[0][i*p*w:(i+1)*p*w])
		}
		addPeriodic(y, y, in[2], t, w)
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := Apply("class_tokens_grad_x", tensor.Shape{bp, w}, G.Nodes{g}, func(d []T, in [][]T) {
			for i := range b {
				copy(d[i*p*w:(i+1)*p*w], in[0][(i*t+1)*w:(i+1)*t*w])
			}
		}, nil)
		if err != nil {
			return nil, err
		}
		dc, err := Apply("class_tokens_grad_cls", tensor.Shape{w}, G.Nodes{g}, func(d []T, in [][]T) {
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
		dp, err := Apply("class_tokens_grad_pos", tensor.Shape{t, w}, G.Nodes{g}, func(d []T, in [][]T) {
			periodicRowSum(d, in[0], t, w)
		}, nil)
		return G.Nodes{dx, dc, dp}, err
	})
}

// GatherRows returns the rows idx of x [N, C]: [len(idx), C]. idx is read at every run (the
// caller may refill it in place, e.g. with each caption's EOT position); indices must be in
// [0, N). The gradient scatters back, adding where an index repeats.
func GatherRows(x *G.Node, idx []int) (*G.Node, error) {
	if IsFloat64(x) {
		return gatherRows[float64](x, idx)
	}
	return gatherRows[float32](x, idx)
}

func gatherRows[T Float](x *G.Node, idx []int) (*G.Node, error) {
	n, c, err := Matrix("gather_rows", x)
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, fmt.Errorf("gather_rows: no indices")
	}
	return Apply("gather_rows", tensor.Shape{len(idx), c}, G.Nodes{x}, func(y []T, in [][]T) {
		for i, r := range idx {
			copy(y[i*c:(i+1)*c], in[0][r*c:(r+1)*c])
		}
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := Apply("gather_rows_grad", tensor.Shape{n, c}, G.Nodes{g}, func(d []T, in [][]T) {
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
	if IsFloat64(x) {
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
	n, c, err := Matrix("l2_normalize", x)
	if err != nil {
		return nil, err
	}
	return Apply("l2_normalize", tensor.Shape{n, c}, G.Nodes{x}, func(y []T, in [][]T) {
		for r := range n {
			xr, yr := in[0][r*c:(r+1)*c], y[r*c:(r+1)*c]
			inv := 1 / rowNorm(xr)
			for j, v := range xr {
				yr[j] = T(float64(v) * inv)
			}
		}
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// dx = (gy − y·(y·gy)) / ‖x‖
		dx, err := Apply("l2_normalize_grad", tensor.Shape{n, c}, G.Nodes{in[0], g}, func(d []T, v [][]T) {
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

// Tap is the identity that also copies x's value into dst at every run, so that features,
// logits and the loss can be read after a run without relying on the machine's registers.
// dst is a []float32 or []float64 of x's size and dtype.
func Tap(x *G.Node, dst any) (*G.Node, error) {
	if IsFloat64(x) {
		return tap[float64](x, dst)
	}
	return tap[float32](x, dst)
}

func tap[T Float](x *G.Node, dst any) (*G.Node, error) {
	d, ok := dst.([]T)
	if !ok || len(d) != max(1, x.Shape().TotalSize()) {
		return nil, fmt.Errorf("tap %s: destination %T of length %d for shape %v", x.Name(), dst, lenOf(dst), x.Shape())
	}
	return Apply("tap", x.Shape(), G.Nodes{x}, func(y []T, in [][]T) {
		copy(d, in[0])
		copy(y, in[0])
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) { return G.Nodes{g}, nil })
}

// Store is a sink that copies x's value into dst at every run: how gradients reach
// Param.Grad. Its own output is a dummy scalar.
func Store(x *G.Node, dst any) (*G.Node, error) {
	if IsFloat64(x) {
		return store[float64](x, dst)
	}
	return store[float32](x, dst)
}

func store[T Float](x *G.Node, dst any) (*G.Node, error) {
	d, ok := dst.([]T)
	if !ok || len(d) != max(1, x.Shape().TotalSize()) {
		return nil, fmt.Errorf("store %s: destination %T of length %d for shape %v", x.Name(), dst, lenOf(dst), x.Shape())
	}
	return Apply("store", nil, G.Nodes{x}, func(y []T, in [][]T) {
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
	if IsFloat64(x) {
		return hook[float64](x, f)
	}
	return hook[float32](x, f)
}

func hook[T Float](x *G.Node, f func()) (*G.Node, error) {
	return Apply("hook", x.Shape(), G.Nodes{x}, func(y []T, in [][]T) {
		copy(y, in[0])
		f()
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) { return G.Nodes{g}, nil })
}
