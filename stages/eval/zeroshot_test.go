package eval

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/configs"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/data/synth"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/metrics"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// evalModelConfig is a model small enough to build and run in a test.
func evalModelConfig() fusion.Config {
	return fusion.Config{EmbedDim: 16,
		Vision: vision.Config{ImageSize: 32, PatchSize: 16, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4},
		Text:   text.Config{ContextLength: 16, VocabSize: 49408, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4}}
}

// evalCheckpoint saves a randomly initialised evalModelConfig model as a pretrain checkpoint.
func evalCheckpoint(t *testing.T) string {
	t.Helper()
	return stagetest.Checkpoint(t, evalModelConfig(), 3)
}

// evalDataset prepares a synthetic dataset: n training scenes (split train/val) and
// zeroShotN labelled zero-shot scenes, at the test model's image size.
func evalDataset(t *testing.T, n, zeroShotN int) string {
	t.Helper()
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "synthetic"))
	cfg.Source, cfg.ImageSize, cfg.ValFraction = "synthetic", 32, 0.5
	cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = n, zeroShotN
	stagetest.Prepare(t, cfg)
	return cfg.Out
}

func TestBuiltInTasks(t *testing.T) {
	fashion := []string{"T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}
	for _, tc := range []struct {
		name      string
		classes   int
		templates int
		check     func(Task) string
	}{
		{"synthetic", synth.NumClasses, 7, func(task Task) string {
			if !slices.Equal(task.ClassNames, synth.Classes()) {
				return "class names differ from synth.Classes()"
			}
			return ""
		}},
		{"mnist", 10, 1, func(task Task) string {
			if task.ClassNames[7] != "7" || task.Templates[0] != `a photo of the number: "{}".` {
				return "not OpenAI's MNIST prompt"
			}
			return ""
		}},
		{"cifar10", 10, 18, func(task Task) string {
			if task.ClassNames[0] != "airplane" || task.ClassNames[9] != "truck" || task.Templates[17] != "a photo of the big {}." {
				return "not OpenAI's CIFAR-10 prompts"
			}
			return ""
		}},
		{"fashion-mnist", 10, 6, func(task Task) string {
			for i, want := range fashion { // the label order of Fashion-MNIST
				if got := task.ClassNames[i]; !strings.Contains(strings.ToLower(want), strings.TrimSuffix(got, "s")) {
					return "class " + got + " is not label " + want
				}
			}
			return ""
		}},
	} {
		task, err := LoadTask(tc.name)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(task.ClassNames) != tc.classes || len(task.Templates) != tc.templates {
			t.Errorf("%s: %d classes, %d templates; want %d, %d", tc.name, len(task.ClassNames), len(task.Templates), tc.classes, tc.templates)
			continue
		}
		if msg := tc.check(task); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
	entries, err := fs.ReadDir(configs.FS, "zeroshot")
	if err != nil || len(entries) != len(TaskNames()) || len(entries) < 4 {
		t.Errorf("TaskNames() = %v for %d embedded files (%v)", TaskNames(), len(entries), err)
	}
	task, _ := LoadTask("synthetic")
	if got := task.Prompts(2); got[1] != "a photo of a red triangle." || len(got) != len(task.Templates) {
		t.Errorf("Prompts(2) = %q", got)
	}
}

func TestParseTaskErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"no placeholder", "classnames: [a, b]\ntemplates: [\"a photo of a {}.\", \"a photo.\"]", `templates[1] 'a photo.' has 0 {} placeholders`},
		{"two placeholders", "classnames: [a]\ntemplates: [\"{} and {}\"]", "has 2 {} placeholders"},
		{"list", "- a\n- b\n", "not a mapping"},
		{"scalar", "hello", "not a mapping"},
		{"empty", "", "empty file"},
		{"unknown key", "classnames: [a]\ntemplates: [\"{}\"]\nclasses: [b]", "field classes not found"},
		{"no classes", "templates: [\"{}\"]", "no classnames"},
		{"no templates", "classnames: [a]", "no templates"},
		{"duplicate class", "classnames: [a, b, a]\ntemplates: [\"{}\"]", `classnames[2] 'a' repeats classnames[0]`},
		{"null class in a block list", "classnames:\n  - a\n  -\n  - c\ntemplates: [\"{}\"]", "classnames[1] (line 3) is empty"},
		{"null class in a flow list", "classnames: [a, null, c]\ntemplates: [\"{}\"]", "classnames[1] (line 1) is empty"},
		{"tilde class", "classnames: [a, b, ~]\ntemplates: [\"{}\"]", "classnames[2] (line 1) is empty"},
		{"empty string class", "classnames: [a, \"\", c]\ntemplates: [\"{}\"]", "classnames[1] is empty"},
		{"null template", "classnames: [a]\ntemplates:\n  - \"{}\"\n  -\n", "templates[1] (line 4) is empty"},
		{"empty template", "classnames: [a]\ntemplates: [\"{}\", \"\"]", "templates[1] is empty"},
		{"quoted template", "classnames: [a]\ntemplates: ['a \"photo\"']", `templates[0] 'a "photo"' has 0 {} placeholders`},
		{"empty class", "classnames: [a, \" \"]\ntemplates: [\"{}\"]", "classnames[1] is empty"},
		{"wrong type", "classnames: {a: 1}\ntemplates: [\"{}\"]", "cannot unmarshal"},
		{"two documents", "classnames: [a]\ntemplates: [\"{}\"]\n---\nclassnames: [b]\n", "more than one YAML document"},
		{"bad yaml", "classnames: [a\ntemplates: x", "not YAML"},
		{"long template", "classnames: [a]\ntemplates: [\"{}" + strings.Repeat("x", MaxPromptBytes) + "\"]", "more than the limit"},
		{"too many classes", "classnames: [" + strings.Repeat("a,", MaxTaskClasses+1) + "]\ntemplates: [\"{}\"]", "more than the limit"},
	} {
		_, err := ParseTask("t.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "t.yaml") {
			t.Errorf("%s: error %v, want one naming t.yaml and saying %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadTaskFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		stagetest.Must(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := write("two.yml", "classnames: [cat, dog]\ntemplates: [\"a photo of a {}.\"]\n")
	if task, err := LoadTask(good); err != nil || len(task.ClassNames) != 2 || task.Name != good {
		t.Errorf("LoadTask(%s) = %+v, %v", good, task, err)
	}
	for _, tc := range []struct{ ref, want string }{
		{write("task.txt", "classnames: [a]\ntemplates: [\"{}\"]"), `unknown file format ".txt"`},
		{write("task.json", `{"classnames": ["a"], "templates": ["{}"]}`), `unknown file format ".json"`},
		{filepath.Join(dir, "missing.yaml"), "no such file"},
		{"imagenet", `no such built-in task`},
		{"", "none given"},
	} {
		if _, err := LoadTask(tc.ref); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadTask(%q): error %v, want %q", tc.ref, err, tc.want)
		}
	}
}

func FuzzParseTask(f *testing.F) {
	for _, name := range TaskNames() {
		raw, err := fs.ReadFile(configs.FS, "zeroshot/"+name+".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("classnames: [a, b]\ntemplates: [\"{}\"]"))
	f.Add([]byte("classnames: &x [a, *x]\ntemplates: [\"{}\"]"))
	f.Add([]byte("- [a]\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		task, err := ParseTask("fuzz", raw)
		if err != nil {
			return
		}
		if task.Validate() != nil || len(task.ClassNames) == 0 || len(task.Templates) == 0 {
			t.Fatalf("accepted an invalid task %+v", task)
		}
		for c := range task.ClassNames {
			for _, p := range task.Prompts(c) {
				if !strings.Contains(p, task.ClassNames[c]) {
					t.Fatalf("prompt %q lacks class %q", p, task.ClassNames[c])
				}
			}
		}
	})
}

func TestZeroShotOnSyntheticScenes(t *testing.T) {
	ckpt, data := evalCheckpoint(t), evalDataset(t, 12, 20)
	out := filepath.Join(t.TempDir(), "eval", "zeroshot.json")
	var report bytes.Buffer
	res, err := ZeroShot(context.Background(), ZeroShotOptions{Checkpoint: ckpt, Data: data, Task: "synthetic", Out: out, Batch: 64, Report: &report, Log: stagetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	got, det, err := evalfile.Read(out)
	if err != nil || det == nil {
		t.Fatalf("evalfile.Read: %v, details %v", err, det)
	}
	if got.Task != evalfile.TaskZeroShot || got.Dataset != "synthetic:zeroshot" || got.Pretrained != ckpt || !strings.Contains(got.Model, "ViT-16/32") {
		t.Errorf("result header %+v", got)
	}
	if keys := slices.Sorted(maps.Keys(got.Metrics)); !slices.Equal(keys, []string{"acc1", "acc5", "mean_per_class_recall"}) {
		t.Errorf("metrics %v, want acc1, acc5, mean_per_class_recall", keys)
	}
	for k, v := range got.Metrics {
		if !(v >= 0 && v <= 1) || v != res.Metrics[k] {
			t.Errorf("%s = %v (returned %v), want a share in [0,1]", k, v, res.Metrics[k])
		}
	}
	if got.Metrics["acc5"] < got.Metrics["acc1"] {
		t.Errorf("acc5 %v < acc1 %v", got.Metrics["acc5"], got.Metrics["acc1"])
	}
	if det.Images != 20 || len(det.ClassNames) != synth.NumClasses || len(det.Confusion) != synth.NumClasses || len(det.PerClass) != synth.NumClasses {
		t.Fatalf("details: %d images, %d classes, %d confusion rows, %d per-class rows", det.Images, len(det.ClassNames), len(det.Confusion), len(det.PerClass))
	}
	// The confusion matrix holds every image once, in the rows of the held-out classes only,
	// and acc1 and the per-class table agree with it.
	total, diag := 0, 0
	for c, row := range det.Confusion {
		n := 0
		for _, k := range row {
			n += k
		}
		total, diag = total+n, diag+row[c]
		held := isHeldOut(c)
		if (n > 0) != held {
			t.Errorf("class %s: %d images, held out %v", det.ClassNames[c], n, held)
		}
		if s := det.PerClass[c]; s.Count != n || s.Class != det.ClassNames[c] || (n > 0 && math.Abs(s.Recall-float64(row[c])/float64(n)) > 1e-12) {
			t.Errorf("per-class row %+v for confusion row %v", s, row)
		}
	}
	if total != 20 || math.Abs(got.Metrics["acc1"]-float64(diag)/20) > 1e-12 {
		t.Errorf("confusion holds %d images, %d right; acc1 %v", total, diag, got.Metrics["acc1"])
	}
	if f, err := os.Open(evalfile.ConfusionPath(out)); err != nil {
		t.Error(err)
	} else {
		if _, err := png.Decode(f); err != nil {
			t.Errorf("confusion picture: %v", err)
		}
		f.Close()
	}
	if !strings.Contains(report.String(), "acc1") || !strings.Contains(report.String(), "red triangle") {
		t.Errorf("report lacks the metrics or the per-class table:\n%s", report.String())
	}

	// The same images in batches of 3 (several padded model calls) give the same result.
	out3 := filepath.Join(t.TempDir(), "zs3.json")
	res3, err := ZeroShot(context.Background(), ZeroShotOptions{Checkpoint: ckpt, Data: data, Split: "zeroshot", Task: "synthetic", Out: out3, Batch: 3, Log: stagetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range res.Metrics {
		if res3.Metrics[k] != v {
			t.Errorf("%s: %v in batches of 64, %v in batches of 3", k, v, res3.Metrics[k])
		}
	}
}

// isHeldOut reports whether class index c is a held-out colour × shape pair.
func isHeldOut(c int) bool {
	return slices.ContainsFunc(synth.HeldOut(), func(p synth.Pair) bool { return p.Index() == c })
}

// writeFolder writes an image folder: per class, n small PNGs of the class's colour.
func writeFolder(t *testing.T, classes map[string]color.RGBA, n int) string {
	t.Helper()
	root := t.TempDir()
	for name, c := range classes {
		stagetest.Must(t, os.MkdirAll(filepath.Join(root, name), 0o755))
		for i := range n {
			img := image.NewRGBA(image.Rect(0, 0, 20+i, 20))
			for p := 0; p < len(img.Pix); p += 4 {
				img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = c.R, c.G, c.B, 255
			}
			var b bytes.Buffer
			stagetest.Must(t, png.Encode(&b, img))
			stagetest.Must(t, os.WriteFile(filepath.Join(root, name, string(rune('a'+i))+".png"), b.Bytes(), 0o644))
		}
	}
	return root
}

func writeTask(t *testing.T, classes ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "task.yaml")
	body := "classnames: [" + strings.Join(classes, ", ") + "]\ntemplates: [\"a photo of a {}.\", \"a {} square.\"]\n"
	stagetest.Must(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestZeroShotOnAnImageFolderAndIDXFiles(t *testing.T) {
	ckpt := evalCheckpoint(t)
	root := writeFolder(t, map[string]color.RGBA{"blue": {0, 0, 255, 255}, "red": {255, 0, 0, 255}}, 3)
	out := filepath.Join(t.TempDir(), "folder.json")
	res, err := ZeroShot(context.Background(), ZeroShotOptions{Checkpoint: ckpt, Data: root, Task: writeTask(t, "blue", "red"), Out: out, Log: stagetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Metrics["acc5"]; ok || len(res.Metrics) != 2 {
		t.Errorf("2 classes: metrics %v, want acc1 and mean_per_class_recall only", res.Metrics)
	}
	_, det, _ := evalfile.Read(out)
	if det.Images != 6 || det.PerClass[0].Count != 3 || det.PerClass[1].Count != 3 {
		t.Errorf("details %+v, want 3 images of each class", det)
	}

	dir := t.TempDir()
	const n, side = 7, 28
	imgs := []byte{0, 0, 0x08, 3, 0, 0, 0, n, 0, 0, 0, side, 0, 0, 0, side}
	lbls := []byte{0, 0, 0x08, 1, 0, 0, 0, n}
	for i := range n {
		for p := 0; p < side*side; p++ {
			imgs = append(imgs, byte(i*30+p))
		}
		lbls = append(lbls, byte(i*9%10))
	}
	stagetest.Must(t, os.WriteFile(filepath.Join(dir, "images"), imgs, 0o644))
	stagetest.Must(t, os.WriteFile(filepath.Join(dir, "labels"), lbls, 0o644))
	out = filepath.Join(t.TempDir(), "mnist.json")
	res, err = ZeroShot(context.Background(), ZeroShotOptions{Checkpoint: filepath.Dir(ckpt), Data: filepath.Join(dir, "images"), Labels: filepath.Join(dir, "labels"),
		Task: "mnist", Out: out, Log: stagetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, det, _ := evalfile.Read(out); det.Images != n || res.Dataset != "images" || len(res.Metrics) != 3 || res.Pretrained != ckpt {
		t.Errorf("IDX: %+v, %d images", res, det.Images)
	}
}

// TestZeroShotManyClassesStreams: class weights built a block at a time equal those built
// from every prompt at once, and past MaxConfusionClasses the details hold the per-class
// table and the top confusions, not the C×C matrix.
func TestZeroShotManyClassesStreams(t *testing.T) {
	ckpt := evalCheckpoint(t)
	const C = evalfile.MaxConfusionClasses + 44
	names := make([]string, C)
	colours := map[string]color.RGBA{}
	for c := range names {
		names[c] = fmt.Sprintf("c%03d", c)
		colours[names[c]] = color.RGBA{uint8(c * 37), uint8(c * 11), uint8(c), 255}
	}
	task := Task{Name: "many", ClassNames: names, Templates: []string{"a photo of a {}.", "a {} square.", "{}"}}
	model, err := evalmodel.Open(ckpt, 8, false)
	stagetest.Must(t, err)
	defer model.Close()
	var all []string
	for c := range C {
		all = append(all, task.Prompts(c)...)
	}
	flat, err := model.Enc.Texts(all)
	stagetest.Must(t, err)
	E := model.Enc.Dim()
	emb := make([][][]float32, C)
	for c := range emb {
		for k := range task.Templates {
			r := c*len(task.Templates) + k
			emb[c] = append(emb[c], flat[r*E:(r+1)*E])
		}
	}
	want, _, err := metrics.ZeroShotClassifier(emb)
	stagetest.Must(t, err)
	defer func(b int) { classifierBlockPrompts = b }(classifierBlockPrompts)
	classifierBlockPrompts = 40 // 5 encoder batches of 8 per block; blocks end mid-class
	got, dim, err := classifier(model.Enc, task)
	stagetest.Must(t, err)
	if dim != E || !slices.Equal(got, want) {
		t.Fatalf("streamed class weights differ from those of all prompts at once")
	}

	root := writeFolder(t, colours, 1)
	taskFile := writeTask(t, names...)
	out := filepath.Join(t.TempDir(), "many.json")
	res, err := ZeroShot(context.Background(), ZeroShotOptions{Checkpoint: ckpt, Data: root, Task: taskFile, Out: out, Batch: 16, Log: stagetest.Quiet})
	stagetest.Must(t, err)
	_, det, err := evalfile.Read(out)
	stagetest.Must(t, err)
	if det.Confusion != nil || len(det.PerClass) != C || det.Images != C || !strings.Contains(det.Note, "top_confusions") {
		t.Errorf("details: confusion %v rows, %d per-class rows, %d images, note %q; want no matrix, %d rows and images, a note",
			len(det.Confusion), len(det.PerClass), det.Images, det.Note, C)
	}
	wrong := 0
	for _, s := range det.PerClass {
		wrong += s.Count - int(math.Round(s.Recall*float64(s.Count)))
	}
	sum := 0
	for i, p := range det.TopConfusions {
		sum += p.Count
		if p.True == p.Predicted || (i > 0 && p.Count > det.TopConfusions[i-1].Count) {
			t.Errorf("top confusion %d %+v: on the diagonal or out of order", i, p)
		}
	}
	if sum != wrong || len(det.TopConfusions) > evalfile.MaxTopConfusions {
		t.Errorf("top confusions hold %d wrong images in %d cells; the per-class table says %d", sum, len(det.TopConfusions), wrong)
	}
	if acc := res.Metrics["acc1"]; math.Abs(acc-float64(C-wrong)/C) > 1e-12 {
		t.Errorf("acc1 %v, per-class table says %v", acc, float64(C-wrong)/C)
	}
	if _, err := os.Stat(evalfile.ConfusionPath(out)); err == nil {
		t.Error("drew a confusion picture of more classes than it holds")
	}
}

func TestZeroShotErrors(t *testing.T) {
	ckpt := evalCheckpoint(t)
	data := evalDataset(t, 12, 8)
	// A dataset whose manifest names fewer classes than its labels use.
	liar := filepath.Join(t.TempDir(), "liar")
	stagetest.Must(t, os.CopyFS(liar, os.DirFS(data)))
	m, err := shard.ReadManifest(liar)
	if err != nil {
		t.Fatal(err)
	}
	m.ClassNames = []string{"red circle", "red square"}
	stagetest.Must(t, shard.WriteManifest(liar, m))

	notCkpt := filepath.Join(t.TempDir(), "x.safetensors")
	stagetest.Must(t, os.WriteFile(notCkpt, []byte("not a checkpoint"), 0o644))
	emptyFolder := t.TempDir()
	stagetest.Must(t, os.MkdirAll(filepath.Join(emptyFolder, "cat"), 0o755))
	stagetest.Must(t, os.MkdirAll(filepath.Join(emptyFolder, "dog"), 0o755))
	folder := writeFolder(t, map[string]color.RGBA{"a": {}, "b": {}, "c": {}}, 1)
	badTemplate := filepath.Join(t.TempDir(), "bad.yaml")
	stagetest.Must(t, os.WriteFile(badTemplate, []byte("classnames: [a, b]\ntemplates: [\"a photo\"]\n"), 0o644))

	for _, tc := range []struct {
		name string
		opts ZeroShotOptions
		want string
	}{
		{"missing checkpoint", ZeroShotOptions{Checkpoint: filepath.Join(t.TempDir(), "none.safetensors"), Data: data, Task: "synthetic"}, "no such file"},
		{"no checkpoint", ZeroShotOptions{Data: data, Task: "synthetic"}, "--checkpoint is required"},
		{"run without checkpoints", ZeroShotOptions{Checkpoint: t.TempDir(), Data: data, Task: "synthetic"}, "no checkpoint in"},
		{"not a checkpoint", ZeroShotOptions{Checkpoint: notCkpt, Data: data, Task: "synthetic"}, "checkpoint: " + notCkpt},
		{"template without {}", ZeroShotOptions{Checkpoint: ckpt, Data: data, Task: badTemplate}, `templates[0] 'a photo' has 0 {} placeholders`},
		{"unknown task format", ZeroShotOptions{Checkpoint: ckpt, Data: data, Task: "task.csv"}, "unknown file format"},
		{"class count mismatch", ZeroShotOptions{Checkpoint: ckpt, Data: data, Task: "cifar10"}, "names 48 classes but task cifar10 has 10"},
		{"labels beyond the task", ZeroShotOptions{Checkpoint: ckpt, Data: liar, Task: writeTask(t, "red circle", "red square")}, "but task"},
		{"unlabelled split", ZeroShotOptions{Checkpoint: ckpt, Data: data, Split: "train", Task: "synthetic"}, "has no labels"},
		{"unknown split", ZeroShotOptions{Checkpoint: ckpt, Data: data, Split: "test", Task: "synthetic"}, `no split "test"`},
		{"empty eval set", ZeroShotOptions{Checkpoint: ckpt, Data: emptyFolder, Task: writeTask(t, "cat", "dog")}, "no image to classify"},
		{"folder classes mismatch", ZeroShotOptions{Checkpoint: ckpt, Data: folder, Task: writeTask(t, "a", "b")}, "names 3 classes but task"},
		{"missing data", ZeroShotOptions{Checkpoint: ckpt, Data: filepath.Join(t.TempDir(), "nothing"), Task: "synthetic"}, "no such file"},
		{"labels with a directory", ZeroShotOptions{Checkpoint: ckpt, Data: data, Labels: "labels", Task: "mnist"}, "is a directory"},
		{"no out", ZeroShotOptions{Checkpoint: ckpt, Data: data, Task: "synthetic"}, "--out is required"},
	} {
		if tc.opts.Out == "" && tc.name != "no out" {
			tc.opts.Out = filepath.Join(t.TempDir(), "r.json")
		}
		tc.opts.Log = stagetest.Quiet
		_, err := ZeroShot(context.Background(), tc.opts)
		t.Logf("%s: %v", tc.name, err)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if tc.opts.Out != "" {
			if _, statErr := os.Stat(tc.opts.Out); statErr == nil {
				t.Errorf("%s: a result was written despite the error", tc.name)
			}
		}
	}
}
