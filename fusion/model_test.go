package fusion

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/text/tokenizer"

	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

var microConfig = Config{EmbedDim: 8,
	Vision: vision.Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 1, Heads: 2, MLPRatio: 4},
	Text:   text.Config{ContextLength: 6, VocabSize: 20, Width: 8, Layers: 1, Heads: 2, MLPRatio: 4}}

func TestNewRejects(t *testing.T) {
	bad := microConfig
	bad.EmbedDim = 0
	for _, c := range []struct {
		name  string
		cfg   Config
		batch int
		want  string
	}{
		{"embed", bad, 2, "embed_dim"},
		{"batch", microConfig, 0, "batch"},
	} {
		if _, err := New(c.cfg, c.batch, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
}

func TestStepRejectsBadInput(t *testing.T) {
	m, err := New(microConfig, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	images, tokens := randomBatch(microConfig, 2, 3)
	outOfRange := append([]int32(nil), tokens...)
	outOfRange[7] = 20
	negative := append([]int32(nil), tokens...)
	negative[0] = -1
	for _, c := range []struct {
		name   string
		images []float32
		tokens []int32
		want   string
	}{
		{"short images", images[1:], tokens, "image values"},
		{"short tokens", images, tokens[:5], "token ids"},
		{"id too large", images, outOfRange, "caption 1 position 1: token id 20 outside [0, 20)"},
		{"negative id", images, negative, "token id -1"},
	} {
		if _, err := m.Step(c.images, c.tokens); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Step error %v, want one containing %q", c.name, err, c.want)
		}
		if _, err := m.Forward(c.images, c.tokens); err == nil {
			t.Errorf("%s: Forward accepted bad input", c.name)
		}
	}
	if _, err := m.Step(images, tokens); err != nil {
		t.Fatalf("good batch after bad ones: %v", err)
	}
}

// TestStepMatchesForward checks that Step and Forward agree on features, logits and loss,
// that the loss is the symmetric cross-entropy of the logits, and that gradients are
// deterministic from step to step.
func TestStepMatchesForward(t *testing.T) {
	const batch = 3
	m, err := New(microConfig, batch, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	images, tokens := randomBatch(microConfig, batch, 4)
	loss, err := m.Step(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	step := m.Last()
	grads := map[string][]float32{}
	for _, p := range m.Params() {
		grads[p.Name] = append([]float32(nil), p.Grad...)
	}
	fwd, err := m.Forward(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if fwd.Loss != loss || relErr(fwd.LogitsPerImage, step.LogitsPerImage) != 0 || relErr(fwd.ImageFeatures, step.ImageFeatures) != 0 {
		t.Errorf("Forward differs from Step: loss %v vs %v", fwd.Loss, loss)
	}
	// The inference path, over the same weights, gives Step's features, normalised.
	enc, err := NewEncoder(m)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	img, err := enc.Images(images)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := enc.Tokens(tokens)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(img, normalizedRows(step.ImageFeatures, microConfig.EmbedDim)); e > 1e-6 {
		t.Errorf("the encoder's image embeddings differ from Step's features by %g", e)
	}
	if e := relErr(txt, normalizedRows(step.TextFeatures, microConfig.EmbedDim)); e > 1e-6 {
		t.Errorf("the encoder's text embeddings differ from Step's features by %g", e)
	}
	if _, err := enc.Tokens(tokens[1:]); err == nil {
		t.Error("Tokens accepted a partial row")
	}
	var want float64
	l := fwd.LogitsPerImage
	for i := range batch {
		var zr, zc float64
		for j := range batch {
			zr += math.Exp(float64(l[i*batch+j]))
			zc += math.Exp(float64(l[j*batch+i]))
		}
		want += 2*-float64(l[i*batch+i]) + math.Log(zr) + math.Log(zc)
	}
	want /= 2 * batch
	if math.Abs(want-float64(loss)) > 1e-5 {
		t.Errorf("loss %v, symmetric cross-entropy of the logits %v", loss, want)
	}
	if _, err := m.Step(images, tokens); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if e := relErr(p.Grad, grads[p.Name]); e != 0 {
			t.Errorf("%s: second step's gradient differs by %g", p.Name, e)
		}
	}
}

func TestParamsAndSetParam(t *testing.T) {
	m, err := New(microConfig, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	seen := map[string]bool{}
	for _, p := range m.Params() {
		if seen[p.Name] {
			t.Errorf("%s listed twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Value) != p.Size() || len(p.Grad) != p.Size() {
			t.Errorf("%s: buffers %d/%d for shape %v", p.Name, len(p.Value), len(p.Grad), p.Shape)
		}
	}
	// 12 per block, 2 blocks; vision: conv1, class, pos, ln_pre×2, ln_post×2, proj;
	// text: token, pos, ln_final×2, text_projection; logit_scale.
	if got, want := len(m.Params()), 24+8+5+1; got != want {
		t.Errorf("%d parameters, want %d", got, want)
	}
	for name, shape := range map[string][]int{"visual.conv1.weight": {8, 3, 4, 4}, "logit_scale": {}, "text_projection": {8, 8}} {
		p, ok := m.Param(name)
		if !ok || len(p.Shape) != len(shape) {
			t.Fatalf("%s: %v, want shape %v", name, p, shape)
		}
	}
	if err := m.SetParam("nope", nil); err == nil {
		t.Error("SetParam accepted an unknown name")
	}
	if err := m.SetParam("logit_scale", []float32{1, 2}); err == nil {
		t.Error("SetParam accepted a wrong size")
	}
	p, _ := m.Param("logit_scale")
	if math.Abs(float64(p.Value[0])-InitLogitScale) > 1e-6 {
		t.Errorf("logit_scale starts at %v", p.Value[0])
	}
	for _, c := range []struct{ set, want float32 }{{-1, 0}, {2, 2}, {9, float32(MaxLogitScale)}} {
		if err := m.SetParam("logit_scale", []float32{c.set}); err != nil {
			t.Fatal(err)
		}
		m.ClampLogitScale()
		if p.Value[0] != c.want {
			t.Errorf("clamp(%v) = %v, want %v", c.set, p.Value[0], c.want)
		}
	}
}

func TestSameSeedSameModel(t *testing.T) {
	a, err := New(microConfig, 1, 9)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(microConfig, 1, 9)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(microConfig, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	differ := false
	for i, p := range a.Params() {
		if relErr(p.Value, b.Params()[i].Value) != 0 {
			t.Errorf("%s differs between two models of seed 9", p.Name)
		}
		if len(p.Shape) >= 2 && relErr(p.Value, c.Params()[i].Value) != 0 {
			differ = true
		}
	}
	if !differ {
		t.Error("seeds 9 and 10 gave the same matrices")
	}
}

// TestClosedModelsAreFreed builds and closes a model with the full vocabulary (about 90 MiB)
// three times: the heap must not grow by a model each time. gorgonia's tape machines carry
// finalizers, so one reference cycle through a machine's graph used to keep every model alive.
func TestClosedModelsAreFreed(t *testing.T) {
	cfg := Config{EmbedDim: 64, Vision: vision.Config{ImageSize: 32, PatchSize: 8, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4},
		Text: text.Config{ContextLength: 32, VocabSize: tokenizer.VocabSize, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4}}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	var after [3]uint64
	for i := range after {
		m, err := New(cfg, 8, 1)
		if err != nil {
			t.Fatal(err)
		}
		m.SetForwardHook(func() {})
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		after[i] = heap()
	}
	t.Logf("heap before %d MiB, after each build and close: %d, %d, %d MiB", before>>20, after[0]>>20, after[1]>>20, after[2]>>20)
	if after[2] > after[0]+16<<20 || after[2] > before+16<<20 {
		t.Errorf("closed models are not freed: heap %d MiB before, %d MiB after three", before>>20, after[2]>>20)
	}
}

// normalizedRows returns the rows of x [n, e], each scaled to unit length.
func normalizedRows(x []float32, e int) []float32 {
	var out []float32
	for r := 0; r < len(x); r += e {
		out = appendNormalized(out, x[r:r+e])
	}
	return out
}
