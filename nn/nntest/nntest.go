// Package nntest checks ops built with nn's kernel API against finite differences, for tests
// of any package that defines ops (nn's layers, fusion's losses).
package nntest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
)

// weightedSum is Σ x∘w, a scalar that makes every output element matter to a gradient check.
func weightedSum(x *G.Node, w []float64) (*G.Node, error) {
	return nn.Apply("weighted_sum", nil, G.Nodes{x}, func(y []float64, in [][]float64) {
		var s float64
		for i, v := range in[0] {
			s += v * w[i]
		}
		y[0] = s
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		d, err := nn.Apply("weighted_sum_grad", x.Shape(), G.Nodes{g}, func(d []float64, in [][]float64) {
			for i := range d {
				d[i] = w[i] * in[0][0]
			}
		}, nil)
		return G.Nodes{d}, err
	})
}

// Case is one finite-difference check: inputs of the given shapes filled with N(0, 1)
// (scaled by Scale[i] when given), and the graph under test built over them in float64.
type Case struct {
	Name   string
	Shapes [][]int
	Scale  []float64
	Build  func(in G.Nodes) (*G.Node, error)
}

// CheckGradients compares the analytic gradient of Σ out∘w (w random) with central
// differences of the float64 graph, for every input element (or a sample of 64 per input when
// larger), and fails t where they differ by more than 1e-6 relative.
func CheckGradients(t *testing.T, c Case) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(len(c.Name))))
	g := G.NewGraph()
	in := make(G.Nodes, len(c.Shapes))
	vals := make([][]float64, len(c.Shapes))
	for i, s := range c.Shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		vals[i] = make([]float64, n)
		sc := 1.0
		if i < len(c.Scale) {
			sc = c.Scale[i]
		}
		for j := range vals[i] {
			vals[i][j] = sc * rng.NormFloat64()
		}
		var err error
		if in[i], err = nn.Variable(g, fmt.Sprintf("x%d", i), vals[i], s...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float64, max(1, out.Shape().TotalSize()))
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	sum, err := weightedSum(out, w)
	if err != nil {
		t.Fatal(err)
	}
	costBuf := make([]float64, 1)
	cost, err := nn.Tap(sum, costBuf)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(cost, in...)
	if err != nil {
		t.Fatal(err)
	}
	analytic := make([][]float64, len(in))
	for i, gn := range grads {
		analytic[i] = make([]float64, len(vals[i]))
		if _, err := nn.Store(gn, analytic[i]); err != nil {
			t.Fatal(err)
		}
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return costBuf[0]
	}
	run()
	got := make([][]float64, len(in))
	for i := range analytic {
		got[i] = append([]float64(nil), analytic[i]...)
	}
	const h = 1e-6
	for i, v := range vals {
		idx := rng.Perm(len(v))
		if len(idx) > 64 {
			idx = idx[:64]
		}
		worst := 0.0
		for _, j := range idx {
			x := v[j]
			v[j] = x + h
			up := run()
			v[j] = x - h
			down := run()
			v[j] = x
			num := (up - down) / (2 * h)
			e := math.Abs(num-got[i][j]) / max(1, math.Abs(num))
			worst = max(worst, e)
			if e > 1e-6 {
				t.Errorf("%s: d/dx%d[%d]: analytic %.9g, numeric %.9g", c.Name, i, j, got[i][j], num)
				return
			}
		}
		t.Logf("%s: input %d worst relative error %.2g", c.Name, i, worst)
	}
}

// CheckBuilder compares Builder.Backward's gradients of Σ y∘w (w random) with central
// differences for up to 12 elements of every parameter of the float64 builder b: a whole
// layer or tower checked end to end.
func CheckBuilder(t *testing.T, b *nn.Builder, y *G.Node) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	w := make([]float64, y.Shape().TotalSize())
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	s, err := weightedSum(y, w)
	if err != nil {
		t.Fatal(err)
	}
	cost := make([]float64, 1)
	c, err := nn.Tap(s, cost)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Backward(c); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(b.G)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return cost[0]
	}
	run()
	analytic := make([][]float64, len(b.Params()))
	for i := range analytic {
		analytic[i] = append([]float64(nil), b.Grad64(i)...)
	}
	const h = 1e-6
	for i, p := range b.Params() {
		got := analytic[i]
		v := b.Value64(i)
		idx := rng.Perm(len(v))
		worst := 0.0
		for _, j := range idx[:min(12, len(idx))] {
			x := v[j]
			v[j] = x + h
			up := run()
			v[j] = x - h
			down := run()
			v[j] = x
			num := (up - down) / (2 * h)
			e := math.Abs(num-got[j]) / max(1, math.Abs(num))
			worst = max(worst, e)
			if e > 1e-6 {
				t.Fatalf("%s[%d]: analytic %.9g, numeric %.9g", p.Name, j, got[j], num)
			}
		}
		t.Logf("%s: worst relative error %.2g", p.Name, worst)
	}
}
