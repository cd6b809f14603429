package fusion

import (
	"math/rand/v2"
	"testing"

	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// The reference's presets (../shared/peers/clip_step.py) and OpenAI's ViT-B/32.
var (
	tinyConfig = Config{EmbedDim: 128,
		Vision: vision.Config{ImageSize: 32, PatchSize: 4, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4},
		Text:   text.Config{ContextLength: 32, VocabSize: 4096, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4}}
	vitB32Config = Config{EmbedDim: 512,
		Vision: vision.Config{ImageSize: 224, PatchSize: 32, Width: 768, Layers: 12, Heads: 12, MLPRatio: 4},
		Text:   text.Config{ContextLength: 77, VocabSize: 49408, Width: 512, Layers: 12, Heads: 8, MLPRatio: 4}}
)

// randomBatch makes CLIP-like inputs: N(0,1) pixels and captions [SOT, words…, EOT, 0…] with
// SOT = vocab−2 and EOT = vocab−1, as the reference's make_batch.
func randomBatch(cfg Config, batch int, seed uint64) ([]float32, []int32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	s, l, v := cfg.Vision.ImageSize, cfg.Text.ContextLength, cfg.Text.VocabSize
	images := make([]float32, batch*3*s*s)
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	tokens := make([]int32, batch*l)
	for b := range batch {
		row := tokens[b*l : (b+1)*l]
		eot := 1 + rng.IntN(l-1)
		row[0] = int32(v - 2)
		for i := 1; i < eot; i++ {
			row[i] = int32(1 + rng.IntN(v-3))
		}
		row[eot] = int32(v - 1)
	}
	return images, tokens
}

// TestViTB32Step builds the ViT-B/32 model and takes one step at a small batch.
func TestViTB32Step(t *testing.T) {
	if testing.Short() {
		t.Skip("ViT-B/32 step: skipped under -short")
	}
	const batch = 2
	m, err := New(vitB32Config, batch, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var n int
	for _, p := range m.Params() {
		n += p.Size()
	}
	t.Logf("ViT-B/32: %d parameters", n)
	images, tokens := randomBatch(vitB32Config, batch, 1)
	loss, err := m.Step(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	// Two pairs: the loss starts near ln 2, never above a few nats for unit features.
	if !(loss > 0 && loss < 10) {
		t.Fatalf("loss %v", loss)
	}
	for _, name := range []string{"visual.conv1.weight", "token_embedding.weight", "logit_scale", "transformer.resblocks.11.mlp.c_proj.weight"} {
		p, _ := m.Param(name)
		var s float64
		for _, g := range p.Grad {
			s += float64(g) * float64(g)
		}
		if s == 0 {
			t.Errorf("%s: zero gradient", name)
		}
	}
}

// BenchmarkStepTiny times forward+backward of the reference's tiny preset at batch 64 (the
// reference: 0.265 s/step with 2 threads, optimiser included).
func BenchmarkStepTiny(b *testing.B) {
	const batch = 64
	m, err := New(tinyConfig, batch, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	images, tokens := randomBatch(tinyConfig, batch, 1)
	if _, err := m.Step(images, tokens); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Step(images, tokens); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkForwardTiny times the forward pass alone of the same model and batch.
func BenchmarkForwardTiny(b *testing.B) {
	const batch = 64
	m, err := New(tinyConfig, batch, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	images, tokens := randomBatch(tinyConfig, batch, 1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Forward(images, tokens); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}
