package train

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/stages/runlog"
)

// BestName is the model file of a run's best validation (train.early_stop): the weights as a
// state dict with the model config in its metadata, which zeroshot, retrieval and embed read
// as they read a checkpoint.
const BestName = runlog.BestName

// Metadata of best.safetensors beside the model config.
const (
	bestFormat    = "clipgo-best"
	keyBestStep   = "step"
	keyBestMetric = "metric"
	keyBestValue  = "value"
)

// EarlyStopConfig is train.early_stop: validation keeps the model that scores best on Metric
// in RUN/best.safetensors, and the run ends once Patience validations in a row have not
// improved on the best by more than MinDelta. The section is off when Metric is empty and
// Patience 0.
type EarlyStopConfig struct {
	// Metric is what validation is judged by: recall_mean (the default: the mean of the six
	// retrieval recalls), i2t_r1, i2t_r5, i2t_r10, t2i_r1, t2i_r5, t2i_r10, i2t_acc, t2i_acc
	// (higher is better) or loss (the validation loss; lower is better).
	Metric string `yaml:"metric,omitempty"`
	// Patience is the validations without improvement after which the run stops (0: never;
	// the best model is still kept).
	Patience int `yaml:"patience,omitempty"`
	// MinDelta is the least change of the metric that counts as an improvement.
	MinDelta float64 `yaml:"min_delta,omitempty"`
}

// DefaultEarlyStopMetric is the metric when train.early_stop names none.
const DefaultEarlyStopMetric = "recall_mean"

// On reports whether the section asks for anything.
func (c EarlyStopConfig) On() bool { return c.Metric != "" || c.Patience > 0 }

// stopMetric reads one metric of a validation record; ok is false when the record lacks it
// (written before retrieval was validated).
type stopMetric struct {
	higher bool
	read   func(v runlog.Val) (x float64, ok bool)
}

func recallMetric(f func(r *runlog.Recall) float64) stopMetric {
	return stopMetric{higher: true, read: func(v runlog.Val) (float64, bool) {
		if v.Recall == nil {
			return 0, false
		}
		return f(v.Recall), true
	}}
}

var stopMetrics = map[string]stopMetric{
	"recall_mean": recallMetric(recallMean),
	"i2t_r1":      recallMetric(func(r *runlog.Recall) float64 { return r.I2T1 }),
	"i2t_r5":      recallMetric(func(r *runlog.Recall) float64 { return r.I2T5 }),
	"i2t_r10":     recallMetric(func(r *runlog.Recall) float64 { return r.I2T10 }),
	"t2i_r1":      recallMetric(func(r *runlog.Recall) float64 { return r.T2I1 }),
	"t2i_r5":      recallMetric(func(r *runlog.Recall) float64 { return r.T2I5 }),
	"t2i_r10":     recallMetric(func(r *runlog.Recall) float64 { return r.T2I10 }),
	"i2t_acc":     {higher: true, read: func(v runlog.Val) (float64, bool) { return v.ImageTop, !math.IsNaN(v.ImageTop) }},
	"t2i_acc":     {higher: true, read: func(v runlog.Val) (float64, bool) { return v.TextTop, !math.IsNaN(v.TextTop) }},
	"loss":        {higher: false, read: func(v runlog.Val) (float64, bool) { return v.Loss, !math.IsNaN(v.Loss) }},
}

// metricName returns the metric in use.
func (c EarlyStopConfig) metricName() string {
	if c.Metric == "" {
		return DefaultEarlyStopMetric
	}
	return c.Metric
}

// validate refuses an unknown metric, a negative patience or min_delta, and early stopping
// without a validation split.
func (c EarlyStopConfig) validate(hasVal bool) error {
	if _, ok := stopMetrics[c.metricName()]; !ok {
		names := make([]string, 0, len(stopMetrics))
		for k := range stopMetrics {
			names = append(names, k)
		}
		slices.Sort(names)
		return fmt.Errorf("train.early_stop.metric %q is not a validation metric (want one of %v)", c.Metric, names)
	}
	switch {
	case c.Patience < 0:
		return fmt.Errorf("train.early_stop.patience %d must not be negative (0: never stop, keep the best model)", c.Patience)
	case !(c.MinDelta >= 0) || math.IsInf(c.MinDelta, 0):
		return fmt.Errorf("train.early_stop.min_delta %g must be finite and not negative", c.MinDelta)
	case c.On() && !hasVal:
		return errors.New("train.early_stop judges validations: set data.val (the prepared dataset to validate on)")
	}
	return nil
}

// earlyStop is the state of train.early_stop: the best value so far and the validations
// since it improved. It is a function of the validation records alone, so that a resume
// rebuilds it exactly from the metrics log (replay).
type earlyStop struct {
	cfg      EarlyStopConfig
	metric   stopMetric
	has      bool    // a validation has been judged
	best     float64 // the best value so far
	bestStep int64   // its step
	bad      int     // validations since the best
}

func newEarlyStop(cfg EarlyStopConfig) *earlyStop {
	return &earlyStop{cfg: cfg, metric: stopMetrics[cfg.metricName()]}
}

// observe judges a validation: improved when it is the first or beats the best by more than
// min_delta (then it becomes the best); stop once patience validations in a row have not
// improved. A record without the metric changes nothing.
func (e *earlyStop) observe(v runlog.Val) (improved, stop bool) {
	x, ok := e.metric.read(v)
	if !ok || math.IsNaN(x) {
		return false, e.stopped()
	}
	better := x > e.best+e.cfg.MinDelta
	if !e.metric.higher {
		better = x < e.best-e.cfg.MinDelta
	}
	if !e.has || better {
		e.has, e.best, e.bestStep, e.bad = true, x, v.Step, 0
		return true, false
	}
	e.bad++
	return false, e.stopped()
}

