package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/testenv"
)

// buildCLI compiles cmd/clipgo once per test binary run.
func buildCLI(t *testing.T) string {
	t.Helper()
	skipUnderRace(t)
	bin := filepath.Join(t.TempDir(), "clipgo")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/clipgo")
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// skipUnderRace skips a test whose work runs in child processes: the race detector sees only
// the test binary, and the plain test run covers these.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("skipped under -race: its work runs in child processes, which the race detector does not instrument (the plain run covers it)")
	}
}

func run(t *testing.T, bin string, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func TestCLI(t *testing.T) {
	bin := buildCLI(t)
	root := testenv.RepoRoot(t)

	t.Run("prepare with a recipe, then inspect", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "demo")
		msg, err := run(t, bin, "", "prepare", "--config", filepath.Join(root, "configs/data/demo.yaml"),
			"--n", "120", "--zeroshot-n", "12", "--out", out)
		if err != nil {
			t.Fatalf("prepare: %v\n%s", err, msg)
		}
		m, err := shard.ReadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.ImageSize != 64 || m.Splits["train"].Images+m.Splits["val"].Images != 120 || m.Splits["zeroshot"].Images != 12 {
			t.Fatalf("manifest: size %d, splits %+v; want the recipe's 64 px and the flags' counts", m.ImageSize, m.Splits)
		}
		msg, err = run(t, bin, "", "inspect", out)
		if err != nil || !strings.Contains(msg, "132 rows") || !strings.Contains(msg, "required binary jpg") {
			t.Fatalf("inspect: %v\n%s", err, msg)
		}
		if msg, err := run(t, bin, "", "prepare", "--source", "synthetic", "--out", out); err == nil || !strings.Contains(msg, "already holds a dataset") {
			t.Fatalf("prepare over an existing dataset: %v\n%s", err, msg)
		}
	})

	t.Run("prepare Fashion-MNIST from the Debian package", func(t *testing.T) {
		images := "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
		if _, err := os.Stat(images); err != nil {
			testenv.Missing(t, "Fashion-MNIST not installed (make test-deps: apt-get install dataset-fashion-mnist)")
		}
		out := filepath.Join(t.TempDir(), "fmnist")
		msg, err := run(t, bin, "", "prepare", "--config", filepath.Join(root, "configs/data/fashion-mnist.yaml"), "--out", out)
		if err != nil {
			t.Fatalf("prepare: %v\n%s", err, msg)
		}
		m, err := shard.ReadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.Splits["train"].Images != 10000 || len(m.ClassNames) != 10 || m.ClassNames[9] != "ankle boot" {
			t.Fatalf("Fashion-MNIST: %d images, classes %q; want 10000 and the 10 names", m.Splits["train"].Images, m.ClassNames)
		}
	})

	t.Run("parity against the PyTorch reference", func(t *testing.T) {
		script := testenv.SharedFile(t, "peers/clip_step.py")
		py := "/usr/bin/python3"
		if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
			testenv.Missing(t, "/usr/bin/python3 cannot import torch (make test-deps: apt-get install python3-torch)")
		}
		d := t.TempDir()
		w, in, ref := filepath.Join(d, "w.st"), filepath.Join(d, "i.st"), filepath.Join(d, "ref.st")
		for _, args := range [][]string{
			{script, "export-random", "--preset", "tiny", "--batch-size", "16", "--seed", "3", "--weights", w, "--inputs", in},
			{script, "parity", "--weights", w, "--inputs", in, "--out", ref, "--dtype", "float64"},
		} {
			if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		msg, err := run(t, bin, "", "parity", "--weights", w, "--inputs", in, "--out", filepath.Join(d, "o.st"), "--reference", ref)
		if err != nil {
			t.Fatalf("clipgo parity: %v\n%s", err, msg)
		}
		var rep struct {
			Pass       bool    `json:"pass"`
			MaxOutErr  float64 `json:"max_output_rel_error"`
			MaxGradErr float64 `json:"max_grad_rel_error"`
		}
		if err := json.Unmarshal([]byte(msg), &rep); err != nil || !rep.Pass {
			t.Fatalf("parity report %q (%v): want a pass", msg, err)
		}
		t.Logf("parity: outputs %.2g, gradients %.2g", rep.MaxOutErr, rep.MaxGradErr)
		// A gradient that is off must fail the comparison.
		if msg, err := run(t, bin, "", "parity", "--weights", w, "--inputs", in, "--reference", ref, "--tol-grads", "1e-12"); err == nil {
			t.Fatalf("parity passed with a 1e-12 gradient tolerance: %s", msg)
		}
	})

	t.Run("errors are one clear line and a non-zero exit", func(t *testing.T) {
		for _, args := range [][]string{
			{"prepare", "--source", "captions", "--out", t.TempDir()},
			{"prepare", "--config", filepath.Join(t.TempDir(), "nope.yaml")},
			{"inspect", filepath.Join(t.TempDir(), "nothing.parquet")},
			{"tokenize", "--context-length", "1"},
			{"pretrain", "--config", "demo", "--out", t.TempDir(), "--set", "model.vision.heads=3"},
			{"pretrain", "--config", "demo", "--out", t.TempDir(), "--set", "data.train=/nonexistent"},
			{"parity", "--weights", filepath.Join(t.TempDir(), "w.st"), "--inputs", "x"},
		} {
			msg, err := run(t, bin, "x\n", args...)
			if err == nil || !strings.HasPrefix(msg, "clipgo: ") || strings.Contains(msg, "goroutine") {
				t.Errorf("clipgo %v: err %v, output %q; want a clipgo: error line", args, err, msg)
			}
		}
	})

	t.Run("tokenize matches OpenAI's ids", func(t *testing.T) {
		golden := testenv.SharedFile(t, "data/clip/golden_tokens.jsonl")
		f, err := os.Open(golden)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var texts []string
		var want [][]int32
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() && len(texts) < 200 {
			var g struct {
				Text      string  `json:"text"`
				Context77 []int32 `json:"context77"`
			}
			if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(g.Text, "\n\r") {
				continue // one text per line
			}
			texts, want = append(texts, g.Text), append(want, g.Context77)
		}
		out, err := run(t, bin, strings.Join(texts, "\n")+"\n", "tokenize")
		if err != nil {
			t.Fatalf("tokenize: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(texts) {
			t.Fatalf("%d output lines for %d texts", len(lines), len(texts))
		}
		for i, line := range lines {
			var got []int32
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			if !slices.Equal(got, want[i]) {
				t.Fatalf("text %q: got %v, want %v", texts[i], got, want[i])
			}
		}
	})
}
