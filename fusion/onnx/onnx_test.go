package onnx_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/fusion/onnx"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/text/tokenizer"
	"github.com/clipgo/clipgo/vision"
)

// tiny is a model small enough for a test to export and run in well under a second, with more
// than one head and block, an MLP ratio other than 4 and a non-square attention (T ≠ L).
func tiny(quickGELU bool) fusion.Config {
	return fusion.Config{EmbedDim: 12, QuickGELU: quickGELU,
		Vision: vision.Config{ImageSize: 16, PatchSize: 4, Width: 32, Layers: 2, Heads: 4, MLPRatio: 2},
		Text:   text.Config{ContextLength: 9, VocabSize: 300, Width: 24, Layers: 2, Heads: 2, MLPRatio: 4}}
}

// tinyResNet is tiny's text tower under a small ModifiedResNet image tower.
func tinyResNet() fusion.Config {
	cfg := tiny(false)
	cfg.Vision = vision.Config{Type: vision.TypeResNet, ImageSize: 64, Width: 8, Heads: 4, StageLayers: vision.StageLayers{1, 2, 1, 1}}
	return cfg
}

// randomWeights fills every tensor of cfg: layer-norm gains near 1, everything else small
// normal values, large enough that each block changes its input.
func randomWeights(t *testing.T, cfg fusion.Config, seed uint64) []*nn.Param {
	t.Helper()
	params, err := fusion.WeightsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range params {
		gain := (strings.Contains(p.Name, "ln_") || strings.Contains(p.Name, ".bn") || strings.Contains(p.Name, "downsample.1")) && strings.HasSuffix(p.Name, ".weight")
		for i := range p.Value {
			v := float32(rng.NormFloat64() * 0.15)
			switch {
			case gain:
				v += 1
			case strings.HasSuffix(p.Name, ".running_var"):
				v = 0.5 + float32(math.Abs(float64(v)))
			}
			p.Value[i] = v
		}
	}
	return params
}

