package train

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/configs"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/config"
	"github.com/clipgo/clipgo/stages/preset"
)

// Config is a training run: the model, its data and the optimisation. YAML keys (and
// `--set` paths) are model.*, data.*, train.*; model_preset names a file of configs/models
// whose sizes the recipe's model section then overrides.
type Config struct {
	ModelPreset string `yaml:"model_preset"`
	// Init names pretrained weights a new run starts from (`--init`): a clipgo checkpoint or
	// run directory, an open_clip/OpenAI state dict, or a Hugging Face CLIPModel (its
	// directory, or its model.safetensors with config.json beside it). The model's sizes then
	// come from the weights; the model section may only set keys that keep the weights'
	// shapes (quick_gelu, heads, the loss when its tensors match). A resume of the run does
	// not read it again, and refuses to change it.
	Init  string        `yaml:"init,omitempty"`
	Model fusion.Config `yaml:"model"`
	Data  DataConfig    `yaml:"data"`
	Train LoopConfig    `yaml:"train"`

	// modelKeys are the model.* keys the recipe and its --set gave (dotted, "model." cut):
	// with Init, these are laid over the weights' config.
	modelKeys []string
}

// DataConfig names the prepared datasets (directories made by `clipgo prepare`).
type DataConfig struct {
	Train      string  `yaml:"train"`       // dataset whose TrainSplit is trained on
	Val        string  `yaml:"val"`         // dataset whose ValSplit is validated on ("" = none)
	TrainSplit string  `yaml:"train_split"` // default "train"
	ValSplit   string  `yaml:"val_split"`   // default "val"
	Workers    int     `yaml:"workers"`     // decode goroutines (default: all cores)
	Flip       bool    `yaml:"flip"`        // random horizontal flips (off by default: captions say "left of")
	Jitter     float64 `yaml:"jitter"`      // colour jitter strength for brightness/contrast/saturation (0: off)
	// Streams is the number of disjoint input streams each global batch is drawn from, in equal
	// shares (0: one per rank). Ranks read their own streams, so the batches do not depend on
	// the number of ranks for any that divides it: a run resumes, or is reproduced, on 1, 2 or 4
	// ranks with streams 4 and sees the same data.
	Streams int `yaml:"streams"`
}

// LoopConfig is the training loop: its length, batch and optimisation (as open_clip and the
// reference do it), logging, validation and checkpoints.
type LoopConfig struct {
	Steps           int64   `yaml:"steps"`
	BatchSize       int     `yaml:"batch_size"`
	LR              float64 `yaml:"lr"`
	Warmup          int64   `yaml:"warmup"`
	WeightDecay     float64 `yaml:"weight_decay"`
	Beta1           float64 `yaml:"beta1"`
	Beta2           float64 `yaml:"beta2"`
	Eps             float64 `yaml:"eps"`
	GradClip        float64 `yaml:"grad_clip"`   // global L2 norm; 0: no clipping
	AccumSteps      int     `yaml:"accum_steps"` // micro-batches of batch_size per optimiser step (mean of their gradients)
	Seed            int64   `yaml:"seed"`
	LogEvery        int64   `yaml:"log_every"`
	ValEvery        int64   `yaml:"val_every"`   // 0: only at the end
	ValBatches      int     `yaml:"val_batches"` // batches per validation (0: the whole split)
	CheckpointEvery int64   `yaml:"checkpoint_every"`
	KeepCheckpoints int     `yaml:"keep_checkpoints"` // newest N kept (0: all)
	MaxBadSteps     int     `yaml:"max_bad_steps"`    // non-finite steps in a row before the run stops
}

// DefaultConfig returns the defaults a recipe starts from: the reference's optimiser
// settings (AdamW betas 0.9/0.98, eps 1e-6, weight decay 0.2, lr 5e-4).
func DefaultConfig() Config {
	c := Config{
		Data: DataConfig{TrainSplit: "train", ValSplit: "val"},
		Train: LoopConfig{Steps: 1000, BatchSize: 64, LR: 5e-4, Warmup: 100, WeightDecay: 0.2, Beta1: 0.9, Beta2: 0.98,
			Eps: 1e-6, AccumSteps: 1, LogEvery: 10, CheckpointEvery: 500, KeepCheckpoints: 3, MaxBadSteps: 10},
	}
	c.Model.Vision.MLPRatio, c.Model.Text.MLPRatio = 4, 4
	return c
}

