package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// TestRecipeCLI is issue 17's end-to-end checks of the recipe and the run's length, through
// the binary: --version, --print-config (loaded back), recipe errors a person can act on,
// and a run given in epochs, with its start-up summary, stopped, resumed and lengthened.
func TestRecipeCLI(t *testing.T) {
	bin := buildCLI(t)
	root := testenv.RepoRoot(t)

	t.Run("version", func(t *testing.T) {
		out, err := run(t, bin, "", "--version")
		if err != nil {
			t.Fatalf("--version: %v\n%s", err, out)
		}
		re := regexp.MustCompile(`^clipgo (\(devel\)|v\S+), (commit ([0-9a-f]{40})( \(\S+\))?(, with uncommitted changes)?|commit unknown \(built without version control information\)), go1\.\S+\n$`)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("--version printed %q", out)
		}
		// What the go command stamped (none under -buildvcs=false, or outside a git tree):
		// --version must say the same, and nothing it did not stamp.
		info, err := exec.Command("go", "version", "-m", bin).Output()
		if err != nil {
			t.Fatalf("go version -m: %v", err)
		}
		stamped := regexp.MustCompile(`(?m)^\s+build\s+vcs\.revision=([0-9a-f]+)$`).FindSubmatch(info)
		switch {
		case stamped == nil && m[3] != "":
			t.Errorf("--version names commit %s, which the binary does not record", m[3])
		case stamped != nil && m[3] != string(stamped[1]):
			t.Errorf("--version %q, the binary records commit %s", out, stamped[1])
		}
		t.Logf("%s", strings.TrimSpace(out))
	})

	t.Run("print-config loads back", func(t *testing.T) {
		out, err := run(t, bin, "", "pretrain", "--print-config", "--set", "train.epochs=3", "--set", "model.loss=siglip")
		if err != nil {
			t.Fatalf("--print-config: %v\n%s", err, out)
		}
		for _, want := range []string{"epochs: 3", "loss: siglip", "beta2: 0.98", "max_bad_steps: 10", "model_preset: tiny"} {
			if !strings.Contains(out, want) {
				t.Errorf("--print-config lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "steps: 750") {
			t.Errorf("--set train.epochs left the demo recipe's train.steps:\n%s", out)
		}
		recipe := filepath.Join(t.TempDir(), "printed.yaml")
		if err := os.WriteFile(recipe, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := run(t, bin, "", "pretrain", "--print-config", "--config", recipe)
		if err != nil {
			t.Fatalf("the printed recipe does not load: %v\n%s", err, again)
		}
		if body(again) != body(out) {
			t.Errorf("printed, loaded and printed again:\n%s\nfirst:\n%s", again, out)
		}
	})

	t.Run("recipe errors say what to do", func(t *testing.T) {
		const head = "model_preset: tiny\ndata: {train: x}\n"
		for _, tc := range []struct{ body, want string }{
			{head + "train:\n  steps: 10\n  batch_size: 15.5\n", "line 5: train.batch_size: 15.5 is not a whole number"},
			{head + "train:\n  step: 10\n", `line 4: unknown key "train.step" (did you mean "steps"?); the keys here are: accum_steps, batch_size`},
			{head + "train: {steps: 10, epochs: 2}\n", "train.steps 10 and train.epochs 2: give one of them"},
			{head + "train: {batch_size: 8}\n", "the run's length is missing: give train.steps"},
			{"data: {train: x}\ntrain: {steps: 10}\n", "no model: give model_preset (one of "},
		} {
			recipe := filepath.Join(t.TempDir(), "r.yaml")
			if err := os.WriteFile(recipe, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, bin, "", "pretrain", "--config", recipe, "--out", t.TempDir())
			if err == nil || !strings.HasPrefix(out, "clipgo: ") || !strings.Contains(out, tc.want) {
				t.Errorf("recipe %q: %v, output %q; want a clipgo: error with %q", tc.body, err, out, tc.want)
			}
		}
		out, err := run(t, bin, "", "pretrain", "--print-config", "--set", "train.batch_size=12.5")
		if err == nil || !strings.Contains(out, `"12.5" is not an integer`) {
			t.Errorf("--set train.batch_size=12.5: %v, %q", err, out)
		}
	})

	t.Run("a run in epochs, resumed and lengthened", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		if msg, err := run(t, bin, "", "prepare", "--config", filepath.Join(root, "configs/data/demo.yaml"),
			"--n", "64", "--zeroshot-n", "4", "--val-count", "8", "--image-size", "32", "--out", data); err != nil {
			t.Fatalf("prepare: %v\n%s", err, msg)
		}
		runDir := filepath.Join(t.TempDir(), "run")
		args := []string{"pretrain", "--config", "demo", "--out", runDir}
		for _, s := range []string{"data.train=" + data, "data.val=" + data, "data.workers=1", "train.epochs=1",
			"model.vision.layers=1", "model.text.layers=1", "model.embed_dim=32", "model.vision.width=32", "model.text.width=32",
			"train.batch_size=8", "train.warmup=1", "train.log_every=1", "train.val_every=0", "train.checkpoint_every=100"} {
			args = append(args, "--set", s)
		}
		// 56 training pairs at batch 8: 7 steps per epoch.
		out := pretrainStderr(t, bin, append(args[1:], "--stop-at", "3")...)
		for _, want := range []string{"split_pairs=56", "steps_per_epoch=7", "steps=7", "from_step=0", "epochs=1",
			"steps 0..3", "stopped at step 3 of 7"} {
			if !strings.Contains(out, want) {
				t.Errorf("train.epochs 1 over 56 pairs at batch 8, stopped at 3: the output lacks %q:\n%s", want, out)
			}
		}
		out, err := run(t, bin, "", "pretrain", "--out", runDir, "--resume", "latest")
		if err != nil || !strings.Contains(out, "steps 3..7") {
			t.Fatalf("resume with the run's own recipe (train.epochs 1): %v\n%s", err, out)
		}
		full := pretrainStderr(t, bin, "--out", runDir, "--resume", "latest", "--set", "train.epochs=2")
		for _, want := range []string{"msg=run ", "params_vision=", "params_text=", "params_other=1 ", "split_pairs=56",
			"pairs_per_step=8", "steps_per_epoch=7", "steps=14", "from_step=7", "epochs=2", `length="train.epochs 2"`,
			"memory_estimate=", "threads=", "decode_workers=1", "steps 7..14"} {
			if !strings.Contains(full, want) {
				t.Errorf("lengthened to train.epochs 2: the output lacks %q:\n%s", want, full)
			}
		}
		cfg, err := os.ReadFile(filepath.Join(runDir, "config.yaml"))
		if err != nil || !strings.Contains(string(cfg), "epochs: 2") || strings.Contains(string(cfg), " steps:") {
			t.Errorf("config.yaml records the recipe's epochs, not derived steps: %v\n%s", err, cfg)
		}
		hist, err := os.ReadFile(filepath.Join(runDir, "config-history.jsonl"))
		if err != nil || !strings.Contains(string(hist), `"train.epochs"`) || !strings.Contains(string(hist), "train.steps raised") {
			t.Errorf("config-history.jsonl: %v\n%s", err, hist)
		}
	})
}

// body is a --print-config output without its comment lines (which name the recipe read).
func body(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// pretrainStderr runs clipgo pretrain with args and returns its stdout and stderr together,
// failing the test when it fails.
func pretrainStderr(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"pretrain"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("clipgo pretrain %v: %v\n%s", args, err, out)
	}
	return string(out)
}
