package weights

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

func vitConfig(quickGELU bool) fusion.Config {
	return fusion.Config{EmbedDim: 16, QuickGELU: quickGELU,
		Vision: vision.Config{ImageSize: 16, PatchSize: 8, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4},
		Text:   text.Config{ContextLength: 8, VocabSize: 512, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4}}
}

func resnetConfig() fusion.Config {
	return fusion.Config{EmbedDim: 16,
		Vision: vision.Config{Type: vision.TypeResNet, ImageSize: 64, Width: 8, Heads: 2, StageLayers: vision.StageLayers{1, 1, 1, 1}},
		Text:   text.Config{ContextLength: 8, VocabSize: 512, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4}}
}

// randomWeights returns the weights of a model of cfg with random values (counters whole).
func randomWeights(t *testing.T, cfg fusion.Config) []*nn.Param {
	t.Helper()
	params, err := fusion.WeightsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range params {
		for i := range p.Value {
			p.Value[i] = float32(rng.NormFloat64())
			if strings.HasSuffix(p.Name, "num_batches_tracked") {
				p.Value[i] = 42
			}
		}
	}
	return params
}

// rounded is what a value of dtype reads back as.
func rounded(x float32, dtype safetensors.DType) float32 {
	switch dtype {
	case safetensors.F16:
		return safetensors.F16ToFloat32(safetensors.Float32ToF16(x))
	case safetensors.BF16:
		return math.Float32frombits(uint32(safetensors.Float32ToBF16(x)) << 16)
	}
	return x
}

// TestWriteReadsBack: every format and float type reads back through fusion.ReadWeights as the
// same model (config from the metadata, the shapes or config.json) with the same values, rounded
// as the float type rounds them.
func TestWriteReadsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    fusion.Config
		format Format
		dtype  safetensors.DType
	}{
		{"clipgo", vitConfig(false), Clipgo, safetensors.F32},
		{"open_clip", vitConfig(false), OpenCLIP, safetensors.F32},
		{"open_clip-f16", vitConfig(false), OpenCLIP, safetensors.F16},
		{"huggingface-quickgelu", vitConfig(true), HuggingFace, safetensors.F32},
		{"huggingface-bf16", vitConfig(false), HuggingFace, safetensors.BF16},
		{"resnet-open_clip", resnetConfig(), OpenCLIP, safetensors.F32},
		{"resnet-clipgo", resnetConfig(), Clipgo, safetensors.BF16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := randomWeights(t, tc.cfg)
			out := filepath.Join(t.TempDir(), "w.safetensors")
			readPath := out
			if tc.format == HuggingFace {
				out = filepath.Dir(out) + "/hf"
				readPath = filepath.Join(out, "model.safetensors")
			}
			if err := Write(out, tc.cfg, params, tc.format, tc.dtype); err != nil {
				t.Fatal(err)
			}
			// open_clip's naming does not record the activation: the reader is told.
			cfg, got, err := fusion.ReadWeights(readPath, tc.cfg.QuickGELU && tc.format == OpenCLIP)
			if err != nil {
				t.Fatal(err)
			}
			if cfg != tc.cfg {
				t.Errorf("config read back %+v, want %+v", cfg, tc.cfg)
			}
			for i, p := range params {
				for j, x := range p.Value {
					if want := rounded(x, tc.dtype); got[i].Value[j] != want {
						t.Fatalf("%s[%d] = %g, want %g", p.Name, j, got[i].Value[j], want)
					}
				}
			}
		})
	}
}

// TestWriteRefuses: transformers has no ResNet or SigLIP CLIPModel, and weights that do not fit
// the config are not written.
func TestWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir+"/rn", resnetConfig(), randomWeights(t, resnetConfig()), HuggingFace, safetensors.F32); err == nil || !strings.Contains(err.Error(), "ModifiedResNet") {
		t.Errorf("ResNet as transformers: %v", err)
	}
	sig := vitConfig(false)
	sig.Loss = fusion.LossSigLIP
	if err := Write(dir+"/sig", sig, randomWeights(t, sig), HuggingFace, safetensors.F32); err == nil || !strings.Contains(err.Error(), "SigLIP") {
		t.Errorf("SigLIP as transformers: %v", err)
	}
	params := randomWeights(t, vitConfig(false))
	if err := Write(dir+"/x.safetensors", resnetConfig(), params, OpenCLIP, safetensors.F32); err == nil {
		t.Error("ViT weights written as a ResNet model")
	}
	if err := Write(dir+"/x.safetensors", vitConfig(false), params, "onnx", safetensors.F32); err == nil {
		t.Error("an unknown format was accepted")
	}
	if _, err := os.Stat(dir + "/x.safetensors"); err == nil {
		t.Error("a refused write left a file")
	}
}

// TestHuggingFaceMatchesTheReferenceConversion: the transformers naming written here equals, tensor
// for tensor and byte for byte, what scripts/peers/to_huggingface.py (written from transformers'
// own conversion script) makes of the same open_clip state dict, and config.json agrees on what
// both write.
func TestHuggingFaceMatchesTheReferenceConversion(t *testing.T) {
	py := testenv.Command(t, "/usr/bin/python3", "make test-deps installs Debian's, with numpy, through python3-torch")
	peers := filepath.Dir(testenv.SharedFile(t, "peers/clip_step.py"))
	script := filepath.Join(testenv.RepoRoot(t), "scripts/peers/to_huggingface.py")
	cfg := vitConfig(true)
	params := randomWeights(t, cfg)
	dir := t.TempDir()
	openCLIP := filepath.Join(dir, "open_clip.safetensors")
	if err := Write(openCLIP, cfg, params, OpenCLIP, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(py, script, "--peers", peers, "--in", openCLIP, "--out", dir+"/py", "--hidden-act", "quick_gelu").CombinedOutput(); err != nil {
		t.Fatalf("to_huggingface.py: %v\n%s", err, b)
	}
	if err := Write(dir+"/go", cfg, params, HuggingFace, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	ref, err := safetensors.OpenFile(dir + "/py/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	got, err := safetensors.OpenFile(dir + "/go/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	n := 0
	for _, r := range ref.Tensors {
		if strings.HasSuffix(r.Name, "position_ids") {
			continue // a buffer older transformers saved; newer ones rebuild it
		}
		n++
		g, ok := got.Info(r.Name)
		if !ok || g.DType != r.DType || !slices.Equal(g.Shape, r.Shape) {
			t.Errorf("%s %s%v: written as %+v", r.Name, r.DType, r.Shape, g)
			continue
		}
		rb, _ := ref.Raw(r.Name)
		gb, _ := got.Raw(r.Name)
		if string(rb) != string(gb) {
			t.Errorf("%s: bytes differ", r.Name)
		}
	}
	if n != len(got.Tensors) {
		t.Errorf("%d tensors written, the reference has %d", len(got.Tensors), n)
	}
	var pyCfg, goCfg map[string]any
	for path, dst := range map[string]*map[string]any{dir + "/py/config.json": &pyCfg, dir + "/go/config.json": &goCfg} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatal(err)
		}
	}
	for _, tower := range []string{"text_config", "vision_config"} {
		p, g := pyCfg[tower].(map[string]any), goCfg[tower].(map[string]any)
		for k, v := range p {
			if g[k] != v {
				t.Errorf("config.json %s.%s = %v, the reference writes %v", tower, k, g[k], v)
			}
		}
	}
}
