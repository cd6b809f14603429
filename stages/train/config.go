package train

import (
	"errors"
	"fmt"
	"maps"
	"math"
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
	// Augmentation and multi-positive switches (see augment.go): the crop's least area
	// fraction, the jitter's probability, hue and grayscale, caption word dropout, and the
	// captions of each image in a batch.
	CropScale        float64 `yaml:"crop_scale,omitempty"`
	JitterProb       float64 `yaml:"jitter_prob,omitempty"`
	Hue              float64 `yaml:"hue,omitempty"`
	GrayProb         float64 `yaml:"gray_prob,omitempty"`
	WordDropout      float64 `yaml:"word_dropout,omitempty"`
	CaptionsPerImage int     `yaml:"captions_per_image,omitempty"`
}

// LoopConfig is the training loop: its length, batch and optimisation (as open_clip and the
// reference do it), logging, validation and checkpoints.
type LoopConfig struct {
	// Steps is the run's length in optimiser steps; Epochs, the alternative, in passes over
	// the training split (a recipe gives one of them). Epochs become steps when the run starts:
	// epochs × ⌊pairs in the split / batch_size⌋ / accum_steps, rounded down (batch_size is the
	// global batch, so the number of ranks does not change it). The loader drops each epoch's
	// last partial batch, so that is exactly the data's epochs when every sample decodes; a
	// resume derives the steps again and must arrive at the same number (see checkResume).
	Steps           int64   `yaml:"steps,omitempty"`
	Epochs          int64   `yaml:"epochs,omitempty"`
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
	// EarlyStop keeps the best validation's model and ends the run when validation stops
	// improving (see early.go); off unless set.
	EarlyStop EarlyStopConfig `yaml:"early_stop,omitempty"`
	// HardNegatives builds mined epochs' batches from groups of near neighbours (see
	// hardneg.go); off unless set.
	HardNegatives HardNegativesConfig `yaml:"hard_negatives,omitempty"`
	// Fine-tuning, named after open_clip's flags (see lock.go): lock a tower but its top N
	// layer groups, freeze the locked batch norms (or not the locked layer norms), and scale
	// each layer group's learning rate by decay^(depth from the head).
	LockImage               bool    `yaml:"lock_image,omitempty"`
	LockImageUnlockedGroups int     `yaml:"lock_image_unlocked_groups,omitempty"`
	LockImageFreezeBNStats  bool    `yaml:"lock_image_freeze_bn_stats,omitempty"`
	LockText                bool    `yaml:"lock_text,omitempty"`
	LockTextUnlockedLayers  int     `yaml:"lock_text_unlocked_layers,omitempty"`
	LockTextFreezeLayerNorm bool    `yaml:"lock_text_freeze_layer_norm,omitempty"`
	ImageLayerDecay         float64 `yaml:"image_layer_decay,omitempty"`
	TextLayerDecay          float64 `yaml:"text_layer_decay,omitempty"`
}

