package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
	"github.com/clipgo/clipgo/stages/train"
)

// distSets is a small data-parallel run: 16 pairs per step, checkpoints every 3 steps.
var distSets = []string{"train.steps=6", "train.batch_size=16", "train.warmup=1", "train.log_every=1", "train.val_every=3",
	"train.checkpoint_every=3", "train.val_batches=1", "model.vision.layers=1", "model.text.layers=1", "data.workers=1"}

// compareRuns requires two runs to agree: the loss at every step (relative error ≤ 1e-5), the
// final parameters as one vector (‖Δθ‖/‖θ‖ ≤ 1e-5), and each parameter tensor (≤ 1e-4). It
// returns the worst loss error, the whole vector's error and the worst tensor's.
//
// Float32 sums in another order differ in the last bits, and AdamW normalises each gradient
// element by its own running magnitude, so an element whose gradient is near zero turns that
// rounding into a full-size step: zero-initialised biases, small after a few steps, show it
// most (worst seen 1.4e-5 on a query bias), hence the per-tensor bound. The key third of each
// in_proj_bias is left out of it: attention is invariant to a key bias (it adds the same value
// to every score of a query), so its true gradient is zero and its value, pure rounding noise
// amplified by AdamW, changes nothing the model computes.
func compareRuns(t *testing.T, want, got string, steps int64) (lossErr, vecErr, tensorErr float64) {
	t.Helper()
	wl, gl := readLosses(t, want), readLosses(t, got)
	if int64(len(wl)) != steps || int64(len(gl)) != steps {
		t.Fatalf("logged %d and %d steps, want %d each", len(wl), len(gl), steps)
	}
	for step, l := range wl {
		e := math.Abs(gl[step]-l) / math.Abs(l)
		lossErr = max(lossErr, e)
		if e > 1e-5 {
			t.Errorf("step %d: loss %v, one process %v (relative error %.2e)", step, gl[step], l, e)
		}
	}
	last := fmt.Sprintf("/step-%06d.safetensors", steps)
	a, b := readTensors(t, want+last), readTensors(t, got+last)
	var dAll, nAll float64
	worst := ""
	for name, v := range a {
		var d, n float64
		keys := len(v) / 3 // the key slice of an in_proj_bias [3W]
		for i, x := range v {
			dx := float64(b[name][i] - x)
			dAll += dx * dx
			nAll += float64(x) * float64(x)
			if strings.HasSuffix(name, "attn.in_proj_bias") && i >= keys && i < 2*keys {
				continue
			}
			d += dx * dx
			n += float64(x) * float64(x)
		}
		if n == 0 {
			continue
		}
		if e := math.Sqrt(d / n); e > tensorErr {
			tensorErr, worst = e, name
		}
	}
	vecErr = math.Sqrt(dAll / nAll)
	if vecErr > 1e-5 {
		t.Errorf("after %d steps, the parameters differ from one process by %.2e (relative)", steps, vecErr)
	}
	if tensorErr > 1e-4 {
		t.Errorf("after %d steps, parameter %s differs from one process by %.2e (relative)", steps, worst, tensorErr)
	}
	t.Logf("worst tensor: %s", worst)
	return lossErr, vecErr, tensorErr
}

