package fusion

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// referenceFiles runs the PyTorch reference: a random model and batch (export-random), then
// its float64 forward, loss and gradients (parity). It returns the weights, inputs and output.
func referenceFiles(t *testing.T, args ...string) (weights, inputs, out string) {
	t.Helper()
	script := testenv.SharedFile(t, "peers/clip_step.py")
	py := "/usr/bin/python3" // the system Python that has python3-torch, not a pyenv shim
	if _, err := os.Stat(py); err != nil {
		py = testenv.Command(t, "python3", "apt-get install python3-torch")
	}
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		testenv.Missing(t, "python3 cannot import torch (apt-get install python3-torch)")
	}
	dir := t.TempDir()
	weights, inputs, out = filepath.Join(dir, "w.st"), filepath.Join(dir, "i.st"), filepath.Join(dir, "o.st")
	cmds := [][]string{
		append([]string{script, "export-random", "--weights", weights, "--inputs", inputs}, args...),
		{script, "parity", "--weights", weights, "--inputs", inputs, "--out", out, "--dtype", "float64", "--out-dtype", "float64"},
	}
	for _, c := range cmds {
		if b, err := exec.Command(py, c...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, b)
		}
	}
	return weights, inputs, out
}

func readAll(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]float32{}
	for _, info := range f.Tensors {
		if info.Name == "texts" {
			continue
		}
		if m[info.Name], err = f.Float32s(info.Name); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// relErr is max |got − want| / max |want|, the error relative to the tensor's scale.
func relErr(got, want []float32) float64 {
	var d, s float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
		s = max(s, math.Abs(float64(want[i])))
	}
	return d / max(s, 1e-30)
}

func TestParity(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		args []string
	}{
		{"tiny", Config{EmbedDim: 128,
			Vision: vision.Config{ImageSize: 32, PatchSize: 4, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4},
			Text:   text.Config{ContextLength: 32, VocabSize: 4096, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4}},
			[]string{"--preset", "tiny", "--batch-size", "16", "--seed", "0"}},
		{"small_one_layer_context77", Config{EmbedDim: 256,
			Vision: vision.Config{ImageSize: 64, PatchSize: 8, Width: 256, Layers: 1, Heads: 4, MLPRatio: 4},
			Text:   text.Config{ContextLength: 77, VocabSize: 49408, Width: 256, Layers: 1, Heads: 4, MLPRatio: 4}},
			[]string{"--preset", "small", "--batch-size", "8", "--vision-layers", "1", "--text-layers", "1", "--seed", "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wf, inf, outf := referenceFiles(t, c.args...)
			weights, inputs, ref := readAll(t, wf), readAll(t, inf), readAll(t, outf)
			imgs := inputs["images"]
			batch := len(imgs) / (3 * c.cfg.Vision.ImageSize * c.cfg.Vision.ImageSize)
			m, err := New(c.cfg, batch, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if len(weights) != len(m.Params()) {
				t.Errorf("reference has %d tensors, the model %d parameters", len(weights), len(m.Params()))
			}
			for name, v := range weights {
				if err := m.SetParam(name, v); err != nil {
					t.Fatal(err)
				}
			}
			tokF, err := safetensors.OpenFile(inf)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := tokF.Int64s("texts")
			tokF.Close()
			if err != nil {
				t.Fatal(err)
			}
			tokens := make([]int32, len(ids))
			for i, v := range ids {
				tokens[i] = int32(v)
			}
			// A forward pass and a first step before the checked one: the graph and its
			// buffers are reused, and stale state (the sparse embedding gradient, cached
			// attention probabilities) would show.
			if _, err := m.Forward(imgs, tokens); err != nil {
				t.Fatal(err)
			}
			var loss float32
			for range 2 {
				if loss, err = m.Step(imgs, tokens); err != nil {
					t.Fatal(err)
				}
			}
			out := m.Last()
			check := func(kind, name string, got, want []float32, tol float64) float64 {
				if len(got) != len(want) {
					t.Errorf("%s: %d values, reference %d", name, len(got), len(want))
					return math.Inf(1)
				}
				e := relErr(got, want)
				if e > tol {
					t.Errorf("%s %s: relative error %.3g > %g", kind, name, e, tol)
				}
				return e
			}
			worst := map[string]float64{}
			note := func(kind, name string, e float64) {
				if e >= worst[kind] {
					worst[kind] = e
					t.Logf("%s: worst so far %s %.3g", kind, name, e)
				}
			}
			note("features", "image_features", check("features", "image_features", out.ImageFeatures, ref["image_features"], 1e-4))
			note("features", "text_features", check("features", "text_features", out.TextFeatures, ref["text_features"], 1e-4))
			note("logits", "logits_per_image", check("logits", "logits_per_image", out.LogitsPerImage, ref["logits_per_image"], 1e-4))
			note("loss", "loss", check("loss", "loss", []float32{loss}, ref["loss"], 1e-4))
			for _, p := range m.Params() {
				want, ok := ref["grad."+p.Name]
				if !ok {
					t.Errorf("reference lacks grad.%s", p.Name)
					continue
				}
				note("gradient", p.Name, check("gradient", p.Name, p.Grad, want, 1e-3))
			}
			t.Logf("loss %.6f (reference %.6f); worst relative errors: %v", loss, ref["loss"][0], worst)
		})
	}
}
