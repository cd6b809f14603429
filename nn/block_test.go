package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestBlockGradients checks the residual block (and a two-block transformer) end to end in
// float64 against central differences: the input and a sample of every parameter.
func TestBlockGradients(t *testing.T) {
	cases := []struct {
		name   string
		layers int
		cfg    BlockConfig
	}{
		{"vision_block", 1, BlockConfig{Width: 6, Heads: 2, MLPWidth: 12, Batch: 2, Seq: 4}},
		{"text_block_causal", 1, BlockConfig{Width: 6, Heads: 3, MLPWidth: 24, Batch: 2, Seq: 5, Causal: true}},
		{"quick_gelu_two_blocks", 2, BlockConfig{Width: 4, Heads: 2, MLPWidth: 8, Batch: 1, Seq: 3, QuickGELU: true, Causal: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := NewBuilder(tensor.Float64, 7)
			if err != nil {
				t.Fatal(err)
			}
			x, err := b.Param("x", []int{c.cfg.Batch * c.cfg.Seq, c.cfg.Width}, Normal(1))
			if err != nil {
				t.Fatal(err)
			}
			// Larger weights than the init so that every path carries gradient.
			tr, err := b.NewTransformer("t", c.layers, c.cfg, BlockInit{Normal(0.5), Normal(0.5), Normal(0.5), Normal(0.5)})
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range b.Params() {
				if len(p.Shape) == 1 { // move norms and biases off (1, 0)
					for j := range b.Value64(i) {
						b.Value64(i)[j] += 0.3 * math.Sin(float64(j+i))
					}
				}
			}
			y, err := tr.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			checkBuilder(t, b, y)
		})
	}
}

// checkBuilder compares Builder.Backward's gradients of Σ y∘w with central differences for
// up to 12 elements of every parameter of the float64 builder b.
func checkBuilder(t *testing.T, b *Builder, y *G.Node) {
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
	c, err := Tap(s, cost)
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