// TestDataParallelInProcess runs the data-parallel trainer on 2 ranks joined in memory (no
// MPI), stopped and resumed part-way, against one process drawing the same two data streams
// with the whole batch.
func TestDataParallelInProcess(t *testing.T) {
	data := prepareSynthetic(t, 400)
	ctx := context.Background()
	one := filepath.Join(t.TempDir(), "one")
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, append(distSets, "data.streams=2")...), RunDir: one}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(t.TempDir(), "two")
	for _, part := range []struct {
		resume string
		stopAt int64
	}{{"", 2}, {"latest", 0}} {
		comms := dist.NewLocalGroup(2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for r, c := range comms {
			wg.Go(func() {
				_, errs[r] = train.Run(ctx, train.Options{Config: demoConfig(t, data, distSets...), RunDir: two,
					Resume: part.resume, StopAt: part.stopAt, Comm: c}, quiet, io.Discard)
				if errs[r] != nil {
					c.Abort(1)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("2 ranks, resume %q: %v", part.resume, err)
		}
	}
	lossErr, vecErr, tensorErr := compareRuns(t, one, two, 6)
	t.Logf("2 in-memory ranks (stopped at step 2, resumed) vs 1 process: loss %.2e, parameters %.2e, worst tensor %.2e (relative errors)", lossErr, vecErr, tensorErr)
	m, err := checkpoint.ReadMeta(two + "/step-000006.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Streams) != 2 {
		t.Errorf("the checkpoint records %d data streams, want 2", len(m.Streams))
	}
}

// mpiEnv is the environment of a loopback-only Open MPI job run as root; plm isolated starts the
// ranks locally without looking for ssh, which a container may lack.
var mpiEnv = []string{"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMPI_MCA_btl_tcp_if_include=lo",
	"OMPI_MCA_oob_tcp_if_include=lo", "OMPI_MCA_btl=self,tcp", "OMPI_MCA_plm=isolated"}

// buildMPICLI compiles cmd/clipgo with MPI (CC=mpicc, tag mpi), or skips without Open MPI.
func buildMPICLI(t *testing.T) (bin, mpirun string) {
	t.Helper()
	skipUnderRace(t)
	mpicc := testenv.Command(t, "mpicc", "apt-get install libopenmpi-dev openmpi-bin")
	mpirun = testenv.Command(t, "mpirun", "apt-get install openmpi-bin")
	bin = filepath.Join(t.TempDir(), "clipgo-mpi")
	cmd := exec.Command("go", "build", "-tags", "mpi", "-o", bin, "./cmd/clipgo")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CC="+mpicc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags mpi: %v\n%s", err, out)
	}
	return bin, mpirun
}

// mpiCommand is mpirun -np n bin args... on loopback.
func mpiCommand(mpirun string, n int, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(mpirun, append([]string{"-np", strconv.Itoa(n), "--bind-to", "none", "--oversubscribe", bin}, args...)...)
	cmd.Env = append(os.Environ(), mpiEnv...)
	return cmd
}

func pretrainArgs(data, run string, sets ...string) []string {
	args := []string{"pretrain", "--config", "demo", "--out", run, "--set", "data.train=" + data, "--set", "data.val=" + data}
	for _, s := range append(slices.Clone(distSets), sets...) {
		args = append(args, "--set", s)
	}
	return args
}

// TestMPIPretrain is the equivalence test on real ranks: mpirun -np 2 clipgo pretrain, stopped
// and resumed on 2 ranks, against one process with the whole batch and the same data.
func TestMPIPretrain(t *testing.T) {
	bin, mpirun := buildMPICLI(t)
	data := prepareSynthetic(t, 400)
	one := filepath.Join(t.TempDir(), "one")
	if out, err := exec.Command(bin, pretrainArgs(data, one, "data.streams=2")...).CombinedOutput(); err != nil {
		t.Fatalf("one process: %v\n%s", err, out)
	}
	two := filepath.Join(t.TempDir(), "two")
	for _, extra := range [][]string{{"--stop-at", "2"}, {"--resume", "latest"}} {
		out, err := mpiCommand(mpirun, 2, bin, append(pretrainArgs(data, two), extra...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mpirun -np 2 %v: %v\n%s", extra, err, out)
		}
		if !strings.Contains(string(out), "data parallel on 2 ranks") {
			t.Fatalf("mpirun -np 2 %v did not train on 2 ranks:\n%s", extra, out)
		}
	}
	lossErr, vecErr, tensorErr := compareRuns(t, one, two, 6)
	t.Logf("mpirun -np 2 (stopped at step 2, resumed on 2 ranks) vs 1 process: loss %.2e, parameters %.2e, worst tensor %.2e (relative errors)", lossErr, vecErr, tensorErr)

	// The same checkpoint continues on one process that draws the run's two streams.
	cont := filepath.Join(t.TempDir(), "cont")
	if err := os.CopyFS(cont, os.DirFS(two)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"step-000006.safetensors", "step-000006.optim.safetensors"} {
		os.Remove(filepath.Join(cont, f))
	}
	if out, err := exec.Command(bin, append(pretrainArgs(data, cont, "data.streams=2"), "--resume", "latest")...).CombinedOutput(); err != nil {
		t.Fatalf("resume a 2-rank run on one process: %v\n%s", err, out)
	}
	lossErr, vecErr, tensorErr = compareRuns(t, one, cont, 6)
	t.Logf("2 ranks to step 3, then 1 process: loss %.2e, parameters %.2e, worst tensor %.2e (relative errors)", lossErr, vecErr, tensorErr)
}

// TestMPIRankDies kills one rank of a running job: the job must end promptly with a message
// naming the rank, and --resume latest continues from the last checkpoint.
func TestMPIRankDies(t *testing.T) {
	bin, mpirun := buildMPICLI(t)
	data := prepareSynthetic(t, 400)
	run := filepath.Join(t.TempDir(), "run")
	args := pretrainArgs(data, run, "train.steps=400", "train.checkpoint_every=2", "train.val_every=0")
	out, after, err := signalJob(t, mpirun, 2, bin, args, "-KILL", 1, func() bool {
		_, err := checkpoint.Latest(run)
		return err == nil
	})
	if err == nil {
		t.Fatalf("mpirun exited 0 after rank 1 was killed:\n%s", out)
	}
	t.Logf("rank 1 killed: mpirun ended %.1f s later with %v", after.Seconds(), err)
	if !strings.Contains(out, "rank 1") {
		t.Errorf("no message names rank 1:\n%s", out)
	}
	step := resumeTwoSteps(t, mpirun, bin, run, args)
	t.Logf("resumed from the checkpoint of step %d", step)
}

// toMpirun, as signalJob's target, signals mpirun itself rather than a rank.
const toMpirun = -1

// signalJob starts mpirun -np n bin args, waits until ready (60 s at most), sends sig to rank
// target alone (or to mpirun), and waits (60 s at most) for the job to end; it returns the
// job's output, the time from the signal to the end, and its exit error.
func signalJob(t *testing.T, mpirun string, n int, bin string, args []string, sig string, target int, ready func() bool) (string, time.Duration, error) {
	t.Helper()
	cmd := mpiCommand(mpirun, n, bin, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("not ready to be signalled after 60 s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	pid := cmd.Process.Pid
	if target != toMpirun {
		pid = rankPID(t, pid, target)
	}
	if err := exec.Command("kill", sig, strconv.Itoa(pid)).Run(); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case err := <-done:
		return out.String(), time.Since(sent), err
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the job still runs 60 s after kill %s to rank %d:\n%s", sig, target, out.String())
	}
	return "", 0, nil
}

// resumeTwoSteps continues run from its latest checkpoint on 2 ranks for two steps, and
// returns the checkpoint's step.
func resumeTwoSteps(t *testing.T, mpirun, bin, run string, args []string) int64 {
	t.Helper()
	latest, err := checkpoint.Latest(run)
	if err != nil {
		t.Fatalf("no usable checkpoint: %v", err)
	}
	meta, err := checkpoint.ReadMeta(latest)
	if err != nil {
		t.Fatal(err)
	}
	target := meta.Step + 2
	res, err := mpiCommand(mpirun, 2, bin, append(args, "--resume", "latest", "--stop-at", strconv.FormatInt(target, 10))...).CombinedOutput()
	if err != nil || !strings.Contains(string(res), fmt.Sprintf("steps %d..%d", meta.Step, target)) {
		t.Fatalf("resume from step %d: %v\n%s", meta.Step, err, res)
	}
	return meta.Step
}

// rankPID finds the process of a rank under mpirun by its OMPI_COMM_WORLD_RANK.
func rankPID(t *testing.T, mpirunPID, rank int) int {
	t.Helper()
	want := fmt.Sprintf("OMPI_COMM_WORLD_RANK=%d\x00", rank)
	for range 100 {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err != nil || !strings.Contains(string(env), want) {
				continue
			}
			if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(stat), "clipgo") {
				return pid
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no process of rank %d under mpirun %d", rank, mpirunPID)
	return 0
}

// TestMPIWrongBuild: a clipgo built without MPI, started by mpirun -np 2, refuses to run as
// two separate one-rank jobs.
func TestMPIWrongBuild(t *testing.T) {
	mpirun := testenv.Command(t, "mpirun", "apt-get install openmpi-bin")
	bin := buildCLI(t)
	data := prepareSynthetic(t, 100)
	out, err := mpiCommand(mpirun, 2, bin, pretrainArgs(data, filepath.Join(t.TempDir(), "run"))...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "built without MPI") {
		t.Fatalf("mpirun -np 2 of a build without MPI: %v\n%s", err, out)
	}
}

// TestMPISignal stops a job cleanly by SIGTERM to rank 1 alone, and by SIGUSR1 to mpirun
// (which forwards it to every rank): the ranks agree to stop after the same step, rank 0 writes
// its checkpoint before any rank exits, and the run resumes from it.
func TestMPISignal(t *testing.T) {
	bin, mpirun := buildMPICLI(t)
	data := prepareSynthetic(t, 400)
	for _, c := range []struct {
		sig    string
		target int
	}{{"-TERM", 1}, {"-USR1", toMpirun}} {
		run := filepath.Join(t.TempDir(), "run")
		args := pretrainArgs(data, run, "train.steps=400", "train.checkpoint_every=1000", "train.val_every=0")
		out, _, _ := signalJob(t, mpirun, 2, bin, args, c.sig, c.target, func() bool {
			return countLines(readFile(filepath.Join(run, runlog.MetricsName))) >= 3
		})
		if !strings.Contains(out, "training interrupted at step") {
			t.Fatalf("kill %s: rank 0 did not report the interruption:\n%s", c.sig, out)
		}
		latest, err := checkpoint.Latest(run)
		if err != nil {
			t.Fatalf("kill %s: no checkpoint after the interruption: %v\n%s", c.sig, err, out)
		}
		if !strings.Contains(out, latest) {
			t.Errorf("kill %s: the message does not name %s:\n%s", c.sig, latest, out)
		}
		step := resumeTwoSteps(t, mpirun, bin, run, args)
		t.Logf("kill %s to %s: both ranks stopped after step %d with its checkpoint, and the run resumed from it",
			c.sig, map[bool]string{true: "mpirun", false: "rank 1"}[c.target == toMpirun], step)
	}
}

func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}
