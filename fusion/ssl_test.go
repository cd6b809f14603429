package fusion

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/vision"
)

// sslConfig is microConfig with model.ssl at weight w and a small head.
func sslConfig(w float64) Config {
	cfg := microConfig
	cfg.SSL = SSLConfig{Weight: w, Hidden: 16, Out: 6}
	return cfg
}

// TestSSLModel: model.ssl adds weight × the NT-Xent loss of its head to CLIP's (the loss is
// linear in the weight), its head gets gradients, and the towers start as without it.
func TestSSLModel(t *testing.T) {
	ids := []int32{0, 0, 1, 1} // two views of each of two images
	images, tokens := randomBatch(microConfig, 4, 5)
	var losses []float64
	var models []*Model
	for _, w := range []float64{0, 0.5, 1} {
		m, err := New(sslConfig(w), 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.SetImageIDs(ids); err != nil {
			t.Fatal(err)
		}
		l, err := m.Step(images, tokens)
		if err != nil {
			t.Fatal(err)
		}
		losses, models = append(losses, float64(l)), append(models, m)
	}
	ssl := losses[2] - losses[1]
	if !(ssl > 0.01) || math.Abs((losses[1]-losses[0])-ssl) > 1e-5 {
		t.Errorf("losses at weights 0, 0.5, 1: %v; want them apart by equal positive steps", losses)
	}
	if _, ok := models[0].Param(SSLHeadPrefix + "layer1.weight"); ok {
		t.Error("model.ssl.weight 0 built a head")
	}
	for _, name := range []string{"layer1.weight", "layer3.bias", "bn2.weight"} {
		p, ok := models[2].Param(SSLHeadPrefix + name)
		if !ok || !slices.ContainsFunc(p.Grad, func(g float32) bool { g = float32(math.Abs(float64(g))); return g > 0 }) {
			t.Errorf("%s%s: present %v, no gradient", SSLHeadPrefix, name, ok)
		}
	}
	// The trunk (up to ln_post) gets the SSL gradient; the projection after it does not.
	for name, changed := range map[string]bool{"visual.ln_post.weight": true, "visual.conv1.weight": true, "visual.proj": false} {
		p, _ := models[0].Param(name)
		q, _ := models[2].Param(name)
		if p == nil || q == nil || slices.Equal(p.Grad, q.Grad) == changed {
			t.Errorf("%s: gradient changed by the SSL loss %v, want %v", name, p != nil && q != nil && !slices.Equal(p.Grad, q.Grad), changed)
		}
	}
	for _, bad := range []Config{sslConfig(-1), func() Config { c := sslConfig(1); c.SSL.Temperature = -0.1; return c }(),
		func() Config { c := sslConfig(1); c.SSL.Out = MaxEmbedDim + 1; return c }(),
		func() Config { c := sslConfig(1); c.Vision.Type = vision.TypeResNet; return c }()} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad.SSL)
		}
	}
}

// TestSSLCheckpoint: a model.ssl checkpoint holds the head (WeightsOf lists it) and reads back
// whole; the inference path built from it ignores the head and embeds exactly as the same
// towers without model.ssl; InferenceWeights leaves the head out.
func TestSSLCheckpoint(t *testing.T) {
	cfg := sslConfig(1)
	m, err := New(cfg, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want, err := WeightsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(m.Params()) || !slices.ContainsFunc(want, func(p *nn.Param) bool { return p.Name == SSLHeadPrefix+"bn1.running_var" }) {
		t.Fatalf("WeightsOf lists %d tensors, the model has %d, with the head's batch-norm buffers", len(want), len(m.Params()))
	}
	images, tokens := randomBatch(cfg, 4, 9)
	if err := m.SetImageIDs([]int32{0, 0, 1, 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Step(images, tokens); err != nil { // the head's running statistics move
		t.Fatal(err)
	}
	var tensors []safetensors.Tensor
	for _, p := range m.Params() {
		tensors = append(tensors, safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: p.Shape, Data: p.Value})
	}
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "ssl.safetensors")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(w, tensors, safetensors.Metadata{{Key: ConfigKey, Value: string(raw)}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, params, err := ReadWeights(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg || len(params) != len(m.Params()) {
		t.Fatalf("read %+v with %d tensors, want %+v with %d", got, len(params), cfg, len(m.Params()))
	}
	for i, p := range params {
		if q := m.Params()[i]; p.Name != q.Name || !slices.Equal(p.Value, q.Value) {
			t.Fatalf("tensor %d: %s read back differs from %s", i, p.Name, q.Name)
		}
	}
	enc, err := NewEncoderFrom(got, params, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	icfg, iparams := InferenceWeights(got, params)
	if icfg.SSL.On() || slices.ContainsFunc(iparams, func(p *nn.Param) bool { return strings.HasPrefix(p.Name, SSLHeadPrefix) }) {
		t.Fatal("InferenceWeights kept the head")
	}
	plain, err := NewEncoderFrom(icfg, iparams, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	a, err := enc.Images(images)
	if err != nil {
		t.Fatal(err)
	}
	b, err := plain.Images(images)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Error("the head changed the image embeddings")
	}
}