// export writes cfg's two encoders into dir, with their weights in NAME.onnx.data beside
// them when external.
func export(t *testing.T, dir string, cfg fusion.Config, params []*nn.Param, external bool) {
	t.Helper()
	for name, build := range map[string]func(fusion.Config, []*nn.Param, string) (*onnx.Graph, error){
		"image_encoder.onnx": onnx.ImageEncoder, "text_encoder.onnx": onnx.TextEncoder} {
		g, err := build(cfg, params, "test")
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if external {
			d, err := os.Create(filepath.Join(dir, name+".data"))
			if err != nil {
				t.Fatal(err)
			}
			m, n, err := g.WriteExternal(f, d, name+".data", 1024)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if m >= g.Bytes() || n < g.Bytes()-m {
				t.Errorf("%s: %d model and %d data bytes, %d inline: the weights did not move out", name, m, n, g.Bytes())
			}
		} else {
			n, err := g.WriteTo(f)
			if err != nil {
				t.Fatal(err)
			}
			if n != g.Bytes() {
				t.Errorf("%s: wrote %d bytes, Bytes says %d", name, n, g.Bytes())
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// systemPython is Debian's Python, which has python3-onnx (not a pyenv shim on PATH).
const systemPython = "/usr/bin/python3"

// TestExportPassesONNXChecker: both encoders of a GELU and a QuickGELU model pass Debian's
// onnx checker with full_check (strict shape inference), and the inferred output shapes are
// [batch, E].
func TestExportPassesONNXChecker(t *testing.T) {
	skipShort(t)
	if out, err := exec.Command(systemPython, "-c", "import onnx").CombinedOutput(); err != nil {
		testenv.Missing(t, systemPython+" cannot import onnx (make test-deps: apt-get install python3-onnx): "+string(out))
	}
	const check = `
import sys, onnx
for path in sys.argv[1:]:
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    for o in inferred.graph.output:
        dims = [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        print(path.rsplit("/", 1)[-1], o.name, dims, m.ir_version, m.opset_import[0].version)
`
	// One Python run checks both models (importing onnx takes most of its time).
	var files []string
	want := ""
	for i, cfg := range []fusion.Config{tiny(false), tiny(true), tinyResNet()} {
		dir := t.TempDir()
		export(t, dir, cfg, randomWeights(t, cfg, 1), i == 1) // the QuickGELU model with external data
		files = append(files, filepath.Join(dir, "image_encoder.onnx"), filepath.Join(dir, "text_encoder.onnx"))
		want += "image_encoder.onnx image_embeds ['batch', 12] 8 17\ntext_encoder.onnx text_embeds ['batch', 12] 8 17\n"
	}
	out, err := exec.Command(systemPython, append([]string{"-c", check}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker: %v\n%s", err, out)
	}
	if string(out) != want {
		t.Errorf("checker said\n%s\nwant\n%s", out, want)
	}
}

// checkCase is what scripts/peers/onnx/onnx_check.mjs reads: inputs and clipgo's outputs.
type checkCase struct {
	PixelValues tensorJSON `json:"pixel_values"`
	ImageEmbeds []float32  `json:"image_embeds"`
	InputIDs    tensorJSON `json:"input_ids"`
	TextEmbeds  []float32  `json:"text_embeds"`
}

type tensorJSON struct {
	Shape []int `json:"shape"`
	Data  any   `json:"data"`
}

// skipShort skips the checks that run Python or Node in -short runs (make test's race run): the
// graphs are written by sequential code, and the full run checks them.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short: the onnx checker and onnxruntime run in the full test run")
	}
}

// onnxCheck finds node and the pinned onnxruntime-node (scripts/peers/onnx), handling their
// absence with testenv.Missing, and returns node's path and the script's directory.
func onnxCheck(t *testing.T) (node, peer string) {
	t.Helper()
	skipShort(t)
	node = testenv.Command(t, "node", "apt-get install nodejs")
	peer = filepath.Join(testenv.RepoRoot(t), "scripts", "peers", "onnx")
	if _, err := os.Stat(filepath.Join(peer, "node_modules", "onnxruntime-node", "package.json")); err != nil {
		testenv.Missing(t, "onnxruntime-node is not installed in "+peer+" (make test-deps runs npm ci there)")
	}
	return node, peer
}

// ortResult is onnx_check.mjs's report.
type ortResult struct {
	Runtime     string  `json:"onnxruntime"`
	ImageShape  []int   `json:"image_shape"`
	TextShape   []int   `json:"text_shape"`
	ImageMaxAbs float64 `json:"image_max_abs"`
	TextMaxAbs  float64 `json:"text_max_abs"`
	Pass        bool    `json:"pass"`
}

// compareWithORT exports cfg's model, embeds images and token rows ids with fusion.Encoder
// (batches of up to maxBatch), runs the same inputs through onnxruntime and fails t unless
// every embedding is within 1e-5 (max abs) and of shape [n, E].
func compareWithORT(t *testing.T, what string, cfg fusion.Config, params []*nn.Param, images []float32, ids []int32, maxBatch int, external bool) ortResult {
	t.Helper()
	node, peer := onnxCheck(t)
	dir := t.TempDir()
	export(t, dir, cfg, params, external)
	enc, err := fusion.NewEncoderFrom(cfg, params, maxBatch)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	n, L, S := len(images)/enc.ImageLen(), cfg.Text.ContextLength, cfg.Vision.ImageSize
	imgWant, err := enc.Images(images)
	if err != nil {
		t.Fatal(err)
	}
	txtWant, err := enc.Tokens(ids)
	if err != nil {
		t.Fatal(err)
	}
	ids64 := make([]int64, len(ids))
	for i, v := range ids {
		ids64[i] = int64(v)
	}
	b, err := json.Marshal(checkCase{
		PixelValues: tensorJSON{Shape: []int{n, 3, S, S}, Data: images},
		ImageEmbeds: imgWant,
		InputIDs:    tensorJSON{Shape: []int{len(ids) / L, L}, Data: ids64},
		TextEmbeds:  txtWant,
	})
	if err != nil {
		t.Fatal(err)
	}
	casePath := filepath.Join(dir, "case.json")
	if err := os.WriteFile(casePath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, filepath.Join(peer, "onnx_check.mjs"), "--dir", dir, "--case", casePath, "--tol", "1e-5").Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	var r ortResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("%s: onnx_check: %v (%v)\n%s%s", what, err, jerr, out, stderr)
	}
	t.Logf("%s: onnxruntime %s: image max |Δ| %.3g, text max |Δ| %.3g", what, r.Runtime, r.ImageMaxAbs, r.TextMaxAbs)
	if !r.Pass || err != nil || r.ImageMaxAbs > 1e-5 || r.TextMaxAbs > 1e-5 || math.IsNaN(r.ImageMaxAbs+r.TextMaxAbs) {
		t.Errorf("%s: onnxruntime differs from clipgo's encoder: %s%s", what, out, stderr)
	}
	E := cfg.EmbedDim
	if !slices.Equal(r.ImageShape, []int{n, E}) || !slices.Equal(r.TextShape, []int{len(ids) / L, E}) {
		t.Errorf("%s: output shapes %v and %v, want [%d %d] and [%d %d]", what, r.ImageShape, r.TextShape, n, E, len(ids)/L, E)
	}
	return r
}

// TestONNXRuntimeMatchesEncoder: onnxruntime (onnxruntime-node, pinned in
// scripts/peers/onnx) runs the exported encoders on 3 images and 3 token rows (a batch the
// export never saw; clipgo runs them as a batch of 2 and one of 1) and its embeddings are
// within 1e-5 of fusion.Encoder's, for a GELU and a QuickGELU model. The token rows include a
// tie for the largest id (pooled at the first) and a row whose EOT is not last.
func TestONNXRuntimeMatchesEncoder(t *testing.T) {
	for _, quick := range []bool{false, true} {
		cfg := tiny(quick)
		rng := rand.New(rand.NewPCG(3, 4))
		images := make([]float32, 3*3*cfg.Vision.ImageSize*cfg.Vision.ImageSize)
		for i := range images {
			images[i] = float32(rng.NormFloat64())
		}
		ids := []int32{
			1, 17, 250, 33, 299, 0, 0, 0, 0, // EOT (the largest id) mid-row, zero padded
			5, 200, 200, 7, 3, 2, 1, 9, 4, // a tie: pooled at the first 200
			299, 1, 2, 3, 4, 5, 6, 7, 8, // the largest id first
		}
		// The QuickGELU model's weights go to external data files.
		compareWithORT(t, fmt.Sprintf("quick_gelu %v", quick), cfg, randomWeights(t, cfg, 2), images, ids, 2, quick)
	}
}

// TestONNXRuntimeMatchesFullSize: the same check at full size, OpenAI's ViT-B/32 and RN50
// layouts (QuickGELU, context 77, the CLIP vocabulary) with random weights, on 2 images and 2
// tokenised captions. It takes minutes and a few GB, so it runs only with CLIPGO_ONNX_LARGE=1
// (make onnx-check).
func TestONNXRuntimeMatchesFullSize(t *testing.T) {
	if os.Getenv("CLIPGO_ONNX_LARGE") != "1" {
		t.Skip("skipped: the full-size ONNX check runs with CLIPGO_ONNX_LARGE=1 (make onnx-check)")
	}
	textCfg := text.Config{ContextLength: 77, VocabSize: 49408, Width: 512, Layers: 12, Heads: 8, MLPRatio: 4}
	for _, c := range []struct {
		name string
		cfg  fusion.Config
	}{
		{"ViT-B/32", fusion.Config{EmbedDim: 512, QuickGELU: true, Text: textCfg,
			Vision: vision.Config{ImageSize: 224, PatchSize: 32, Width: 768, Layers: 12, Heads: 12, MLPRatio: 4}}},
		{"RN50", fusion.Config{EmbedDim: 1024, QuickGELU: true, Text: textCfg,
			Vision: vision.Config{Type: vision.TypeResNet, ImageSize: 224, Width: 64, Heads: 32, StageLayers: vision.StageLayers{3, 4, 6, 3}}}},
	} {
		t.Run(c.name, func(t *testing.T) { fullSize(t, c.name, c.cfg) })
	}
}

func fullSize(t *testing.T, name string, cfg fusion.Config) {
	params := randomWeights(t, cfg, 5)
	for _, p := range params { // the weights at the scale of a trained model's: 0.15 grows too much over 12 blocks
		if !strings.HasSuffix(p.Name, ".running_var") && !(strings.Contains(p.Name, "ln_") && strings.HasSuffix(p.Name, ".weight")) {
			for i := range p.Value {
				p.Value[i] *= 0.2
			}
		}
	}
	rng := rand.New(rand.NewPCG(6, 7))
	images := make([]float32, 2*3*224*224)
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	tok, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, 2*77)
	for i, s := range []string{"a photo of a dog.", "a diagram of a contrastive image-text model trained in Go"} {
		if err := tok.TokenizeInto(ids[i*77:(i+1)*77], s); err != nil {
			t.Fatal(err)
		}
	}
	compareWithORT(t, name, cfg, params, images, ids, 2, false)
}

// TestONNXRuntimeMatchesResNet: the same for a ModifiedResNet image tower (batch norms on
// their running statistics, a stage with a block past the first, downsampling with and without
// the anti-aliasing pool, the attention pool over a 2×2 map).
func TestONNXRuntimeMatchesResNet(t *testing.T) {
	cfg := tinyResNet()
	rng := rand.New(rand.NewPCG(8, 9))
	images := make([]float32, 3*3*cfg.Vision.ImageSize*cfg.Vision.ImageSize)
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	ids := make([]int32, 3*cfg.Text.ContextLength)
	for i := range ids {
		ids[i] = int32(rng.IntN(cfg.Text.VocabSize))
	}
	compareWithORT(t, "ModifiedResNet", cfg, randomWeights(t, cfg, 10), images, ids, 2, false)
}

// TestExportRefusesMissingWeights: weights that do not fit the config are named.
func TestExportRefusesMissingWeights(t *testing.T) {
	cfg := tiny(false)
	params := randomWeights(t, cfg, 1)
	var kept []*nn.Param
	for _, p := range params {
		if p.Name != "visual.proj" {
			kept = append(kept, p)
		}
	}
	if _, err := onnx.ImageEncoder(cfg, kept, ""); err == nil || !strings.Contains(err.Error(), "visual.proj") {
		t.Errorf("got %v, want an error naming visual.proj", err)
	}
}

// TestWriteSizes: for every tower kind the graphs build, WriteTo writes exactly Bytes() bytes,
// and WriteExternal moves all but the small constants out (the model shrinks below 64 KiB and
// model + data, less the page padding, is Bytes() less the raw_data framing it drops). It needs
// no Python or Node, so -short runs it.
func TestWriteSizes(t *testing.T) {
	for _, cfg := range []fusion.Config{tiny(false), tinyResNet()} {
		params := randomWeights(t, cfg, 1)
		for _, build := range []func(fusion.Config, []*nn.Param, string) (*onnx.Graph, error){onnx.ImageEncoder, onnx.TextEncoder} {
			g, err := build(cfg, params, "")
			if err != nil {
				t.Fatal(err)
			}
			var inline, model, data countingWriter
			n, err := g.WriteTo(&inline)
			if err != nil || n != g.Bytes() || inline.n != n {
				t.Fatalf("WriteTo: %d bytes reported, %d written, Bytes %d, %v", n, inline.n, g.Bytes(), err)
			}
			m, d, err := g.WriteExternal(&model, &data, "x.data", 1024)
			if err != nil || m != model.n || d != data.n {
				t.Fatalf("WriteExternal: %d and %d reported, %d and %d written, %v", m, d, model.n, data.n, err)
			}
			if m > 64<<10 || m+d < g.Bytes()-int64(g.Initializers())*8 || m+d > g.Bytes()+int64(g.Initializers())*(onnx.ExternalAlign+64) {
				t.Errorf("%d-byte graph: external model %d bytes, data %d bytes", g.Bytes(), m, d)
			}
		}
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
