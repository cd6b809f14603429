package train

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/nn"
)

// splitPairs returns the number of image–caption pairs in one split of a prepared dataset
// (one epoch's samples), from its manifest.
func splitPairs(dir, split string) (int64, error) {
	m, err := shard.ReadManifest(dir)
	if err != nil {
		return 0, err
	}
	s, ok := m.Splits[split]
	if !ok || s == nil {
		return 0, fmt.Errorf("%s has no split %q", dir, split)
	}
	return s.Images, nil
}

// resolveLength reads the size of the training split and returns the config with the run's
// length in steps (train.epochs become steps); t.length keeps how it follows.
func (t *trainer) resolveLength() (Config, error) {
	cfg := t.cfg
	pairs, err := splitPairs(cfg.Data.Train, cfg.Data.TrainSplit)
	if err != nil {
		return cfg, fmt.Errorf("data.train: %w", err)
	}
	if t.length, err = cfg.RunLength(pairs); err != nil {
		return cfg, err
	}
	cfg.Train.Steps = t.length.Steps
	t.sum.Length = t.length
	return cfg, nil
}

// TowerParams counts the parameters of each part of a CLIP model by open_clip's names:
// vision ("visual.*"), the temperature and bias ("logit_*"), and text (the rest).
type TowerParams struct{ Vision, Text, Other int64 }

// countParams sorts params into towers.
func countParams(params []*nn.Param) TowerParams {
	var c TowerParams
	for _, p := range params {
		n := int64(len(p.Value))
		switch {
		case strings.HasPrefix(p.Name, "visual."):
			c.Vision += n
		case p.Name == fusion.LogitScaleName || p.Name == fusion.LogitBiasName:
			c.Other += n
		default:
			c.Text += n
		}
	}
	return c
}

// logStartup logs, on rank 0 and before the first step, what the run is about to do: the
// parameters of each tower, the training split and how steps follow from it, the epochs the
// run covers, the memory estimate and the threads that work.
func (t *trainer) logStartup() {
	if !t.lead {
		return
	}
	cfg, l := t.cfg, t.length
	p := countParams(t.params)
	workers := cfg.Data.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0) // the loader's default
	}
	length := fmt.Sprintf("train.steps %d", cfg.Train.Steps)
	if cfg.Train.Epochs > 0 {
		length = fmt.Sprintf("train.epochs %d", cfg.Train.Epochs)
	}
	t.log.Info("run",
		"params_vision", p.Vision, "params_text", p.Text, "params_other", p.Other, "params_total", p.Vision+p.Text+p.Other,
		"split_pairs", l.SplitPairs, "pairs_per_step", l.PairsPerStep, "ranks", t.comm.Size(),
		"steps_per_epoch", fmt.Sprintf("%.4g", l.StepsPerEpoch), "steps", cfg.Train.Steps, "from_step", t.step,
		"epochs", fmt.Sprintf("%.3g", l.Epochs), "length", length,
		"memory_estimate", fusion.Bytes(t.sum.Memory.Total()),
		"threads", runtime.GOMAXPROCS(0), "decode_workers", workers*len(t.streams))
}
