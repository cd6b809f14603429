package nn_test

import (
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
)

func TestGradients(t *testing.T) {
	ids := []int32{3, 1, 3, 0, 3, 2} // repeated ids accumulate
	rows := []int{2, 0, 2, 5}
	cases := []gradCase{
		{"matmul", [][]int{{3, 4}, {4, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.MatMul(in[0], in[1], false, false) }},
		{"matmul_bt", [][]int{{3, 4}, {5, 4}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.MatMul(in[0], in[1], false, true) }},
		{"matmul_at", [][]int{{4, 3}, {4, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.MatMul(in[0], in[1], true, false) }},
		{"add_rows_bias", [][]int{{4, 3}, {3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.AddRows(in[0], in[1]) }},
		{"add_rows_pos", [][]int{{6, 3}, {2, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.AddRows(in[0], in[1]) }},
		{"affine", [][]int{{3, 4}, {5, 4}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Affine(in[0], in[1], nil, nil) }},
		{"affine_bias", [][]int{{3, 4}, {5, 4}, {5}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Affine(in[0], in[1], in[2], nil) }},
		{"affine_residual", [][]int{{3, 4}, {5, 4}, {3, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Affine(in[0], in[1], nil, in[2]) }},
		{"affine_bias_residual", [][]int{{3, 4}, {5, 4}, {5}, {3, 5}}, nil, func(in G.Nodes) (*G.Node, error) {
			return nn.Affine(in[0], in[1], in[2], in[3])
		}},
		{"add", [][]int{{2, 3}, {2, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Add(in[0], in[1]) }},
		{"layer_norm", [][]int{{4, 6}, {6}, {6}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.LayerNorm(in[0], in[1], in[2]) }},
		{"gelu", [][]int{{5, 7}}, []float64{2}, func(in G.Nodes) (*G.Node, error) { return nn.GELU(in[0]) }},
		{"quick_gelu", [][]int{{5, 7}}, []float64{2}, func(in G.Nodes) (*G.Node, error) { return nn.QuickGELU(in[0]) }},
		{"attention", [][]int{{2 * 5, 3 * 6}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Attention(in[0], 2, 5, 2, false) }},
		{"attention_causal", [][]int{{2 * 5, 3 * 6}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Attention(in[0], 2, 5, 3, true) }},
		{"embedding_repeated_ids", [][]int{{4, 3}, {2, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Embedding(in[0], in[1], ids) }},
		{"class_tokens", [][]int{{2 * 3, 4}, {4}, {4, 4}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.ClassTokens(in[0], in[1], in[2]) }},
		{"gather_rows_repeated", [][]int{{6, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.GatherRows(in[0], rows) }},
		{"l2_normalize", [][]int{{3, 5}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.L2Normalize(in[0]) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nntest.CheckGradients(t, nntest.Case{Name: c.name, Shapes: c.shapes, Scale: c.scale, Build: c.build})
		})
	}
}

// gradCase is a row of TestGradients: nntest.Case, unkeyed.
type gradCase struct {
	name   string
	shapes [][]int
	scale  []float64
	build  func(in G.Nodes) (*G.Node, error)
}
