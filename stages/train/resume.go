package train

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/nn/optim"
	"github.com/clipgo/clipgo/stages/runlog"
)

// ResumeRecipe returns the recipe a resume uses when no --config is given: the run's own
// RUN/config.yaml, so that `--resume latest` continues the run it names and not the built-in
// demo recipe. ok is false when there is nothing to resume from (no resume asked, or "auto"
// over a directory without checkpoints): the caller's default recipe then applies. A resume
// of a run without config.yaml is an error asking for --config.
func ResumeRecipe(runDir, resume string) (path string, ok bool, err error) {
	if resume == "" || runDir == "" {
		return "", false, nil
	}
	path = filepath.Join(runDir, runlog.ConfigName)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return path, true, nil
	}
	if resume == "auto" {
		if steps, _ := checkpoint.Steps(runDir); len(steps) == 0 {
			return "", false, nil
		}
	}
	return "", false, fmt.Errorf("--resume %s: %s is missing, so the run's recipe is unknown: give it with --config RECIPE", resume, path)
}

// Keys whose change on resume breaks exactness: the resumed run would no longer be the run
// that never stopped. The data keys pick and order the samples (train set, its split, the
// streams a batch is drawn from) or transform them (flip, jitter); batch_size and
// accum_steps change the contrastive batch and so the loss itself; seed drives the data
// order and the augmentation; lr, warmup, weight_decay, betas, eps and grad_clip are the
// optimisation (the cosine schedule's shape is lr, warmup and steps; the AdamW moments in
// the checkpoint belong to its betas and eps). train.steps is apart: raising it continues a
// run (the schedule then follows the longer curve from the resume point on), lowering it
// below the checkpoint's step is refused, and lowering it otherwise changes the schedule.
// Every other key (logging, validation, checkpoint cadence, decode workers) changes what is
// recorded, not what is trained, and is let through; every change is recorded all the same.
// The model (model.*) cannot change at all: the checkpoint holds its weights.
var exactKeys = []string{
	"data.train", "data.train_split", "data.streams", "data.flip", "data.jitter",
	"data.crop_scale", "data.jitter_prob", "data.hue", "data.gray_prob", "data.word_dropout", "data.captions_per_image",
	"train.batch_size", "train.accum_steps", "train.seed",
	"train.lr", "train.warmup", "train.weight_decay", "train.beta1", "train.beta2", "train.eps", "train.grad_clip",
}

func init() { exactKeys = append(exactKeys, fineTuneKeys...) }

// change is one config key that differs between a run's recorded config and a resume's.
type change struct{ key, old, new string }

// configChanges lists the keys whose values differ between old and new, sorted.
func configChanges(old, new Config) ([]change, error) {
	a, err := flatConfig(old)
	if err != nil {
		return nil, err
	}
	b, err := flatConfig(new)
	if err != nil {
		return nil, err
	}
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []change
	for _, k := range keys {
		if a[k] != b[k] {
			out = append(out, change{k, a[k], b[k]})
		}
	}
	return out, nil
}

// flatConfig maps every dotted key of c (as --set names it) to its value as YAML writes it.
func flatConfig(c Config) (map[string]string, error) {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	flat := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), x)
			}
			return
		}
		flat[prefix] = fmt.Sprint(v)
	}
	walk("", tree)
	return flat, nil
}

