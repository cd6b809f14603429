package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/stages/runlog"
	"github.com/clipgo/clipgo/stages/train"
)

// valLines returns the validation records of a run's metrics log, as written.
func valLines(t *testing.T, runDir string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(string(readFile(filepath.Join(runDir, runlog.MetricsName))), "\n") {
		if strings.Contains(line, `"val_loss"`) {
			out = append(out, line)
		}
	}
	return out
}

// TestPretrainEarlyStop trains with train.early_stop (checkEarlyStop), with the other
// training switches of issue 15 (checkTrainingSwitches) and with early stopping on two ranks
// (checkDataParallelEarlyStop), sharing one build and one dataset.
//
// checkEarlyStop trains with train.early_stop at a min_delta no recall can beat, so that
// the first validation stays the best and patience 2 ends the run at the third (step 6 of 40,
// validating every 2): best.safetensors holds step 2 and loads in zeroshot, every validation
// record carries the six recalls and their mean, the first is marked best. The same run
// stopped at step 4 (--stop-at) and resumed ends identically (the same validation records: the
// best-so-far and the patience counter came back from the log), and a resume of the ended run
// trains nothing.
func TestPretrainEarlyStop(t *testing.T) {
	bin := buildCLI(t)
	data := prepareSynthetic(t, 300)
	t.Run("early_stop", func(t *testing.T) { checkEarlyStop(t, bin, data) })
	t.Run("switches", func(t *testing.T) { checkTrainingSwitches(t, bin, data) })
	t.Run("data_parallel", func(t *testing.T) { checkDataParallelEarlyStop(t, data) })
}

