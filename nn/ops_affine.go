package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Affine returns x·Wᵀ + b + resid for x [N, in], a PyTorch weight W [out, in], a bias b [out]
// and a residual resid [N, out]; b and resid may be nil. It is Linear (and the residual add
// after out_proj and c_proj) as one kernel: the output starts as resid plus the bias rows and
// the product accumulates into it (BLAS beta = 1), so neither the bias nor the residual costs
// a pass or a buffer of its own. The gradient is the same three products and row sum as the
// unfused ops; resid receives the output gradient unchanged.
func Affine(x, w, b, resid *G.Node) (*G.Node, error) {
	if IsFloat64(x) {
		return affine[float64](x, w, b, resid)
	}
	return affine[float32](x, w, b, resid)
}

func affine[T Float](x, w, b, resid *G.Node) (*G.Node, error) {
	n, in, err := Matrix("affine", x)
	if err != nil {
		return nil, err
	}
	out, win, err := Matrix("affine", w)
	if err != nil {
		return nil, err
	}
	if win != in {
		return nil, fmt.Errorf("affine: %s %v and weight %s %v do not chain", x.Name(), x.Shape(), w.Name(), w.Shape())
	}
	nodes := G.Nodes{x, w}
	bi, ri := -1, -1
	if b != nil {
		if err := vecLen("affine", b, out); err != nil {
			return nil, err
		}
		bi, nodes = len(nodes), append(nodes, b)
	}
	if resid != nil {
		if s := resid.Shape(); len(s) != 2 || s[0] != n || s[1] != out {
			return nil, fmt.Errorf("affine: residual %s %v, want [%d %d]", resid.Name(), s, n, out)
		}
		ri, nodes = len(nodes), append(nodes, resid)
	}
	return Apply("affine", tensor.Shape{n, out}, nodes, func(y []T, v [][]T) {
		switch {
		case ri >= 0 && bi >= 0:
			addPeriodic(y, v[ri], v[bi], 1, out)
		case ri >= 0:
			copy(y, v[ri])
		case bi >= 0:
			fillRows(y, v[bi], out)
		}
		beta := T(1)
		if ri < 0 && bi < 0 {
			beta = 0
		}
		Gemm(false, true, n, out, in, 1, v[0], in, v[1], in, beta, y, out)
	}, func(v G.Nodes, _, g *G.Node) (G.Nodes, error) {
		grads := make(G.Nodes, len(v))
		var err error
		if grads[0], err = matMul[T](g, v[1], false, false); err != nil { // dx = g·W
			return nil, err
		}
		if grads[1], err = matMul[T](g, v[0], true, false); err != nil { // dW = gᵀ·x
			return nil, err
		}
		if bi >= 0 {
			if grads[bi], err = Apply("affine_grad_bias", tensor.Shape{out}, G.Nodes{g}, func(d []T, in [][]T) {
				periodicRowSum(d, in[0], 1, out)
			}, nil); err != nil {
				return nil, err
			}
		}
		if ri >= 0 {
			grads[ri] = g
		}
		return grads, nil
	})
}

// fillRows writes b into every row of y (rows of width c), rows spread over goroutines when
// there are many.
func fillRows[T Float](y, b []T, c int) {
	fill := func(lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(y[r*c:(r+1)*c], b)
		}
	}
	if len(y) < 1<<16 {
		fill(0, len(y)/c)
		return
	}
	parallelRows(len(y)/c, fill)
}
