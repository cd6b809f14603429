package tests

// Fault-injection tests: clipgo processes are killed, interrupted, starved of disk and robbed
// of their input while they train, and what they leave behind must still load and resume.
// Every subtest logs one line saying what it tried, how often, and what came of it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
)

// The fault tests' dataset and batch: 192 training images make 24 batches of 8, so an epoch
// drops no sample and every epoch holds every training key.
const (
	faultBatch         = 8
	faultTrainImages   = 192
	faultStepsPerEpoch = faultTrainImages / faultBatch
)

// TestFault builds the CLI once and runs every fault against it.
func TestFault(t *testing.T) {
	bin := buildCLI(t)
	data := faultData(t, bin)
	t.Run("kill -9 at random moments", func(t *testing.T) { faultKill(t, bin, data) })
	t.Run("fresh start over a killed attempt's logs", func(t *testing.T) { faultFreshStart(t, bin, data) })
	t.Run("SIGTERM and SIGINT mid-epoch", func(t *testing.T) { faultInterrupt(t, bin, data) })
	t.Run("disk full", func(t *testing.T) { faultDiskFull(t, bin, data) })
	t.Run("shard lost while training", func(t *testing.T) { faultShards(t, bin) })
	t.Run("read-only output", func(t *testing.T) { faultReadOnly(t, bin, data) })
	t.Run("missing files", func(t *testing.T) { faultMissing(t, bin, data) })
}

// faultData prepares the synthetic dataset with the CLI: 192 training images in 4 shards of
// 50 rows (row groups of 16), 8 validation images, 32 px.
func faultData(t *testing.T, bin string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "data")
	msg, err := run(t, bin, "", "prepare", "--config", filepath.Join(testenv.RepoRoot(t), "configs/data/demo.yaml"),
		"--n", "200", "--zeroshot-n", "10", "--val-count", "8", "--image-size", "32",
		"--shard-rows", "50", "--row-group-rows", "16", "--out", out)
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, msg)
	}
	if n := len(faultTrainKeys(t, out)); n != faultTrainImages {
		t.Fatalf("the train split holds %d images, want %d", n, faultTrainImages)
	}
	return out
}

// faultArgs is a `clipgo pretrain` command line for the fault tests: the demo recipe cut to
// one layer per tower and width 32 (a checkpoint pair of 19 MB, steps of tens of ms), batch 8,
// every step logged, a checkpoint every `every` steps.
func faultArgs(data, run string, steps, every int, extra ...string) []string {
	args := []string{"pretrain", "--config", "demo", "--out", run}
	for _, s := range []string{"data.train=" + data, "data.val=" + data,
		"model.vision.layers=1", "model.text.layers=1", "model.embed_dim=32", "model.vision.width=32", "model.text.width=32",
		fmt.Sprintf("train.batch_size=%d", faultBatch), "train.warmup=1", "train.log_every=1",
		fmt.Sprintf("train.steps=%d", steps), fmt.Sprintf("train.checkpoint_every=%d", every)} {
		args = append(args, "--set", s)
	}
	return append(args, extra...)
}

// faultChild is a clipgo process a test started.
type faultChild struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // stdout and stderr; read only after done
	done chan struct{}
}

