package nn

import (
	"testing"

	G "gorgonia.org/gorgonia"
)

// benchGraph builds a float32 graph from inputs of the given shapes (N(0,1) values) with
// build, differentiates Σ output with respect to every input and returns a machine that runs
// forward and backward.
func benchGraph(b *testing.B, shapes [][]int, build func(g *G.ExprGraph, in G.Nodes) (*G.Node, error)) G.VM {
	b.Helper()
	g := G.NewGraph()
	in := make(G.Nodes, len(shapes))
	for i, s := range shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		var err error
		if in[i], err = leaf(g, string(rune('a'+i)), randomF32(n, uint64(i)), s); err != nil {
			b.Fatal(err)
		}
	}
	y, err := build(g, in)
	if err != nil {
		b.Fatal(err)
	}
	cost, err := G.Sum(y)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := G.Grad(cost, in...); err != nil {
		b.Fatal(err)
	}
	return G.NewTapeMachine(g)
}

func runBench(b *testing.B, vm G.VM) {
	defer vm.Close()
	for b.Loop() {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAffine times forward and backward of resid + x·Wᵀ + b at the tiny preset's
// c_proj shapes (x [64·65, 512], W [128, 512]) as the fused op and as MatMul, AddRows, Add.
func BenchmarkAffine(b *testing.B) {
	const n, in, out = 64 * 65, 512, 128
	shapes := [][]int{{n, in}, {out, in}, {out}, {n, out}}
	b.Run("fused", func(b *testing.B) {
		runBench(b, benchGraph(b, shapes, func(_ *G.ExprGraph, v G.Nodes) (*G.Node, error) {
			return Affine(v[0], v[1], v[2], v[3])
		}))
	})
	b.Run("unfused", func(b *testing.B) {
		runBench(b, benchGraph(b, shapes, func(_ *G.ExprGraph, v G.Nodes) (*G.Node, error) {
			y, err := MatMul(v[0], v[1], false, true)
			if err == nil {
				y, err = AddRows(y, v[2])
			}
			if err == nil {
				y, err = Add(v[3], y)
			}
			return y, err
		}))
	})
}
