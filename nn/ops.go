package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file builds the graph operations of the model. Activations are 2-D [rows, cols]
// row-major; each exported builder checks shapes, picks the float32 or float64 kernels from
// the input's dtype and defines the backward pass as further kernel nodes.

// IsFloat64 reports whether n is float64 (a gradient-check graph): ops pick their kernels by it.
func IsFloat64(n *G.Node) bool { return n.Dtype() == tensor.Float64 }

// Matrix returns the shape of n, which must be 2-D, or an error naming op and n.
func Matrix(name string, n *G.Node) (rows, cols int, err error) {
	s := n.Shape()
	if len(s) != 2 {
		return 0, 0, fmt.Errorf("%s: %s has shape %v, want 2-D", name, n.Name(), s)
	}
	return s[0], s[1], nil
}

func vecLen(name string, n *G.Node, want int) error {
	if s := n.Shape(); len(s) != 1 || s[0] != want {
		return fmt.Errorf("%s: %s has shape %v, want [%d]", name, n.Name(), s, want)
	}
	return nil
}

// MatMul returns op(a)·op(b), op transposing when asked: x·Wᵀ is MatMul(x, W, false, true)
// for a PyTorch [out, in] weight.
func MatMul(a, b *G.Node, transA, transB bool) (*G.Node, error) {
	if IsFloat64(a) {
		return matMul[float64](a, b, transA, transB)
	}
	return matMul[float32](a, b, transA, transB)
}

func matMul[T Float](a, b *G.Node, tA, tB bool) (*G.Node, error) {
	ar, ac, err := Matrix("matmul", a)
	if err != nil {
		return nil, err
	}
	br, bc, err := Matrix("matmul", b)
	if err != nil {
		return nil, err
	}
	m, k := ar, ac
	if tA {
		m, k = ac, ar
	}
	k2, n := br, bc
	if tB {
		k2, n = bc, br
	}
	if k != k2 {
		return nil, fmt.Errorf("matmul: %s %v (transposed %v) and %s %v (transposed %v) do not chain",
			a.Name(), a.Shape(), tA, b.Name(), b.Shape(), tB)
	}
	name := fmt.Sprintf("matmul(%v,%v)", tA, tB)
	return Apply(name, tensor.Shape{m, n}, G.Nodes{a, b}, func(c []T, in [][]T) {
		Gemm(tA, tB, m, n, k, 1, in[0], ac, in[1], bc, 0, c, n)
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		var da, db *G.Node
		var err error
		switch {
		case !tA && !tB: // c = a·b
			da, err = matMul[T](g, in[1], false, true)
			if err == nil {
				db, err = matMul[T](in[0], g, true, false)
			}
		case !tA && tB: // c = a·bᵀ
			da, err = matMul[T](g, in[1], false, false)
			if err == nil {
				db, err = matMul[T](g, in[0], true, false)
			}
		case tA && !tB: // c = aᵀ·b
			da, err = matMul[T](in[1], g, false, true)
			if err == nil {
				db, err = matMul[T](in[0], g, false, false)
			}
		default:
			err = fmt.Errorf("matmul: no gradient for aᵀ·bᵀ")
		}
		return G.Nodes{da, db}, err
	})
}

// AddRows returns x + b[r mod period] for each row r of x [N, C], b [period, C]: a bias
// (period 1, b of shape [C] or [1, C]) or a positional embedding (period L).
func AddRows(x, b *G.Node) (*G.Node, error) {
	if IsFloat64(x) {
		return addRows[float64](x, b)
	}
	return addRows[float32](x, b)
}

func addRows[T Float](x, b *G.Node) (*G.Node, error) {
	n, c, err := Matrix("add_rows", x)
	if err != nil {
		return nil, err
	}
	size := b.Shape().TotalSize()
	if size == 0 || size%c != 0 || n%(size/c) != 0 || b.Shape()[len(b.Shape())-1] != c {
		return nil, fmt.Errorf("add_rows: %s %v does not tile the rows of %s %v", b.Name(), b.Shape(), x.Name(), x.Shape())
	}
	period := size / c
	bshape := b.Shape().Clone()
	return Apply("add_rows", tensor.Shape{n, c}, G.Nodes{x, b}, func(y []T, in [][]T) {
		addPeriodic(y, in[0], in[1], period, c)
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		db, err := Apply("add_rows_grad", bshape, G.Nodes{g}, func(d []T, in [][]T) {
			periodicRowSum(d, in[0], period, c)
		}, nil)
		return G.Nodes{g, db}, err
	})
}

// Add returns a + b for equal shapes (the residual connection).
func Add(a, b *G.Node) (*G.Node, error) {
	if IsFloat64(a) {
		return add[float64](a, b)
	}
	return add[float32](a, b)
}

func add[T Float](a, b *G.Node) (*G.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("add: %s %v and %s %v differ in shape", a.Name(), a.Shape(), b.Name(), b.Shape())
	}
	return Apply("add", a.Shape(), G.Nodes{a, b}, func(y []T, in [][]T) {
		for i, v := range in[0] {
			y[i] = v + in[1][i]
		}
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) { return G.Nodes{g, g}, nil })
}

