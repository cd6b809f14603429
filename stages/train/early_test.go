package train

import (
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/stages/runlog"
)

// recallVal is a validation record at step whose six recalls are all x.
func recallVal(step int64, x float64) runlog.Val {
	m := x
	return runlog.Val{Step: step, Loss: 1, ImageTop: 0.5, TextTop: 0.5, RecallMean: &m,
		Recall: &runlog.Recall{I2T1: x, I2T5: x, I2T10: x, T2I1: x, T2I5: x, T2I10: x}}
}

// TestEarlyStopObserve walks patience and min_delta by hand: an improvement must beat the best
// by more than min_delta; patience counts validations since the best; the loss is minimised.
func TestEarlyStopObserve(t *testing.T) {
	e := newEarlyStop(EarlyStopConfig{Patience: 2, MinDelta: 0.01})
	for i, c := range []struct {
		x              float64
		improved, stop bool
	}{
		{0.10, true, false},   // the first validation is the best
		{0.105, false, false}, // +0.005 is within min_delta: one without improvement
		{0.12, true, false},   // +0.02 over the best (0.10): the counter restarts
		{0.125, false, false},
		{0.05, false, true}, // two in a row without improvement: stop
		{0.50, true, false}, // (the trainer stops; observe alone would go on)
	} {
		improved, stop := e.observe(recallVal(int64(i+1), c.x))
		if improved != c.improved || stop != c.stop {
			t.Errorf("validation %d (%g): improved %v, stop %v; want %v, %v", i+1, c.x, improved, stop, c.improved, c.stop)
		}
	}
	if e.best != 0.50 || e.bestStep != 6 {
		t.Errorf("best %g at step %d, want 0.5 at 6", e.best, e.bestStep)
	}

	loss := newEarlyStop(EarlyStopConfig{Metric: "loss", Patience: 1})
	for i, c := range []struct {
		x              float64
		improved, stop bool
	}{{3, true, false}, {2.5, true, false}, {2.5, false, true}} {
		v := recallVal(int64(i+1), 0)
		v.Loss = c.x
		if improved, stop := loss.observe(v); improved != c.improved || stop != c.stop {
			t.Errorf("loss %g: improved %v, stop %v; want %v, %v", c.x, improved, stop, c.improved, c.stop)
		}
	}

	never := newEarlyStop(EarlyStopConfig{Metric: "t2i_r1"}) // patience 0: keep the best, never stop
	for i := range 10 {
		if _, stop := never.observe(recallVal(int64(i+1), 0.5)); stop {
			t.Fatal("patience 0 stopped the run")
		}
	}
	old := newEarlyStop(EarlyStopConfig{Patience: 1}) // records without recall change nothing
	if improved, stop := old.observe(runlog.Val{Step: 1, Loss: 2}); improved || stop || old.has {
		t.Error("a record without the metric was judged")
	}
}

// TestEarlyStopReplay: the state rebuilt from the records up to a step is the state the run
// had there, whatever came after.
func TestEarlyStopReplay(t *testing.T) {
	cfg := EarlyStopConfig{Patience: 3, MinDelta: 0.001}
	xs := []float64{0.1, 0.3, 0.2, 0.25, 0.31, 0.3, 0.29}
	var vals []runlog.Val
	for i, x := range xs {
		vals = append(vals, recallVal(int64(10*(i+1)), x))
	}
	for upTo := range len(xs) + 1 {
		live := newEarlyStop(cfg)
		for _, v := range vals[:upTo] {
			live.observe(v)
		}
		replayed := newEarlyStop(cfg)
		replayed.replay(vals, int64(10*upTo))
		type state struct {
			has  bool
			best float64
			step int64
			bad  int
		}
		if (state{replayed.has, replayed.best, replayed.bestStep, replayed.bad}) != (state{live.has, live.best, live.bestStep, live.bad}) {
			t.Errorf("replay to step %d: %+v, live %+v", 10*upTo, *replayed, *live)
		}
	}
}

// bestTrainer is the part of a trainer that judge and writeBest use.
func bestTrainer(t *testing.T, cfg EarlyStopConfig) *trainer {
	p := &nn.Param{Name: "w", Shape: []int{2}, Value: []float32{1, 2}, Grad: make([]float32, 2)}
	return &trainer{opts: Options{RunDir: t.TempDir()}, log: slog.New(slog.DiscardHandler), lead: true,
		comm: dist.Single(), params: []*nn.Param{p}, cfgJSON: `{"embed_dim":2}`, early: newEarlyStop(cfg), resumedStep: -1}
}

