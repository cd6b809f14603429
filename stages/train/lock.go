package train

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/vision"
)

// The fine-tuning keys of LoopConfig (lock_image, lock_image_unlocked_groups,
// lock_image_freeze_bn_stats, lock_text, lock_text_unlocked_layers,
// lock_text_freeze_layer_norm, image_layer_decay, text_layer_decay) are open_clip's flags
// (open_clip_train/params.py: --lock-image, --lock-image-unlocked-groups, …,
// --image-layer-decay, --text-layer-decay) and cut the towers into open_clip's layer groups
// (the towers' layer_groups in open_clip/transformer.py and modified_resnet.py), input to
// output:
//
//	ViT:    embeddings (conv1, class and positional embeddings, ln_pre), layer.0 … layer.L-1
//	        (the transformer blocks, ln_post with the last), proj
//	ResNet: embeddings (the three-conv stem and its batch norms), layer.0 … layer.3 (the
//	        stages), proj (the attention pool)
//	text:   embeddings (token and positional), layer.0 … layer.L-1 (ln_final with the last),
//	        text_projection
//
// A lock leaves the top unlocked_groups (unlocked_layers) groups trainable and locks the rest
// (LiT: https://arxiv.org/abs/2111.07991): a locked parameter gets no gradient, no gradient
// buffer and no optimiser state, and is left out of the data-parallel all-reduce.
// lock_image_freeze_bn_stats also freezes the locked groups' batch norms (a ResNet's): they
// normalise with their running statistics and stop updating them (FrozenBatchNorm2d);
// without it they keep updating them, as in open_clip. lock_text_freeze_layer_norm locks the
// locked text groups' layer norms too; without it they stay trainable (open_clip's Hugging
// Face text tower does the same; its native tower insists on the flag), and the backward
// pass then runs through the whole text tower to reach them. The layer decays scale each
// group's learning rate by decay^(groups−1−group), open_clip's lr_scales_for_groups: the head
// 1, each group nearer the input one more factor of decay; logit_scale and logit_bias keep
// 1. Off when 0 (or 1).

// fineTuneKeys are the fine-tuning keys: a resume that changes one no longer continues the
// same run (the optimiser's state covers another set of parameters).
var fineTuneKeys = []string{"train.lock_image", "train.lock_image_unlocked_groups", "train.lock_image_freeze_bn_stats",
	"train.lock_text", "train.lock_text_unlocked_layers", "train.lock_text_freeze_layer_norm",
	"train.image_layer_decay", "train.text_layer_decay"}

func (f LoopConfig) validateFineTune() error {
	switch {
	case f.LockImageUnlockedGroups < 0 || f.LockTextUnlockedLayers < 0:
		return fmt.Errorf("train.lock_image_unlocked_groups %d and train.lock_text_unlocked_layers %d must not be negative",
			f.LockImageUnlockedGroups, f.LockTextUnlockedLayers)
	case !f.LockImage && (f.LockImageUnlockedGroups > 0 || f.LockImageFreezeBNStats):
		return errors.New("train.lock_image_unlocked_groups and train.lock_image_freeze_bn_stats need train.lock_image: true")
	case !f.LockText && (f.LockTextUnlockedLayers > 0 || f.LockTextFreezeLayerNorm):
		return errors.New("train.lock_text_unlocked_layers and train.lock_text_freeze_layer_norm need train.lock_text: true")
	}
	for _, d := range []struct {
		key string
		v   float64
	}{{"train.image_layer_decay", f.ImageLayerDecay}, {"train.text_layer_decay", f.TextLayerDecay}} {
		if !(d.v >= 0 && d.v <= 1) {
			return fmt.Errorf("%s %g must be in (0, 1] (0: off)", d.key, d.v)
		}
	}
	return nil
}

// Towers of layerGroup.
const (
	imageTower = "image"
	textTower  = "text"
)

// layerGroup places a parameter of a model of cfg in its tower's layer groups: the tower
// ("" for logit_scale and logit_bias), the group (0 the embeddings) and the tower's number of
// groups. ok is false for a tower parameter outside every group (a parameter this code does
// not know yet), which the run then refuses to lock or decay.
func layerGroup(cfg fusion.Config, name string) (tower string, group, groups int, ok bool) {
	has := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if name == p || strings.HasPrefix(name, p+".") {
				return true
			}
		}
		return false
	}
	block := func(prefix string) (int, bool) { // prefix.resblocks.<i>.…
		rest, found := strings.CutPrefix(name, prefix+".resblocks.")
		if !found {
			return 0, false
		}
		i, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '.'), 0)])
		return i, err == nil
	}
	switch {
	case strings.HasPrefix(name, "visual."):
		if cfg.Vision.Type == vision.TypeResNet {
			const n = 6
			switch {
			case has("visual.conv1", "visual.conv2", "visual.conv3", "visual.bn1", "visual.bn2", "visual.bn3"):
				return imageTower, 0, n, true
			case has("visual.attnpool"):
				return imageTower, n - 1, n, true
			}
			for s := 1; s <= 4; s++ {
				if has(fmt.Sprintf("visual.layer%d", s)) {
					return imageTower, s, n, true
				}
			}
			return imageTower, 0, n, false
		}
		l := cfg.Vision.Layers
		n := l + 2
		if i, found := block("visual.transformer"); found && i < l {
			return imageTower, 1 + i, n, true
		}
		switch {
		case has("visual.conv1", "visual.class_embedding", "visual.positional_embedding", "visual.ln_pre"):
			return imageTower, 0, n, true
		case has("visual.ln_post"):
			return imageTower, l, n, true
		case has("visual.proj"):
			return imageTower, n - 1, n, true
		}
		return imageTower, 0, n, false
	case name == fusion.LogitScaleName || name == fusion.LogitBiasName:
		return "", 0, 0, true
	}
	l := cfg.Text.Layers
	n := l + 2
	if i, found := block("transformer"); found && i < l {
		return textTower, 1 + i, n, true
	}
	switch {
	case has("token_embedding", "positional_embedding"):
		return textTower, 0, n, true
	case has("ln_final"):
		return textTower, l, n, true
	case has("text_projection"):
		return textTower, n - 1, n, true
	}
	return textTower, 0, n, false
}

