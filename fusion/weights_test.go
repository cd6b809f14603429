package fusion

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// TestReadWeightsAsOthersSaveThem: the reference's random tiny model, saved as other tools
// save state dicts (F16 or BF16, "module." prefix, logit_scale of shape [1], no metadata),
// reads back with the right config, and the inference path embeds the reference's batch as
// PyTorch does on the same (rounded) weights.
func TestReadWeightsAsOthersSaveThem(t *testing.T) {
	wf, inf, _ := referenceFiles(t, "--preset", "tiny", "--batch-size", "6", "--seed", "3")
	py := "/usr/bin/python3"
	peers := filepath.Dir(testenv.SharedFile(t, "peers/clip_step.py"))
	variant := testenv.RepoRoot(t) + "/scripts/peers/state_dict_variant.py"
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if b, err := exec.Command(py, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	inputs, texts := readAll(t, inf), referenceTokens(t, inf)
	for _, dtype := range []string{"f16", "bf16"} {
		t.Run(dtype, func(t *testing.T) {
			// The reference computes on the rounded values in F32; clipgo reads the half file.
			rounded, half := filepath.Join(dir, dtype+"-ref.st"), filepath.Join(dir, dtype+".st")
			out := filepath.Join(dir, dtype+"-out.st")
			run(variant, "--peers", peers, "--in", wf, "--out", rounded, "--round", dtype)
			run(variant, "--peers", peers, "--in", wf, "--out", half, "--dtype", dtype, "--prefix", ModulePrefix,
				"--scalar-shape", "1", "--drop-metadata")
			run(filepath.Join(peers, "clip_step.py"), "parity", "--weights", rounded, "--inputs", inf, "--out", out,
				"--dtype", "float64", "--out-dtype", "float64")
			ref := readAll(t, out)

			cfg, params, err := ReadWeights(half, false)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Vision.Heads != 2 || cfg.Text.Heads != 2 || cfg.Vision.Width != 128 || cfg.Text.ContextLength != 32 {
				t.Errorf("config from the shapes: %+v", cfg)
			}
			enc, err := NewEncoderFrom(cfg, params, 4) // 6 rows: a full batch and a partial one
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			img, err := enc.Images(inputs["images"])
			if err != nil {
				t.Fatal(err)
			}
			txt, err := enc.Tokens(texts)
			if err != nil {
				t.Fatal(err)
			}
			E := cfg.EmbedDim
			for _, c := range []struct {
				name      string
				got, want []float32
			}{{"image", img, normalizedRows(ref["image_features"], E)}, {"text", txt, normalizedRows(ref["text_features"], E)}} {
				e := relErr(c.got, c.want)
				t.Logf("%s embeddings: max error %.2e relative to PyTorch", c.name, e)
				if e > 1e-5 {
					t.Errorf("%s embeddings differ from PyTorch's by %.2e", c.name, e)
				}
			}
		})
	}
}

// TestReadWeightsHuggingFace: the reference's random tiny model in transformers' CLIPModel
// naming (scripts/peers/to_huggingface.py) reads back as the same model, the heads from its
// config.json, and embeds the reference's batch as PyTorch does.
func TestReadWeightsHuggingFace(t *testing.T) {
	wf, inf, outf := referenceFiles(t, "--preset", "tiny", "--batch-size", "5", "--seed", "4")
	peers := filepath.Dir(testenv.SharedFile(t, "peers/clip_step.py"))
	dir := t.TempDir()
	cmd := exec.Command("/usr/bin/python3", testenv.RepoRoot(t)+"/scripts/peers/to_huggingface.py", "--peers", peers,
		"--in", wf, "--out", dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("to_huggingface.py: %v\n%s", err, b)
	}
	cfg, params, err := ReadWeights(filepath.Join(dir, "model.safetensors"), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vision.Heads != 2 || cfg.Text.Heads != 2 || cfg.QuickGELU {
		t.Errorf("config: %+v", cfg)
	}
	ref := readAll(t, outf)
	enc, err := NewEncoderFrom(cfg, params, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	img, err := enc.Images(readAll(t, inf)["images"])
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(img, normalizedRows(ref["image_features"], cfg.EmbedDim)); e > 1e-5 {
		t.Errorf("image embeddings differ from PyTorch's by %.2e", e)
	}
	txt, err := enc.Tokens(referenceTokens(t, inf))
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(txt, normalizedRows(ref["text_features"], cfg.EmbedDim)); e > 1e-5 {
		t.Errorf("text embeddings differ from PyTorch's by %.2e", e)
	}
	// config.json's activation is honoured.
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(strings.ReplaceAll(string(raw), `"gelu"`, `"quick_gelu"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, _, err := ReadWeights(filepath.Join(dir, "model.safetensors"), false); err != nil || !cfg.QuickGELU {
		t.Errorf("hidden_act quick_gelu: QuickGELU %v, %v", cfg.QuickGELU, err)
	}
}

// TestReadWeightsRefusesAMismatch lists what does not fit, and a clipgo checkpoint reads as
// checkpoint.Load reads it.
func TestReadWeightsRefusesAMismatch(t *testing.T) {
	cfg := smallConfig()
	m, err := New(cfg, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	run := t.TempDir()
	raw := `{"embed_dim":16,"quick_gelu":false,"vision":{"image_size":16,"patch_size":8,"width":16,"layers":1,"heads":2,"mlp_ratio":4},"text":{"context_length":8,"vocab_size":49408,"width":16,"layers":1,"heads":2,"mlp_ratio":4}}`
	path, err := checkpoint.Save(run, 1, m.Params(), nil, checkpoint.Meta{Config: raw, Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, params, err := ReadWeights(path, false)
	if err != nil || got != cfg || len(params) != len(m.Params()) {
		t.Fatalf("ReadWeights of a checkpoint: %+v, %d params, %v", got, len(params), err)
	}
	for i, p := range m.Params() {
		if p.Name != params[i].Name || relErr(params[i].Value, p.Value) != 0 {
			t.Fatalf("%s read back differently", p.Name)
		}
	}
	// The same file with one tensor renamed: a state dict that is not this model's.
	f, err := safetensors.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []safetensors.Tensor
	for _, info := range f.Tensors {
		v, err := f.Float32s(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		name := info.Name
		if name == "ln_final.bias" {
			name = "ln_final.offset"
		}
		shape := make([]int, len(info.Shape))
		for i, d := range info.Shape {
			shape[i] = int(d)
		}
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: v})
	}
	f.Close()
	bad := filepath.Join(run, "bad.safetensors")
	w, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(w, tensors, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadWeights(bad, false)
	for _, want := range []string{"missing ln_final.bias", "unexpected ln_final.offset", bad} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadWeights of a renamed tensor: %v; want it to say %q", err, want)
		}
	}
}

// TestReadWeightsResNetStateDict: a ModifiedResNet model saved as open_clip saves it (no
// config, num_batches_tracked as I64) reads back with its config from the shapes.
func TestReadWeightsResNetStateDict(t *testing.T) {
	cfg := Config{EmbedDim: 32,
		Vision: vision.Config{Type: vision.TypeResNet, ImageSize: 64, Width: 8, Heads: 4, StageLayers: vision.StageLayers{1, 2, 1, 1}},
		Text:   text.Config{ContextLength: 8, VocabSize: 100, Width: 64, Layers: 1, Heads: 1, MLPRatio: 4}}
	m, err := New(cfg, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var tensors []safetensors.Tensor
	for _, p := range m.Params() {
		tt := safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: p.Shape, Data: p.Value}
		if strings.HasSuffix(p.Name, "num_batches_tracked") {
			tt.DType, tt.Data = safetensors.I64, []int64{int64(p.Value[0]) + 5}
		}
		tensors = append(tensors, tt)
	}
	path := filepath.Join(t.TempDir(), "rn.safetensors")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(w, tensors, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, params, err := ReadWeights(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg {
		t.Errorf("config from the shapes %+v, want %+v", got, cfg)
	}
	for _, p := range params {
		if strings.HasSuffix(p.Name, "num_batches_tracked") && p.Value[0] != 5 {
			t.Errorf("%s = %v, want 5", p.Name, p.Value[0])
		}
	}
}

// referenceTokens reads the reference inputs' token ids.
func referenceTokens(t *testing.T, inputs string) []int32 {
	t.Helper()
	f, err := safetensors.OpenFile(inputs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := f.Int64s("texts")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}
