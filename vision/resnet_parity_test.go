package vision

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/configs"
	"github.com/clipgo/clipgo/internal/config"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// openBLASOpenMP is where Debian's OpenMP OpenBLAS lives; the PyTorch reference runs on it
// (on the pthread one, the default once libopenblas-dev is installed, its threads and torch's
// oversubscribe the cores).
const openBLASOpenMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"

// resnetReference runs scripts/peers/modified_resnet.py: random weights with open_clip's
// names and a random batch (export-random), then its float64 forward in both modes, the
// running statistics and the train-mode gradients (forward). It returns the three files.
func resnetReference(t *testing.T, args ...string) (weights, inputs, out string) {
	t.Helper()
	peers := filepath.Dir(testenv.SharedFile(t, "peers/clip_step.py"))
	script := filepath.Join(testenv.RepoRoot(t), "scripts/peers/modified_resnet.py")
	py := "/usr/bin/python3" // the system Python that has python3-torch, not a pyenv shim
	if _, err := os.Stat(py); err != nil {
		py = testenv.Command(t, "python3", "apt-get install python3-torch")
	}
	env := os.Environ()
	if _, err := os.Stat(openBLASOpenMP); err == nil {
		env = append(env, "LD_LIBRARY_PATH="+openBLASOpenMP)
	}
	probe := exec.Command(py, "-c", "import torch, numpy")
	probe.Env = env
	if err := probe.Run(); err != nil {
		testenv.Missing(t, py+" cannot import torch and numpy (apt-get install python3-torch libopenblas0-openmp)")
	}
	dir := t.TempDir()
	weights, inputs, out = filepath.Join(dir, "w.st"), filepath.Join(dir, "i.st"), filepath.Join(dir, "o.st")
	common := append([]string{"--peers", peers, "--weights", weights, "--inputs", inputs}, args...)
	for _, c := range [][]string{
		append([]string{script, "export-random"}, common...),
		append([]string{script, "forward", "--out", out}, common...),
	} {
		cmd := exec.Command(py, c...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, b)
		}
	}
	return weights, inputs, out
}

