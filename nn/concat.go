package nn

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConcatRows stacks xs along their first axis: matrices with the same columns give one
// [Σ rows, cols] matrix, vectors one longer vector. It fuses separately named parameters into
// one operand, such as the q, k and v projections of an attention pool into the [3·C, C]
// weight and [3·C] bias of one fused product. Each input's gradient is its slice of the
// output's.
func ConcatRows(xs ...*G.Node) (*G.Node, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("concat_rows: no inputs")
	}
	if IsFloat64(xs[0]) {
		return concatRows[float64](xs)
	}
	return concatRows[float32](xs)
}

func concatRows[T Float](xs G.Nodes) (*G.Node, error) {
	first := xs[0].Shape()
	if len(first) == 0 {
		return nil, fmt.Errorf("concat_rows: %s is a scalar", xs[0].Name())
	}
	rows := 0
	offs := make([]int, len(xs)+1) // element offsets of each input in the output
	for i, x := range xs {
		s := x.Shape()
		if len(s) != len(first) || !slices.Equal([]int(s[1:]), []int(first[1:])) {
			return nil, fmt.Errorf("concat_rows: %s %v and %s %v differ beyond the first axis", xs[0].Name(), first, x.Name(), s)
		}
		rows += s[0]
		offs[i+1] = offs[i] + s.TotalSize()
	}
	shape := append(tensor.Shape{rows}, first[1:]...)
	return Apply("concat_rows", shape, xs, func(y []T, in [][]T) {
		for i, v := range in {
			copy(y[offs[i]:offs[i+1]], v)
		}
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		grads := make(G.Nodes, len(in))
		for i, x := range in {
			lo, hi := offs[i], offs[i+1]
			var err error
			if grads[i], err = Apply("concat_rows_grad", x.Shape(), G.Nodes{g}, func(d []T, v [][]T) {
				copy(d, v[0][lo:hi])
			}, nil); err != nil {
				return nil, err
			}
		}
		return grads, nil
	})
}
