package tests

// Resume honesty (issue 13): one writer per run directory, a resume that continues the run's
// own recipe and refuses what would make it differ from a run that never stopped, damaged
// checkpoints that are errors rather than silent fallbacks, and an interrupted validation
// that is redone. Every case runs clipgo processes and inspects the run directory.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
)

func TestResume(t *testing.T) {
	bin := buildCLI(t)
	data := faultData(t, bin)
	t.Run("Lock: a second pretrain into the same run is refused", func(t *testing.T) { resumeLock(t, bin, data) })
	t.Run("RunConfig: resume without --config reads config.yaml", func(t *testing.T) { resumeRunConfig(t, bin, data) })
	t.Run("RecipeChanges: refused, or allowed and recorded", func(t *testing.T) { resumeRecipeChanges(t, bin, data) })
	t.Run("DamagedCheckpoint: an error, fallback explicit", func(t *testing.T) { resumeDamaged(t, bin, data) })
	t.Run("KeepOne: kill -9 with keep_checkpoints 1", func(t *testing.T) { resumeKeepOne(t, bin, data) })
	t.Run("StepsBelowCheckpoint: train.steps and --stop-at", func(t *testing.T) { resumeStepsBelow(t, bin, data) })
	t.Run("Validation: SIGTERM during validation", func(t *testing.T) { resumeValidation(t, bin) })
}

// resumeRun trains a fresh run of steps steps (checkpoints every `every`) and returns its
// directory.
func resumeRun(t *testing.T, bin, data string, steps, every int, extra ...string) string {
	t.Helper()
	run := filepath.Join(t.TempDir(), "run")
	if code, out := faultStart(t, bin, faultArgs(data, run, steps, every, extra...)...).wait(); code != 0 {
		t.Fatalf("the first run failed (exit %d):\n%s", code, out)
	}
	return run
}

// resumeRefused requires a clipgo process to have failed with a message holding every want.
func resumeRefused(t *testing.T, what string, code int, out string, wants ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("%s: exit 0, want a refusal naming %q; output:\n%s", what, wants, out)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: exit %d, the message lacks %q:\n%s", what, code, w, out)
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("%s: a panic:\n%s", what, out)
	}
}

// resumeLock: a second pretrain into a run directory that one is writing is refused, naming
// the holder's pid, and leaves the directory alone; after a kill -9 of the holder, the next
// pretrain takes the lock over with a warning.
func resumeLock(t *testing.T, bin, data string) {
	run := filepath.Join(t.TempDir(), "run")
	args := faultArgs(data, run, 100000, 1000, "--resume", "auto")
	first := faultStart(t, bin, args...)
	if !first.await(func() bool { return faultMaxStep(t, run) >= 2 }) {
		_, out := first.wait()
		t.Fatalf("the first run ended before step 2:\n%s", out)
	}
	cfgBefore := readFile(filepath.Join(run, runlog.ConfigName))
	for _, a := range [][]string{args, faultArgs(data, run, 100000, 1000, "--resume", "latest"), faultArgs(data, run, 100000, 1000)} {
		code, out := faultStart(t, bin, a...).wait()
		resumeRefused(t, "a second pretrain into the run", code, out, "in use by pid "+strconv.Itoa(first.cmd.Process.Pid), runlock(run))
	}
	if !bytes.Equal(cfgBefore, readFile(filepath.Join(run, runlog.ConfigName))) {
		t.Error("the refused pretrain rewrote config.yaml")
	}
	select {
	case <-first.done:
		_, out := first.wait()
		t.Fatalf("the first run ended while the second was refused:\n%s", out)
	default:
	}
	first.cmd.Process.Kill()
	if !first.killed() {
		t.Fatal("the first run ended before the kill")
	}
	// The kill leaves the lock file, not the lock: the next run takes it over and says so.
	if _, err := os.Stat(runlock(run)); err != nil {
		t.Fatalf("after kill -9 the lock file is gone (%v): the takeover is not tested", err)
	}
	c := faultStart(t, bin, faultArgs(data, run, int(faultMaxStep(t, run))+2, 1000, "--resume", "auto")...)
	code, out := c.wait()
	// The run resumes the last checkpoint, so steps beyond it are allowed (train.steps raised).
	if code != 0 || !strings.Contains(out, "no longer running") {
		t.Fatalf("after kill -9 of the holder: exit %d, want 0 and a warning that the stale lock was taken over:\n%s", code, out)
	}
	if _, err := os.Stat(runlock(run)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lock file outlived the run that released it: %v", err)
	}
	t.Logf("a second pretrain (auto, latest, new) into a running run: refused naming pid %d; after kill -9 the next run took the stale lock over with a warning", first.cmd.Process.Pid)
}

