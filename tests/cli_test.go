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
	bin := filepath.Join(t.TempDir(), "clipgo")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/clipgo")
	cmd.Dir = testenv.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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

	t.Run("errors are one clear line and a non-zero exit", func(t *testing.T) {
		for _, args := range [][]string{
			{"prepare", "--source", "captions", "--out", t.TempDir()},
			{"prepare", "--config", filepath.Join(t.TempDir(), "nope.yaml")},
			{"inspect", filepath.Join(t.TempDir(), "nothing.parquet")},
			{"tokenize", "--context-length", "1"},
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
