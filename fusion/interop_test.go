package fusion

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// pytorchPeer finds the system Python with PyTorch and returns it with the directory of
// ../shared/peers/clip_step.py and the repository's scripts/peers.
func pytorchPeer(t *testing.T) (py, peers, scripts string) {
	t.Helper()
	py = testenv.Command(t, "/usr/bin/python3", "apt-get install python3-torch")
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		testenv.Missing(t, "python3 cannot import torch (make test-deps: apt-get install python3-torch)")
	}
	return py, filepath.Dir(testenv.SharedFile(t, "peers/clip_step.py")), filepath.Join(testenv.RepoRoot(t), "scripts", "peers")
}

// TestWeightsInteropPyTorch (make interop): models written by PyTorch in open_clip's naming as
// other tools save them (F16, a "module." prefix, logit_scale of shape [1], no metadata), with
// QuickGELU and a ViT or a ModifiedResNet image tower, load in clipgo with the config their shapes
// imply and embed the reference's images and token ids as PyTorch does (scripts/peers/clip_embed.py,
// float64, on the same F16-rounded weights).
func TestWeightsInteropPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode (the race run): the normal run and make interop run it")
	}
	py, peers, scripts := pytorchPeer(t)
	textCfg := text.Config{ContextLength: 16, VocabSize: 1000, Width: 128, Layers: 1, Heads: 2, MLPRatio: 4}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"ViT QuickGELU", Config{EmbedDim: 32, QuickGELU: true, Text: textCfg,
			Vision: vision.Config{ImageSize: 32, PatchSize: 8, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4}}},
		// Heads as open_clip's rule gives them from the shapes (C/64), since the file says nothing.
		{"ResNet QuickGELU", Config{EmbedDim: 32, QuickGELU: true, Text: textCfg,
			Vision: vision.Config{Type: vision.TypeResNet, ImageSize: 64, Width: 16, Heads: 8, StageLayers: vision.StageLayers{1, 2, 1, 1}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, err := json.Marshal(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			f := func(name string) string { return filepath.Join(dir, name) }
			run := func(args ...string) {
				t.Helper()
				if b, err := exec.Command(py, args...).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
				}
			}
			// The reference computes on the F16-rounded values in float64; clipgo reads the F16 file.
			run(filepath.Join(scripts, "clip_embed.py"), "export-random", "--peers", peers, "--config", string(raw), "--seed", "5",
				"--weights", f("w.st"), "--inputs", f("in.st"), "--f16-module", f("half.st"), "--reference", f("ref.st"))

			cfg, params, err := ReadWeights(f("half.st"), true)
			if err != nil {
				t.Fatal(err)
			}
			if cfg != c.cfg {
				t.Fatalf("config from the shapes %+v, want %+v", cfg, c.cfg)
			}
			compareEmbeddings(t, cfg, params, f("in.st"), readAll(t, f("ref.st")), 1e-5)
		})
	}
}

// compareEmbeddings embeds the reference inputs (images, texts) with clipgo's encoder and
// compares them with the reference's image_embedding and text_embedding.
func compareEmbeddings(t *testing.T, cfg Config, params []*nn.Param, inputs string, ref map[string][]float32, tol float64) {
	t.Helper()
	enc, err := NewEncoderFrom(cfg, params, 4) // 5 rows: a full batch and a partial one
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	img, err := enc.Images(readAll(t, inputs)["images"])
	if err != nil {
		t.Fatal(err)
	}
	txt, err := enc.Tokens(referenceTokens(t, inputs))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"image", img, ref["image_embedding"]}, {"text", txt, ref["text_embedding"]}} {
		if len(c.got) != len(c.want) || len(c.want) == 0 {
			t.Fatalf("%s embeddings: %d values, the reference has %d", c.name, len(c.got), len(c.want))
		}
		e := relErr(c.got, c.want)
		t.Logf("%s embeddings: max error %.2e relative to PyTorch", c.name, e)
		if e > tol {
			t.Errorf("%s embeddings differ from PyTorch's by %.2e (tolerance %.0e)", c.name, e, tol)
		}
	}
}