// LayerNormEps is torch.nn.LayerNorm's default epsilon.
const LayerNormEps = 1e-5

// LayerNorm normalises each row of x [N, C] to zero mean and unit (biased) variance, then
// scales by gamma [C] and shifts by beta [C], as torch.nn.LayerNorm(C).
func LayerNorm(x, gamma, beta *G.Node) (*G.Node, error) {
	if IsFloat64(x) {
		return layerNorm[float64](x, gamma, beta)
	}
	return layerNorm[float32](x, gamma, beta)
}

func layerNorm[T Float](x, gamma, beta *G.Node) (*G.Node, error) {
	n, c, err := Matrix("layer_norm", x)
	if err != nil {
		return nil, err
	}
	if err := vecLen("layer_norm", gamma, c); err != nil {
		return nil, err
	}
	if err := vecLen("layer_norm", beta, c); err != nil {
		return nil, err
	}
	ln := &lnState[T]{c: c, eps: LayerNormEps}
	return Apply("layer_norm", tensor.Shape{n, c}, G.Nodes{x, gamma, beta}, func(y []T, in [][]T) {
		ln.forward(y, in[0], in[1], in[2])
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := Apply("layer_norm_grad_x", tensor.Shape{n, c}, G.Nodes{in[0], in[1], g}, func(d []T, v [][]T) {
			ln.backward(d, v[0], v[1], v[2])
		}, nil)
		if err != nil {
			return nil, err
		}
		// The gain and shift gradients are summed by the dx pass; taking dx as input orders
		// these reductions after it.
		dg, err := Apply("layer_norm_grad_gamma", tensor.Shape{c}, G.Nodes{dx}, func(d []T, _ [][]T) {
			ln.reduce(d, 0)
		}, nil)
		if err != nil {
			return nil, err
		}
		db, err := Apply("layer_norm_grad_beta", tensor.Shape{c}, G.Nodes{dx}, func(d []T, _ [][]T) {
			ln.reduce(d, c)
		}, nil)
		return G.Nodes{dx, dg, db}, err
	})
}

// GELU is x·Φ(x) with the exact (erf) Φ, as torch.nn.GELU(). (The float32 kernels
// interpolate Φ and φ to within 4e-9.)
func GELU(x *G.Node) (*G.Node, error) {
	if IsFloat64(x) {
		return pointwise(x, "gelu", geluForward[float64], geluBackward[float64])
	}
	return pointwise(x, "gelu", geluForward[float32], geluBackward[float32])
}

// QuickGELU is OpenAI CLIP's approximation x·σ(1.702x).
func QuickGELU(x *G.Node) (*G.Node, error) {
	if IsFloat64(x) {
		return pointwise(x, "quick_gelu", quickGELUForward[float64], quickGELUBackward[float64])
	}
	return pointwise(x, "quick_gelu", quickGELUForward[float32], quickGELUBackward[float32])
}

// pointwise applies an activation: fwd(y, x) forward, bwd(dx, gy, x) backward from the
// input, which the graph keeps anyway (the preceding product's output).
func pointwise[T Float](x *G.Node, name string, fwd func(y, x []T), bwd func(dx, gy, x []T)) (*G.Node, error) {
	return Apply(name, x.Shape(), G.Nodes{x}, func(y []T, in [][]T) { fwd(y, in[0]) },
		func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
			dx, err := Apply(name+"_grad", in[0].Shape(), G.Nodes{in[0], g}, func(d []T, v [][]T) {
				bwd(d, v[1], v[0])
			}, nil)
			return G.Nodes{dx}, err
		})
}

// Attention is the core of multi-head self-attention: from the fused projection
// qkv [batch·seq, 3·width] (q, k, v side by side, heads contiguous inside each) it returns
// softmax(q·d^-½·kᵀ + mask)·v per head, heads concatenated: [batch·seq, width]. causal masks
// every key after the query (the text tower's −∞ upper triangle).
func Attention(qkv *G.Node, batch, seq, heads int, causal bool) (*G.Node, error) {
	if IsFloat64(qkv) {
		return attentionOp[float64](qkv, batch, seq, heads, causal)
	}
	return attentionOp[float32](qkv, batch, seq, heads, causal)
}

func attentionOp[T Float](qkv *G.Node, batch, seq, heads int, causal bool) (*G.Node, error) {
	n, c, err := Matrix("attention", qkv)
	if err != nil {
		return nil, err
	}
	if n != batch*seq || c%3 != 0 || heads <= 0 || (c/3)%heads != 0 {
		return nil, fmt.Errorf("attention: qkv %v does not hold batch %d × seq %d rows of 3 × width divisible by %d heads",
			qkv.Shape(), batch, seq, heads)
	}
	a := newAttention[T](batch, seq, heads, c/3, causal)
	return Apply("attention", tensor.Shape{n, c / 3}, G.Nodes{qkv}, func(o []T, in [][]T) {
		a.forward(o, in[0])
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		d, err := Apply("attention_grad", tensor.Shape{n, c}, G.Nodes{in[0], g}, func(d []T, v [][]T) {
			a.backward(d, v[0], v[1])
		}, nil)
		return G.Nodes{d}, err
	})
}