func readBest(t *testing.T, dir string) (step string, w []float32) {
	t.Helper()
	f, err := safetensors.OpenFile(filepath.Join(dir, BestName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	step, _ = f.Metadata.Get(keyBestStep)
	w, err = f.Float32s("w")
	if err != nil {
		t.Fatal(err)
	}
	return step, w
}

// TestBestReplacedOnlyOnImprovement: best.safetensors holds the weights of the latest
// improving validation, with its step; a validation that does not improve leaves it, and the
// record's best flag says which did; no temporary file stays behind.
func TestBestReplacedOnlyOnImprovement(t *testing.T) {
	tr := bestTrainer(t, EarlyStopConfig{Patience: 2})
	w := tr.params[0].Value
	for i, c := range []struct {
		x        float64
		best     bool
		fileStep string
		fileW    float32
	}{{0.2, true, "1", 1}, {0.1, false, "1", 1}, {0.3, true, "3", 3}, {0.3, false, "3", 3}, {0.29, false, "3", 3}} {
		w[0] = float32(i + 1) // the weights of step i+1
		v := recallVal(int64(i+1), c.x)
		if err := tr.judge(&v); err != nil {
			t.Fatal(err)
		}
		step, got := readBest(t, tr.opts.RunDir)
		if v.Best != c.best || step != c.fileStep || got[0] != c.fileW {
			t.Errorf("validation %d (%g): best flag %v, file of step %s with w %v; want %v, %s, %v", i+1, c.x, v.Best, step, got, c.best, c.fileStep, c.fileW)
		}
	}
	if !tr.earlyDone {
		t.Error("two validations without improvement did not stop the run (patience 2)")
	}
	entries, _ := os.ReadDir(tr.opts.RunDir)
	if len(entries) != 1 {
		t.Errorf("run directory holds %d entries, want best.safetensors alone", len(entries))
	}
}

// TestReconcileBest: on a resume, a best file from a step past the replayed best (written
// before a crash after the checkpoint) is removed; the best step's own file is kept.
func TestReconcileBest(t *testing.T) {
	tr := bestTrainer(t, EarlyStopConfig{Patience: 5})
	v := recallVal(4, 0.2)
	if err := tr.judge(&v); err != nil {
		t.Fatal(err)
	}
	later := recallVal(7, 0.4)
	if err := tr.judge(&later); err != nil { // the crashed attempt's improvement at step 7
		t.Fatal(err)
	}
	resumed := bestTrainer(t, EarlyStopConfig{Patience: 5})
	resumed.opts.RunDir = tr.opts.RunDir
	resumed.early.replay([]runlog.Val{v, later}, 5) // the checkpoint of step 5
	if err := resumed.reconcileBest(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tr.opts.RunDir, BestName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a best file from step 7 survived a resume at step 5: %v", err)
	}
	// Resumed at step 8, the file of step 7 is the best: kept.
	if err := tr.writeBest(7); err != nil {
		t.Fatal(err)
	}
	at8 := bestTrainer(t, EarlyStopConfig{Patience: 5})
	at8.opts.RunDir = tr.opts.RunDir
	at8.early.replay([]runlog.Val{v, later}, 8)
	if err := at8.reconcileBest(); err != nil {
		t.Fatal(err)
	}
	if step, _ := readBest(t, tr.opts.RunDir); step != "7" {
		t.Errorf("best file of step %s, want 7 kept", step)
	}
}

// TestEarlyStopConfig: unknown metric, negative patience or min_delta, and early stopping
// without data.val are refused naming the key; the default metric is the recall mean.
func TestEarlyStopConfig(t *testing.T) {
	for _, c := range []struct {
		cfg    EarlyStopConfig
		hasVal bool
		want   string
	}{
		{EarlyStopConfig{Metric: "r@1"}, true, "train.early_stop.metric"},
		{EarlyStopConfig{Patience: -1}, true, "train.early_stop.patience"},
		{EarlyStopConfig{Patience: 1, MinDelta: math.NaN()}, true, "train.early_stop.min_delta"},
		{EarlyStopConfig{Patience: 1}, false, "data.val"},
	} {
		if err := c.cfg.validate(c.hasVal); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	if err := (EarlyStopConfig{}).validate(false); err != nil {
		t.Errorf("early stopping off, no data.val: %v", err)
	}
	if m := (EarlyStopConfig{Patience: 3}).metricName(); m != "recall_mean" {
		t.Errorf("default metric %q", m)
	}
	cfg, err := LoadConfig("demo", []string{"train.early_stop.patience=3", "train.early_stop.min_delta=0.002"})
	if err != nil {
		t.Fatal(err)
	}
	if es := cfg.Train.EarlyStop; es.Patience != 3 || es.MinDelta != 0.002 || !es.On() {
		t.Errorf("--set train.early_stop.*: %+v", es)
	}
}

// TestImageIDs: runs of equal keys are one image, within each stream's rows.
func TestImageIDs(t *testing.T) {
	keys := []string{"a", "a", "b", "b", "b", "b", "c", "c"}
	if got, want := imageIDs(keys, 4), []int32{0, 0, 1, 1, 2, 2, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("imageIDs = %v, want %v (a stream's rows start a new image)", got, want)
	}
	if got, want := imageIDs(keys, 8), []int32{0, 0, 1, 1, 1, 1, 2, 2}; !slices.Equal(got, want) {
		t.Errorf("imageIDs = %v, want %v", got, want)
	}
}

// TestAugmentKeys: the data keys reach the augmentation, and out-of-range ones are refused.
func TestAugmentKeys(t *testing.T) {
	cfg, err := LoadConfig("demo", []string{"data.crop_scale=0.5", "data.jitter=0.4", "data.hue=0.1", "data.gray_prob=0.2",
		"data.word_dropout=0.1", "data.captions_per_image=2"})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Data.augment()
	if a.Scale != [2]float64{0.5, 1} || a.Jitter.Prob != 0.8 || a.Jitter.Brightness != 0.4 || a.Jitter.Hue != 0.1 || a.Jitter.GrayProb != 0.2 {
		t.Errorf("augment = %+v", a)
	}
	if d := (DataConfig{}).augment(); d.Scale != [2]float64{} || d.Jitter.Prob != 0 {
		t.Errorf("default augment = %+v, want open_clip's (zero: the defaults)", d)
	}
	for _, set := range []string{"data.crop_scale=1.5", "data.hue=0.7", "data.gray_prob=-1", "data.word_dropout=1",
		"data.captions_per_image=3", "model.loss=siglip"} {
		sets := []string{set}
		if set == "model.loss=siglip" {
			sets = append(sets, "data.captions_per_image=2")
		}
		if _, err := LoadConfig("demo", sets); err == nil {
			t.Errorf("%v accepted", sets)
		}
	}
}
