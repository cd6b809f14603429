package vision

import (
	"math"
	"testing"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDenseClassRowIsOutput checks Dense against the pooled output: each image's class-token
// row of the dense features is its projected image feature, and the patch rows differ from
// it (they are the other tokens, not copies).
func TestDenseClassRowIsOutput(t *testing.T) {
	cfg := Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 2, Heads: 2, MLPRatio: 4}
	const batch, embed = 2, 4
	b, err := nn.NewBuilder(tensor.Float32, 3)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := NewViT(b, cfg, batch, embed, false)
	if err != nil {
		t.Fatal(err)
	}
	dense, err := tw.Dense()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, batch*embed)
	dn := make([]float32, batch*cfg.Tokens()*embed)
	if _, err := nn.Tap(tw.Output(), out); err != nil {
		t.Fatal(err)
	}
	if _, err := nn.Tap(dense, dn); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(b.G)
	defer m.Close()
	img := make([]float32, tw.ImageLen())
	for i := range img {
		img[i] = float32(math.Sin(float64(i) * 0.37))
	}
	if err := tw.SetImages(img); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		cls := dn[i*cfg.Tokens()*embed:]
		patch := cls[embed:]
		differs := false
		for d := range embed {
			if math.Abs(float64(cls[d]-out[i*embed+d])) > 1e-6 {
				t.Fatalf("image %d: dense class row %v, pooled output %v", i, cls[:embed], out[i*embed:(i+1)*embed])
			}
			differs = differs || patch[d] != cls[d]
		}
		if !differs {
			t.Errorf("image %d: the first patch row equals the class row", i)
		}
	}
}

// TestDenseRefusesPatchDropout: a training tower that drops patches has no full grid.
func TestDenseRefusesPatchDropout(t *testing.T) {
	cfg := Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 1, Heads: 2, MLPRatio: 4, PatchDropout: 0.5}
	b, err := nn.NewBuilder(tensor.Float32, 3)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := NewViT(b, cfg, 1, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Dense(); err == nil {
		t.Error("Dense built on a tower that drops patches")
	}
}
