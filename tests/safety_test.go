package tests

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipgo/clipgo/fusion"
	lockfile "github.com/clipgo/clipgo/internal/runlock"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// TestSafety runs clipgo as a user (or a hostile input) would and inspects the processes:
// one writer per dataset directory, inputs that are not plain files, an index searched with
// other weights, task files with null entries, a zero-shot task of many classes, and the
// exit status of a stopping signal (issue 13, items 1, 8, 10, 12, 14, 15).
func TestSafety(t *testing.T) {
	bin := buildCLI(t)
	t.Run("one prepare per directory", func(t *testing.T) { safetyPrepareLock(t, bin) })
	t.Run("named pipes are refused by name", func(t *testing.T) { safetyFIFOs(t, bin) })
	t.Run("search refuses an index of other weights", func(t *testing.T) { safetySearchOtherWeights(t, bin) })
	t.Run("null class names are refused", func(t *testing.T) { safetyNullClass(t, bin) })
	t.Run("zero-shot of many classes is bounded", func(t *testing.T) { safetyManyClasses(t, bin) })
	t.Run("signals and cosmetics", func(t *testing.T) { safetySignalsAndCosmetics(t, bin) })
}

// safetyModel is a model small enough to embed thousands of prompts in a second.
func safetyModel() fusion.Config {
	return fusion.Config{EmbedDim: 16,
		Vision: vision.Config{ImageSize: 32, PatchSize: 16, Width: 16, Layers: 1, Heads: 2, MLPRatio: 2},
		Text:   text.Config{ContextLength: 16, VocabSize: 49408, Width: 16, Layers: 1, Heads: 2, MLPRatio: 2}}
}