// stopped reports whether patience has run out.
func (e *earlyStop) stopped() bool { return e.cfg.Patience > 0 && e.bad >= e.cfg.Patience }

// replay judges the validation records of a run's log up to step (a resume's checkpoint) in
// order, rebuilding the state the run had there.
func (e *earlyStop) replay(vals []runlog.Val, step int64) {
	for _, v := range vals {
		if v.Step <= step {
			e.observe(v)
		}
	}
}

// startEarlyStop sets up train.early_stop for a run at t.step: on a resume, rank 0 replays the
// metrics log and reconciles best.safetensors with it (a best file from a validation past the
// checkpoint, written before a crash, is removed: the resumed run validates that step again).
// It reports whether patience had already run out (the run ended early), agreed by all ranks.
func (t *trainer) startEarlyStop() (done bool, err error) {
	c := t.cfg.Train.EarlyStop
	if !c.On() || t.valFiles == nil {
		return false, nil
	}
	t.early = newEarlyStop(c)
	flag := []float32{0}
	if t.lead && t.resumedStep >= 0 {
		if log, err := runlog.Read(filepath.Join(t.opts.RunDir, runlog.MetricsName)); err == nil {
			t.early.replay(log.Val, t.resumedStep)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("train.early_stop: %w", err)
		}
		if err := t.reconcileBest(); err != nil {
			return false, err
		}
		if t.early.stopped() {
			flag[0] = 1
		}
	}
	if t.comm.Size() > 1 {
		if err := t.comm.AllReduceSum(flag); err != nil {
			return false, err
		}
	}
	return flag[0] > 0, nil
}

// reconcileBest makes best.safetensors agree with the replayed state: it must hold the best
// step's model, or be absent.
func (t *trainer) reconcileBest() error {
	path := filepath.Join(t.opts.RunDir, BestName)
	step, err := bestStep(path)
	if errors.Is(err, fs.ErrNotExist) {
		if t.early.has {
			t.log.Warn("train.early_stop: best.safetensors is missing; the next improvement on the best validation writes it",
				"best_step", t.early.bestStep, "best", t.early.best)
		}
		return nil
	}
	if err == nil && t.early.has && step == t.early.bestStep {
		return nil
	}
	t.log.Warn("train.early_stop: best.safetensors is not the best validation up to the checkpoint resumed from (written after it, by the attempt that stopped); removed",
		"file_step", step, "read_error", err, "best_step", t.early.bestStep, "checkpoint_step", t.resumedStep)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("train.early_stop: %w", err)
	}
	return nil
}

// bestStep returns the step recorded in a best.safetensors.
func bestStep(path string) (int64, error) {
	f, err := safetensors.OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	raw, ok := f.Metadata.Get(keyBestStep)
	if format, _ := f.Metadata.Get("format"); !ok || format != bestFormat {
		return 0, fmt.Errorf("%s is not a clipgo best model (format %q)", path, format)
	}
	return strconv.ParseInt(raw, 10, 64)
}

// judge passes a validation record to train.early_stop (every rank calls it, with the same
// record): it marks an improvement, writes best.safetensors for it (rank 0), and records in
// t.earlyDone whether patience has run out, as rank 0 judges it.
func (t *trainer) judge(v *runlog.Val) error {
	if t.early == nil {
		return nil
	}
	improved, stop := t.early.observe(*v)
	if t.comm.Size() > 1 {
		// Rank 0 alone replayed the log on a resume: its decision is the job's.
		flag := []float32{0}
		if t.lead && stop {
			flag[0] = 1
		}
		if err := t.comm.AllReduceSum(flag); err != nil {
			return err
		}
		stop = flag[0] > 0
	}
	v.Best = improved
	if improved && t.lead {
		if err := t.writeBest(v.Step); err != nil {
			return err
		}
	}
	if stop {
		t.earlyDone = true
		t.log.Info("early stop: no improvement on the best validation", "metric", t.early.cfg.metricName(),
			"validations", t.early.bad, "best", t.early.best, "best_step", t.early.bestStep)
	}
	return nil
}

// writeBest replaces RUN/best.safetensors, atomically, with the model after step.
func (t *trainer) writeBest(step int64) error {
	path := filepath.Join(t.opts.RunDir, BestName)
	tensors := make([]safetensors.Tensor, 0, len(t.params))
	for _, p := range t.params {
		tensors = append(tensors, safetensors.Tensor{Name: p.Name, DType: safetensors.F32, Shape: p.Shape, Data: p.Value})
	}
	meta := safetensors.Metadata{
		{Key: "format", Value: bestFormat}, {Key: fusion.ConfigKey, Value: t.cfgJSON},
		{Key: keyBestStep, Value: strconv.FormatInt(step, 10)}, {Key: keyBestMetric, Value: t.early.cfg.metricName()},
		{Key: keyBestValue, Value: strconv.FormatFloat(t.early.best, 'g', -1, 64)},
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("best model: %w", err)
	}
	if err := safetensors.Write(f, tensors, meta); err != nil {
		f.Abort()
		return fmt.Errorf("best model %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("best model: %w", err)
	}
	t.sum.Best = path
	return nil
}
