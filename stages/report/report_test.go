package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/clipgo/clipgo/internal/plots"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/stages/runlog"
)

// fakeRun writes a run directory: a metrics log of 300 steps with validation every 100 and a
// half-written last line, a config, and, when evals is set, a zero-shot result over 48
// classes and a retrieval result with examples in both directions.
func fakeRun(t *testing.T, evals bool) string {
	t.Helper()
	dir := t.TempDir()
	var m bytes.Buffer
	enc := json.NewEncoder(&m)
	for step := 10; step <= 300; step += 10 {
		x := float64(step)
		stagetest.Must(t, enc.Encode(map[string]any{"step": step, "epoch": 0, "loss": 4.2*math.Exp(-x/120) + 0.4,
			"logit_scale": 14.3 + x/100, "lr": 1e-3 * math.Min(1, x/50), "grad_norm": 5 * math.Exp(-x/200),
			"samples_per_s": 200 + float64(step%7), "stall_s": 0, "elapsed_s": x / 3}))
		if step%100 == 0 {
			stagetest.Must(t, enc.Encode(map[string]any{"step": step, "val_loss": 3*math.Exp(-x/100) + 0.6,
				"val_i2t_acc": x / 500, "val_t2i_acc": x / 550, "val_batches": 14}))
		}
	}
	m.WriteString(`{"step":310,"loss":0.7,"lo`)
	stagetest.Must(t, os.WriteFile(filepath.Join(dir, "metrics.jsonl"), m.Bytes(), 0o644))
	stagetest.Must(t, os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("model_preset: tiny\ndata:\n    train: shapes-train\n    val: shapes-val\n    val_split: test\ntrain:\n    steps: 300\n    note: <b>not bold</b>\n"), 0o644))
	for _, step := range []string{"000200", "000300"} { // names are all the report looks at
		stagetest.Must(t, os.WriteFile(filepath.Join(dir, "step-"+step+".safetensors"), nil, 0o644))
	}
	if !evals {
		return dir
	}
	stagetest.Must(t, os.Mkdir(filepath.Join(dir, "eval"), 0o755))
	counts, names := fakeConfusion(48)
	var per []evalfile.ClassScore
	for i, name := range names {
		sum := 0
		for _, c := range counts[i] {
			sum += c
		}
		per = append(per, evalfile.ClassScore{Class: name, Count: sum, Recall: float64(counts[i][i]) / float64(sum), Top: names[(i+1)%48]})
	}
	stagetest.Must(t, evalfile.Write(filepath.Join(dir, "eval", "zeroshot.json"),
		evalfile.Result{Dataset: "synthetic", Model: "tiny", Pretrained: filepath.Join(dir, "step-000300.safetensors"), Task: "zeroshot_classification",
			Metrics: map[string]float64{"acc1": 0.61, "acc5": 0.93, "mean_per_class_recall": 0.6}},
		evalfile.Details{ClassNames: names, PerClass: per, Confusion: counts, Images: 960}))

	var examples []evalfile.Example
	for q := range 3 {
		ex := evalfile.Example{Direction: "text_to_image", Query: fmt.Sprintf("a red circle number %d <script>", q)}
		for r := range 5 {
			ex.Results = append(ex.Results, evalfile.Hit{Key: fmt.Sprintf("img-%d", r), Image: thumb(t, r),
				Score: 0.9 - 0.1*float64(r), Correct: r == q})
		}
		examples = append(examples, ex)
		ex = evalfile.Example{Direction: "image_to_text", Query: fmt.Sprintf("img-%d", q), QueryImg: thumb(t, q)}
		for r := range 5 {
			ex.Results = append(ex.Results, evalfile.Hit{Key: fmt.Sprintf("img-%d", r), Text: fmt.Sprintf("caption %d", r),
				Score: 0.5, Correct: r == 2})
		}
		examples = append(examples, ex)
	}
	examples[0].Results[0].Image = "javascript:alert(1)" // must not reach the page
	stagetest.Must(t, evalfile.Write(filepath.Join(dir, "eval", "retrieval.json"),
		evalfile.Result{Dataset: "synthetic-captions", Model: "tiny", Pretrained: "/elsewhere/model.safetensors", Task: "zeroshot_retrieval",
			Metrics: map[string]float64{"image_retrieval_recall@5": 0.71, "text_retrieval_recall@5": 0.8,
				"image_retrieval_recall@1": 0.3, "text_retrieval_recall@1": 0.4}},
		evalfile.Details{Examples: examples, Images: 200, Texts: 1000}))
	return dir
}