func runlock(run string) string { return filepath.Join(run, ".clipgo.lock") }

// resumeRunConfig: `--resume latest` with neither --config nor the --set of the first run
// continues that run (its data, its model), not the built-in demo recipe.
func resumeRunConfig(t *testing.T, bin, data string) {
	run := resumeRun(t, bin, data, 4, 2)
	c := faultStart(t, bin, "pretrain", "--out", run, "--resume", "latest", "--set", "train.steps=6")
	if code, out := c.wait(); code != 0 {
		t.Fatalf("--resume latest without --config: exit %d:\n%s", code, out)
	}
	if latest, err := checkpoint.Latest(run); err != nil || filepath.Base(latest) != "step-000006.safetensors" {
		t.Fatalf("after the resume the latest checkpoint is %s (%v), want step 6", latest, err)
	}
	faultCheckMetrics(t, run, 6)
	t.Logf("--resume latest --set train.steps=6 without --config trained the run's own recipe (RUN/config.yaml) from step 4 to 6")
}

// resumeRecipeChanges: keys that break exactness are refused, each named with its old and
// new value, and nothing is written; with --allow-changes they go through and are recorded in
// config-history.jsonl; raising train.steps needs no flag and is recorded.
func resumeRecipeChanges(t *testing.T, bin, data string) {
	run := resumeRun(t, bin, data, 4, 2)
	cfgPath := filepath.Join(run, runlog.ConfigName)
	before := readFile(cfgPath)
	code, out := faultStart(t, bin, faultArgs(data, run, 6, 2, "--resume", "latest",
		"--set", "train.batch_size=16", "--set", "train.lr=0.01", "--set", "train.seed=7")...).wait()
	resumeRefused(t, "a resume with another batch, lr and seed", code, out,
		"train.batch_size: 8 -> 16", "train.lr: 0.001 -> 0.01", "train.seed: 0 -> 7", "--allow-changes")
	if !bytes.Equal(before, readFile(cfgPath)) {
		t.Error("the refused resume rewrote config.yaml")
	}
	if _, err := os.Stat(filepath.Join(run, runlog.HistoryName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused resume wrote a config history: %v", err)
	}
	if faultMaxStep(t, run) != 4 {
		t.Errorf("the refused resume trained: metrics reach step %d", faultMaxStep(t, run))
	}
	code, out = faultStart(t, bin, faultArgs(data, run, 6, 2, "--resume", "latest", "--set", "model.vision.layers=2", "--allow-changes")...).wait()
	resumeRefused(t, "a resume with another model", code, out, "model.vision.layers: 1 -> 2")

	// Raising steps alone: allowed and recorded.
	if code, out := faultStart(t, bin, faultArgs(data, run, 6, 2, "--resume", "latest")...).wait(); code != 0 {
		t.Fatalf("raising train.steps: exit %d:\n%s", code, out)
	}
	// A changed lr with --allow-changes: allowed and recorded.
	if code, out := faultStart(t, bin, faultArgs(data, run, 8, 2, "--resume", "latest", "--set", "train.lr=0.002", "--allow-changes")...).wait(); code != 0 {
		t.Fatalf("--allow-changes: exit %d:\n%s", code, out)
	}
	var hist []runlog.Change
	for _, line := range bytes.Split(bytes.TrimSpace(readFile(filepath.Join(run, runlog.HistoryName))), []byte("\n")) {
		var c runlog.Change
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatalf("config history line %q: %v", line, err)
		}
		hist = append(hist, c)
	}
	want := []string{"4 train.steps 4 6 train.steps raised", "6 train.lr 0.001 0.002 --allow-changes", "6 train.steps 6 8 train.steps raised"}
	var got []string
	for _, c := range hist {
		got = append(got, fmt.Sprintf("%d %s %s %s %s", c.Step, c.Key, c.Old, c.New, c.Reason))
		if _, err := time.Parse(time.RFC3339, c.Time); err != nil {
			t.Errorf("config history time %q: %v", c.Time, err)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("config history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if cfg := string(readFile(cfgPath)); !strings.Contains(cfg, "lr: 0.002") || !strings.Contains(cfg, "steps: 8") {
		t.Errorf("config.yaml does not hold the run's current recipe (lr 0.002, steps 8):\n%s", cfg)
	}
	faultCheckMetrics(t, run, 8)
	t.Logf("batch/lr/seed changes refused naming each key; the model refused even with --allow-changes; steps raised and lr changed with --allow-changes recorded: %q", got)
}

// resumeDamaged: a damaged newest optimiser file makes --resume latest (and auto) fail naming
// it, with nothing written; --resume PATH of the older checkpoint falls back explicitly and
// leaves the damaged newer checkpoint as it was.
func resumeDamaged(t *testing.T, bin, data string) {
	run := resumeRun(t, bin, data, 4, 2, "--set", "train.keep_checkpoints=0")
	opt := checkpoint.OptimPath(checkpoint.ModelPath(run, 4))
	raw := readFile(opt)
	raw[len(raw)-1] ^= 0xff // a flipped bit in the last value: the file still parses
	if err := os.WriteFile(opt, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	model4 := readFile(checkpoint.ModelPath(run, 4))
	for _, mode := range []string{"latest", "auto"} {
		code, out := faultStart(t, bin, faultArgs(data, run, 6, 2, "--resume", mode)...).wait()
		resumeRefused(t, "--resume "+mode+" over a damaged optimiser file", code, out, opt, checkpoint.ModelPath(run, 2))
	}
	if faultMaxStep(t, run) != 4 {
		t.Errorf("a refused resume trained: metrics reach step %d", faultMaxStep(t, run))
	}
	// The explicit fallback: from step 2 to 6, checkpoints at 3 and 6; step 4 stays as it was.
	code, out := faultStart(t, bin, faultArgs(data, run, 6, 3, "--resume", checkpoint.ModelPath(run, 2))...).wait()
	if code != 0 {
		t.Fatalf("--resume %s: exit %d:\n%s", checkpoint.ModelPath(run, 2), code, out)
	}
	if !bytes.Equal(readFile(opt), raw) || !bytes.Equal(readFile(checkpoint.ModelPath(run, 4)), model4) {
		t.Error("the fallback run changed the newer checkpoint of step 4")
	}
	if latest, err := checkpoint.Latest(run); err != nil || filepath.Base(latest) != "step-000006.safetensors" {
		t.Errorf("after the fallback the latest checkpoint is %s (%v), want step 6", latest, err)
	}
	faultCheckMetrics(t, run, 6)
	t.Logf("damaged step-4 optimiser file: --resume latest and auto refused naming it (and step 2); --resume step 2 trained to 6 leaving step 4 untouched")
}

// resumeKeepOne kills a run that keeps one checkpoint the moment each new checkpoint appears
// (between writing it and pruning the old one, or inside the prune): every time the run
// keeps a checkpoint that loads, and resumes from it, never from step 0. Then a damaged newest
// checkpoint (with no older one left) is an error, not a restart from step 0.
func resumeKeepOne(t *testing.T, bin, data string) {
	const steps, kills = 40, 8
	run := filepath.Join(t.TempDir(), "run")
	args := faultArgs(data, run, steps, 1, "--resume", "auto", "--set", "train.keep_checkpoints=1")
	prev, done := int64(-1), 0
	for i := 0; done < kills && i < 3*kills; i++ {
		before := faultNames(run)
		c := faultStart(t, bin, args...)
		appeared := func() bool {
			for name := range faultNames(run) {
				if !before[name] && faultFinalName.MatchString(name) && !strings.Contains(name, ".optim.") {
					return true
				}
			}
			return false
		}
		if !c.await(appeared) {
			break // the run ended
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		c.cmd.Process.Kill()
		if !c.killed() {
			break
		}
		done++
		st := faultInspect(t, run)
		if st.latest < 0 || st.latest < prev {
			t.Fatalf("kill %d: the latest checkpoint is of step %d (before: %d): keep_checkpoints 1 lost the run", done, st.latest, prev)
		}
		prev = st.latest
	}
	if done < kills/2 {
		t.Fatalf("only %d kills landed", done)
	}
	if code, out := faultStart(t, bin, args...).wait(); code != 0 {
		t.Fatalf("the last resume failed (exit %d):\n%s", code, out)
	}
	faultCheckMetrics(t, run, steps)
	// With no older checkpoint left, a damaged newest one must not restart the run from 0.
	opt := checkpoint.OptimPath(checkpoint.ModelPath(run, steps))
	if err := os.WriteFile(opt, readFile(opt)[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := faultStart(t, bin, faultArgs(data, run, steps+4, 1, "--resume", "auto", "--set", "train.keep_checkpoints=1")...).wait()
	resumeRefused(t, "--resume auto over a damaged only checkpoint", code, out, opt, "no complete checkpoint before it")
	if _, err := os.Stat(checkpoint.ModelPath(run, 1)); err == nil {
		t.Error("the run restarted from step 0")
	}
	t.Logf("keep_checkpoints 1: %d kills as new checkpoints appeared, each left a loadable checkpoint (last at step %d); the run finished at %d; a damaged only checkpoint is refused, not restarted from 0",
		done, prev, steps)
}

// resumeStepsBelow: train.steps below the checkpoint's step, and --stop-at at or before it,
// are refused with nothing trained or written; train.steps equal to it says the run is done.
func resumeStepsBelow(t *testing.T, bin, data string) {
	run := resumeRun(t, bin, data, 4, 2)
	names := faultNames(run)
	code, out := faultStart(t, bin, faultArgs(data, run, 3, 2, "--resume", "latest", "--allow-changes")...).wait()
	resumeRefused(t, "train.steps 3 below the checkpoint's 4", code, out, "train.steps 3 is below the checkpoint's step 4")
	for _, stop := range []string{"4", "2"} {
		code, out = faultStart(t, bin, faultArgs(data, run, 8, 2, "--resume", "latest", "--stop-at", stop)...).wait()
		resumeRefused(t, "--stop-at "+stop+" at step 4", code, out, "--stop-at "+stop+" is not after the checkpoint's step 4")
	}
	code, out = faultStart(t, bin, faultArgs(data, run, 4, 2, "--resume", "latest")...).wait()
	if code != 0 || !strings.Contains(out, "already reached train.steps 4") || strings.Contains(out, "loss 0.0000") {
		t.Errorf("resuming a finished run: exit %d, want 0 saying it already reached train.steps:\n%s", code, out)
	}
	if faultMaxStep(t, run) != 4 {
		t.Errorf("metrics reach step %d after the refusals, want 4", faultMaxStep(t, run))
	}
	for name := range faultNames(run) {
		if !names[name] && name != "config-history.jsonl" {
			t.Errorf("a refused resume left %s", name)
		}
	}
	t.Logf("train.steps 3 < 4 and --stop-at 4, 2 at step 4: refused, nothing trained; train.steps 4 at step 4: done, exit 0")
}

// resumeValidation sends SIGTERM while the run validates (a val split of 800 images, validated
// at step 3): after the resume the metrics log holds the validation record of step 3, once.
func resumeValidation(t *testing.T, bin string) {
	data := filepath.Join(t.TempDir(), "data")
	msg, err := run(t, bin, "", "prepare", "--config", filepath.Join(testenv.RepoRoot(t), "configs/data/demo.yaml"),
		"--n", "1000", "--zeroshot-n", "10", "--val-count", "800", "--image-size", "32", "--out", data)
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, msg)
	}
	for attempt := 1; ; attempt++ {
		run := filepath.Join(t.TempDir(), "run")
		args := faultArgs(data, run, 5, 1000, "--set", "train.val_every=3")
		c := faultStart(t, bin, args...)
		if !c.await(func() bool { return faultMaxStep(t, run) >= 3 }) {
			_, out := c.wait()
			t.Fatalf("the run ended before step 3:\n%s", out)
		}
		c.cmd.Process.Signal(syscall.SIGTERM) // the training record of step 3 is written just before its validation
		code, out := c.wait()
		if (code != 130 && code != 143) || !strings.Contains(out, "interrupted at step 3") {
			t.Fatalf("SIGTERM at step 3: exit %d, output:\n%s\nwant exit 143 (or 130) at step 3", code, out)
		}
		if _, val := faultStepCounts(t, filepath.Join(run, runlog.MetricsName), true); val[3] != 0 {
			if attempt < 3 {
				continue // the validation was over before the signal: try again
			}
			t.Fatalf("the validation of step 3 always ended before SIGTERM: the test does not interrupt it")
		}
		c = faultStart(t, bin, append(args, "--resume", "latest")...)
		if code, out := c.wait(); code != 0 {
			t.Fatalf("the resume failed (exit %d):\n%s", code, out)
		}
		_, val := faultStepCounts(t, filepath.Join(run, runlog.MetricsName), true)
		if val[3] != 1 || val[5] != 1 || len(val) != 2 {
			t.Fatalf("validation records by step %v, want one at step 3 (interrupted, redone) and one at 5", val)
		}
		faultCheckMetrics(t, run, 5)
		t.Logf("SIGTERM during the validation of step 3 (attempt %d): the resume redid it; validation records at steps 3 and 5, once each", attempt)
		return
	}
}
