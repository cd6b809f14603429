package fusion

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

func smallConfig() Config {
	return Config{EmbedDim: 16,
		Vision: vision.Config{ImageSize: 16, PatchSize: 8, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4},
		Text:   text.Config{ContextLength: 8, VocabSize: 49408, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4}}
}

// TestEncoderBatchesAndNormalises checks that embeddings do not depend on how inputs fall into
// batches (full ones and a last partial one), and are unit vectors.
func TestEncoderBatchesAndNormalises(t *testing.T) {
	cfg := smallConfig()
	m3, err := New(cfg, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	m1, err := New(cfg, 1, 1) // same seed: same weights
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	e3, _ := NewEncoder(m3)
	e1, _ := NewEncoder(m1)
	const n = 5 // one full batch of 3 and a padded one
	images := make([]float32, n*e3.ImageLen())
	for i := range images {
		images[i] = float32(math.Sin(float64(i)))
	}
	texts := []string{"a red circle", "a blue square on the left", "", "a very long caption " + "that goes on and on and on", "x"}
	for _, tc := range []struct {
		name  string
		a, b  func() ([]float32, error)
		nrows int
	}{
		{"images", func() ([]float32, error) { return e3.Images(images) }, func() ([]float32, error) { return e1.Images(images) }, n},
		{"texts", func() ([]float32, error) { return e3.Texts(texts) }, func() ([]float32, error) { return e1.Texts(texts) }, len(texts)},
	} {
		a, err := tc.a()
		if err != nil {
			t.Fatal(err)
		}
		b, err := tc.b()
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != tc.nrows*cfg.EmbedDim || len(b) != len(a) {
			t.Fatalf("%s: %d and %d values, want %d", tc.name, len(a), len(b), tc.nrows*cfg.EmbedDim)
		}
		for r := 0; r < tc.nrows; r++ {
			var norm float64
			for j := 0; j < cfg.EmbedDim; j++ {
				x := a[r*cfg.EmbedDim+j]
				norm += float64(x) * float64(x)
				if d := math.Abs(float64(x - b[r*cfg.EmbedDim+j])); d > 1e-5 {
					t.Fatalf("%s row %d: batch 3 and batch 1 differ by %g", tc.name, r, d)
				}
			}
			if math.Abs(norm-1) > 1e-5 {
				t.Errorf("%s row %d: norm² %g, want 1", tc.name, r, norm)
			}
		}
	}
	if _, err := e3.Images(images[:7]); err == nil {
		t.Error("a partial image was accepted")
	}
}

func TestLoadEncoderReadsACheckpoint(t *testing.T) {
	cfg := smallConfig()
	m, err := New(cfg, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	raw := `{"embed_dim":16,"quick_gelu":false,"vision":{"image_size":16,"patch_size":8,"width":16,"layers":1,"heads":2,"mlp_ratio":4},"text":{"context_length":8,"vocab_size":49408,"width":16,"layers":1,"heads":2,"mlp_ratio":4}}`
	run := t.TempDir()
	path, err := checkpoint.Save(run, 1, m.Params(), nil, checkpoint.Meta{Config: raw, Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadConfig(path)
	if err != nil || got != cfg {
		t.Fatalf("ReadConfig = %+v, %v; want %+v", got, err, cfg)
	}
	// The weights read back as saved; a missing file is an error naming it.
	_, params, err := ReadWeights(path, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		if params[i].Name != p.Name || relErr(params[i].Value, p.Value) != 0 {
			t.Fatalf("%s read back differently", p.Name)
		}
	}
	missing := filepath.Join(run, "missing.safetensors")
	if _, err := LoadEncoder(missing, 1, false); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadEncoder of a missing file: %v", err)
	}
	// The inference path loads the same weights without a training graph.
	enc, err := LoadEncoder(path, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ref, err := NewEncoder(m)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	texts := []string{"a red circle", "two dogs", "x", "", "a blue square"}
	emb, err := enc.Texts(texts)
	if err != nil {
		t.Fatal(err)
	}
	refEmb, err := ref.Texts(texts)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(emb, refEmb); e > 1e-6 { // other batch sizes split the products otherwise
		t.Errorf("LoadEncoder's text embeddings differ from the model's by %g", e)
	}

}