// checkResume compares the config of a resume (t.cfg) with the run's recorded one (old,
// whose model is the checkpoint's) at the checkpoint's step, and with --stop-at. It refuses
// what cannot resume honestly, naming each key with its old and new value, and returns the
// changes to record.
func (t *trainer) checkResume(old Config, step int64) ([]runlog.Change, error) {
	cfg := t.cfg
	if cfg.Train.Steps < step {
		return nil, fmt.Errorf("resume: train.steps %d is below the checkpoint's step %d: the run is already past it; raise train.steps (--set train.steps=N, N ≥ %d) to continue",
			cfg.Train.Steps, step, step)
	}
	if t.opts.StopAt > 0 && t.opts.StopAt <= step {
		return nil, fmt.Errorf("resume: --stop-at %d is not after the checkpoint's step %d: nothing would be trained; give a later step",
			t.opts.StopAt, step)
	}
	diff, err := configChanges(old, cfg)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	var model, breaking []string
	var changes []runlog.Change
	now := time.Now().UTC().Format(time.RFC3339)
	for _, c := range diff {
		rec := runlog.Change{Time: now, Step: step, Key: c.key, Old: c.old, New: c.new, Reason: "does not change the training"}
		desc := fmt.Sprintf("%s: %s -> %s", c.key, c.old, c.new)
		switch {
		case strings.HasPrefix(c.key, "model.") || c.key == "init":
			// init: the run started from those weights; the checkpoint holds what they became.
			model = append(model, desc)
		case c.key == "train.steps" && cfg.Train.Steps > old.Train.Steps:
			rec.Reason = "train.steps raised"
			oldS := optim.Cosine{Base: old.Train.LR, Warmup: int(old.Train.Warmup), Steps: int(old.Train.Steps)}
			newS := optim.Cosine{Base: cfg.Train.LR, Warmup: int(cfg.Train.Warmup), Steps: int(cfg.Train.Steps)}
			t.log.Info("train.steps raised: the cosine schedule now decays to 0 over the new length; from the resume step on the learning rate follows the longer curve (it jumps at the resume step), so the run is no longer the one a single run of either length would be",
				"old_steps", old.Train.Steps, "new_steps", cfg.Train.Steps, "step", step,
				"lr_old_schedule", oldS.LR(int(step)), "lr_new_schedule", newS.LR(int(step)))
		case c.key == "train.epochs":
			// The steps they give are compared as train.steps (both configs derive them from
			// the split as it is now).
			rec.Reason = "the run's length in epochs (train.steps follows)"
		case c.key == "train.steps" || slices.Contains(exactKeys, c.key):
			breaking = append(breaking, desc)
			rec.Reason = "--allow-changes"
		}
		changes = append(changes, rec)
	}
	if len(model) > 0 {
		return nil, fmt.Errorf("resume: the model (or the init weights it started from) differs from the checkpoint's, which holds its weights (%s); --allow-changes does not cover the model: start a new run instead",
			strings.Join(model, "; "))
	}
	if len(breaking) > 0 && !t.opts.AllowChanges {
		return nil, fmt.Errorf("resume: the recipe differs from the run's %s in keys that make the resumed run differ from one that never stopped: %s; resume with the run's own recipe (leave out --config and these --set), or pass --allow-changes to change them (recorded in %s)",
			runlog.ConfigName, strings.Join(breaking, "; "), runlog.HistoryName)
	}
	for _, c := range changes {
		if c.Reason == "--allow-changes" {
			t.log.Warn("recipe changed on resume (--allow-changes): the run is no longer exact", "key", c.Key, "old", c.Old, "new", c.New, "step", step)
		} else {
			t.log.Info("recipe changed on resume", "key", c.Key, "old", c.Old, "new", c.New, "step", step, "reason", c.Reason)
		}
	}
	return changes, nil
}

// recordedConfig returns the run's recorded config (RUN/config.yaml), with ok false when the
// run has none (a run directory made before config.yaml was written, or a checkpoint from
// elsewhere).
func recordedConfig(runDir string) (Config, bool, error) {
	path := filepath.Join(runDir, runlog.ConfigName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return Config{}, false, nil
	}
	c, err := LoadConfig(path, nil)
	if err != nil {
		return c, false, fmt.Errorf("resume: the run's recorded recipe: %w", err)
	}
	return c, true, nil
}

// writeRunConfig records cfg as the run's config.yaml, after appending changes (if any) to
// config-history.jsonl: the history holds what config.yaml no longer shows.
func writeRunConfig(runDir string, cfg Config, changes []runlog.Change) error {
	if len(changes) > 0 {
		if err := runlog.AppendChanges(filepath.Join(runDir, runlog.HistoryName), changes); err != nil {
			return fmt.Errorf("pretrain: %w", err)
		}
	}
	return writeConfig(runDir, cfg)
}

// valDue reports whether a validation record belongs to step s.
func (t *trainer) valDue(s int64) bool {
	c := t.cfg.Train
	return t.valFiles != nil && s > 0 && ((c.ValEvery > 0 && s%c.ValEvery == 0) || s == c.Steps)
}

// missingValidation reports whether the metrics log lacks the validation record of step, due
// there: a signal during that validation stopped the run after its checkpoint was written.
func (t *trainer) missingValidation(step int64) bool {
	if !t.valDue(step) {
		return false
	}
	log, err := runlog.Read(filepath.Join(t.opts.RunDir, runlog.MetricsName))
	if err != nil {
		return true
	}
	return !slices.ContainsFunc(log.Val, func(v runlog.Val) bool { return v.Step == step })
}