// readTensors reads every tensor of a safetensors file as float32 (int64 ones converted).
func readTensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]float32{}
	for _, info := range f.Tensors {
		if info.DType == safetensors.I64 {
			ints, err := f.Int64s(info.Name)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range ints {
				m[info.Name] = append(m[info.Name], float32(v))
			}
			continue
		}
		if m[info.Name], err = f.Float32s(info.Name); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// relErr is max |got − want| / max |want|, the error relative to the tensor's scale.
func relErr(got, want []float32) (abs, rel float64) {
	var s float64
	for i := range want {
		abs = max(abs, math.Abs(float64(got[i])-float64(want[i])))
		s = max(s, math.Abs(float64(want[i])))
	}
	return abs, abs / max(s, 1e-30)
}

// presetResNet reads configs/models/<name>.yaml's image tower and embedding width.
func presetResNet(t *testing.T, name string) (Config, int) {
	t.Helper()
	raw, err := config.ReadFile(configs.FS, "models/"+name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		EmbedDim int    `yaml:"embed_dim"`
		Vision   Config `yaml:"vision"`
		Text     any    `yaml:"text"`
	}
	if err := config.Decode(name, raw, &p); err != nil {
		t.Fatal(err)
	}
	return p.Vision, p.EmbedDim
}

// TestResNetParity compares the float32 tower with the float64 PyTorch reference written from
// the published architecture: the output in evaluation mode (running statistics), then one
// training-mode pass (batch statistics): its output, every running statistic and
// num_batches_tracked after it, and the gradients of Σ cotangent∘output. Outputs and
// statistics must agree within 1e-4 of their scale, gradients within 1e-3.
func TestResNetParity(t *testing.T) {
	tiny, tinyEmbed := presetResNet(t, "rn50-tiny")
	cases := []struct {
		name  string
		cfg   Config
		embed int
		batch int
	}{
		{"rn50-tiny", tiny, tinyEmbed, 4},
		// A 3×3 last map, two blocks in two stages, more heads per channel.
		{"deeper_96px", Config{Type: TypeResNet, ImageSize: 96, Width: 8, Heads: 4, StageLayers: StageLayers{2, 1, 2, 1}}, 24, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			layers := fmt.Sprintf("%d,%d,%d,%d", c.cfg.StageLayers[0], c.cfg.StageLayers[1], c.cfg.StageLayers[2], c.cfg.StageLayers[3])
			wf, inf, outf := resnetReference(t, "--image-size", fmt.Sprint(c.cfg.ImageSize), "--width", fmt.Sprint(c.cfg.Width),
				"--layers", layers, "--heads", fmt.Sprint(c.cfg.Heads), "--embed", fmt.Sprint(c.embed), "--batch", fmt.Sprint(c.batch))
			weights, inputs, ref := readTensors(t, wf), readTensors(t, inf), readTensors(t, outf)

			b, err := nn.NewBuilder(tensor.Float32, 0)
			if err != nil {
				t.Fatal(err)
			}
			tw, err := NewModifiedResNet(b, c.cfg, c.batch, c.embed)
			if err != nil {
				t.Fatal(err)
			}
			if len(weights) != len(b.Params()) {
				t.Errorf("the reference has %d tensors, the tower %d parameters and buffers", len(weights), len(b.Params()))
			}
			for _, p := range b.Params() {
				v, ok := weights[p.Name]
				if !ok || len(v) != p.Size() {
					t.Fatalf("%s %v: the reference has %d values (present %v)", p.Name, p.Shape, len(v), ok)
				}
				copy(p.Value, v)
			}
			feats := make([]float32, c.batch*c.embed)
			y, err := nn.Tap(tw.Output(), feats)
			if err != nil {
				t.Fatal(err)
			}
			cot := inputs["cotangent"]
			cost, err := nn.Apply("dot", nil, G.Nodes{y}, func(s []float32, in [][]float32) {
				var acc float64
				for i, v := range in[0] {
					acc += float64(v) * float64(cot[i])
				}
				s[0] = float32(acc)
			}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
				d, err := nn.Apply("dot_grad", y.Shape(), G.Nodes{g}, func(d []float32, in [][]float32) {
					for i := range d {
						d[i] = cot[i] * in[0][0]
					}
				}, nil)
				return G.Nodes{d}, err
			})
			if err != nil {
				t.Fatal(err)
			}
			forward := b.G.SubgraphRoots(y)
			if err := b.Backward(cost); err != nil {
				t.Fatal(err)
			}
			// As fusion's training graph: the backward pass's buffers shared by lifetime.
			if _, _, err := nn.ShareBuffers(b.G, forward.AllNodes()); err != nil {
				t.Fatal(err)
			}
			eval, train := G.NewTapeMachine(forward), G.NewTapeMachine(b.G)
			defer eval.Close()
			defer train.Close()
			if err := tw.SetImages(inputs["images"]); err != nil {
				t.Fatal(err)
			}
			check := func(what string, got, want []float32, tol float64) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, the reference %d", what, len(got), len(want))
				}
				abs, rel := relErr(got, want)
				if rel > tol {
					t.Errorf("%s: max abs error %.3g, relative %.3g > %g", what, abs, rel, tol)
				}
				if strings.HasSuffix(what, "features") {
					t.Logf("%s: max abs error %.3g, relative %.3g", what, abs, rel)
				}
			}

			*b.Training() = false
			if err := eval.RunAll(); err != nil {
				t.Fatal(err)
			}
			check("eval image features", feats, ref["eval.image_features"], 1e-4)
			*b.Training() = true
			if err := train.RunAll(); err != nil {
				t.Fatal(err)
			}
			check("train image features", feats, ref["train.image_features"], 1e-4)
			// The key bias's gradient is zero in exact arithmetic (it shifts every score of a
			// query alike): gradients are measured against the largest gradient scale when theirs
			// is below 1e-4 of it.
			var gradScale float64
			for _, p := range b.Params() {
				for _, v := range ref["train.grad."+p.Name] {
					gradScale = max(gradScale, math.Abs(float64(v)))
				}
			}
			var worstStat, worstGrad float64
			for _, p := range b.Params() {
				if p.Buffer {
					check(p.Name+" after one training pass", p.Value, ref["train."+p.Name], 1e-4)
					_, rel := relErr(p.Value, ref["train."+p.Name])
					worstStat = max(worstStat, rel)
					continue
				}
				want := ref["train.grad."+p.Name]
				if len(want) != p.Size() {
					t.Fatalf("gradient of %s: the reference has %d values", p.Name, len(want))
				}
				abs, _ := relErr(p.Grad, want)
				var scale float64
				for _, v := range want {
					scale = max(scale, math.Abs(float64(v)))
				}
				rel := abs / max(scale, 1e-4*gradScale)
				if rel > 1e-3 {
					t.Errorf("gradient of %s: max abs error %.3g, relative %.3g > 1e-3", p.Name, abs, rel)
				}
				worstGrad = max(worstGrad, rel)
			}
			t.Logf("worst relative error: running statistics %.3g, gradients %.3g", worstStat, worstGrad)

			// A second training pass reuses every buffer: its output and gradients (which do
			// not depend on the running statistics) must not change.
			grads := map[string][]float32{}
			for _, p := range b.Params() {
				grads[p.Name] = slices.Clone(p.Grad)
			}
			first := slices.Clone(feats)
			if err := train.RunAll(); err != nil {
				t.Fatal(err)
			}
			check("second train image features", feats, first, 1e-6)
			for _, p := range b.Params() {
				if !p.Buffer {
					check("second gradient of "+p.Name, p.Grad, grads[p.Name], 1e-5)
				}
			}
		})
	}
}