func fakeConfusion(n int) ([][]int, []string) {
	colours := []string{"red", "green", "blue", "yellow", "purple", "orange", "white", "black"}
	shapes := []string{"circle", "square", "triangle", "star", "cross", "ring"}
	counts := make([][]int, n)
	names := make([]string, n)
	for i := range n {
		counts[i] = make([]int, n)
		counts[i][i] = 12 + i%8
		counts[i][(i+1)%n] = 8 - i%8
		names[i] = colours[i%8] + " " + shapes[i/8%6]
	}
	return counts, names
}

// thumb returns a 32×32 JPEG data URI of a flat colour.
func thumb(t *testing.T, i int) string {
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	c := color.RGBA{uint8(60 * i), 120, uint8(255 - 50*i), 255}
	for y := range 32 {
		for x := range 32 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	stagetest.Must(t, jpeg.Encode(&b, img, nil))
	return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// page is a parsed report: its text, tables and images (decoded).
type page struct {
	text   string
	tables int
	rows   int
	images []image.Image
	srcs   []string
	byName map[string][][]string // the tables with a class attribute: rows of cell texts
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// tableRows returns the rows of table n as cell texts (th and td).
func tableRows(n *html.Node) [][]string {
	var rows [][]string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			var cells []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
					cells = append(cells, textOf(c))
				}
			}
			rows = append(rows, cells)
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return rows
}

func parseReport(t *testing.T, path string) page {
	t.Helper()
	raw, err := os.ReadFile(path)
	stagetest.Must(t, err)
	doc, err := html.Parse(bytes.NewReader(raw))
	stagetest.Must(t, err)
	var p page
	var text strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch {
		case n.Type == html.TextNode:
			text.WriteString(n.Data)
		case n.Type == html.ElementNode && n.Data == "table":
			p.tables++
			if c := attr(n, "class"); c != "" {
				if p.byName == nil {
					p.byName = map[string][][]string{}
				}
				p.byName[c] = append(p.byName[c], tableRows(n)...)
			}
		case n.Type == html.ElementNode && n.Data == "tr":
			p.rows++
		case n.Type == html.ElementNode && n.Data == "script":
			t.Errorf("a script element in the report")
		}
		for _, a := range n.Attr {
			if a.Key == "href" || (a.Key == "src" && n.Data != "img") {
				t.Errorf("external reference %s=%q", a.Key, a.Val)
			}
			if a.Key == "src" {
				p.srcs = append(p.srcs, a.Val)
				kind, payload, ok := strings.Cut(a.Val, ";base64,")
				if !ok || !strings.HasPrefix(kind, "data:image/") {
					t.Errorf("image source %.60q is not an inline image", a.Val)
					continue
				}
				data, err := base64.StdEncoding.DecodeString(payload)
				if err != nil {
					t.Fatalf("image %s: %v", kind, err)
				}
				img, _, err := image.Decode(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("image %s: %v", kind, err)
				}
				p.images = append(p.images, img)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	p.text = text.String()
	return p
}

func pngSize(t *testing.T, path string) (int, int) {
	t.Helper()
	f, err := os.Open(path)
	stagetest.Must(t, err)
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg.Width, cfg.Height
}

func countSize(imgs []image.Image, w, h int) int {
	n := 0
	for _, img := range imgs {
		if b := img.Bounds(); b.Dx() == w && b.Dy() == h {
			n++
		}
	}
	return n
}

func TestReport(t *testing.T) {
	run := fakeRun(t, true)
	out := filepath.Join(t.TempDir(), "rep")
	if d := os.Getenv("REPORT_KEEP"); d != "" {
		out = d
	}
	path, err := Write(Options{RunDir: run, Out: out})
	stagetest.Must(t, err)
	if path != filepath.Join(out, "report.html") {
		t.Errorf("path %s", path)
	}
	p := parseReport(t, path)

	curves := []string{"loss.png", "val_accuracy.png", "logit_scale.png", "lr.png", "samples_per_s.png", "grad_norm.png"}
	for _, f := range curves {
		if w, h := pngSize(t, filepath.Join(out, f)); w != plots.CurvesWidth || h != plots.CurvesHeight {
			t.Errorf("%s: %dx%d", f, w, h)
		}
	}
	cw, ch := plots.ConfusionSize(48, 48)
	if w, h := pngSize(t, filepath.Join(out, "zeroshot.confusion.png")); w != cw || h != ch {
		t.Errorf("confusion: %dx%d, want %dx%d", w, h, cw, ch)
	}
	if n := countSize(p.images, plots.CurvesWidth, plots.CurvesHeight); n != len(curves) {
		t.Errorf("%d inline curves, want %d", n, len(curves))
	}
	if n := countSize(p.images, cw, ch); n != 1 {
		t.Errorf("%d inline confusion matrices, want 1", n)
	}
	// 3 text→image queries × 5 results (one dropped: not an image) and 3 query images.
	if n := countSize(p.images, 32, 32); n != 3*5-1+3 {
		t.Errorf("%d inline thumbnails, want %d", n, 3*5-1+3)
	}
	for _, want := range []string{
		fmt.Sprintf("%.4f at step 10", 4.2*math.Exp(-10.0/120)+0.4), // the first loss
		"last line (34) is incomplete",                              // after 30 training and 3 validation records
		"<b>not bold</b>",                                           // config shown as text
		"acc1", "0.6100", "top-1 accuracy",
		"mean per-class recall (balanced accuracy)",
		"image retrieval R@5 (text→image)", "text retrieval R@1 (image→text)", "0.7100",
		"purple triangle", "caption 2", "a red circle number 0 <script>",
		"Text → image", "Image → text",
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("report text lacks %q", want)
		}
	}
	if !strings.Contains(p.text, fmt.Sprintf("%.4f at step 300", 4.2*math.Exp(-300.0/120)+0.4)) {
		t.Errorf("report lacks the last loss")
	}
	// describes, summary, validation, 2 metric tables, per-class, top confusions: 7 tables;
	// rows: 3 validation + header, 3 + 4 metrics + 2 headers, 48 classes + header.
	if p.tables != 7 {
		t.Errorf("%d tables, want 7", p.tables)
	}
	// What the report is about: the run, its checkpoints, its data, each evaluation's checkpoint.
	absRun, _ := filepath.Abs(run)
	desc := map[string]string{}
	for _, r := range p.byName["describes"] {
		desc[r[0]] = r[1]
	}
	for name, want := range map[string]string{
		"run directory":        absRun,
		"checkpoints":          "newest " + filepath.Join(absRun, "step-000300.safetensors") + " (step 300); 1 older, from step 200",
		"model":                "preset tiny",
		"training data":        "shapes-train (split train)",
		"validation data":      "shapes-val (split test)",
		"evaluation zeroshot":  "dataset synthetic · checkpoint " + filepath.Join(run, "step-000300.safetensors") + " (this run's newest checkpoint (step 300))",
		"evaluation retrieval": "dataset synthetic-captions · checkpoint /elsewhere/model.safetensors (not a checkpoint of this run)",
	} {
		if desc[name] != want {
			t.Errorf("describes %s: %q, want %q", name, desc[name], want)
		}
	}
	// 48 classes: the largest confusions listed, largest first.
	top := p.byName["top-confusions"]
	if len(top) != 1+25 || !slices.Equal(top[1], []string{"red circle", "green circle", "8", "40.0%"}) {
		t.Errorf("top confusions: %d rows, first %v", len(top), top[min(1, len(top)-1)])
	}
	if p.rows < 4+9+49 {
		t.Errorf("%d table rows", p.rows)
	}
	for _, s := range p.srcs {
		if strings.Contains(s, "javascript") {
			t.Error("an unsafe image source reached the page")
		}
	}
	// Retrieval metrics read in order: R@1 before R@5, text→image before image→text.
	i1, i5, t1 := strings.Index(p.text, "image_retrieval_recall@1"), strings.Index(p.text, "image_retrieval_recall@5"), strings.Index(p.text, "text_retrieval_recall@1")
	if !(i1 < i5 && i5 < t1) {
		t.Errorf("metric order: %d %d %d", i1, i5, t1)
	}
}

func TestReportKeepsEvalConfusion(t *testing.T) {
	run := fakeRun(t, true)
	counts, names := fakeConfusion(5)
	beside := filepath.Join(run, "eval", "zeroshot.confusion.png")
	stagetest.Must(t, plots.Confusion(beside, counts, names))
	out := t.TempDir()
	path, err := Write(Options{RunDir: run, Out: out})
	stagetest.Must(t, err)
	if _, err := os.Stat(filepath.Join(out, "zeroshot.confusion.png")); err == nil {
		t.Error("redrew a confusion matrix the evaluation already drew")
	}
	w, h := plots.ConfusionSize(5, 5)
	if n := countSize(parseReport(t, path).images, w, h); n != 1 {
		t.Errorf("%d inline copies of the evaluation's confusion matrix", n)
	}
}

func TestReportNoEvals(t *testing.T) {
	run := fakeRun(t, false)
	path, err := Write(Options{RunDir: run})
	stagetest.Must(t, err)
	if path != filepath.Join(run, "report", "report.html") {
		t.Errorf("default path %s", path)
	}
	p := parseReport(t, path)
	if !strings.Contains(p.text, "No evaluation results") || !strings.Contains(p.text, "no evaluation results in") {
		t.Error("report does not say there are no evaluations")
	}
	if len(p.images) != 6 {
		t.Errorf("%d images, want the 6 training curves", len(p.images))
	}
}

// TestReportDemo reports on a copy of the demo run's logs when make demo has made one.
func TestReportDemo(t *testing.T) {
	demo := filepath.Join("..", "out", "runs", "demo")
	if _, err := os.Stat(filepath.Join(demo, "metrics.jsonl")); err != nil {
		t.Skip("no demo run (make demo):", err)
	}
	run := t.TempDir()
	for _, f := range []string{"metrics.jsonl", "config.yaml"} {
		raw, err := os.ReadFile(filepath.Join(demo, f))
		stagetest.Must(t, err)
		stagetest.Must(t, os.WriteFile(filepath.Join(run, f), raw, 0o644))
	}
	if entries, err := os.ReadDir(filepath.Join(demo, "eval")); err == nil {
		stagetest.Must(t, os.Mkdir(filepath.Join(run, "eval"), 0o755))
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(demo, "eval", e.Name()))
			stagetest.Must(t, err)
			stagetest.Must(t, os.WriteFile(filepath.Join(run, "eval", e.Name()), raw, 0o644))
		}
	}
	log, err := runlog.Read(filepath.Join(run, "metrics.jsonl"))
	stagetest.Must(t, err)
	path, err := Write(Options{RunDir: run})
	stagetest.Must(t, err)
	p := parseReport(t, path)
	if n := countSize(p.images, plots.CurvesWidth, plots.CurvesHeight); n < 5 {
		t.Errorf("%d training curves", n)
	}
	last := log.Train[len(log.Train)-1]
	if !strings.Contains(p.text, fmt.Sprintf("%.4f at step %d", last.Loss, last.Step)) {
		t.Error("report lacks the demo's last loss")
	}
}

func TestReportErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, run string) // on a run with evaluations
		want  []string                       // all in the error
	}{
		{"missing run dir", func(t *testing.T, run string) { stagetest.Must(t, os.RemoveAll(run)) }, []string{"run directory", "no such file"}},
		{"run dir is a file", func(t *testing.T, run string) {
			stagetest.Must(t, os.RemoveAll(run))
			stagetest.Must(t, os.WriteFile(run, nil, 0o644))
		}, []string{"not a directory"}},
		{"missing metrics", func(t *testing.T, run string) { stagetest.Must(t, os.Remove(filepath.Join(run, "metrics.jsonl"))) },
			[]string{"metrics.jsonl", "no such file"}},
		{"metrics line too long", func(t *testing.T, run string) {
			stagetest.Must(t, os.WriteFile(filepath.Join(run, "metrics.jsonl"), bytes.Repeat([]byte("x"), runlog.MaxLine+1), 0o644))
		}, []string{"metrics.jsonl", "line 1", "longer than"}},
		{"malformed eval", func(t *testing.T, run string) {
			stagetest.Must(t, os.WriteFile(filepath.Join(run, "eval", "retrieval.json"), []byte(`{"task": "zeroshot_retrieval", "metrics": {`), 0o644))
		}, []string{"retrieval.json", "unexpected end"}},
		{"malformed details", func(t *testing.T, run string) {
			stagetest.Must(t, os.WriteFile(filepath.Join(run, "eval", "zeroshot.details.json"), []byte(`{"confusion_matrix": "no"}`), 0o644))
		}, []string{"zeroshot.details.json", "cannot unmarshal"}},
		{"eval is a named pipe", func(t *testing.T, run string) {
			if err := syscall.Mkfifo(filepath.Join(run, "eval", "fifo.json"), 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, []string{"fifo.json is a named pipe (FIFO), not a regular file"}},
		{"details are a named pipe", func(t *testing.T, run string) {
			p := filepath.Join(run, "eval", "zeroshot.details.json")
			stagetest.Must(t, os.Remove(p))
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, []string{"zeroshot.details.json is a named pipe (FIFO)"}},
		{"not a result", func(t *testing.T, run string) {
			stagetest.Must(t, os.WriteFile(filepath.Join(run, "eval", "other.json"), []byte(`{"hello": 1}`), 0o644))
		}, []string{"other.json", "not a CLIP_benchmark result"}},
		{"ragged confusion", func(t *testing.T, run string) {
			p := filepath.Join(run, "eval", "zeroshot.json")
			res, det, err := evalfile.Read(p)
			stagetest.Must(t, err)
			det.Confusion[3] = det.Confusion[3][:2]
			stagetest.Must(t, evalfile.Write(p, res, *det))
		}, []string{"zeroshot.details.json", "row 3"}},
		{"confusion beside is not a PNG", func(t *testing.T, run string) {
			stagetest.Must(t, os.WriteFile(filepath.Join(run, "eval", "zeroshot.confusion.png"), []byte("GIF89a"), 0o644))
		}, []string{"zeroshot.confusion.png", "not a PNG"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := fakeRun(t, true)
			tc.setup(t, run)
			_, err := Write(Options{RunDir: run, Out: t.TempDir()})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// The file a message is about is named once, not once per wrapping layer.
			if f := strings.Fields(tc.want[0])[0]; strings.HasSuffix(f, ".json") && strings.Count(err.Error(), f) != 1 {
				t.Errorf("error %q names %s %d times", err, f, strings.Count(err.Error(), f))
			}
		})
	}
}

// TestReportNotesANamedPipeAsConfig: a FIFO in place of config.yaml is noted in the page,
// not waited on.
func TestReportNotesANamedPipeAsConfig(t *testing.T) {
	run := fakeRun(t, true)
	p := filepath.Join(run, "config.yaml")
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	var page string
	go func() {
		path, err := Write(Options{RunDir: run, Out: t.TempDir()})
		if err == nil {
			raw, _ := os.ReadFile(path)
			page = string(raw)
		}
		done <- err
	}()
	select {
	case err := <-done:
		stagetest.Must(t, err)
		if !strings.Contains(page, "config.yaml is a named pipe (FIFO), not a regular file") {
			t.Error("the page does not say config.yaml is a named pipe")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("report blocked on a named pipe as config.yaml")
	}
}

func TestMetricMeaning(t *testing.T) {
	for name, want := range map[string]string{
		"acc1":                     "top-1 accuracy",
		"acc5":                     "top-5 accuracy",
		"mean_per_class_recall":    "balanced accuracy",
		"image_retrieval_recall@5": "image retrieval R@5 (text→image)",
		"text_retrieval_recall@10": "text retrieval R@10 (image→text)",
		"image_retrieval_recall@x": "",
		"image_retrieval_recall@0": "",
		"something_else":           "",
	} {
		got := MetricMeaning(name)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

func TestImageURI(t *testing.T) {
	for in, ok := range map[string]bool{
		"data:image/jpeg;base64,/9j/4AAQ":    true,
		"data:image/png;base64,iVBORw0KGgo=": true,
		"data:image/png;base64,not base64!":  false,
		"data:text/html;base64,PHNjcmlwdD4=": false,
		"javascript:alert(1)":                false,
		"https://example.com/x.png":          false,
		"":                                   false,
	} {
		if got := imageURI(in) != ""; got != ok {
			t.Errorf("%q: kept %v, want %v", in, got, ok)
		}
	}
}

// zeroshotRun writes a run whose one evaluation is a zero-shot over n classes with matrix
// counts (nil: none) and the listed top confusions.
func zeroshotRun(t *testing.T, counts [][]int, names []string, listed []evalfile.Confusion, note string) string {
	t.Helper()
	run := fakeRun(t, false)
	stagetest.Must(t, os.Mkdir(filepath.Join(run, "eval"), 0o755))
	var per []evalfile.ClassScore
	for i, name := range names {
		sum, right := 0, 0
		if counts != nil {
			for _, c := range counts[i] {
				sum += c
			}
			right = counts[i][i]
		} else {
			sum, right = 80, 40
		}
		recall := 0.0
		if sum > 0 {
			recall = float64(right) / float64(sum)
		}
		per = append(per, evalfile.ClassScore{Class: name, Count: sum, Recall: recall})
	}
	stagetest.Must(t, evalfile.Write(filepath.Join(run, "eval", "zs.json"),
		evalfile.Result{Dataset: "synthetic", Model: "tiny", Task: "zeroshot_classification", Metrics: map[string]float64{"acc1": 0.5}},
		evalfile.Details{ClassNames: names, PerClass: per, Confusion: counts, TopConfusions: listed, Note: note, Images: 100}))
	return run
}

// TestReportLeavesOutEmptyClasses: a class with no images is no row of zeros, in the table or
// the matrix; the page names it instead.
func TestReportLeavesOutEmptyClasses(t *testing.T) {
	counts, names := fakeConfusion(10)
	counts[3] = make([]int, 10) // "yellow circle": no images; "blue circle" is still taken for it
	run := zeroshotRun(t, counts, names, nil, "")
	out := t.TempDir()
	path, err := Write(Options{RunDir: run, Out: out})
	stagetest.Must(t, err)
	p := parseReport(t, path)
	var classes []string
	for _, r := range p.byName["perclass-table"][1:] {
		classes = append(classes, r[0])
	}
	if len(classes) != 9 || slices.Contains(classes, "yellow circle") {
		t.Errorf("per-class rows %v: want the 9 classes with images", classes)
	}
	if !strings.Contains(p.text, "Classes with no images in this data, left out of the table and the matrix's rows: yellow circle.") {
		t.Error("the page does not name the class without images")
	}
	w, h := plots.ConfusionSize(9, 10)
	if pw, ph := pngSize(t, filepath.Join(out, "zs.confusion.png")); pw != w || ph != h {
		t.Errorf("confusion %dx%d, want %dx%d (9 rows, 10 columns)", pw, ph, w, h)
	}
	if _, ok := p.byName["top-confusions"]; ok {
		t.Error("a top-confusions table for 10 classes, whose matrix shows the counts")
	}
}

// TestReportTopConfusionsPastTheMatrix: past evalfile.MaxConfusionClasses the details list
// the largest confusions in place of the matrix; the report shows them and the details' note.
func TestReportTopConfusionsPastTheMatrix(t *testing.T) {
	names := make([]string, evalfile.MaxConfusionClasses+44)
	for i := range names {
		names[i] = fmt.Sprintf("class %d", i)
	}
	var listed []evalfile.Confusion
	for i := range 40 {
		listed = append(listed, evalfile.Confusion{True: names[i], Predicted: names[i+1], Count: 40 - i/2})
	}
	run := zeroshotRun(t, nil, names, listed, "300 classes: the confusion matrix is left out; its 40 largest off-diagonal cells are listed")
	path, err := Write(Options{RunDir: run, Out: t.TempDir()})
	stagetest.Must(t, err)
	p := parseReport(t, path)
	top := p.byName["top-confusions"]
	if len(top) != 1+25 || !slices.Equal(top[1], []string{"class 0", "class 1", "40", "50.0%"}) || top[25][0] != "class 24" {
		t.Errorf("top confusions: %d rows, first %v", len(top), top[min(1, len(top)-1)])
	}
	if !strings.Contains(p.text, "25 of 40 that are not zero") {
		t.Error("the table does not say how many confusions there are")
	}
	if !strings.Contains(p.text, "its 40 largest off-diagonal cells are listed") {
		t.Error("the details' note is not shown")
	}
	if n := len(p.images); n != 6 {
		t.Errorf("%d images, want the 6 curves and no confusion picture", n)
	}
}

// TestReportCurveColours: each series keeps its colour from figure to figure: the training
// records blue in the loss and gradient-norm figures, validation vermillion, and the two
// validation accuracies their own.
func TestReportCurveColours(t *testing.T) {
	out := t.TempDir()
	_, err := Write(Options{RunDir: fakeRun(t, false), Out: out})
	stagetest.Must(t, err)
	count := func(file string) map[color.RGBA]int {
		f, err := os.Open(filepath.Join(out, file))
		stagetest.Must(t, err)
		defer f.Close()
		img, err := png.Decode(f)
		stagetest.Must(t, err)
		n := map[color.RGBA]int{}
		colours := plots.Palette[:len(plots.Palette)-1] // black: also the axes and text
		for _, c := range colours {
			n[c] = 0
		}
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA); slices.Contains(colours, c) {
					n[c]++
				}
			}
		}
		return n
	}
	const drawn = 30 // pixels of a colour for a series drawn in it
	for file, want := range map[string][]color.RGBA{
		"loss.png":         {plots.Palette[0], plots.Palette[1]},
		"grad_norm.png":    {plots.Palette[0]},
		"lr.png":           {plots.Palette[0]},
		"val_accuracy.png": {plots.Palette[2], plots.Palette[3]},
	} {
		for c, n := range count(file) {
			if slices.Contains(want, c) != (n >= drawn) {
				t.Errorf("%s: %d pixels of %v; want series in %v only", file, n, c, want)
			}
		}
	}
}

// FuzzConfigFacts: a run's config.yaml is outside input; any bytes give facts or an error.
func FuzzConfigFacts(f *testing.F) {
	f.Add("model_preset: tiny\ndata:\n    train: a\n    val: b\n")
	f.Add("init: /x/y\ndata: [1, 2]\n")
	f.Add("a: &x [*x, *x]\n")
	f.Add("data:\n  train: {a: 1}\n")
	f.Add("\x00\xff: :")
	f.Fuzz(func(t *testing.T, raw string) {
		facts, err := configFacts(raw)
		if err != nil && facts != nil {
			t.Errorf("facts %v beside error %v", facts, err)
		}
	})
}

// TestTopConfusions: largest first, ties in class order, shares of the true class, and a
// ragged matrix passed over rather than read out of range.
func TestTopConfusions(t *testing.T) {
	names := []string{"a", "b", "c"}
	rows, n := topConfusions([][]int{{5, 2, 2}, {3, 1, 0}, {0, 0, 4}}, names)
	want := []confusionRow{{"b", "a", 3, "75.0%"}, {"a", "b", 2, "22.2%"}, {"a", "c", 2, "22.2%"}}
	if n != 3 || !slices.Equal(rows, want) {
		t.Errorf("got %v (%d), want %v", rows, n, want)
	}
	if rows, _ := topConfusions([][]int{{1, 2, 3, 4}, {1}, {1, 1, 1}, {9, 9}}, names); len(rows) != 5 {
		t.Errorf("ragged: %v", rows)
	}
}

// TestCheckpointNote: an evaluation's checkpoint is placed against the run's own.
func TestCheckpointNote(t *testing.T) {
	run := fakeRun(t, false) // checkpoints at steps 200 and 300
	for path, want := range map[string]string{
		filepath.Join(run, "step-000300.safetensors"):         "this run's newest checkpoint (step 300)",
		filepath.Join(run, "step-000200.safetensors"):         "step 200 of this run; its newest checkpoint is step 300",
		filepath.Join(run, runlog.BestName):                   "this run's best model (train.early_stop)",
		filepath.Join(run, "other.safetensors"):               "in this run's directory",
		filepath.Join(t.TempDir(), "step-000300.safetensors"): "not a checkpoint of this run",
		"": "",
	} {
		if got := checkpointNote(path, run); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