// LoadConfig reads a training recipe (a file path, or the name of an embedded recipe
// such as "demo"), resolves its model preset, applies `--set` overrides and validates the
// result, naming the key of any problem.
func LoadConfig(recipe string, sets []string) (Config, error) {
	cfg := DefaultConfig()
	raw, name, err := readRecipe(recipe)
	if err != nil {
		return cfg, err
	}
	// The preset goes first, under the recipe's own model keys; a --set of it picks it too.
	var head struct {
		ModelPreset string         `yaml:"model_preset"`
		Init        string         `yaml:"init"`
		Model       map[string]any `yaml:"model"`
		Rest        map[string]any `yaml:",inline"`
	}
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return cfg, fmt.Errorf("config %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// init given by --set (--init) replaces the recipe's model: the recipe lends its data and
	// training keys to a run whose model is the weights'. init in the recipe itself goes with
	// the recipe's model section, laid over the weights' config.
	modelKeys := map[string]bool{}
	initSet, presetSet := false, false
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok:
		case k == "model_preset":
			head.ModelPreset, presetSet = strings.TrimSpace(v), true
		case k == "init":
			head.Init, initSet = strings.TrimSpace(v), head.Init != strings.TrimSpace(v)
		case strings.HasPrefix(k, "model."):
			modelKeys[strings.TrimPrefix(k, "model.")] = true
		}
	}
	if initSet && !presetSet {
		head.ModelPreset = ""
	}
	if !initSet {
		flatKeys("", head.Model, modelKeys)
	}
	if head.Init != "" && head.ModelPreset != "" {
		return cfg, fmt.Errorf("config %s: model_preset %q and init %q: a run that starts from pretrained weights takes its model from them; leave out model_preset",
			name, head.ModelPreset, head.Init)
	}
	cfg.modelKeys = slices.Sorted(maps.Keys(modelKeys))
	if head.ModelPreset != "" {
		if err := preset.Load(head.ModelPreset, &cfg.Model); err != nil {
			return cfg, err
		}
	}
	if err := config.Decode(name, raw, &cfg); err != nil {
		return cfg, err
	}
	if initSet { // the recipe's model is not this run's
		cfg.ModelPreset, cfg.Model = "", DefaultConfig().Model
	}
	for _, s := range sets {
		if err := config.Set(&cfg, s); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// flatKeys adds the dotted keys of the leaves of a YAML mapping to keys.
func flatKeys(prefix string, m map[string]any, keys map[string]bool) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			flatKeys(prefix+k+".", sub, keys)
		} else {
			keys[prefix+k] = true
		}
	}
}

// readRecipe reads a recipe from a file, or from the embedded configs/train when recipe is a
// bare name that is not a file.
func readRecipe(recipe string) (raw []byte, name string, err error) {
	if st, statErr := os.Stat(recipe); (statErr == nil && st.Mode().IsRegular()) || filepath.Ext(recipe) != "" {
		raw, err = config.ReadFile(nil, recipe)
		return raw, recipe, err
	}
	raw, err = config.ReadFile(configs.FS, "train/"+recipe+".yaml")
	if err != nil {
		return nil, "", fmt.Errorf("config %q: neither a file nor a built-in recipe (configs/train/*.yaml)", recipe)
	}
	return raw, "configs/train/" + recipe + ".yaml", nil
}

// Validate refuses a run that cannot work, naming the key.
func (c Config) Validate() error {
	if c.Init == "" { // with init, the model is the weights' (and checked when they are read)
		if err := c.Model.Validate(); err != nil {
			return err
		}
	}
	t := c.Train
	switch {
	case c.Data.Train == "":
		return errors.New("data.train: the prepared dataset to train on is required")
	case t.Steps <= 0:
		return fmt.Errorf("train.steps %d must be positive", t.Steps)
	case t.BatchSize < 2:
		return fmt.Errorf("train.batch_size %d: a contrastive batch needs at least 2 pairs", t.BatchSize)
	case !(t.LR > 0):
		return fmt.Errorf("train.lr %g must be positive", t.LR)
	case t.Warmup < 0 || t.Warmup >= t.Steps:
		return fmt.Errorf("train.warmup %d must be in [0, train.steps=%d)", t.Warmup, t.Steps)
	case t.WeightDecay < 0:
		return fmt.Errorf("train.weight_decay %g must not be negative", t.WeightDecay)
	case !(t.Beta1 >= 0 && t.Beta1 < 1) || !(t.Beta2 >= 0 && t.Beta2 < 1):
		return fmt.Errorf("train.beta1 %g and train.beta2 %g must be in [0, 1)", t.Beta1, t.Beta2)
	case !(t.Eps > 0):
		return fmt.Errorf("train.eps %g must be positive", t.Eps)
	case t.AccumSteps < 1:
		return fmt.Errorf("train.accum_steps %d must be at least 1", t.AccumSteps)
	case t.GradClip < 0:
		return fmt.Errorf("train.grad_clip %g must not be negative", t.GradClip)
	case t.LogEvery <= 0 || t.CheckpointEvery <= 0 || t.ValEvery < 0:
		return fmt.Errorf("train.log_every %d and train.checkpoint_every %d must be positive, train.val_every %d not negative",
			t.LogEvery, t.CheckpointEvery, t.ValEvery)
	case t.MaxBadSteps <= 0:
		return fmt.Errorf("train.max_bad_steps %d must be positive", t.MaxBadSteps)
	case c.Data.Streams < 0 || (c.Data.Streams > 0 && t.BatchSize%c.Data.Streams != 0):
		return fmt.Errorf("data.streams %d must divide train.batch_size %d", c.Data.Streams, t.BatchSize)
	case c.Data.Jitter < 0 || c.Data.Jitter > 1:
		return fmt.Errorf("data.jitter %g must be in [0, 1]", c.Data.Jitter)
	}
	return nil
}
