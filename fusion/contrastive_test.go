package fusion

import (
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
)

// TestContrastiveGradients checks the loss ops against central differences in float64.
func TestContrastiveGradients(t *testing.T) {
	for _, c := range []nntest.Case{
		{Name: "logits", Shapes: [][]int{{4, 3}, {4, 3}, {1}}, Scale: []float64{1, 1, 0.5},
			Build: func(in G.Nodes) (*G.Node, error) { return logitsOp(in[0], in[1], in[2]) }},
		{Name: "logits_rectangular", Shapes: [][]int{{3, 4}, {6, 4}, {1}}, Scale: []float64{1, 1, 0.5},
			Build: func(in G.Nodes) (*G.Node, error) { return logitsOp(in[0], in[1], in[2]) }},
		{Name: "contrastive_loss", Shapes: [][]int{{5, 5}}, Scale: []float64{3},
			Build: func(in G.Nodes) (*G.Node, error) { return contrastiveLossOp(in[0], nil) }},
		{Name: "local_contrastive_loss", Shapes: [][]int{{3, 7}, {3, 7}}, Scale: []float64{3, 3},
			Build: func(in G.Nodes) (*G.Node, error) { return localContrastiveLossOp(in[0], in[1], 2, nil) }},
		{Name: "normalize_logits_loss", Shapes: [][]int{{4, 3}, {4, 3}, {1}},
			Build: func(in G.Nodes) (*G.Node, error) {
				a, err := nn.L2Normalize(in[0])
				if err != nil {
					return nil, err
				}
				b, err := nn.L2Normalize(in[1])
				if err != nil {
					return nil, err
				}
				l, err := logitsOp(a, b, in[2])
				if err != nil {
					return nil, err
				}
				return contrastiveLossOp(l, nil)
			}},
	} {
		t.Run(c.Name, func(t *testing.T) { nntest.CheckGradients(t, c) })
	}
}
