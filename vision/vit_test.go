package vision

import (
	"math"
	"testing"

	"github.com/clipgo/clipgo/nn"
	"gorgonia.org/tensor"
)

// TestSetImagesPatchLayout checks the patch rows against a direct reading of conv1's window:
// row (b, gy, gx), column (c, y, x) is image b, channel c, pixel (gy·P+y, gx·P+x).
func TestSetImagesPatchLayout(t *testing.T) {
	cfg := Config{ImageSize: 6, PatchSize: 3, Width: 4, Layers: 1, Heads: 2, MLPRatio: 4}
	b, err := nn.NewBuilder(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := NewViT(b, cfg, 2, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	s, p, g := 6, 3, 2
	img := make([]float32, tw.ImageLen())
	for i := range img {
		img[i] = float32(i)
	}
	if err := tw.SetImages(img); err != nil {
		t.Fatal(err)
	}
	for bi := range 2 {
		for gy := range g {
			for gx := range g {
				row := (bi*g+gy)*g + gx
				for c := range 3 {
					for y := range p {
						for x := range p {
							got := tw.patches[row*3*p*p+(c*p+y)*p+x]
							want := img[((bi*3+c)*s+gy*p+y)*s+gx*p+x]
							if got != want {
								t.Fatalf("patch %d (%d,%d,%d) = %v, want %v", row, c, y, x, got, want)
							}
						}
					}
				}
			}
		}
	}
	if err := tw.SetImages(img[1:]); err == nil {
		t.Error("SetImages accepted a short batch")
	}
}

func TestNewTowerParams(t *testing.T) {
	cfg := Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 2, Heads: 2, MLPRatio: 4}
	b, err := nn.NewBuilder(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewViT(b, cfg, 1, 4, false); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"visual.conv1.weight":                                {8, 3, 4, 4},
		"visual.class_embedding":                             {8},
		"visual.positional_embedding":                        {5, 8},
		"visual.proj":                                        {8, 4},
		"visual.transformer.resblocks.1.attn.in_proj_weight": {24, 8},
		"visual.transformer.resblocks.0.mlp.c_proj.weight":   {8, 32},
	}
	for name, shape := range want {
		p, ok := b.Lookup(name)
		if !ok || len(p.Shape) != len(shape) {
			t.Fatalf("%s missing or mis-shaped", name)
		}
		for i := range shape {
			if p.Shape[i] != shape[i] {
				t.Errorf("%s shape %v, want %v", name, p.Shape, shape)
			}
		}
	}
	// scale·randn init: the class embedding has std about width^-½.
	p, _ := b.Lookup("visual.positional_embedding")
	var s float64
	for _, v := range p.Value {
		s += float64(v) * float64(v)
	}
	if std := math.Sqrt(s / float64(len(p.Value))); std < 0.2 || std > 0.55 {
		t.Errorf("positional embedding std %.3f, want about %.3f", std, math.Pow(8, -0.5))
	}
	if _, err := NewViT(b, Config{}, 1, 4, false); err == nil {
		t.Error("NewTower accepted an empty config")
	}
}
