package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// weightedSum is Σ x∘w, a scalar that makes every output element matter to a gradient check.
func weightedSum(x *G.Node, w []float64) (*G.Node, error) {
	return apply("weighted_sum", nil, G.Nodes{x}, func(y []float64, in [][]float64) {
		var s float64
		for i, v := range in[0] {
			s += v * w[i]
		}
		y[0] = s
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		d, err := apply("weighted_sum_grad", x.Shape(), G.Nodes{g}, func(d []float64, in [][]float64) {
			for i := range d {
				d[i] = w[i] * in[0][0]
			}
		}, nil)
		return G.Nodes{d}, err
	})
}

// gradCase is one finite-difference check: inputs of the given shapes filled with N(0, 1)
// (scaled by scale[i] when given), and the graph under test built over them.
type gradCase struct {
	name   string
	shapes [][]int
	scale  []float64
	build  func(in G.Nodes) (*G.Node, error)
}

// checkGradients compares the analytic gradient of Σ out∘w with central differences of the
// float64 graph, for every input element (or a sample of 64 per input when larger).
func checkGradients(t *testing.T, c gradCase) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
	g := G.NewGraph()
	in := make(G.Nodes, len(c.shapes))
	vals := make([][]float64, len(c.shapes))
	for i, s := range c.shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		vals[i] = make([]float64, n)
		sc := 1.0
		if i < len(c.scale) {
			sc = c.scale[i]
		}
		for j := range vals[i] {
			vals[i][j] = sc * rng.NormFloat64()
		}
		var err error
		if in[i], err = leaf(g, fmt.Sprintf("x%d", i), vals[i], s); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.build(in)
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
	cost, err := Tap(sum, costBuf)
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
		if _, err := Store(gn, analytic[i]); err != nil {
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
				t.Errorf("%s: d/dx%d[%d]: analytic %.9g, numeric %.9g", c.name, i, j, got[i][j], num)
				return
			}
		}
		t.Logf("%s: input %d worst relative error %.2g", c.name, i, worst)
	}
}

func TestGradients(t *testing.T) {
	ids := []int32{3, 1, 3, 0, 3, 2} // repeated ids accumulate
	rows := []int{2, 0, 2, 5}
	cases := []gradCase{
		{"matmul", [][]int{{3, 4}, {4, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return MatMul(in[0], in[1], false, false) }},
		{"matmul_bt", [][]int{{3, 4}, {5, 4}}, nil, func(in G.Nodes) (*G.Node, error) { return MatMul(in[0], in[1], false, true) }},
		{"matmul_at", [][]int{{4, 3}, {4, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return MatMul(in[0], in[1], true, false) }},
		{"add_rows_bias", [][]int{{4, 3}, {3}}, nil, func(in G.Nodes) (*G.Node, error) { return AddRows(in[0], in[1]) }},
		{"add_rows_pos", [][]int{{6, 3}, {2, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return AddRows(in[0], in[1]) }},
		{"affine", [][]int{{3, 4}, {5, 4}}, nil, func(in G.Nodes) (*G.Node, error) { return Affine(in[0], in[1], nil, nil) }},
		{"affine_bias", [][]int{{3, 4}, {5, 4}, {5}}, nil, func(in G.Nodes) (*G.Node, error) { return Affine(in[0], in[1], in[2], nil) }},
		{"affine_residual", [][]int{{3, 4}, {5, 4}, {3, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return Affine(in[0], in[1], nil, in[2]) }},
		{"affine_bias_residual", [][]int{{3, 4}, {5, 4}, {5}, {3, 5}}, nil, func(in G.Nodes) (*G.Node, error) {
			return Affine(in[0], in[1], in[2], in[3])
		}},
		{"add", [][]int{{2, 3}, {2, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return Add(in[0], in[1]) }},
		{"layer_norm", [][]int{{4, 6}, {6}, {6}}, nil, func(in G.Nodes) (*G.Node, error) { return LayerNorm(in[0], in[1], in[2]) }},
		{"gelu", [][]int{{5, 7}}, []float64{2}, func(in G.Nodes) (*G.Node, error) { return GELU(in[0]) }},
		{"quick_gelu", [][]int{{5, 7}}, []float64{2}, func(in G.Nodes) (*G.Node, error) { return QuickGELU(in[0]) }},
		{"attention", [][]int{{2 * 5, 3 * 6}}, nil, func(in G.Nodes) (*G.Node, error) { return Attention(in[0], 2, 5, 2, false) }},
		{"attention_causal", [][]int{{2 * 5, 3 * 6}}, nil, func(in G.Nodes) (*G.Node, error) { return Attention(in[0], 2, 5, 3, true) }},
		{"embedding_repeated_ids", [][]int{{4, 3}, {2, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return Embedding(in[0], in[1], ids) }},
		{"class_tokens", [][]int{{2 * 3, 4}, {4}, {4, 4}}, nil, func(in G.Nodes) (*G.Node, error) { return ClassTokens(in[0], in[1], in[2]) }},
		{"gather_rows_repeated", [][]int{{6, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return GatherRows(in[0], rows) }},
		{"l2_normalize", [][]int{{3, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return L2Normalize(in[0]) }},
		{"logits", [][]int{{4, 3}, {4, 3}, {1}}, []float64{1, 1, 0.5}, func(in G.Nodes) (*G.Node, error) { return Logits(in[0], in[1], in[2]) }},
		{"contrastive_loss", [][]int{{5, 5}}, []float64{3}, func(in G.Nodes) (*G.Node, error) { return ContrastiveLoss(in[0]) }},
		{"logits_rectangular", [][]int{{3, 4}, {6, 4}, {1}}, []float64{1, 1, 0.5}, func(in G.Nodes) (*G.Node, error) { return Logits(in[0], in[1], in[2]) }},
		{"local_contrastive_loss", [][]int{{3, 7}, {3, 7}}, []float64{3, 3}, func(in G.Nodes) (*G.Node, error) { return LocalContrastiveLoss(in[0], in[1], 2) }},
		{"normalize_logits_loss", [][]int{{4, 3}, {4, 3}, {1}}, nil, func(in G.Nodes) (*G.Node, error) {
			a, err := L2Normalize(in[0])
			if err != nil {
				return nil, err
			}
			b, err := L2Normalize(in[1])
			if err != nil {
				return nil, err
			}
			l, err := Logits(a, b, in[2])
			if err != nil {
				return nil, err
			}
			return ContrastiveLoss(l)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGradients(t, c) })
	}
}

var _ = tensor.Float64
