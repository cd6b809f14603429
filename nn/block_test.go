package nn_test

import (
	"math"
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	"gorgonia.org/tensor"
)

// TestBlockGradients checks the residual block (and a two-block transformer) end to end in
// float64 against central differences: the input and a sample of every parameter.
func TestBlockGradients(t *testing.T) {
	cases := []struct {
		name   string
		layers int
		cfg    nn.BlockConfig
	}{
		{"vision_block", 1, nn.BlockConfig{Width: 6, Heads: 2, MLPWidth: 12, Batch: 2, Seq: 4}},
		{"text_block_causal", 1, nn.BlockConfig{Width: 6, Heads: 3, MLPWidth: 24, Batch: 2, Seq: 5, Causal: true}},
		{"quick_gelu_two_blocks", 2, nn.BlockConfig{Width: 4, Heads: 2, MLPWidth: 8, Batch: 1, Seq: 3, QuickGELU: true, Causal: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := nn.NewBuilder(tensor.Float64, 7)
			if err != nil {
				t.Fatal(err)
			}
			x, err := b.Param("x", []int{c.cfg.Batch * c.cfg.Seq, c.cfg.Width}, nn.Normal(1))
			if err != nil {
				t.Fatal(err)
			}
			// Larger weights than the init so that every path carries gradient.
			tr, err := b.NewTransformer("t", c.layers, c.cfg, nn.BlockInit{nn.Normal(0.5), nn.Normal(0.5), nn.Normal(0.5), nn.Normal(0.5)})
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
			nntest.CheckBuilder(t, b, y)
		})
	}
}