// DefaultConfig returns the defaults a recipe starts from: the reference's optimiser
// settings (AdamW betas 0.9/0.98, eps 1e-6, weight decay 0.2, lr 5e-4). The run's length
// (train.steps or train.epochs), its data and its model have no default: a recipe gives them.
func DefaultConfig() Config {
	c := Config{
		Data: DataConfig{TrainSplit: "train", ValSplit: "val"},
		Train: LoopConfig{BatchSize: 64, LR: 5e-4, Warmup: 100, WeightDecay: 0.2, Beta1: 0.9, Beta2: 0.98,
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
	if head.Init == "" && head.ModelPreset == "" && len(modelKeys) == 0 {
		return cfg, fmt.Errorf("config %s: no model: give model_preset (one of %s), a model section with the towers' sizes, or init (pretrained weights to start from, or --init)",
			name, strings.Join(preset.Names(), ", "))
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
	if cfg.Train.Steps > 0 && cfg.Train.Epochs > 0 {
		return cfg, fmt.Errorf("config %s: train.steps %d and train.epochs %d: give one of them (the run's length in optimiser steps, or in passes over the training split)",
			name, cfg.Train.Steps, cfg.Train.Epochs)
	}
	// A --set of one length replaces the recipe's other: the command line picks how the run's
	// length is given. Both on the command line is as ambiguous as both in the recipe.
	setSteps, setEpochs := setsKey(sets, "train.steps"), setsKey(sets, "train.epochs")
	switch {
	case setSteps && setEpochs:
		return cfg, errors.New("--set train.steps and --set train.epochs: give one of them")
	case setSteps:
		cfg.Train.Epochs = 0
	case setEpochs:
		cfg.Train.Steps = 0
	}
	for _, s := range sets {
		if err := config.Set(&cfg, s); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

// setsKey reports whether one of the --set assignments sets key.
func setsKey(sets []string, key string) bool {
	return slices.ContainsFunc(sets, func(s string) bool {
		k, _, ok := strings.Cut(s, "=")
		return ok && strings.TrimSpace(k) == key
	})
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
	case t.Steps < 0 || t.Epochs < 0:
		return fmt.Errorf("train.steps %d and train.epochs %d must not be negative", t.Steps, t.Epochs)
	case t.BatchSize < 2:
		return fmt.Errorf("train.batch_size %d: a contrastive batch needs at least 2 pairs", t.BatchSize)
	case !(t.LR > 0):
		return fmt.Errorf("train.lr %g must be positive", t.LR)
	case t.Warmup < 0 || (t.Steps > 0 && t.Warmup >= t.Steps):
		return fmt.Errorf("train.warmup %d must be in [0, train.steps=%d)", t.Warmup, t.Steps) // with epochs: checked when they become steps
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
	case t.Steps == 0 && t.Epochs == 0:
		return errors.New("the run's length is missing: give train.steps (optimiser steps) or train.epochs (passes over the training split)")
	}
	if err := c.validateAugment(); err != nil {
		return err
	}
	if err := t.validateFineTune(); err != nil {
		return err
	}
	if err := t.HardNegatives.validate(); err != nil {
		return err
	}
	if err := c.validateSSL(); err != nil {
		return err
	}
	return t.EarlyStop.validate(c.Data.Val != "")
}

// Length is how a run's length in steps follows from its recipe and its training split.
type Length struct {
	Steps         int64   // optimiser steps of the whole run
	SplitPairs    int64   // image–caption pairs in the training split (one epoch)
	PairsPerStep  int64   // train.batch_size × train.accum_steps: the global batch of one step
	StepsPerEpoch float64 // SplitPairs' full batches / accum_steps
	Epochs        float64 // passes over the split the run's steps make
}

// RunLength returns the length of a run of c over a training split of pairs pairs. With
// train.epochs, the steps are epochs × ⌊pairs / batch_size⌋ / accum_steps, rounded down (the
// loader drops an epoch's last partial batch); an epoch without one step's pairs, or a warmup
// as long as the run, is an error. With train.steps, the epochs are what those steps cover.
func (c Config) RunLength(pairs int64) (Length, error) {
	t := c.Train
	l := Length{Steps: t.Steps, SplitPairs: pairs, PairsPerStep: int64(t.BatchSize) * int64(max(t.AccumSteps, 1))}
	batches := pairs / int64(max(t.BatchSize/max(c.Data.CaptionsPerImage, 1), 1)) // a batch's images
	l.StepsPerEpoch = float64(batches) / float64(max(t.AccumSteps, 1))
	if t.Epochs > 0 {
		if batches > 0 && t.Epochs > math.MaxInt64/batches {
			return l, fmt.Errorf("train.epochs %d: too many steps to count", t.Epochs)
		}
		l.Steps = t.Epochs * batches / int64(max(t.AccumSteps, 1))
		if l.Steps == 0 {
			return l, fmt.Errorf("train.epochs %d: the training split has %d pairs, fewer than one step's %d (train.batch_size %d × train.accum_steps %d)",
				t.Epochs, pairs, l.PairsPerStep, t.BatchSize, max(t.AccumSteps, 1))
		}
		if t.Warmup >= l.Steps {
			return l, fmt.Errorf("train.warmup %d must be below the run's %d steps (train.epochs %d × %.4g steps per epoch)",
				t.Warmup, l.Steps, t.Epochs, l.StepsPerEpoch)
		}
	}
	if l.StepsPerEpoch > 0 {
		l.Epochs = float64(l.Steps) / l.StepsPerEpoch
	}
	return l, nil
}

// withLength returns c with train.steps derived from train.epochs over a split of pairs
// pairs (c itself when the recipe gives steps).
func (c Config) withLength(pairs int64) (Config, error) {
	if c.Train.Epochs == 0 {
		return c, nil
	}
	l, err := c.RunLength(pairs)
	if err != nil {
		return c, err
	}
	c.Train.Steps = l.Steps
	return c, nil
}

// recipe returns c as a recipe gives it: with train.epochs, the steps derived from them are
// left out (a recipe gives one of the two).
func (c Config) recipe() Config {
	if c.Train.Epochs > 0 {
		c.Train.Steps = 0
	}
	return c
}

// RecipeYAML returns c as a recipe file that LoadConfig reads back to c: every key, defaults
// filled in. For a run with init, the model section holds only the keys the recipe and --set
// gave, laid over the weights' own config when the run starts; the rest of the model comes
// from the weights.
func (c Config) RecipeYAML() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c.recipe()); err != nil {
		return nil, err
	}
	if c.Init != "" {
		keep := map[string]bool{}
		for _, k := range c.modelKeys {
			keep[k] = true
		}
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == "model" {
				pruneNode(doc.Content[i+1], "", keep)
			}
		}
	}
	return yaml.Marshal(&doc)
}

// pruneNode drops the entries of mapping n whose dotted keys (under prefix) are not in keep,
// nor lead to one; it reports whether anything is left.
func pruneNode(n *yaml.Node, prefix string, keep map[string]bool) bool {
	var kept []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		if keep[key] || (v.Kind == yaml.MappingNode && pruneNode(v, key+".", keep)) {
			kept = append(kept, k, v)
		}
	}
	n.Content = kept
	return len(kept) > 0
}
