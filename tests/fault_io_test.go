package tests

// Fault tests of the file system: a full disk, shards lost under a running job, a read-only
// output directory, missing inputs.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
)

// faultCleanError requires a failed clipgo run to have exited with status 1 and a
// "clipgo: " line naming every one of wants, with no panic or stack trace.
func faultCleanError(t *testing.T, code int, out string, wants ...string) {
	t.Helper()
	if code != 1 {
		t.Fatalf("exit status %d, want 1; output:\n%s", code, out)
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") || strings.Contains(out, "internal error") {
		t.Fatalf("a panic reached the user:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "clipgo: ") {
			continue
		}
		missing := false
		for _, w := range wants {
			missing = missing || !strings.Contains(line, w)
		}
		if !missing {
			return
		}
	}
	t.Fatalf("no clipgo: error line names %q; output:\n%s", wants, out)
}

// faultMount mounts a tmpfs with options at dir and unmounts it when the test ends.
func faultMount(t *testing.T, dir, options string) error {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount -t tmpfs -o %s: %v: %s", options, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return nil
}

// faultCheckpointLeft requires the run's latest checkpoint to be of step want and to load,
// with no temporary checkpoint file left behind.
func faultCheckpointLeft(t *testing.T, run string, want int64) {
	t.Helper()
	st := faultInspect(t, run)
	if st.latest != want {
		t.Fatalf("latest checkpoint of step %d, want the one of step %d", st.latest, want)
	}
	if len(st.temps) > 0 {
		t.Errorf("temporary checkpoint files left behind: %q", st.temps)
	}
}

// faultDiskFull makes writes to the run directory fail part-way through training, with a
// per-process file size limit (always) and with a full tmpfs (as root): the run must stop with
// an error naming the file, and the previous checkpoint must stay intact and loadable.
func faultDiskFull(t *testing.T, bin, data string) {
	t.Run("RLIMIT_FSIZE", func(t *testing.T) {
		// Go ignores SIGXFSZ, so a write past the limit returns EFBIG: "file too large".
		bash := testenv.Command(t, "bash", "apt-get install bash")
		const steps = 12
		for _, tc := range []struct {
			name     string
			limitKiB int // ulimit -f
			every    int
			want     string // the file named by the error
		}{
			{"a checkpoint over the limit", 1024, 2, "step-000004.optim.safetensors"}, // 12.9 MB optimiser file
			{"metrics.jsonl over the limit", 2, 100, runlog.MetricsName},              // ~220 bytes a step
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := filepath.Join(t.TempDir(), "run")
				if msg, err := run(t, bin, "", faultArgs(data, r, steps, tc.every, "--stop-at", "2")...); err != nil {
					t.Fatalf("the first 2 steps: %v\n%s", err, msg)
				}
				limited := append([]string{"-c", fmt.Sprintf(`ulimit -f %d && exec "$0" "$@"`, tc.limitKiB), bin},
					faultArgs(data, r, steps, tc.every, "--resume", "latest")...)
				code, out := faultStart(t, bash, limited...).wait()
				faultCleanError(t, code, out, filepath.Join(r, tc.want), "file too large")
				faultCheckpointLeft(t, r, 2)
				// Without the limit, the run goes on from that checkpoint to its end.
				if code, out := faultStart(t, bin, faultArgs(data, r, steps, tc.every, "--resume", "latest")...).wait(); code != 0 {
					t.Fatalf("resume without the limit: exit %d\n%s", code, out)
				}
				faultCheckMetrics(t, r, steps)
				if t.Failed() {
					return
				}
				t.Logf("RLIMIT_FSIZE %d KiB, %s: exit 1 naming %s (file too large), checkpoint of step 2 intact and loadable, the run then resumed to step %d",
					tc.limitKiB, tc.name, tc.want, steps)
			})
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("not root: a size-limited tmpfs needs mount (CAP_SYS_ADMIN); the RLIMIT_FSIZE variant covers a full disk")
		}
		// Measure a checkpoint pair, then size each file system to fill up inside the second one.
		ref := filepath.Join(t.TempDir(), "ref")
		if msg, err := run(t, bin, "", faultArgs(data, ref, 10, 1, "--stop-at", "1")...); err != nil {
			t.Fatalf("reference run: %v\n%s", err, msg)
		}
		model, optim := faultSize(t, checkpoint.ModelPath(ref, 1)), faultSize(t, checkpoint.OptimPath(checkpoint.ModelPath(ref, 1)))
		for _, tc := range []struct {
			name string
			size int64  // bytes of the file system
			want string // the file named by the error
		}{
			{"while the optimiser file is written", model + optim + optim/2, "step-000002.optim.safetensors"},
			{"while the model file is written", model + 2*optim + model/2, "step-000002.safetensors"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				mnt := t.TempDir()
				if err := faultMount(t, mnt, fmt.Sprintf("size=%dk", (tc.size+1023)/1024)); err != nil {
					t.Skipf("root, but %v; the RLIMIT_FSIZE variant covers a full disk", err)
				}
				r := filepath.Join(mnt, "run")
				code, out := faultStart(t, bin, faultArgs(data, r, 10, 1)...).wait()
				faultCleanError(t, code, out, filepath.Join(r, tc.want), "no space left on device")
				faultCheckpointLeft(t, r, 1)
				for _, p := range []string{checkpoint.ModelPath(r, 2), checkpoint.OptimPath(checkpoint.ModelPath(r, 2))} {
					if _, err := os.Stat(p); err == nil {
						t.Errorf("%s was left behind by the failed checkpoint", p)
					}
				}
				if t.Failed() {
					return
				}
				t.Logf("tmpfs of %d KiB full %s: exit 1 naming %s (no space left on device), checkpoint of step 1 intact and loadable, nothing of step 2 left",
					tc.size/1024, tc.name, tc.want)
			})
		}
	})
}

func faultSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// faultShards deletes, truncates or empties a training shard while a run reads the dataset:
// the run must stop with an error naming the shard, keeping the checkpoints it wrote.
func faultShards(t *testing.T, bin string) {
	failedAt := regexp.MustCompile(`clipgo: step (\d+): `)
	for _, tc := range []struct {
		name  string
		fault func(path string) error
	}{
		{"deleted", os.Remove},
		{"truncated to half", func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()/2)
		}},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const steps, every = 36, 4
			data := faultData(t, bin)
			victim := filepath.Join(data, "train", "train-00002.parquet")
			r := filepath.Join(t.TempDir(), "run")
			c := faultStart(t, bin, faultArgs(data, r, steps, every)...)
			if !c.await(func() bool { return faultMaxStep(t, r) >= 6 }) {
				_, out := c.wait()
				t.Fatalf("the run ended before step 6:\n%s", out)
			}
			if err := tc.fault(victim); err != nil {
				t.Fatal(err)
			}
			code, out := c.wait()
			faultCleanError(t, code, out, victim)
			m := failedAt.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("the error does not say at which step the run stopped:\n%s", out)
			}
			step, _ := strconv.ParseInt(m[1], 10, 64)
			faultCheckpointLeft(t, r, step/every*every)
			if t.Failed() {
				return
			}
			t.Logf("shard %s at step 6: the run stopped at step %d with exit 1 naming %s; its checkpoint of step %d intact and loadable",
				tc.name, step, filepath.Base(victim), step/every*every)
		})
	}
}

// faultReadOnly points the run directory and the sample log into a read-only directory: the
// run must refuse at start-up, naming the path, before any step. As root, permission bits do
// not stop writes, so the directory is a read-only tmpfs mount there; otherwise chmod 0555.
func faultReadOnly(t *testing.T, bin, data string) {
	ro, how := t.TempDir(), "chmod 0555"
	if os.Geteuid() == 0 {
		how = "a read-only tmpfs mount (root ignores chmod 0555)"
		if err := faultMount(t, ro, "ro,size=64k"); err != nil {
			t.Skipf("as root a read-only directory needs a read-only mount: %v", err)
		}
	} else {
		if err := os.Chmod(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
	}
	for _, tc := range []struct {
		name, run, want string
		extra           []string
	}{
		{"--out inside it", filepath.Join(ro, "run"), filepath.Join(ro, "run"), nil},
		{"--out is it", ro, ro, nil},
		{"--sample-log inside it", filepath.Join(t.TempDir(), "run"), filepath.Join(ro, "samples.jsonl"),
			[]string{"--sample-log", filepath.Join(ro, "samples.jsonl")}},
	} {
		code, out := faultStart(t, bin, faultArgs(data, tc.run, 4, 1, tc.extra...)...).wait()
		faultCleanError(t, code, out, tc.want)
		if n := faultMaxStep(t, tc.run); n > 0 || strings.Contains(out, "clipgo: step ") {
			t.Errorf("%s: the run trained (%d steps logged) before it failed:\n%s", tc.name, n, out)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("read-only output (%s): --out inside it, --out on it, --sample-log inside it: each exit 1 at start-up naming the path, no step run", how)
}

// faultMissing gives pretrain missing inputs: each must fail with the path named.
func faultMissing(t *testing.T, bin, data string) {
	empty := t.TempDir()
	nodata := filepath.Join(empty, "no-dataset")
	noCkpt := filepath.Join(empty, "step-000001.safetensors")
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"config file", "/nonexistent.yaml", []string{"pretrain", "--config", "/nonexistent.yaml", "--out", filepath.Join(t.TempDir(), "run")}},
		{"dataset", nodata, faultArgs(nodata, filepath.Join(t.TempDir(), "run"), 4, 1)},
		{"checkpoint to resume", noCkpt, faultArgs(data, filepath.Join(t.TempDir(), "run"), 4, 1, "--resume", noCkpt)},
		{"--resume latest without a checkpoint", empty, faultArgs(data, empty, 4, 1, "--resume", "latest")},
	} {
		code, out := faultStart(t, bin, tc.args...).wait()
		t.Run(tc.name, func(t *testing.T) { faultCleanError(t, code, out, tc.want) })
	}
	if t.Failed() {
		return
	}
	t.Logf("missing config file, dataset, checkpoint, and --resume latest with none: each exit 1 naming the path")
}
