package train

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestBuiltInRecipesLoad(t *testing.T) {
	for _, name := range []string{"demo", "flickr8k", "flickr8k-siglip"} {
		cfg, err := LoadConfig(name, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.Model.Text.VocabSize != 49408 {
			t.Errorf("%s: vocab %d, want the CLIP tokenizer's 49408", name, cfg.Model.Text.VocabSize)
		}
	}
	cfg, _ := LoadConfig("demo", nil)
	// demo = tiny's sizes with the full vocabulary and context 32.
	if v := cfg.Model.Vision; v.ImageSize != 32 || v.PatchSize != 4 || v.Width != 128 || v.Layers != 2 || v.Heads != 2 || v.MLPRatio != 4 {
		t.Errorf("demo vision = %+v, want tiny's", v)
	}
	if cfg.Model.Text.ContextLength != 32 || cfg.Model.EmbedDim != 128 {
		t.Errorf("demo text context %d, embed %d; want 32, 128", cfg.Model.Text.ContextLength, cfg.Model.EmbedDim)
	}
}

func TestModelPresetsMatchTheReference(t *testing.T) {
	// ../shared/peers/clip_step.py PRESETS, and OpenAI's ViT-B/32.
	want := map[string][11]int{ // image, patch, vw, vl, vh, tw, tl, th, ctx, vocab, embed
		"tiny":     {32, 4, 128, 2, 2, 128, 2, 2, 32, 4096, 128},
		"small":    {64, 8, 256, 4, 4, 256, 4, 4, 77, 49408, 256},
		"vit-b-32": {224, 32, 768, 12, 12, 512, 12, 8, 77, 49408, 512},
	}
	for name, w := range want {
		cfg, err := LoadConfig("demo", []string{"model_preset=" + name, "model.text.vocab_size=" + itoa(w[9]), "model.text.context_length=" + itoa(w[8])})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := cfg.Model
		got := [11]int{m.Vision.ImageSize, m.Vision.PatchSize, m.Vision.Width, m.Vision.Layers, m.Vision.Heads,
			m.Text.Width, m.Text.Layers, m.Text.Heads, m.Text.ContextLength, m.Text.VocabSize, m.EmbedDim}
		if got != w || m.Vision.MLPRatio != 4 || m.Text.MLPRatio != 4 {
			t.Errorf("%s = %v (mlp %g/%g), want %v", name, got, m.Vision.MLPRatio, m.Text.MLPRatio, w)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestPretrainConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "r.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		body string
		sets []string
		want string
	}{
		{"model_preset: tiny\ndata: {train: x}\ntrain: {stepz: 3}\n", nil, "stepz"},
		{"model_preset: tiny\ndata: {train: x}\ntrain: {steps: lots}\n", nil, "lots"},
		{"model_preset: huge\ndata: {train: x}\n", nil, `model_preset "huge"`},
		{"model_preset: tiny\ndata: {train: x}\n", []string{"model.vision.heads=3"}, "model.vision.width 128 is not divisible by model.vision.heads 3"},
		{"model_preset: tiny\ndata: {train: x}\n", []string{"model.vision.patch_size=5"}, "model.vision.image_size 32 is not divisible by model.vision.patch_size 5"},
		{"model_preset: tiny\ndata: {train: x}\n", []string{"model.text.heads=0"}, "model.text"},
		{"model_preset: tiny\ndata: {train: x}\n", []string{"train.batch_size=1"}, "train.batch_size"},
		{"model_preset: tiny\ndata: {train: x}\n", []string{"train.warmup=5000"}, "train.warmup"},
		{"model_preset: tiny\ndata: {train: x}\n", []string{"train.nope=1"}, `unknown key "train.nope"`},
		{"model_preset: tiny\n", nil, "data.train"},
	} {
		_, err := LoadConfig(write(tc.body), tc.sets)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: err = %v, want it to mention %q", tc.body, tc.sets, err, tc.want)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadConfig("no-such-recipe", nil); err == nil || !strings.Contains(err.Error(), "no-such-recipe") {
		t.Errorf("unknown recipe: %v", err)
	}
}

// TestRecipeNameIsNotADirectory: a directory that happens to bear a recipe's name (a dataset
// called "demo") does not hide the built-in recipe.
func TestRecipeNameIsNotADirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "demo"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if _, err := LoadConfig("demo", nil); err != nil {
		t.Fatalf("built-in recipe beside a directory named demo: %v", err)
	}
}

// TestLossKeysAndInitConfig: --set reaches the loss keys (issue 15), and init (issue 14)
// takes the model from the weights: --init (a set) drops the recipe's preset and model
// section, keeping only the model keys the command line gives; init in a recipe with a
// preset is refused by name.
func TestLossKeysAndInitConfig(t *testing.T) {
	cfg, err := LoadConfig("demo", []string{"model.loss=triplet", "model.triplet.margin=0.2", "model.triplet.hardest=true", "model.triplet.weight=0"})
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Model; m.Loss != "triplet" || m.Triplet.Margin != 0.2 || !m.Triplet.Hardest {
		t.Errorf("loss keys: %+v", m)
	}
	if _, err := LoadConfig("demo", []string{"model.loss=clip", "model.triplet.weight=0.5", "model.triplet.margin=0.1"}); err != nil {
		t.Errorf("clip + triplet: %v", err)
	}
	if _, err := LoadConfig("demo", []string{"model.loss=siglip", "model.triplet.weight=0.5"}); err == nil || !strings.Contains(err.Error(), "model.triplet.weight") {
		t.Errorf("siglip + triplet weight: %v", err)
	}

	cfg, err = LoadConfig("demo", []string{"init=/weights.safetensors", "model.quick_gelu=true"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Init != "/weights.safetensors" || cfg.ModelPreset != "" || cfg.Model.EmbedDim != 0 || !cfg.Model.QuickGELU ||
		strings.Join(cfg.modelKeys, ",") != "quick_gelu" {
		t.Errorf("--init over the demo recipe: init %q, preset %q, model %+v, keys %v", cfg.Init, cfg.ModelPreset, cfg.Model, cfg.modelKeys)
	}
	dir := t.TempDir()
	recipe := filepath.Join(dir, "r.yaml")
	os.WriteFile(recipe, []byte("init: w.safetensors\nmodel: {quick_gelu: true, vision: {heads: 4}}\ndata: {train: d}\n"), 0o644)
	if cfg, err = LoadConfig(recipe, []string{"model.loss=clip"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.modelKeys, ","); got != "loss,quick_gelu,vision.heads" {
		t.Errorf("model keys of a recipe with init: %s", got)
	}
	os.WriteFile(recipe, []byte("init: w.safetensors\nmodel_preset: tiny\ndata: {train: d}\n"), 0o644)
	if _, err := LoadConfig(recipe, nil); err == nil || !strings.Contains(err.Error(), "model_preset") {
		t.Errorf("init with a preset: %v", err)
	}
}
