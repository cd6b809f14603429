package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/stages/runlog"
	"github.com/clipgo/clipgo/stages/train"
)

// demoConfig is the demo recipe on a small synthetic dataset at dir.
func demoConfig(t *testing.T, dir string, sets ...string) train.Config {
	t.Helper()
	sets = append([]string{"data.train=" + dir, "data.val=" + dir, "data.workers=2"}, sets...)
	cfg, err := train.LoadConfig("demo", sets)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPretrainLearns trains the demo model (tiny's sizes, the full CLIP vocabulary) on
// synthetic scenes for about half a minute: the contrastive loss must fall well below ln(B),
// the loss of a model that cannot tell pairs apart, and validation retrieval must rise far
// above chance.
func TestPretrainLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: trains for about half a minute")
	}
	data := prepareSynthetic(t, 2000)
	const B = 32
	cfg := demoConfig(t, data, "train.steps=150", "train.batch_size=32", "train.warmup=15", "train.lr=0.001",
		"train.log_every=10", "train.val_every=150", "train.checkpoint_every=150", "train.val_batches=6")
	sum, err := train.Run(context.Background(), train.Options{Config: cfg, RunDir: t.TempDir()}, quiet, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	chance, lnB := 1.0/B, math.Log(B)
	t.Logf("loss %.3f -> %.3f (ln B = %.3f); validation loss %.3f, i2t %.3f, t2i %.3f (chance %.3f); %.0f samples/s",
		sum.FirstLoss, sum.LastLoss, lnB, sum.LastValidation.Loss, sum.LastValidation.ImageTop, sum.LastValidation.TextTop, chance, sum.SamplesPerSec)
	if math.Abs(float64(sum.FirstLoss)-lnB) > 0.5 {
		t.Errorf("first loss %.3f, want about ln B = %.3f for a fresh model", sum.FirstLoss, lnB)
	}
	if v := sum.LastValidation; v == nil || v.Loss > 0.7*lnB || v.ImageTop < 5*chance || v.TextTop < 5*chance {
		t.Errorf("validation %+v: want loss below 0.7·ln B and top-1 retrieval above 5× chance", v)
	}
}

// readLosses returns the training loss logged at each step of a run's metrics.
func readLosses(t *testing.T, run string) map[int64]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(run, runlog.MetricsName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	losses := map[int64]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			Step int64    `json:"step"`
			Loss *float64 `json:"loss"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Loss != nil {
			if _, dup := losses[rec.Step]; dup {
				t.Errorf("step %d logged twice", rec.Step)
			}
			losses[rec.Step] = *rec.Loss
		}
	}
	return losses
}

func readTensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, info := range f.Tensors {
		if out[info.Name], err = f.Float32s(info.Name); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestPretrainResumeMatchesAnUninterruptedRun stops a run part-way (in the middle of an
// epoch), resumes it from its checkpoint, and requires the same loss at every later step and
// the same parameters at the end as a run that never stopped.
func TestPretrainResumeMatchesAnUninterruptedRun(t *testing.T) {
	data := prepareSynthetic(t, 300) // 270 training images: 16 batches of 16, 8 steps of 2 an epoch
	sets := []string{"train.steps=24", "train.batch_size=16", "train.accum_steps=2", "train.warmup=3", "train.log_every=1", "train.val_every=0",
		"train.checkpoint_every=100", "model.vision.layers=1", "model.text.layers=1"}
	ctx := context.Background()

	straight := filepath.Join(t.TempDir(), "straight")
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: straight}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	resumed := filepath.Join(t.TempDir(), "resumed")
	first, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, StopAt: 10}, quiet, io.Discard)
	if err != nil || !first.Stopped || first.Steps != 10 {
		t.Fatalf("first part: %+v, %v; want stopped at 10", first, err)
	}
	// A new run into the same directory is refused: it would mix two runs.
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed}, quiet, io.Discard); err == nil {
		t.Fatal("a new run into a directory with checkpoints was accepted")
	}
	second, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, Resume: "latest"}, quiet, io.Discard)
	if err != nil || second.FirstStep != 10 || second.Steps != 24 {
		t.Fatalf("resumed part: %+v, %v; want steps 10..24", second, err)
	}
	want, got := readLosses(t, straight), readLosses(t, resumed)
	if len(want) != 24 || len(got) != 24 {
		t.Fatalf("logged %d and %d steps, want 24 each", len(want), len(got))
	}
	for step, l := range want {
		if got[step] != l {
			t.Errorf("step %d: loss %v after the resume, %v uninterrupted", step, got[step], l)
		}
	}
	a, b := readTensors(t, straight+"/step-000024.safetensors"), readTensors(t, resumed+"/step-000024.safetensors")
	for name, v := range a {
		for i := range v {
			if b[name][i] != v[i] {
				t.Fatalf("%s[%d] = %v after the resume, %v uninterrupted", name, i, b[name][i], v[i])
			}
		}
	}
}

// TestPretrainInterruptWritesACheckpoint cancels a run (as SIGINT does) and resumes it.
func TestPretrainInterruptWritesACheckpoint(t *testing.T) {
	data := prepareSynthetic(t, 200)
	sets := []string{"train.steps=40", "train.batch_size=8", "train.warmup=2", "train.log_every=1", "train.val_every=0",
		"train.checkpoint_every=1000", "model.vision.layers=1", "model.text.layers=1"}
	run := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: run}, quiet, io.Discard)
		done <- err
	}()
	// Cancel once a few steps are logged.
	for {
		if b, _ := os.ReadFile(filepath.Join(run, runlog.MetricsName)); countLines(b) >= 3 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended before it could be interrupted: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	err := <-done
	if !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("interrupted run: %v, want ErrInterrupted", err)
	}
	sum, err := train.Run(context.Background(), train.Options{Config: demoConfig(t, data, sets...), RunDir: run, Resume: "latest"}, quiet, io.Discard)
	if err != nil || sum.FirstStep == 0 || sum.Steps != 40 {
		t.Fatalf("resume after the interrupt: %+v, %v; want it to continue from a checkpoint to step 40", sum, err)
	}
	if n := len(readLosses(t, run)); n != 40 {
		t.Errorf("metrics hold %d steps after interrupt and resume, want 40", n)
	}
}

func countLines(b []byte) (n int) {
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// TestPretrainStopsAfterTooManyNonFiniteSteps blows the model up with an absurd learning rate:
// the non-finite steps are skipped, then the run stops naming the last good checkpoint.
func TestPretrainStopsAfterTooManyNonFiniteSteps(t *testing.T) {
	data := prepareSynthetic(t, 100)
	cfg := demoConfig(t, data, "train.lr=1e30", "train.steps=50", "train.warmup=0", "train.max_bad_steps=3",
		"train.checkpoint_every=1", "train.batch_size=8", "model.vision.layers=1", "model.text.layers=1")
	sum, err := train.Run(context.Background(), train.Options{Config: cfg, RunDir: t.TempDir()}, quiet, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "non-finite steps in a row") || !strings.Contains(err.Error(), "step-000001.safetensors") {
		t.Fatalf("err = %v; want the run stopped, naming the last good checkpoint step-000001", err)
	}
	if sum.SkippedSteps != 3 {
		t.Errorf("skipped %d steps, want 3", sum.SkippedSteps)
	}
}