// safetyCheckpoint saves a random safetyModel (seeded) as a run's checkpoint and returns its path.
func safetyCheckpoint(t *testing.T, seed int64) string {
	t.Helper()
	cfg := safetyModel()
	m, err := fusion.New(cfg, 2, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	raw, _ := json.Marshal(cfg)
	path, err := checkpoint.Save(t.TempDir(), 1, m.Params(), nil, checkpoint.Meta{Config: string(raw), Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// safetyRun runs clipgo to its end within limit and returns its exit status and output.
func safetyRun(t *testing.T, bin string, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	c := faultStart(t, bin, args...)
	select {
	case <-c.done:
	case <-time.After(limit):
		c.cmd.Process.Kill()
		_, out := c.wait()
		t.Fatalf("clipgo %s still running after %s (blocked?):\n%s", strings.Join(args, " "), limit, out)
	}
	return c.wait()
}

func safetyMkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo %s: %v", path, err)
	}
	return path
}

// safetyPrepareLock: a second prepare into a directory a running prepare holds is refused
// naming the holder; after kill -9 of the holder, the next prepare takes over with a warning.
func safetyPrepareLock(t *testing.T, bin string) {
	out := filepath.Join(t.TempDir(), "ds")
	first := faultStart(t, bin, "prepare", "--source", "synthetic", "--n", "2000000", "--zeroshot-n", "0", "--image-size", "32", "--workers", "1", "--out", out)
	lockFile := filepath.Join(out, lockfile.FileName)
	if !first.await(func() bool {
		b, err := os.ReadFile(lockFile)
		return err == nil && strings.Contains(string(b), `"pid"`)
	}) {
		_, msg := first.wait()
		t.Fatalf("the first prepare ended before taking its lock:\n%s", msg)
	}
	pid := first.cmd.Process.Pid
	code, msg := safetyRun(t, bin, 30*time.Second, "prepare", "--source", "synthetic", "--n", "10", "--zeroshot-n", "0", "--image-size", "32", "--out", out)
	if code == 0 || !strings.Contains(msg, fmt.Sprintf("is in use by pid %d", pid)) || !strings.Contains(msg, "prepare") {
		t.Fatalf("second prepare into %s while pid %d writes it: exit %d, output:\n%s\nwant a refusal naming pid %d", out, pid, code, msg, pid)
	}
	first.cmd.Process.Kill()
	if !first.killed() {
		t.Fatal("the first prepare was not ended by SIGKILL")
	}
	code, msg = safetyRun(t, bin, 60*time.Second, "prepare", "--source", "synthetic", "--n", "10", "--zeroshot-n", "0", "--image-size", "32", "--out", out)
	if code != 0 || !strings.Contains(msg, fmt.Sprintf("took over the lock of pid %d", pid)) {
		t.Fatalf("prepare after kill -9 of pid %d: exit %d, output:\n%s\nwant success with a warning naming the dead holder", pid, code, msg)
	}
	if _, err := os.Stat(lockFile); err == nil {
		t.Error("the lock file outlived the prepare that took it over")
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t.Errorf("no manifest after the takeover: %v", err)
	}
}

// safetyFIFOs: zeroshot, search and prepare given a named pipe where a file is expected exit
// at once with a message naming it (before, each blocked in open or read, deaf to SIGTERM).
func safetyFIFOs(t *testing.T, bin string) {
	dir := t.TempDir()
	ckpt := safetyCheckpoint(t, 1)
	data := filepath.Join(dir, "data")
	if code, msg := safetyRun(t, bin, 60*time.Second, "prepare", "--source", "synthetic", "--n", "20", "--zeroshot-n", "0", "--image-size", "32", "--out", data); code != 0 {
		t.Fatalf("prepare: exit %d\n%s", code, msg)
	}
	index := filepath.Join(dir, "index.parquet")
	if code, msg := safetyRun(t, bin, 60*time.Second, "embed", "--checkpoint", ckpt, "--data", data, "--out", index, "--batch", "8"); code != 0 {
		t.Fatalf("embed: exit %d\n%s", code, msg)
	}
	fifo := func(name string) string { return safetyMkfifo(t, filepath.Join(dir, name)) }
	folder := filepath.Join(dir, "folder")
	safetyFolder(t, folder, []string{"a", "b"})
	for _, tc := range []struct {
		name string
		args func() ([]string, string) // the command line and the named pipe it holds
	}{
		{"zeroshot --task", func() ([]string, string) {
			p := fifo("task.yaml")
			return []string{"zeroshot", "--checkpoint", ckpt, "--data", folder, "--task", p, "--out", filepath.Join(dir, "zs.json")}, p
		}},
		{"zeroshot --checkpoint", func() ([]string, string) {
			p := fifo("model.safetensors")
			return []string{"zeroshot", "--checkpoint", p, "--data", folder, "--task", "mnist", "--out", filepath.Join(dir, "zs.json")}, p
		}},
		{"search --index", func() ([]string, string) {
			p := fifo("fifo.parquet")
			return []string{"search", "--checkpoint", ckpt, "--index", p, "--query", "a red circle"}, p
		}},
		{"search --image", func() ([]string, string) {
			p := fifo("query.png")
			return []string{"search", "--checkpoint", ckpt, "--index", index, "--image", p}, p
		}},
		{"prepare --captions", func() ([]string, string) {
			p := fifo("captions.tsv")
			return []string{"prepare", "--source", "captions", "--captions", p, "--images", folder, "--out", filepath.Join(dir, "out-captions")}, p
		}},
		{"prepare --config", func() ([]string, string) {
			p := fifo("recipe.yaml")
			return []string{"prepare", "--config", p, "--source", "synthetic", "--out", filepath.Join(dir, "out-config")}, p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, p := tc.args()
			start := time.Now()
			code, msg := safetyRun(t, bin, 20*time.Second, args...)
			if code != 1 || !strings.Contains(msg, p+" is a named pipe (FIFO), not a regular file") {
				t.Fatalf("clipgo %s: exit %d after %s, output:\n%s\nwant exit 1 naming %s as a named pipe", strings.Join(args, " "), code, time.Since(start), msg, p)
			}
		})
	}
}

// safetyFolder writes an image folder: one 32 px PNG per class.
func safetyFolder(t *testing.T, root string, classes []string) {
	t.Helper()
	for i, c := range classes {
		d := filepath.Join(root, c)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		img := image.NewRGBA(image.Rect(0, 0, 32, 32))
		for p := range img.Pix {
			img.Pix[p] = uint8(i*37 + p*(1+i%7))
		}
		f, err := os.Create(filepath.Join(d, "0.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// safetySearchOtherWeights: an index made with one checkpoint is refused by search with
// another of the same architecture, unless --force.
func safetySearchOtherWeights(t *testing.T, bin string) {
	dir := t.TempDir()
	a, b := safetyCheckpoint(t, 1), safetyCheckpoint(t, 2)
	data := filepath.Join(dir, "data")
	if code, msg := safetyRun(t, bin, 60*time.Second, "prepare", "--source", "synthetic", "--n", "20", "--zeroshot-n", "0", "--image-size", "32", "--out", data); code != 0 {
		t.Fatalf("prepare: exit %d\n%s", code, msg)
	}
	index := filepath.Join(dir, "index.parquet")
	if code, msg := safetyRun(t, bin, 60*time.Second, "embed", "--checkpoint", a, "--data", data, "--out", index, "--batch", "8"); code != 0 {
		t.Fatalf("embed: exit %d\n%s", code, msg)
	}
	if code, msg := safetyRun(t, bin, 60*time.Second, "search", "--checkpoint", a, "--index", index, "--query", "a red circle", "-k", "3"); code != 0 || strings.Count(msg, "\n") < 3 {
		t.Fatalf("search with the index's own checkpoint: exit %d\n%s", code, msg)
	}
	code, msg := safetyRun(t, bin, 60*time.Second, "search", "--checkpoint", b, "--index", index, "--query", "a red circle", "-k", "3")
	if code != 1 || !strings.Contains(msg, "was made with "+a) || !strings.Contains(msg, "--force") {
		t.Fatalf("search with other weights: exit %d, output:\n%s\nwant exit 1 naming the index's checkpoint and --force", code, msg)
	}
	code, msg = safetyRun(t, bin, 60*time.Second, "search", "--checkpoint", b, "--index", index, "--query", "a red circle", "-k", "3", "--force")
	if code != 0 || !strings.Contains(msg, "searching an index made with other weights") {
		t.Fatalf("search --force with other weights: exit %d, output:\n%s\nwant results and a warning", code, msg)
	}
}

// safetyNullClass: a null entry in a task's class names (which YAML drops, shifting every
// later label) is refused naming its index.
func safetyNullClass(t *testing.T, bin string) {
	dir := t.TempDir()
	ckpt := safetyCheckpoint(t, 1)
	folder := filepath.Join(dir, "folder")
	safetyFolder(t, folder, []string{"a", "b", "c"})
	for _, tc := range []struct{ name, yaml, want string }{
		{"null class", "classnames:\n  - a\n  -\n  - c\n  - d\ntemplates: [\"a photo of a {}.\"]\n", "classnames[1] (line 3) is empty"},
		{"null template", "classnames: [a, b, c]\ntemplates: [\"a {}.\", ~]\n", "templates[1] (line 2) is empty"},
	} {
		task := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		if err := os.WriteFile(task, []byte(tc.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		code, msg := safetyRun(t, bin, 60*time.Second, "zeroshot", "--checkpoint", ckpt, "--data", folder, "--task", task, "--out", filepath.Join(dir, "zs.json"))
		if code != 1 || !strings.Contains(msg, tc.want) || !strings.Contains(msg, task) {
			t.Errorf("%s: exit %d, output:\n%s\nwant exit 1 saying %q", tc.name, code, msg, tc.want)
		}
	}
}

// safetyManyClasses: a zero-shot task of 1,000 classes writes bounded details (the per-class
// table and the top confusions, not the 1,000×1,000 matrix).
func safetyManyClasses(t *testing.T, bin string) {
	const C = 1000
	dir := t.TempDir()
	ckpt := safetyCheckpoint(t, 1)
	names := make([]string, C)
	for c := range names {
		names[c] = fmt.Sprintf("c%04d", c)
	}
	folder := filepath.Join(dir, "folder")
	safetyFolder(t, folder, names)
	task := filepath.Join(dir, "task.yaml")
	if err := os.WriteFile(task, []byte("classnames: ["+strings.Join(names, ", ")+"]\ntemplates: [\"a photo of a {}.\", \"a {}.\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "zs.json")
	code, msg := safetyRun(t, bin, 5*time.Minute, "zeroshot", "--checkpoint", ckpt, "--data", folder, "--task", task, "--out", out)
	if code != 0 {
		t.Fatalf("zeroshot of %d classes: exit %d\n%s", C, code, msg)
	}
	details := strings.TrimSuffix(out, ".json") + ".details.json"
	st, err := os.Stat(details)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(details)
	var det struct {
		Confusion [][]int          `json:"confusion_matrix"`
		Top       []map[string]any `json:"top_confusions"`
		PerClass  []map[string]any `json:"per_class"`
	}
	if err := json.Unmarshal(raw, &det); err != nil {
		t.Fatal(err)
	}
	if det.Confusion != nil || len(det.Top) == 0 || len(det.PerClass) != C || st.Size() > 1<<20 {
		t.Fatalf("details of %d classes: %d bytes, matrix rows %d, %d top confusions, %d per-class rows; want under 1 MiB, no matrix, the top confusions and every class",
			C, st.Size(), len(det.Confusion), len(det.Top), len(det.PerClass))
	}
}

// safetySignalsAndCosmetics: SIGTERM exits 143 and SIGINT 130; --val-fraction NaN is
// refused; reject details in rejects.jsonl carry no escaped quotes.
func safetySignalsAndCosmetics(t *testing.T, bin string) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		out := filepath.Join(t.TempDir(), "ds")
		c := faultStart(t, bin, "prepare", "--source", "synthetic", "--n", "2000000", "--zeroshot-n", "0", "--image-size", "32", "--workers", "1", "--out", out)
		if !c.await(func() bool { _, err := os.Stat(filepath.Join(out, "rejects.jsonl")); return err == nil }) {
			_, msg := c.wait()
			t.Fatalf("prepare ended early:\n%s", msg)
		}
		c.cmd.Process.Signal(tc.sig)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("prepare still running 30 s after %s", tc.sig)
		}
		if code, msg := c.wait(); code != tc.code || !strings.Contains(msg, "interrupted") {
			t.Errorf("prepare stopped by %s: exit %d, want %d; output:\n%s", tc.sig, code, tc.code, msg)
		}
	}

	code, msg := safetyRun(t, bin, 30*time.Second, "prepare", "--source", "synthetic", "--val-fraction", "NaN", "--out", filepath.Join(t.TempDir(), "nan"))
	if code != 1 || !strings.Contains(msg, "--val-fraction NaN is outside [0, 1)") {
		t.Errorf("--val-fraction NaN: exit %d, output:\n%s", code, msg)
	}

	dir := t.TempDir()
	safetyFolder(t, filepath.Join(dir, "img"), []string{"a"})
	captions := filepath.Join(dir, "c.csv")
	if err := os.WriteFile(captions, []byte("image,caption\na/0.png,a thing\n../x.png,escapes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if code, msg := safetyRun(t, bin, 60*time.Second, "prepare", "--source", "captions", "--captions", captions, "--images", filepath.Join(dir, "img"), "--image-size", "32", "--out", out); code != 0 {
		t.Fatalf("prepare captions: exit %d\n%s", code, msg)
	}
	rejects, _ := os.ReadFile(filepath.Join(out, "rejects.jsonl"))
	if !strings.Contains(string(rejects), `"detail":"path '../x.png' leaves the images root"`) || strings.Contains(string(rejects), `\"`) {
		t.Errorf("rejects.jsonl: %s\nwant the path quoted readably, without escaped quotes", rejects)
	}
}
