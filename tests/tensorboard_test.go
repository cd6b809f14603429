package tests

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/internal/tbevents/tbeventstest"
	"github.com/clipgo/clipgo/stages/runlog"
	"github.com/clipgo/clipgo/stages/train"
)

// TestTensorBoardEvents trains 4 steps, resumes the run from its checkpoint at step 2 (as after
// a kill past that checkpoint), and reads the run directory's
// event files with the independent reader: every scalar of metrics.jsonl is there, at its
// step, once, with its value (as float32), and nothing else is.
func TestTensorBoardEvents(t *testing.T) {
	if raceEnabled {
		t.Skip("skipped under -race: the event files are written by one goroutine, and the plain run covers them; training under the race detector would cost ten times as long")
	}
	data := prepareSynthetic(t, 120)
	sets := []string{"train.steps=4", "train.batch_size=8", "train.warmup=2", "train.log_every=1", "train.val_every=2",
		"train.val_batches=1", "train.checkpoint_every=2", "model.vision.layers=1", "model.text.layers=1"}
	run := filepath.Join(t.TempDir(), "run")
	ctx := context.Background()
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: run}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Steps 3 and 4 were logged; without the checkpoint at step 4 (a kill before it was
	// written), the resume starts at step 2 and logs them again: the event files must show
	// them once, with the resumed run's values, as metrics.jsonl does.
	if err := os.Remove(filepath.Join(run, "step-000004.safetensors")); err != nil {
		t.Fatal(err)
	}
	sum, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: run, Resume: "latest"}, quiet, io.Discard)
	if err != nil || sum.FirstStep != 2 || sum.Steps != 4 {
		t.Fatalf("resumed from step 2: %+v, %v; want steps 2..4", sum, err)
	}

	log, err := runlog.Read(filepath.Join(run, runlog.MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Train) != 4 || len(log.Val) != 2 {
		t.Fatalf("metrics.jsonl: %d train and %d validation records, want 4 and 2", len(log.Train), len(log.Val))
	}
	want := map[string]map[int64]float64{}
	add := func(tag string, step int64, v float64) {
		if math.IsNaN(v) {
			return
		}
		if want[tag] == nil {
			want[tag] = map[int64]float64{}
		}
		want[tag][step] = v
	}
	for _, r := range log.Train {
		add("train/loss", r.Step, float64(r.Loss))
		add("train/logit_scale_exp", r.Step, r.LogitScaleExp)
		add("train/lr", r.Step, r.LR)
		add("train/grad_norm", r.Step, r.GradNorm)
		add("train/samples_per_s", r.Step, r.SamplesPerS)
		add("train/stall_s", r.Step, r.StallS)
		add("train/epoch", r.Step, float64(r.Epoch))
	}
	for _, v := range log.Val {
		add("val/loss", v.Step, v.Loss)
		add("val/i2t_acc", v.Step, v.ImageTop)
		add("val/t2i_acc", v.Step, v.TextTop)
		if r := v.Recall; r != nil {
			add("val/i2t_r1", v.Step, r.I2T1)
			add("val/i2t_r5", v.Step, r.I2T5)
			add("val/i2t_r10", v.Step, r.I2T10)
			add("val/t2i_r1", v.Step, r.T2I1)
			add("val/t2i_r5", v.Step, r.T2I5)
			add("val/t2i_r10", v.Step, r.T2I10)
		}
		if v.RecallMean != nil {
			add("val/recall_mean", v.Step, *v.RecallMean)
		}
	}

	ev := tbeventstest.Read(t, run)
	if len(ev.Files) != 2 {
		t.Errorf("%d event files, want one per invocation (2): %+v", len(ev.Files), ev.Files)
	}
	for _, f := range ev.Files {
		if f.FileVersion != "brain.Event:2" || f.Torn != 0 {
			t.Errorf("%s: file version %q, %d torn bytes; want brain.Event:2 and none", f.Name, f.FileVersion, f.Torn)
		}
	}
	if len(ev.Duplicates) > 0 {
		t.Errorf("steps logged twice (TensorBoard would plot both): %v", ev.Duplicates)
	}
	for tag, steps := range want {
		pts := ev.Scalars[tag]
		if len(pts) != len(steps) {
			t.Errorf("%s: %d points in the event files, %d in metrics.jsonl", tag, len(pts), len(steps))
		}
		for _, p := range pts {
			step := int64(p[0])
			w, ok := steps[step]
			if !ok || float32(p[1]) != float32(w) {
				t.Errorf("%s at step %d: %v in the event files, %v in metrics.jsonl", tag, step, p[1], w)
			}
		}
	}
	for tag := range ev.Scalars {
		if want[tag] == nil {
			t.Errorf("%s in the event files, not in metrics.jsonl", tag)
		}
	}
}
