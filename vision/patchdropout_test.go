package vision

import (
	"math"
	"slices"
	"testing"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestKeptPatches checks open_clip's count max(1, int(n·(1−p))) and the config's bounds.
func TestKeptPatches(t *testing.T) {
	cfg := Config{ImageSize: 14, PatchSize: 2, Width: 4, Layers: 1, Heads: 2, MLPRatio: 4} // 49 patches
	for _, c := range []struct {
		p    float64
		want int
	}{{0, 49}, {0.5, 24}, {0.75, 12}, {0.9, 4}, {0.99, 1}, {0.999, 1}} {
		cfg.PatchDropout = c.p
		if got := cfg.KeptPatches(); got != c.want {
			t.Errorf("patch_dropout %g: %d patches kept, want %d", c.p, got, c.want)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("patch_dropout %g refused: %v", c.p, err)
		}
	}
	for _, p := range []float64{-0.1, 1, 1.5, math.NaN()} {
		cfg.PatchDropout = p
		if cfg.Validate() == nil {
			t.Errorf("patch_dropout %g accepted", p)
		}
	}
	rn := Config{Type: TypeResNet, ImageSize: 64, Width: 8, Heads: 2, StageLayers: StageLayers{1, 1, 1, 1}, PatchDropout: 0.5}
	if rn.Validate() == nil {
		t.Error("patch_dropout accepted for a ResNet")
	}
}

var dropCfg = Config{ImageSize: 8, PatchSize: 2, Width: 8, Layers: 1, Heads: 2, MLPRatio: 2, PatchDropout: 0.5} // 16 patches, 8 kept

func testImages(n int) []float32 {
	img := make([]float32, n)
	for i := range img {
		img[i] = float32(math.Sin(float64(i) * 0.37))
	}
	return img
}

// TestPatchDropoutKept checks the drawn rows: per image its class token first, then 8 distinct
// patches of its own in ascending order; each SetImages draws again; a seed reproduces a draw,
// and a row's draw depends on its global row, not on the batch it is in.
func TestPatchDropoutKept(t *testing.T) {
	const batch = 3
	b, err := nn.NewBuilder(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := NewViT(b, dropCfg, batch, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	if keep, on := tw.PatchDropout(); !on || keep != 8 {
		t.Fatalf("PatchDropout() = %d, %v; want 8, true", keep, on)
	}
	img := testImages(tw.ImageLen())
	tokens := dropCfg.Tokens()
	draw := func() []int {
		if err := tw.SetImages(img); err != nil {
			t.Fatal(err)
		}
		return slices.Clone(tw.kept)
	}
	first := draw()
	if len(first) != batch*9 {
		t.Fatalf("%d kept rows, want %d", len(first), batch*9)
	}
	for i := range batch {
		row := first[i*9 : (i+1)*9]
		if row[0] != i*tokens {
			t.Errorf("image %d: first kept row %d, want its class token %d", i, row[0], i*tokens)
		}
		for k, r := range row[1:] {
			if r <= i*tokens || r >= (i+1)*tokens || (k > 0 && r <= row[k]) {
				t.Errorf("image %d: kept rows %v are not distinct ascending patches of its own", i, row)
				break
			}
		}
	}
	if second := draw(); slices.Equal(first, second) {
		t.Error("two steps kept the same patches")
	}
	tw.SetPatchSeed(42, 0)
	a := draw()
	tw.SetPatchSeed(42, 0)
	if again := draw(); !slices.Equal(a, again) {
		t.Error("the same seed drew other patches")
	}
	// Rows 1 and 2 of a batch starting at global row 0 are rows 0 and 1 of one starting at 1.
	tw.SetPatchSeed(42, 1)
	shifted := draw()
	for i := range 2 {
		for k := range 9 {
			if a[(i+1)*9+k]-(i+1)*tokens != shifted[i*9+k]-i*tokens {
				t.Fatalf("global row %d drew other patches at another batch position", i+1)
			}
		}
	}
}

// TestPatchDropoutGradients runs a training graph backward: the positional embedding gets a
// gradient at the class token and at the patches the image kept, and none at the others.
func TestPatchDropoutGradients(t *testing.T) {
	b, err := nn.NewBuilder(tensor.Float32, 2)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := NewViT(b, dropCfg, 1, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	out := tw.Output()
	weights := testImages(out.Shape().TotalSize())
	cost, err := nn.Apply("weighted_sum", nil, G.Nodes{out}, func(s []float32, in [][]float32) {
		var acc float32
		for i, v := range in[0] {
			acc += weights[i] * v
		}
		s[0] = acc
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		d, err := nn.Apply("weighted_sum_grad", out.Shape(), G.Nodes{g}, func(d []float32, in [][]float32) {
			for i := range d {
				d[i] = weights[i] * in[0][0]
			}
		}, nil)
		return G.Nodes{d}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Backward(cost); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(b.G)
	defer m.Close()
	pos, _ := b.Lookup("visual.positional_embedding")
	for range 2 { // two steps with different draws
		if err := tw.SetImages(testImages(tw.ImageLen())); err != nil {
			t.Fatal(err)
		}
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		w := dropCfg.Width
		for tok := range dropCfg.Tokens() {
			var norm float64
			for _, g := range pos.Grad[tok*w : (tok+1)*w] {
				norm += float64(g) * float64(g)
			}
			if kept := slices.Contains(tw.kept, tok); kept != (norm > 0) {
				t.Errorf("token %d (kept %v): positional gradient norm² %g", tok, kept, norm)
			}
		}
	}
}

// TestPatchDropoutInference checks that inference graphs (a frozen builder's) keep every patch:
// a tower of patch_dropout 0.5 gives the features of one without it over the same weights.
func TestPatchDropoutInference(t *testing.T) {
	train, err := nn.NewBuilder(tensor.Float32, 3)
	if err != nil {
		t.Fatal(err)
	}
	full := dropCfg
	full.PatchDropout = 0
	ref, err := NewViT(train, full, 2, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	weights := map[string]*nn.Param{}
	for _, p := range train.Params() {
		weights[p.Name] = p
	}
	frozen := nn.NewFrozenBuilder(weights)
	inf, err := NewViT(frozen, dropCfg, 2, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, on := inf.PatchDropout(); on {
		t.Fatal("an inference tower drops patches")
	}
	img := testImages(ref.ImageLen())
	outputs := make([][]float32, 2)
	for i, c := range []struct {
		tw *ViT
		g  *G.ExprGraph
	}{{ref, train.G}, {inf, frozen.G}} {
		outputs[i] = make([]float32, 2*4)
		if _, err := nn.Store(c.tw.Output(), outputs[i]); err != nil {
			t.Fatal(err)
		}
		if err := c.tw.SetImages(img); err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(c.g)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	if !slices.Equal(outputs[0], outputs[1]) {
		t.Errorf("inference features %v differ from the full tower's %v", outputs[1], outputs[0])
	}
}