// isBatchNormStat and isLayerNorm tell the tensors freeze_bn_stats and freeze_layer_norm
// concern by their open_clip names.
func isBatchNormStat(name string) bool {
	return strings.HasSuffix(name, ".running_mean") || strings.HasSuffix(name, ".running_var") ||
		strings.HasSuffix(name, ".num_batches_tracked")
}

func isLayerNorm(name string) bool {
	return strings.Contains(name, ".ln_") || strings.HasPrefix(name, "ln_final.")
}

// lockedFunc returns the predicate of the tensors the run locks (nil when it locks none).
func (f LoopConfig) lockedFunc(cfg fusion.Config) func(name string) bool {
	if !f.LockImage && !f.LockText {
		return nil
	}
	return func(name string) bool {
		tower, group, groups, ok := layerGroup(cfg, name)
		switch {
		case !ok:
			return false // refused by checkFineTune
		case tower == imageTower && f.LockImage:
			if isBatchNormStat(name) && !f.LockImageFreezeBNStats {
				return false // batch norm keeps updating its statistics, as torch's does
			}
			return group < groups-f.LockImageUnlockedGroups
		case tower == textTower && f.LockText:
			if isLayerNorm(name) && !f.LockTextFreezeLayerNorm {
				return false
			}
			return group < groups-f.LockTextUnlockedLayers
		}
		return false
	}
}

// modelOptions returns the model's build options for the recipe's locks.
func (t *trainer) modelOptions() []fusion.Option {
	if locked := t.cfg.Train.lockedFunc(t.cfg.Model); locked != nil {
		return []fusion.Option{fusion.WithLocked(locked)}
	}
	return nil
}

// applyFineTune checks that every parameter of a locked or decayed tower has its layer group,
// gives the optimiser the layer decays' learning-rate scales, and logs what is locked.
func (t *trainer) applyFineTune() error {
	f, cfg := t.cfg.Train, t.cfg.Model
	decay := map[string]float64{imageTower: f.ImageLayerDecay, textTower: f.TextLayerDecay}
	lock := map[string]bool{imageTower: f.LockImage, textTower: f.LockText}
	scales := map[string]float64{}
	var locked, lockedN int
	for _, p := range t.params {
		tower, group, groups, ok := layerGroup(cfg, p.Name)
		if !ok && (lock[tower] || decay[tower] > 0) {
			return fmt.Errorf("train: parameter %s has no layer group of the %s tower, so it cannot be locked or given a layer decay", p.Name, tower)
		}
		if p.Locked {
			locked++
			lockedN += p.Size()
			continue
		}
		if d := decay[tower]; d > 0 && d != 1 && !p.Buffer {
			scales[p.Name] = math.Pow(d, float64(groups-1-group))
		}
	}
	if err := t.opt.SetLRScales(scales); err != nil {
		return fmt.Errorf("train: layer decay: %w", err)
	}
	switch {
	case !t.lead:
	case locked > 0:
		// The start-up memory estimate counts every parameter's gradient and moments: these
		// three float32 per locked value are not taken (nor the locked layers' backward pass).
		t.log.Info("locked tensors: no gradient, no optimiser state", "tensors", locked, "values", lockedN,
			"trainable_values", countValues(t.opt.Params()), "saved", fusion.Bytes(int64(lockedN)*12))
	case f.LockImage || f.LockText:
		t.log.Warn("train.lock_image / train.lock_text lock nothing: the unlocked groups cover the whole tower")
	}
	return nil
}

func countValues(ps []*nn.Param) int {
	n := 0
	for _, p := range ps {
		n += p.Size()
	}
	return n
}

// adaptOptimizerState fits a checkpoint's optimiser state to a resume whose locks differ
// (--allow-changes): moments of parameters now locked are dropped, and parameters now
// unlocked start from zero moments, as a new run's would.
func adaptOptimizerState(state map[string][]float32, updated []*nn.Param) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range updated {
		for _, k := range []string{"exp_avg." + p.Name, "exp_avg_sq." + p.Name} {
			if v, ok := state[k]; ok {
				out[k] = v
			} else {
				out[k] = make([]float32, p.Size())
			}
		}
	}
	for k, v := range state {
		if !strings.HasPrefix(k, "exp_avg.") && !strings.HasPrefix(k, "exp_avg_sq.") {
			out[k] = v // the step count
		}
	}
	return out
}
