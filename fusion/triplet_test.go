package fusion

import (
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
)

// TestTripletGradients checks the margin loss (sum and hardest negative, whole batch and a
// rank's rows) and its sum with another loss against central differences.
func TestTripletGradients(t *testing.T) {
	for _, c := range []nntest.Case{
		{Name: "sum", Shapes: [][]int{{5, 5}, {5, 5}},
			Build: func(in G.Nodes) (*G.Node, error) { return tripletLossOp(in[0], in[1], 0, 0.5, false) }},
		{Name: "hardest", Shapes: [][]int{{5, 5}, {5, 5}},
			Build: func(in G.Nodes) (*G.Node, error) { return tripletLossOp(in[0], in[1], 0, 0.5, true) }},
		{Name: "rank_rows_hardest", Shapes: [][]int{{3, 7}, {3, 7}},
			Build: func(in G.Nodes) (*G.Node, error) { return tripletLossOp(in[0], in[1], 4, 0.3, true) }},
		{Name: "weighted_sum", Shapes: [][]int{{1}, {1}},
			Build: func(in G.Nodes) (*G.Node, error) { return weightedSumOp(in[0], in[1], 0.3) }},
	} {
		t.Run(c.Name, func(t *testing.T) { nntest.CheckGradients(t, c) })
	}
}

// TestTripletMatchesPyTorch compares the loss and the feature gradients with VSE++'s loss
// (scripts/peers/losses.py), summed over negatives and at the hardest one.
func TestTripletMatchesPyTorch(t *testing.T) {
	for _, hardest := range []bool{false, true} {
		checkLossReference(t, "triplet", map[string]any{"margin": 0.2, "hardest": hardest}, nil, nil,
			func(in G.Nodes) (*G.Node, error) {
				img, err := nn.L2Normalize(in[0])
				if err != nil {
					return nil, err
				}
				txt, err := nn.L2Normalize(in[1])
				if err != nil {
					return nil, err
				}
				out, err := Triplet{TripletConfig{Margin: 0.2, Hardest: hardest}}.Build(nil, LossInputs{Image: img, Text: txt})
				return out.Loss, err
			})
	}
}

// TestTripletConfig: triplet alone has no temperature; added to clip it keeps clip's; bad
// settings are refused naming the key.
func TestTripletConfig(t *testing.T) {
	for _, c := range []struct {
		loss  string
		trip  TripletConfig
		scale bool
	}{{LossTriplet, TripletConfig{Margin: 0.2, Hardest: true}, false}, {LossCLIP, TripletConfig{Margin: 0.2, Weight: 0.5}, true}} {
		cfg := microConfig
		cfg.Loss, cfg.Triplet = c.loss, c.trip
		m, err := New(cfg, 3, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.Param(LogitScaleName); ok != c.scale {
			t.Errorf("%s %+v: logit_scale present %v, want %v", c.loss, c.trip, ok, c.scale)
		}
		images, tokens := randomBatch(cfg, 3, 2)
		if _, err := m.Step(images, tokens); err != nil {
			t.Errorf("%s: %v", c.loss, err)
		}
		m.ClampLogitScale()
		m.Close()
	}
	for _, bad := range []TripletConfig{{Margin: -1}, {Margin: 3}, {Weight: -1}} {
		cfg := microConfig
		cfg.Triplet = bad
		if err := cfg.Validate(); err == nil {
			t.Errorf("model.triplet %+v accepted", bad)
		}
	}
	cfg := microConfig
	cfg.Loss, cfg.Triplet.Weight = LossSigLIP, 1
	if err := cfg.Validate(); err == nil {
		t.Error("a triplet weight on siglip was accepted")
	}
}