func checkEarlyStop(t *testing.T, bin, data string) {
	args := func(runDir string, extra ...string) []string {
		a := []string{"pretrain", "--config", "demo", "--out", runDir, "--set", "data.train=" + data, "--set", "data.val=" + data,
			"--set", "data.workers=2", "--set", "train.steps=40", "--set", "train.batch_size=16", "--set", "train.warmup=1",
			"--set", "train.log_every=1", "--set", "train.val_every=2", "--set", "train.val_batches=1",
			"--set", "train.checkpoint_every=4", "--set", "train.early_stop.patience=2", "--set", "train.early_stop.min_delta=1"}
		return append(a, extra...)
	}
	whole := filepath.Join(t.TempDir(), "whole")
	if out, err := run(t, bin, "", args(whole)...); err != nil {
		t.Fatalf("pretrain: %v\n%s", err, out)
	}
	vals := valLines(t, whole)
	if len(vals) != 3 {
		t.Fatalf("%d validation records, want 3 (steps 2, 4, 6):\n%s", len(vals), strings.Join(vals, "\n"))
	}
	for i, line := range vals {
		var v runlog.Val
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		if v.Recall == nil || v.RecallMean == nil || v.Best != (i == 0) || v.Step != int64(2*(i+1)) {
			t.Errorf("validation %d: %s", i, line)
			continue
		}
		r := v.Recall
		for _, x := range []float64{r.I2T1, r.I2T5, r.I2T10, r.T2I1, r.T2I5, r.T2I10} {
			if x < 0 || x > 1 || math.IsNaN(x) {
				t.Errorf("validation %d: recall %v out of [0, 1]", i, x)
			}
		}
		if r.I2T1 > r.I2T5 || r.I2T5 > r.I2T10 || r.T2I1 > r.T2I5 || r.T2I5 > r.T2I10 {
			t.Errorf("validation %d: recall decreases with k: %+v", i, *r)
		}
	}
	if losses := readLosses(t, whole); len(losses) != 6 {
		t.Errorf("%d training records, want 6 (stopped early at step 6)", len(losses))
	}
	best := filepath.Join(whole, "best.safetensors")
	if _, err := os.Stat(filepath.Join(whole, "step-000006.safetensors")); err != nil {
		t.Errorf("no checkpoint at the early stop: %v", err)
	}
	if out, err := run(t, bin, "", "zeroshot", "--checkpoint", best, "--data", data, "--split", "zeroshot",
		"--task", "synthetic", "--out", filepath.Join(t.TempDir(), "zs.json")); err != nil {
		t.Fatalf("zeroshot on best.safetensors: %v\n%s", err, out)
	}

	split := filepath.Join(t.TempDir(), "split")
	if out, err := run(t, bin, "", args(split, "--stop-at", "4")...); err != nil {
		t.Fatalf("pretrain --stop-at 4: %v\n%s", err, out)
	}
	if out, err := run(t, bin, "", args(split, "--resume", "latest")...); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if got := valLines(t, split); strings.Join(got, "\n") != strings.Join(vals, "\n") {
		t.Errorf("stopped and resumed, validations\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(vals, "\n"))
	}
	if a, b := readFile(best), readFile(filepath.Join(split, "best.safetensors")); !bytes.Equal(a, b) {
		t.Error("the resumed run's best.safetensors differs from the uninterrupted run's")
	}
	before := readFile(filepath.Join(split, runlog.MetricsName))
	if out, err := run(t, bin, "", args(split, "--resume", "latest")...); err != nil {
		t.Fatalf("resume of an early-stopped run: %v\n%s", err, out)
	}
	if after := readFile(filepath.Join(split, runlog.MetricsName)); !bytes.Equal(before, after) {
		t.Error("a resume of an early-stopped run trained on")
	}
}

// checkTrainingSwitches trains a few steps with every switch of issue 15 on at once:
// two captions per image as positives (multi-positive loss), patch dropout, word dropout, a
// wider crop scale, hue and grayscale: every loss is finite and the checkpoint evaluates.
func checkTrainingSwitches(t *testing.T, bin, data string) {
	runDir := filepath.Join(t.TempDir(), "run")
	if out, err := run(t, bin, "", "pretrain", "--config", "demo", "--out", runDir, "--set", "data.train="+data,
		"--set", "data.val="+data, "--set", "data.workers=2", "--set", "train.steps=4", "--set", "train.batch_size=16",
		"--set", "train.warmup=1", "--set", "train.log_every=1", "--set", "train.val_batches=1",
		"--set", "data.captions_per_image=2", "--set", "model.vision.patch_dropout=0.5", "--set", "data.word_dropout=0.2",
		"--set", "data.crop_scale=0.5", "--set", "data.hue=0.1", "--set", "data.gray_prob=0.1", "--set", "data.jitter=0.3"); err != nil {
		t.Fatalf("pretrain: %v\n%s", err, out)
	}
	losses := readLosses(t, runDir)
	if len(losses) != 4 {
		t.Errorf("%d training records, want 4", len(losses))
	}
	for step, l := range losses {
		if math.IsNaN(l) || math.IsInf(l, 0) || l <= 0 {
			t.Errorf("step %d: loss %g", step, l)
		}
	}
	if out, err := run(t, bin, "", "zeroshot", "--checkpoint", runDir, "--data", data, "--split", "zeroshot",
		"--task", "synthetic", "--out", filepath.Join(runDir, "zeroshot.json")); err != nil {
		t.Fatalf("zeroshot: %v\n%s", err, out)
	}
}

// checkDataParallelEarlyStop runs train.early_stop on two in-memory ranks, stopped at step 4 and
// resumed: only rank 0 replays the log, yet both ranks end at the third validation (step 6,
// patience 2 at a min_delta no recall beats), none waits for the other, and the records mark
// the first validation best.
func checkDataParallelEarlyStop(t *testing.T, data string) {
	sets := []string{"train.steps=40", "train.batch_size=16", "train.warmup=1", "train.log_every=1", "train.val_every=2",
		"train.checkpoint_every=4", "train.val_batches=1", "model.vision.layers=1", "model.text.layers=1", "data.workers=1",
		"train.early_stop.patience=2", "train.early_stop.min_delta=1"}
	runDir := filepath.Join(t.TempDir(), "run")
	for _, part := range []struct {
		resume string
		stopAt int64
	}{{"", 4}, {"latest", 0}} {
		comms := dist.NewLocalGroup(2)
		sums := make([]train.Summary, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for r, c := range comms {
			wg.Go(func() {
				sums[r], errs[r] = train.Run(context.Background(), train.Options{Config: demoConfig(t, data, sets...), RunDir: runDir,
					Resume: part.resume, StopAt: part.stopAt, Comm: c}, quiet, io.Discard)
				if errs[r] != nil {
					c.Abort(1)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("resume %q: %v", part.resume, err)
		}
		if part.resume != "" {
			for r, s := range sums {
				if !s.EarlyStopped || s.Steps != 6 {
					t.Errorf("rank %d: early stopped %v at step %d, want true at 6", r, s.EarlyStopped, s.Steps)
				}
			}
		}
	}
	log, err := runlog.Read(filepath.Join(runDir, runlog.MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range log.Val {
		got = append(got, fmt.Sprintf("%d:%v", v.Step, v.Best))
	}
	if want := "2:true 4:false 6:false"; strings.Join(got, " ") != want {
		t.Errorf("validations %q, want %q", strings.Join(got, " "), want)
	}
}
