package train

import (
	"fmt"
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
		{"model_preset: tiny\ndata: {train: x}\ntrain: {steps: 1000}\n", []string{"train.warmup=5000"}, "train.warmup"},
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
	os.WriteFile(recipe, []byte("init: w.safetensors\nmodel: {quick_gelu: true, vision: {heads: 4}}\ndata: {train: d}\ntrain: {steps: 200}\n"), 0o644)
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

// writeRecipe writes body as a recipe file and returns its path.
func writeRecipe(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStepsOrEpochs: a recipe gives train.steps or train.epochs, not both and not neither; a
// --set of one replaces the recipe's other.
func TestStepsOrEpochs(t *testing.T) {
	const head = "model_preset: tiny\ndata: {train: x}\n"
	for _, tc := range []struct {
		body string
		sets []string
		want string // "" = loads
	}{
		{head + "train: {steps: 10, epochs: 2}\n", nil, "train.steps 10 and train.epochs 2: give one of them"},
		{head, nil, "the run's length is missing: give train.steps"},
		{head + "train: {epochs: -1}\n", nil, "must not be negative"},
		{head + "train: {steps: 10}\n", []string{"train.steps=5", "train.epochs=1"}, "give one of them"},
		{head + "train: {epochs: 2.5}\n", nil, "2.5 is not a whole number"},
		{head + "train: {epochs: 2}\n", nil, ""},
		{head + "train: {steps: 10}\n", []string{"train.epochs=3"}, ""},
		{head + "train: {epochs: 3}\n", []string{"train.steps=700"}, ""},
	} {
		cfg, err := LoadConfig(writeRecipe(t, tc.body), tc.sets)
		if tc.want == "" {
			if err != nil || (cfg.Train.Steps > 0) == (cfg.Train.Epochs > 0) {
				t.Errorf("%q %v: %v, steps %d epochs %d; want exactly one", tc.body, tc.sets, err, cfg.Train.Steps, cfg.Train.Epochs)
			}
		} else if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v: %v, want an error mentioning %q", tc.body, tc.sets, err, tc.want)
		}
	}
}

func TestRunLength(t *testing.T) {
	cfg, err := LoadConfig(writeRecipe(t, "model_preset: tiny\ndata: {train: x}\ntrain: {epochs: 3, batch_size: 32, warmup: 2}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 pairs at batch 32: 31 full batches per epoch (the loader drops the last 8 pairs).
	l, err := cfg.RunLength(1000)
	if err != nil || l.Steps != 93 || l.StepsPerEpoch != 31 || l.Epochs != 3 || l.PairsPerStep != 32 {
		t.Errorf("3 epochs of 1000 pairs at batch 32: %+v, %v; want 93 steps, 31 per epoch", l, err)
	}
	cfg.Train.AccumSteps = 2 // 31 micro-batches per epoch, 2 per step: 46 steps for 3 epochs
	if l, err = cfg.RunLength(1000); err != nil || l.Steps != 46 || l.PairsPerStep != 64 {
		t.Errorf("with accum_steps 2: %+v, %v; want 46 steps", l, err)
	}
	if _, err := cfg.RunLength(20); err == nil || !strings.Contains(err.Error(), "fewer than one step's 64") {
		t.Errorf("a split smaller than a step: %v", err)
	}
	cfg.Train.AccumSteps, cfg.Train.Warmup = 1, 93
	if _, err := cfg.RunLength(1000); err == nil || !strings.Contains(err.Error(), "train.warmup 93 must be below the run's 93 steps") {
		t.Errorf("warmup as long as the run: %v", err)
	}
	cfg.Train.Epochs, cfg.Train.Steps, cfg.Train.Warmup = 0, 62, 0 // steps given: the epochs follow
	if l, err = cfg.RunLength(1000); err != nil || l.Steps != 62 || l.Epochs != 2 {
		t.Errorf("62 steps of 31 per epoch: %+v, %v; want 2 epochs", l, err)
	}
	if c, _ := cfg.withLength(1000); c.Train.Steps != 62 {
		t.Errorf("withLength of a steps recipe changed it: %d", c.Train.Steps)
	}
}

func TestRecipeWithoutAModelSaysWhatIsMissing(t *testing.T) {
	_, err := LoadConfig(writeRecipe(t, "data: {train: x}\ntrain: {steps: 200}\n"), nil)
	for _, want := range []string{"no model", "model_preset (one of ", "tiny", "a model section", "init"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a recipe without a model: %v, want it to mention %q", err, want)
		}
	}
	if _, err := LoadConfig(writeRecipe(t, "data: {train: x}\ntrain: {steps: 200}\n"), []string{"model_preset=tiny"}); err != nil {
		t.Errorf("the preset given by --set: %v", err)
	}
}

// TestRecipeYAMLLoadsBack: --print-config's YAML is a recipe that loads back to the same
// config, defaults included; with init, the model section holds only the keys given.
func TestRecipeYAMLLoadsBack(t *testing.T) {
	for _, sets := range [][]string{
		{"train.lr=0.002", "model.loss=siglip"},
		{"train.epochs=4"},
		{"init=/w.safetensors", "model.quick_gelu=true"},
	} {
		cfg, err := LoadConfig("demo", sets)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := cfg.RecipeYAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadConfig(writeRecipe(t, string(raw)), nil)
		if err != nil {
			t.Fatalf("%v: the printed recipe does not load: %v\n%s", sets, err, raw)
		}
		if cfg.Init == "" { // the model keys given only matter over init's weights
			cfg.modelKeys, back.modelKeys = nil, nil
		}
		if a, b := fmt.Sprintf("%+v", cfg), fmt.Sprintf("%+v", back); a != b {
			t.Errorf("%v: printed and loaded back\n%s\ngives\n%s\nnot\n%s", sets, raw, b, a)
		}
		for _, want := range []string{"beta2: 0.98", "max_bad_steps: 10", "train_split: train"} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("%v: the printed recipe lacks the default %q:\n%s", sets, want, raw)
			}
		}
	}
}

// TestRecipeTypos: the recipe's own keys get the config package's checks.
func TestRecipeTypos(t *testing.T) {
	_, err := LoadConfig(writeRecipe(t, "model_preset: tiny\ndata: {train: x}\ntrain:\n  steps: 10\n  batch_sise: 8\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `unknown key "train.batch_sise" (did you mean "batch_size"?)`) || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("a misspelt key: %v", err)
	}
	_, err = LoadConfig(writeRecipe(t, "model_preset: tiny\ndata: {train: x}\ntrain: {steps: 10, batch_size: 15.5}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "train.batch_size: 15.5 is not a whole number") {
		t.Errorf("a fraction for the batch: %v", err)
	}
	if _, err = LoadConfig("demo", []string{"train.batch_size=15.5"}); err == nil || !strings.Contains(err.Error(), "is not an integer") {
		t.Errorf("a fraction for the batch by --set: %v", err)
	}
}