// faultStart starts name with args; the test's cleanup kills it if it still runs.
func faultStart(t *testing.T, name string, args ...string) *faultChild {
	t.Helper()
	c := &faultChild{cmd: exec.Command(name, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// await polls cond every millisecond until it holds (true) or the process ends (false).
func (c *faultChild) await(cond func() bool) bool {
	for !cond() {
		select {
		case <-c.done:
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return true
}

// wait returns the exit status (-1 when a signal ended the process) and the output.
func (c *faultChild) wait() (int, string) {
	<-c.done
	return c.cmd.ProcessState.ExitCode(), c.out.String()
}

// killed reports whether SIGKILL ended the process (rather than its own exit).
func (c *faultChild) killed() bool {
	<-c.done
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

var (
	faultFinalName = regexp.MustCompile(`^step-([0-9]{6,})\.(optim\.)?safetensors$`)
	faultTempName  = regexp.MustCompile(`^\.step-([0-9]{6,})\..*\.tmp-`)
)

// faultState is what a fault left in a run directory.
type faultState struct {
	latest     int64    // step of the checkpoint Latest picks; -1 when there is none
	temps      []string // temporary checkpoint files left behind
	otherTemps []string // other temporary files (.metrics.jsonl.tmp-*, .config.yaml.tmp-*)
}

// faultInspect checks what a crash at any moment must keep: every checkpoint file visible
// under its final name is whole (the rename is atomic), and the checkpoint Latest picks has a
// final model name, loads into a model built from the config it records, and is of its step.
func faultInspect(t *testing.T, run string) faultState {
	t.Helper()
	st := faultState{latest: -1}
	entries, err := os.ReadDir(run)
	if errors.Is(err, fs.ErrNotExist) {
		return st // killed before the run directory existed
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case faultFinalName.MatchString(name):
			f, err := safetensors.OpenFile(filepath.Join(run, name))
			if err != nil {
				t.Fatalf("%s is visible under its final name but is not whole: %v", name, err)
			}
			f.Close()
		case faultTempName.MatchString(name):
			st.temps = append(st.temps, name)
		case strings.Contains(name, ".tmp-"):
			st.otherTemps = append(st.otherTemps, name)
		}
	}
	path, err := checkpoint.Latest(run)
	if errors.Is(err, fs.ErrNotExist) {
		return st
	}
	if err != nil {
		t.Fatalf("checkpoint.Latest: %v", err)
	}
	meta := faultLoad(t, path)
	if base, want := filepath.Base(path), fmt.Sprintf("step-%06d.safetensors", meta.Step); base != want {
		t.Fatalf("checkpoint.Latest picked %s, which records step %d", base, meta.Step)
	}
	st.latest = meta.Step
	return st
}

// faultLoad loads a checkpoint as a user of it does: a model built from the config the
// checkpoint records, then its weights and optimiser state. It returns the metadata.
func faultLoad(t *testing.T, path string) checkpoint.Meta {
	t.Helper()
	cfg, err := fusion.ReadConfig(path)
	if err != nil {
		t.Fatalf("load the latest checkpoint: %v", err)
	}
	m, err := fusion.New(cfg, faultBatch, 0)
	if err != nil {
		t.Fatalf("build the model of %s: %v", path, err)
	}
	defer m.Close()
	meta, state, err := checkpoint.Load(path, m.Params())
	if err != nil {
		t.Fatalf("load the latest checkpoint: %v", err)
	}
	if len(state) == 0 {
		t.Fatalf("%s: no optimiser state", path)
	}
	return meta
}

// faultStepCounts counts the training ("loss") and validation ("val_loss") records of each
// step in a metrics log. Strict: every line must be one JSON object with a step; otherwise an
// unparsable line (torn by a kill) is passed over.
func faultStepCounts(t *testing.T, path string, strict bool) (train, val map[int64]int) {
	t.Helper()
	train, val = map[int64]int{}, map[int64]int{}
	raw, err := os.ReadFile(path)
	if err != nil {
		if !strict && errors.Is(err, fs.ErrNotExist) {
			return train, val
		}
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for line := 1; sc.Scan(); line++ {
		var rec map[string]json.RawMessage
		var step int64
		err := json.Unmarshal(sc.Bytes(), &rec)
		if err == nil {
			err = json.Unmarshal(rec["step"], &step)
		}
		if err != nil {
			if strict {
				t.Errorf("%s line %d is not one JSON object with a step (%v): %q", path, line, err, sc.Text())
			}
			continue
		}
		if rec["loss"] != nil {
			train[step]++
		}
		if rec["val_loss"] != nil {
			val[step]++
		}
	}
	return train, val
}

// faultMaxStep is the highest training step a metrics log records so far.
func faultMaxStep(t *testing.T, run string) int64 {
	train, _ := faultStepCounts(t, filepath.Join(run, runlog.MetricsName), false)
	top := int64(0)
	for s := range train {
		top = max(top, s)
	}
	return top
}

// faultCheckMetrics requires a finished run's metrics log to be one JSON object per line,
// with one training record for each of steps 1..steps and at most one validation record a
// step.
func faultCheckMetrics(t *testing.T, run string, steps int64) {
	t.Helper()
	train, val := faultStepCounts(t, filepath.Join(run, runlog.MetricsName), true)
	for s := int64(1); s <= steps; s++ {
		if train[s] != 1 {
			t.Errorf("metrics: step %d has %d training records, want 1", s, train[s])
		}
	}
	if len(train) != int(steps) {
		t.Errorf("metrics: training records for %d steps, want %d", len(train), steps)
	}
	for s, n := range val {
		if n > 1 {
			t.Errorf("metrics: step %d has %d validation records", s, n)
		}
	}
}

// faultTrainKeys returns the keys of a dataset's train split.
func faultTrainKeys(t *testing.T, data string) map[string]bool {
	t.Helper()
	files := splitFiles(t, data, "train")
	keys := map[string]bool{}
	err := shard.Read(context.Background(), files, shard.ReadOptions{Columns: []string{shard.ColKey}}, func(s shard.Sample) error {
		keys[s.Key] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// faultCheckSampleLog checks a finished run's sample log against the train split: steps
// 1..steps consumed faultBatch samples each, in step order; step s belongs to epoch
// (s-1)/faultStepsPerEpoch; no key repeats within an epoch and each is a training key; a
// complete epoch holds every training key (none skipped). It returns a summary.
func faultCheckSampleLog(t *testing.T, path string, steps int64, keys map[string]bool) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	perStep := map[int64]int{}
	seen := map[int]map[string]int64{} // epoch -> key -> step that consumed it
	problems := 0
	fail := func(format string, args ...any) { // the first few problems of lines say enough
		if problems++; problems <= 5 {
			t.Errorf("sample log: "+format, args...)
		}
	}
	defer func() {
		if problems > 5 {
			t.Errorf("sample log: %d problems with lines in all", problems)
		}
	}()
	last := int64(0)
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Step  int64  `json:"step"`
			Epoch int    `json:"epoch"`
			Key   string `json:"key"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("sample log line %d: %v: %q", line, err, sc.Text())
		}
		if rec.Step < last {
			fail("line %d: step %d after step %d", line, rec.Step, last)
		}
		last = rec.Step
		perStep[rec.Step]++
		if want := int((rec.Step - 1) / faultStepsPerEpoch); rec.Epoch != want {
			fail("line %d: step %d in epoch %d, want %d", line, rec.Step, rec.Epoch, want)
		}
		if !keys[rec.Key] {
			fail("line %d: key %q is not in the train split", line, rec.Key)
		}
		if seen[rec.Epoch] == nil {
			seen[rec.Epoch] = map[string]int64{}
		}
		if s, dup := seen[rec.Epoch][rec.Key]; dup {
			fail("key %s seen twice in epoch %d (steps %d and %d)", rec.Key, rec.Epoch, s, rec.Step)
		}
		seen[rec.Epoch][rec.Key] = rec.Step
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for s := int64(1); s <= steps; s++ {
		if perStep[s] != faultBatch {
			t.Errorf("sample log: step %d consumed %d samples, want %d", s, perStep[s], faultBatch)
		}
	}
	if len(perStep) != int(steps) {
		t.Errorf("sample log: records for %d steps, want %d", len(perStep), steps)
	}
	var parts []string
	for e := 0; e <= int((steps-1)/faultStepsPerEpoch); e++ {
		want := int(min(steps-int64(e)*faultStepsPerEpoch, faultStepsPerEpoch)) * faultBatch
		if len(seen[e]) != want {
			t.Errorf("sample log: epoch %d has %d distinct keys, want %d", e, len(seen[e]), want)
		}
		parts = append(parts, fmt.Sprintf("epoch %d: %d distinct keys", e, len(seen[e])))
	}
	return strings.Join(parts, ", ")
}

// faultKill kills a training run with SIGKILL at random moments — during start-up, at a
// random point of a step, and while a checkpoint file is being written — and resumes it
// with --resume auto each time, until it reaches train.steps.
func faultKill(t *testing.T, bin, data string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CLIPGO_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CLIPGO_FAULT_SEED=%q: %v", s, err)
		}
	}
	t.Logf("random kill moments from seed %d (repeat with CLIPGO_FAULT_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	kills := 20
	if testing.Short() {
		kills = 8
	}
	const steps = 2 * faultStepsPerEpoch // the kills cross the epoch boundary
	dir := t.TempDir()
	run, samples := filepath.Join(dir, "run"), filepath.Join(dir, "samples.jsonl")
	args := faultArgs(data, run, steps, 1, "--resume", "auto", "--sample-log", samples)
	moments := [...]string{"start-up", "mid-step", "checkpoint write"}
	var tried [len(moments)]int
	done, withTemps, prev := 0, 0, int64(-1)
	for done < kills {
		moment := rng.IntN(len(moments))
		before := faultNames(run)
		c := faultStart(t, bin, args...)
		var reached bool
		switch moment {
		case 0: // before the first step: config, tokenizer, model, restore
			start, d := time.Now(), time.Duration(rng.Int64N(int64(150*time.Millisecond)))
			reached = c.await(func() bool { return time.Since(start) >= d })
		case 1: // anywhere in a step a little after this invocation's first ones
			target := max(prev, 0) + 2 + rng.Int64N(2)
			reached = c.await(func() bool { return faultMaxStep(t, run) >= target })
			time.Sleep(time.Duration(rng.Int64N(int64(80 * time.Millisecond))))
		case 2: // once a checkpoint file appears, somewhere in its write
			reached = c.await(func() bool { return faultWriting(run, before) })
			time.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
		}
		if reached {
			c.cmd.Process.Kill()
		}
		if !c.killed() {
			code, out := c.wait()
			if code != 0 {
				t.Fatalf("after %d kills the run failed on its own (exit %d):\n%s", done, code, out)
			}
			t.Logf("the run reached step %d before kill %d", steps, done+1)
			break
		}
		done++
		tried[moment]++
		st := faultInspect(t, run)
		for _, name := range st.temps {
			if !before[name] {
				withTemps++
				break
			}
		}
		if st.latest < prev {
			t.Fatalf("kill %d (%s): the latest checkpoint went back from step %d to %d", done, moments[moment], prev, st.latest)
		}
		if logged := faultMaxStep(t, run); max(st.latest, 0) < logged-1 { // no checkpoint: training restarts at 0
			t.Fatalf("kill %d (%s): metrics reach step %d but the latest checkpoint is of step %d: more than the step in flight was lost",
				done, moments[moment], logged, st.latest)
		}
		prev = st.latest
	}
	if done < kills/2 {
		t.Errorf("only %d of %d kills before the run ended: the kill moments do not hold the run back as they should", done, kills)
	}
	c := faultStart(t, bin, args...)
	if code, out := c.wait(); code != 0 {
		t.Fatalf("the last resume failed (exit %d):\n%s", code, out)
	}
	st := faultInspect(t, run)
	if st.latest != steps {
		t.Fatalf("the run ended with checkpoint step %d, want %d", st.latest, steps)
	}
	faultCheckMetrics(t, run, steps)
	epochs := faultCheckSampleLog(t, samples, steps, faultTrainKeys(t, data))
	// Prune keeps the newest 3 checkpoints and clears the temporary files of older steps.
	for _, name := range st.temps {
		if step, _ := strconv.ParseInt(faultTempName.FindStringSubmatch(name)[1], 10, 64); step <= steps-3 {
			t.Errorf("%s: a temporary file of step %d outlived the pruning of its step", name, step)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("kill -9: %d kills (%d at start-up, %d mid-step, %d during a checkpoint write; %d left a half-written checkpoint temp file), "+
		"a resume after each; every time the latest checkpoint loaded and at most the step in flight was lost; "+
		"the kills brought it to step %d, the last resume to step %d with one metrics record per step and a sample log of %s; "+
		"left behind: %d checkpoint temp files, other temp files %q",
		done, tried[0], tried[1], tried[2], withTemps, prev, steps, epochs, len(st.temps), st.otherTemps)
}

// faultNames returns the names in directory dir.
func faultNames(dir string) map[string]bool {
	names := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

// faultWriting reports whether run holds a checkpoint file, under a temporary name or a final
// one, that was not among the names before: a checkpoint write has begun.
func faultWriting(run string, before map[string]bool) bool {
	for name := range faultNames(run) {
		if !before[name] && (faultTempName.MatchString(name) || faultFinalName.MatchString(name)) {
			return true
		}
	}
	return false
}

// faultFreshStart kills a run before its first checkpoint, then starts it again with
// --resume auto, which finds no checkpoint and starts afresh: the metrics and the sample log
// must then hold the new run alone, each step once.
func faultFreshStart(t *testing.T, bin, data string) {
	const steps = 6
	dir := t.TempDir()
	run, samples := filepath.Join(dir, "run"), filepath.Join(dir, "samples.jsonl")
	args := faultArgs(data, run, steps, 1000, "--resume", "auto", "--sample-log", samples) // a checkpoint only at the end
	c := faultStart(t, bin, args...)
	if !c.await(func() bool { return faultMaxStep(t, run) >= 2 }) {
		_, out := c.wait()
		t.Fatalf("the run ended before step 2:\n%s", out)
	}
	c.cmd.Process.Kill()
	if !c.killed() {
		t.Fatal("the run ended before the kill")
	}
	if st := faultInspect(t, run); st.latest != -1 {
		t.Fatalf("a checkpoint of step %d before the kill; want none", st.latest)
	}
	if code, out := faultStart(t, bin, args...).wait(); code != 0 {
		t.Fatalf("the fresh start failed (exit %d):\n%s", code, out)
	}
	if train, _ := faultStepCounts(t, filepath.Join(run, runlog.MetricsName), true); train[1] > 1 {
		t.Errorf("after a kill before the first checkpoint, --resume auto starts afresh but keeps the killed "+
			"attempt's records in metrics.jsonl and the sample log: step 1 logged %d times", train[1])
	}
	faultCheckMetrics(t, run, steps)
	epochs := faultCheckSampleLog(t, samples, steps, faultTrainKeys(t, data))
	if t.Failed() {
		return
	}
	t.Logf("kill -9 at step 2 before any checkpoint, then --resume auto: a fresh start whose metrics and sample log (%s) hold each step once", epochs)
}

// faultInterrupt stops a run with SIGTERM in its first epoch and with SIGINT in its second,
// resuming each time: exit status 128 + the signal's number (SIGTERM 143, SIGINT 130), a
// message naming the checkpoint, and a sample log in
// which no key of an epoch is seen twice and none is skipped.
func faultInterrupt(t *testing.T, bin, data string) {
	const steps = 36
	dir := t.TempDir()
	run, samples := filepath.Join(dir, "run"), filepath.Join(dir, "samples.jsonl")
	args := faultArgs(data, run, steps, 1000, "--sample-log", samples) // checkpoints only at the signals and the end
	said := regexp.MustCompile(`clipgo: training interrupted at step (\d+): checkpoint (\S+\.safetensors); continue with --resume latest`)
	var stops []string
	for i, stop := range []struct {
		name     string
		sig      syscall.Signal
		code     int   // exit status: 128 + the signal's number
		after    int64 // logged steps before the signal
		lo, hi   int64 // the step it must stop at lies in (lo, hi): inside an epoch
		resuming bool
	}{
		{"SIGTERM", syscall.SIGTERM, 143, 8, 0, faultStepsPerEpoch, false},
		{"SIGINT", syscall.SIGINT, 130, faultStepsPerEpoch + 4, faultStepsPerEpoch, 2 * faultStepsPerEpoch, true},
	} {
		a := args
		if stop.resuming {
			a = append(a, "--resume", "latest")
		}
		c := faultStart(t, bin, a...)
		if !c.await(func() bool { return faultMaxStep(t, run) >= stop.after }) {
			_, out := c.wait()
			t.Fatalf("run %d ended before step %d:\n%s", i+1, stop.after, out)
		}
		c.cmd.Process.Signal(stop.sig)
		code, out := c.wait()
		m := said.FindStringSubmatch(out)
		if code != stop.code || m == nil {
			t.Fatalf("%s: exit %d, output:\n%s\nwant exit %d and %q", stop.name, code, out, stop.code, said)
		}
		step, _ := strconv.ParseInt(m[1], 10, 64)
		if step <= stop.lo || step >= stop.hi {
			t.Fatalf("%s stopped the run at step %d, want a step inside (%d, %d): the test did not interrupt mid-epoch", stop.name, step, stop.lo, stop.hi)
		}
		latest, err := checkpoint.Latest(run)
		if err != nil || latest != m[2] {
			t.Fatalf("%s: the message names %s, checkpoint.Latest gives %s (%v)", stop.name, m[2], latest, err)
		}
		if meta := faultLoad(t, latest); meta.Step != step {
			t.Fatalf("%s records step %d, the message says %d", latest, meta.Step, step)
		}
		stops = append(stops, fmt.Sprintf("%s at step %d", stop.name, step))
	}
	c := faultStart(t, bin, append(args, "--resume", "latest")...)
	if code, out := c.wait(); code != 0 {
		t.Fatalf("the last resume failed (exit %d):\n%s", code, out)
	}
	faultCheckMetrics(t, run, steps)
	epochs := faultCheckSampleLog(t, samples, steps, faultTrainKeys(t, data))
	if t.Failed() {
		return
	}
	t.Logf("interrupts: %s, each exit 128+signal naming a checkpoint that loads; resumed to step %d; sample log: %s (%d training keys, none twice in an epoch, none skipped)",
		strings.Join(stops, ", "), steps, epochs, faultTrainImages)
}
