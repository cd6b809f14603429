// Package report presents a training run for people: the plots of its metrics log and one
// self-contained HTML page with its evaluations.
package report

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/plots"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/runlog"
)

// Limits on what Write reads (besides the metrics log's, runlog.MaxBytes and
// runlog.MaxLine): a run directory is outside input, and the report is built in memory.
const (
	// MaxConfigBytes is the largest config.yaml Write shows.
	MaxConfigBytes = 1 << 20
	// MaxEvalBytes is the largest evaluation result, or its details, Write reads.
	MaxEvalBytes = evalfile.MaxBytes
	// maxFigureBytes is the largest PNG Write inlines.
	maxFigureBytes = 64 << 20
	// MaxEvalFiles is the most evaluation results one report shows.
	MaxEvalFiles = 64
	// MaxExamples is the most retrieval examples shown per evaluation and direction.
	MaxExamples = 12
	// MaxHits is the most results shown per retrieval example.
	MaxHits = 5
)

//go:embed report_template.html
var reportTemplateText string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) },
}).Parse(reportTemplateText))

// Options says which run to report on and where the report goes.
type Options struct {
	RunDir string // from clipgo pretrain: metrics.jsonl, config.yaml, eval/*.json
	Out    string // directory for report.html and its PNGs; RunDir/report when empty
}

// Write writes the PNG figures of a run and one self-contained report.html (figures inlined
// as data URIs) into opts.Out, and returns the path of the HTML file. It shows what exists: a
// run without evaluations, or whose metrics log ends in a half-written line, still gets a
// report that says so. A missing metrics log, or an evaluation result that does not parse, is
// an error naming the file.
func Write(opts Options) (string, error) {
	if opts.RunDir == "" {
		return "", errors.New("report: no run directory")
	}
	if st, err := os.Stat(opts.RunDir); err != nil {
		return "", fmt.Errorf("report: run directory: %w", err)
	} else if !st.IsDir() {
		return "", fmt.Errorf("report: run directory %s is not a directory", opts.RunDir)
	}
	out := opts.Out
	if out == "" {
		out = filepath.Join(opts.RunDir, "report")
	}
	metricsPath := filepath.Join(opts.RunDir, runlog.MetricsName)
	log, err := runlog.Read(metricsPath)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	evals, err := readEvals(filepath.Join(opts.RunDir, "eval"))
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}

	page := reportPage{Run: opts.RunDir, Generated: time.Now().Format(time.DateTime)}
	for _, n := range log.Notes {
		page.Notes = append(page.Notes, metricsPath+": "+n)
	}
	page.Config, err = readConfig(filepath.Join(opts.RunDir, runlog.ConfigName))
	if err != nil {
		page.Notes = append(page.Notes, err.Error())
	}
	page.Describes = describeRun(opts.RunDir, page.Config, &page.Notes)
	page.Summary = summarise(log)
	page.Validation = log.Val
	if page.Figures, err = trainingFigures(log, out); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	if len(evals) == 0 {
		page.Notes = append(page.Notes, "no evaluation results in "+filepath.Join(opts.RunDir, "eval"))
	}
	for _, ev := range evals {
		v, err := evalSection(ev, out, opts.RunDir)
		if err != nil {
			return "", fmt.Errorf("report: %w", err)
		}
		page.Evals = append(page.Evals, v)
	}

	if page.Explain, err = explainSection(filepath.Join(opts.RunDir, ExplainDir), opts.RunDir); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}

	var buf bytes.Buffer
	if err := reportTemplate.Execute(&buf, page); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	path := filepath.Join(out, "report.html")
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return path, nil
}

// readConfig returns the run's config.yaml as text to show.
func readConfig(path string) (string, error) {
	f, err := fileinput.OpenRegular(path) // a FIFO is refused, not waited on
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	if len(raw) > MaxConfigBytes {
		return string(raw[:MaxConfigBytes]) + "\n…", fmt.Errorf("config %s: longer than %d bytes; cut", path, MaxConfigBytes)
	}
	return string(raw), nil
}

// loadedEval is one evaluation result with its details and paths.
type loadedEval struct {
	name, path string
	res        evalfile.Result
	det        *evalfile.Details
}

// readEvals reads every result in dir (x.json, not x.details.json), sorted by name. A missing
// directory is no evaluation; a result that does not parse is an error.
func readEvals(dir string) ([]loadedEval, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("evaluations: %w", err)
	}
	var evals []loadedEval
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".details.json") || strings.HasPrefix(name, ".") {
			continue
		}
		if len(evals) == MaxEvalFiles {
			return nil, fmt.Errorf("evaluations %s: more than %d results", dir, MaxEvalFiles)
		}
		path := filepath.Join(dir, name)
		res, det, err := evalfile.Read(path) // bounded by MaxEvalBytes; its errors name the file
		if err != nil {
			return nil, fmt.Errorf("evaluation: %w", err)
		}
		if res.Task == "" || res.Metrics == nil {
			return nil, fmt.Errorf("evaluation %s: not a CLIP_benchmark result (no task or metrics)", path)
		}
		evals = append(evals, loadedEval{name: strings.TrimSuffix(name, ".json"), path: path, res: res, det: det})
	}
	return evals, nil
}

// reportPage is what the template renders.
type reportPage struct {
	Run, Generated string
	Config         string
	Notes          []string
	Describes      []fact // which checkpoints and data the report is about
	Summary        []fact
	Figures        []figure
	Validation     []runlog.Val
	Evals          []evalView
	Explain        *explainView // the run's explain/ directory (clipgo explain), when it has one
}

type fact struct{ Name, Value string }

type figure struct {
	Title, File string
	Src         template.URL // data:image/png;base64,...
}

type evalView struct {
	Name, Dataset, Task, Model string
	Checkpoint, CheckpointNote string // the weights evaluated, and how they stand to the run's
	Images, Texts              int
	Note                       string // the details' own note: what was left out
	Metrics                    []metricRow
	PerClass                   []evalfile.ClassScore // classes with images
	EmptyClasses               string                // the classes without, named
	Confusion                  *figure
	ConfusionWide              bool // too many classes to read scaled down: shown at full size, scrolled
	TopConfusions              []confusionRow
	TopConfusionsOf            int // off-diagonal cells with images in all
	Examples                   []exampleGroup
	Failures                   []failureGroup // zero-shot: misclassified images by class
}

// failureGroup is one class's misclassified images.
type failureGroup struct {
	Class, Recall string
	Items         []failureView
}

type failureView struct {
	Key, Predicted, Score, PredictedScore string
	Image                                 template.URL
}

// confusionRow is one cell of a top-confusions table.
type confusionRow struct {
	True, Predicted string
	Count           int
	Share           string // of the true class's images, "" when unknown
}

type metricRow struct{ Name, Meaning, Value string }

type exampleGroup struct {
	Title    string
	Worst    bool // the evaluation's worst failures, not queries spread over the split
	TopK     int  // the most results shown for one query
	Examples []exampleView
}

type exampleView struct {
	Query    string
	QueryImg template.URL
	Found    bool // a right answer is among the shown results
	TextHits bool // the results are captions, not images
	Hits     []hitView
	// A worst failure's rank of its first right answer, and that answer: an image, or a caption.
	Rank                  int
	Answer                template.URL
	AnswerKey, AnswerText string
}

type hitView struct {
	Rank      int
	Key, Text string
	Image     template.URL
	Score     string
	Correct   bool
}

// summarise gives the headline facts of the training log.
func summarise(log runlog.Log) []fact {
	var s []fact
	add := func(name, format string, args ...any) { s = append(s, fact{name, fmt.Sprintf(format, args...)}) }
	if n := len(log.Train); n > 0 {
		first, last := log.Train[0], log.Train[n-1]
		add("steps", "%d to %d (%d records)", first.Step, last.Step, n)
		add("loss", "%.4f at step %d → %.4f at step %d", first.Loss, first.Step, last.Loss, last.Step)
		if !math.IsNaN(last.LogitScaleExp) {
			add("logit scale (1/temperature)", "%.2f → %.2f", first.LogitScaleExp, last.LogitScaleExp)
		}
		if first.LogitBias != nil && last.LogitBias != nil {
			add("logit bias (SigLIP)", "%.2f → %.2f", *first.LogitBias, *last.LogitBias)
		}
		var sum float64
		var cnt int
		for _, r := range log.Train {
			if r.SamplesPerS > 0 && !math.IsInf(r.SamplesPerS, 0) {
				sum += r.SamplesPerS
				cnt++
			}
		}
		if cnt > 0 {
			add("throughput", "%.1f samples/s (mean of %d records)", sum/float64(cnt), cnt)
		}
		if last.ElapsedS > 0 {
			add("training time", "%s", time.Duration(last.ElapsedS*float64(time.Second)).Round(time.Second))
		}
	} else {
		add("steps", "no training records")
	}
	if n := len(log.Val); n > 0 {
		v := log.Val[n-1]
		add("last validation", "step %d: loss %.4f, in-batch top-1 image→text %.3f, text→image %.3f", v.Step, v.Loss, v.ImageTop, v.TextTop)
	}
	return s
}

// The series of the training figures. Each has one colour in every figure it is drawn in, so
// that blue reads as "the training records" and vermillion as "validation" throughout.
const (
	seriesTrain     = "train"
	seriesVal       = "validation"
	seriesImageText = "validation image→text"
	seriesTextImage = "validation text→image"
)

var seriesColors = map[string]color.Color{
	seriesTrain:     plots.Palette[0],
	seriesVal:       plots.Palette[1],
	seriesImageText: plots.Palette[2],
	seriesTextImage: plots.Palette[3],
}

// trainingFigures draws the curves the log has data for into dir.
func trainingFigures(log runlog.Log, dir string) ([]figure, error) {
	steps := func(f func(runlog.Train) float64) plots.Series {
		s := plots.Series{X: make([]float64, len(log.Train)), Y: make([]float64, len(log.Train))}
		for i, r := range log.Train {
			s.X[i], s.Y[i] = float64(r.Step), f(r)
		}
		return s
	}
	vals := func(f func(runlog.Val) float64) plots.Series {
		s := plots.Series{X: make([]float64, len(log.Val)), Y: make([]float64, len(log.Val))}
		for i, r := range log.Val {
			s.X[i], s.Y[i] = float64(r.Step), f(r)
		}
		return s
	}
	named := func(name string, s plots.Series) plots.Series {
		s.Name = name
		s.Color = seriesColors[name]
		return s
	}
	type spec struct {
		file, title, ylabel string
		log                 bool
		series              []plots.Series
	}
	specs := []spec{
		{"loss.png", "Contrastive loss", "loss (log scale)", true, []plots.Series{
			named(seriesTrain, steps(func(r runlog.Train) float64 { return float64(r.Loss) })),
			named(seriesVal, vals(func(r runlog.Val) float64 { return r.Loss }))}},
		{"val_accuracy.png", "Validation in-batch top-1 accuracy", "accuracy", false, []plots.Series{
			named(seriesImageText, vals(func(r runlog.Val) float64 { return r.ImageTop })),
			named(seriesTextImage, vals(func(r runlog.Val) float64 { return r.TextTop }))}},
		{"logit_scale.png", "Logit scale exp(t) = 1/temperature", "logit scale", false, []plots.Series{
			named(seriesTrain, steps(func(r runlog.Train) float64 { return r.LogitScaleExp }))}},
		{"logit_bias.png", "Logit bias b (SigLIP)", "logit bias", false, []plots.Series{
			named(seriesTrain, steps(func(r runlog.Train) float64 {
				if r.LogitBias == nil {
					return math.NaN()
				}
				return *r.LogitBias
			}))}},
		{"lr.png", "Learning rate", "learning rate", false, []plots.Series{
			named(seriesTrain, steps(func(r runlog.Train) float64 { return r.LR }))}},
		{"samples_per_s.png", "Throughput", "samples/s", false, []plots.Series{
			named(seriesTrain, steps(func(r runlog.Train) float64 { return r.SamplesPerS }))}},
		{"grad_norm.png", "Gradient norm (before clipping)", "L2 norm", true, []plots.Series{
			named(seriesTrain, steps(func(r runlog.Train) float64 { return r.GradNorm }))}},
	}
	var figs []figure
	for _, sp := range specs {
		var kept []plots.Series
		for _, s := range sp.series {
			if slices.ContainsFunc(s.Y, func(y float64) bool { return !math.IsNaN(y) && !math.IsInf(y, 0) && (!sp.log || y > 0) }) {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			continue
		}
		draw := plots.Curves
		if sp.log {
			draw = plots.LogCurves
		}
		path := filepath.Join(dir, sp.file)
		if err := draw(path, sp.title, "step", sp.ylabel, kept...); err != nil {
			return nil, err
		}
		fig, err := pngFigure(sp.title, path)
		if err != nil {
			return nil, err
		}
		figs = append(figs, fig)
	}
	return figs, nil
}

// pngFigure reads a PNG into a figure with a data URI.
func pngFigure(title, path string) (figure, error) {
	raw, err := fileinput.ReadFile(path, maxFigureBytes)
	if err != nil {
		return figure{}, err
	}
	if !bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")) {
		return figure{}, fmt.Errorf("%s: not a PNG file", path)
	}
	return figure{Title: title, File: filepath.Base(path),
		Src: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(raw))}, nil
}

// evalSection turns one evaluation into its part of the page, drawing its confusion matrix
// into dir when the evaluation did not leave one beside its result.
func evalSection(ev loadedEval, dir, runDir string) (evalView, error) {
	v := evalView{Name: ev.name, Dataset: ev.res.Dataset, Task: ev.res.Task, Model: ev.res.Model,
		Checkpoint: ev.res.Pretrained, CheckpointNote: checkpointNote(ev.res.Pretrained, runDir)}
	for _, k := range slices.SortedFunc(maps.Keys(ev.res.Metrics), compareMetricNames) {
		v.Metrics = append(v.Metrics, metricRow{Name: k, Meaning: MetricMeaning(k), Value: formatMetric(ev.res.Metrics[k])})
	}
	det := ev.det
	if det == nil {
		return v, nil
	}
	v.Images, v.Texts, v.Note = det.Images, det.Texts, det.Note
	var empty []string
	for _, c := range det.PerClass {
		if c.Count == 0 {
			empty = append(empty, c.Class)
		} else {
			v.PerClass = append(v.PerClass, c)
		}
	}
	v.EmptyClasses = nameSome(empty, 20)
	switch {
	case len(det.Confusion) > topConfusionsPast:
		v.TopConfusions, v.TopConfusionsOf = topConfusions(det.Confusion, det.ClassNames)
	case len(det.Confusion) == 0 && len(det.TopConfusions) > 0:
		v.TopConfusions, v.TopConfusionsOf = listedConfusions(det.TopConfusions, det.PerClass)
	}
	v.ConfusionWide = len(det.ClassNames) > topConfusionsPast
	if len(det.Confusion) > 0 && !matrixEmpty(det.Confusion) {
		title := "Confusion matrix of " + ev.name
		existing := evalfile.ConfusionPath(ev.path)
		if _, err := os.Stat(existing); err == nil {
			fig, err := pngFigure(title, existing)
			if err != nil {
				return v, fmt.Errorf("evaluation %s: %w", ev.path, err)
			}
			v.Confusion = &fig
		} else if len(det.ClassNames) <= plots.MaxClasses {
			path := filepath.Join(dir, ev.name+".confusion.png")
			if err := plots.Confusion(path, det.Confusion, det.ClassNames); err != nil {
				return v, fmt.Errorf("evaluation %s: %w", evalfile.DetailsPath(ev.path), err)
			}
			fig, err := pngFigure(title, path)
			if err != nil {
				return v, err
			}
			v.Confusion = &fig
		}
	}
	v.Examples = exampleGroups(det.Examples)
	v.Failures = failureGroups(det.Failures, det.PerClass)
	return v, nil
}

// exampleGroups groups retrieval examples (or explain's neighbours) by kind and direction,
// in the order they first appear, keeping up to MaxExamples per group and MaxHits per query.
func exampleGroups(examples []evalfile.Example) []exampleGroup {
	groups := map[string]*exampleGroup{}
	var order []string
	for _, ex := range examples {
		id := ex.Kind + "/" + ex.Direction
		g := groups[id]
		if g == nil {
			g = &exampleGroup{Title: directionTitle(ex.Direction), Worst: ex.Kind == evalfile.KindWorst}
			if g.Worst {
				g.Title = worstTitle(ex.Direction)
			}
			groups[id] = g
			order = append(order, id)
		}
		if len(g.Examples) == MaxExamples {
			continue
		}
		e := exampleView{Query: ex.Query, QueryImg: imageURI(ex.QueryImg), Rank: ex.Rank, Answer: imageURI(ex.Answer),
			AnswerKey: ex.AnswerKey, AnswerText: ex.AnswerText}
		for i, h := range ex.Results[:min(len(ex.Results), MaxHits)] {
			e.Hits = append(e.Hits, hitView{Rank: i + 1, Key: h.Key, Text: h.Text, Image: imageURI(h.Image),
				Score: strconv.FormatFloat(h.Score, 'f', 3, 64), Correct: h.Correct})
			e.Found = e.Found || h.Correct
			e.TextHits = e.TextHits || (h.Image == "" && h.Text != "")
		}
		g.TopK = max(g.TopK, len(e.Hits))
		g.Examples = append(g.Examples, e)
	}
	out := make([]exampleGroup, 0, len(order))
	for _, id := range order {
		out = append(out, *groups[id])
	}
	return out
}

// MaxFailureClasses is the most classes whose misclassified images the report shows.
const MaxFailureClasses = evalfile.MaxFailureClasses

// failureGroups groups a zero-shot evaluation's misclassified images by true class, in the
// order the details list them (lowest recall first), with the class's recall.
func failureGroups(failures []evalfile.Failure, per []evalfile.ClassScore) []failureGroup {
	recall := map[string]float64{}
	for _, c := range per {
		recall[c.Class] = c.Recall
	}
	var out []failureGroup
	at := map[string]int{}
	for _, f := range failures {
		i, ok := at[f.Class]
		if !ok {
			if len(out) == MaxFailureClasses {
				continue
			}
			i = len(out)
			at[f.Class] = i
			r := ""
			if v, ok := recall[f.Class]; ok {
				r = strconv.FormatFloat(100*v, 'f', 1, 64) + "%"
			}
			out = append(out, failureGroup{Class: f.Class, Recall: r})
		}
		if len(out[i].Items) == evalfile.MaxFailuresPerClass {
			continue
		}
		out[i].Items = append(out[i].Items, failureView{Key: f.Key, Predicted: f.Predicted, Image: imageURI(f.Image),
			Score: strconv.FormatFloat(f.Score, 'f', 3, 64), PredictedScore: strconv.FormatFloat(f.PredictedScore, 'f', 3, 64)})
	}
	return out
}

// topConfusionsPast is the number of classes past which a confusion matrix, however drawn,
// is an overview rather than something to read counts off: the report then lists its largest
// off-diagonal cells as well.
const topConfusionsPast = 30

// maxTopConfusionRows is the most rows of a top-confusions table.
const maxTopConfusionRows = 25

// topConfusions returns the largest off-diagonal cells of counts (largest first, then in
// class order) with their share of the true class's images, and how many such cells are not
// zero. Cells outside names are passed over: a ragged matrix is reported by plots.Confusion.
func topConfusions(counts [][]int, names []string) ([]confusionRow, int) {
	type cell struct{ i, j, n, sum int }
	var cells []cell
	for i, row := range counts {
		if i >= len(names) {
			break
		}
		sum := 0
		for _, c := range row {
			sum += max(c, 0)
		}
		for j, c := range row {
			if j != i && j < len(names) && c > 0 {
				cells = append(cells, cell{i, j, c, sum})
			}
		}
	}
	slices.SortStableFunc(cells, func(a, b cell) int { return b.n - a.n })
	var rows []confusionRow
	for _, c := range cells[:min(len(cells), maxTopConfusionRows)] {
		rows = append(rows, confusionRow{True: names[c.i], Predicted: names[c.j], Count: c.n,
			Share: strconv.FormatFloat(100*float64(c.n)/float64(c.sum), 'f', 1, 64) + "%"})
	}
	return rows, len(cells)
}

// listedConfusions turns the top confusions an evaluation listed in place of its matrix
// (past evalfile.MaxConfusionClasses classes) into table rows, with shares where the
// per-class table gives the class's images.
func listedConfusions(list []evalfile.Confusion, per []evalfile.ClassScore) ([]confusionRow, int) {
	images := map[string]int{}
	for _, c := range per {
		images[c.Class] = c.Count
	}
	var rows []confusionRow
	for _, c := range list[:min(len(list), maxTopConfusionRows)] {
		r := confusionRow{True: c.True, Predicted: c.Predicted, Count: c.Count}
		if n := images[c.True]; n > 0 && c.Count >= 0 {
			r.Share = strconv.FormatFloat(100*float64(c.Count)/float64(n), 'f', 1, 64) + "%"
		}
		rows = append(rows, r)
	}
	return rows, len(list)
}

// matrixEmpty says whether counts hold no image at all: there is no picture to draw.
func matrixEmpty(counts [][]int) bool {
	for _, row := range counts {
		for _, c := range row {
			if c != 0 {
				return false
			}
		}
	}
	return true
}

// nameSome lists up to n names, and how many more there are.
func nameSome(names []string, n int) string {
	if len(names) == 0 {
		return ""
	}
	s := strings.Join(names[:min(len(names), n)], ", ")
	if len(names) > n {
		s += fmt.Sprintf(" and %d more", len(names)-n)
	}
	return s
}

// runConfig is the part of a run's config.yaml that says what the run was trained on.
// The report reads it on its own rather than through the train stage, which it does not
// import (stages do not import each other).
type runConfig struct {
	ModelPreset string `yaml:"model_preset"`
	Init        string `yaml:"init"`
	Data        struct {
		Train      string `yaml:"train"`
		Val        string `yaml:"val"`
		TrainSplit string `yaml:"train_split"`
		ValSplit   string `yaml:"val_split"`
	} `yaml:"data"`
}

// configFacts says from a run's config.yaml (bounded by MaxConfigBytes when read) which model
// and data the run trained on.
func configFacts(raw string) ([]fact, error) {
	var cfg runConfig
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		return nil, err
	}
	var s []fact
	if cfg.ModelPreset != "" {
		s = append(s, fact{"model", "preset " + cfg.ModelPreset})
	}
	if cfg.Init != "" {
		s = append(s, fact{"initialised from", cfg.Init})
	}
	split := func(set, split, def string) string {
		if set == "" {
			return "none"
		}
		return fmt.Sprintf("%s (split %s)", set, cmp.Or(split, def))
	}
	if cfg.Data.Train != "" {
		s = append(s, fact{"training data", split(cfg.Data.Train, cfg.Data.TrainSplit, "train")})
		s = append(s, fact{"validation data", split(cfg.Data.Val, cfg.Data.ValSplit, "val")})
	}
	return s, nil
}

// describeRun says which run, checkpoints and data the report is about; what it cannot
// tell goes into notes.
func describeRun(runDir, config string, notes *[]string) []fact {
	abs, err := filepath.Abs(runDir)
	if err != nil {
		abs = runDir
	}
	s := []fact{{"run directory", abs}}
	steps, err := checkpoint.Steps(runDir)
	switch {
	case err != nil:
		*notes = append(*notes, fmt.Sprintf("checkpoints of %s: %v", runDir, err))
	case len(steps) == 0:
		s = append(s, fact{"checkpoints", "none in the run directory"})
	default:
		last := steps[len(steps)-1]
		v := fmt.Sprintf("newest %s (step %d)", checkpoint.ModelPath(abs, last), last)
		if len(steps) > 1 {
			v += fmt.Sprintf("; %d older, from step %d", len(steps)-1, steps[0])
		}
		s = append(s, fact{"checkpoints", v})
	}
	if st, err := os.Stat(filepath.Join(abs, runlog.BestName)); err == nil && st.Mode().IsRegular() {
		s = append(s, fact{"best model", filepath.Join(abs, runlog.BestName) + " (train.early_stop: the best validation's weights; its records are marked best in metrics.jsonl)"})
	}
	if config == "" {
		return s
	}
	more, err := configFacts(config)
	if err != nil {
		*notes = append(*notes, fmt.Sprintf("%s: %v (the data the run trained on is not shown)", filepath.Join(runDir, runlog.ConfigName), err))
	}
	return append(s, more...)
}

// checkpointNote says how the checkpoint an evaluation names stands to the run: its newest
// checkpoint, an older one, its best model, or one from elsewhere.
func checkpointNote(path, runDir string) string {
	if path == "" {
		return ""
	}
	dir, err1 := filepath.Abs(filepath.Dir(path))
	run, err2 := filepath.Abs(runDir)
	if err1 != nil || err2 != nil || dir != run {
		return "not a checkpoint of this run"
	}
	if filepath.Base(path) == runlog.BestName {
		return "this run's best model (train.early_stop)"
	}
	steps, err := checkpoint.Steps(runDir)
	if err != nil || len(steps) == 0 {
		return "in this run's directory"
	}
	last := steps[len(steps)-1]
	if filepath.Base(path) == filepath.Base(checkpoint.ModelPath(run, last)) {
		return fmt.Sprintf("this run's newest checkpoint (step %d)", last)
	}
	for _, st := range steps {
		if filepath.Base(path) == filepath.Base(checkpoint.ModelPath(run, st)) {
			return fmt.Sprintf("step %d of this run; its newest checkpoint is step %d", st, last)
		}
	}
	return "in this run's directory"
}

// imageURI passes a data URI of a PNG, JPEG or GIF image whose payload is valid base64, and
// drops anything else: details files are outside input, and html/template trusts a
// template.URL as it is.
func imageURI(s string) template.URL {
	for _, prefix := range []string{"data:image/jpeg;base64,", "data:image/png;base64,", "data:image/gif;base64,"} {
		if payload, ok := strings.CutPrefix(s, prefix); ok {
			if _, err := base64.StdEncoding.DecodeString(payload); err == nil {
				return template.URL(s)
			}
		}
	}
	return ""
}

func worstTitle(d string) string {
	switch d {
	case "text_to_image":
		return "Worst failures, text → image: the captions whose image ranks lowest"
	case "image_to_text":
		return "Worst failures, image → text: the images whose captions rank lowest"
	}
	return "Worst failures: " + d
}

func directionTitle(d string) string {
	switch d {
	case "text_to_image":
		return "Text → image: a caption finds images"
	case "image_to_text":
		return "Image → text: an image finds captions"
	}
	return d
}

func formatMetric(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

// compareMetricNames orders metrics as people read them: classification accuracy first, then
// recall@k by k, text→image before image→text, then the rest by name.
func compareMetricNames(a, b string) int {
	ra, ka := metricRank(a)
	rb, kb := metricRank(b)
	if ra != rb {
		return ra - rb
	}
	if ka != kb {
		return ka - kb
	}
	return strings.Compare(a, b)
}

func metricRank(name string) (rank, k int) {
	switch name {
	case "acc1":
		return 0, 0
	case "acc5":
		return 1, 0
	case "mean_per_class_recall":
		return 2, 0
	}
	if k, ok := recallAt(name, "image_retrieval_recall@"); ok {
		return 3, k
	}
	if k, ok := recallAt(name, "text_retrieval_recall@"); ok {
		return 4, k
	}
	return 5, 0
}

func recallAt(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(rest)
	return k, err == nil && k > 0
}

// MetricMeaning says in plain words what a CLIP_benchmark metric name measures; "" for a name
// it does not know. The retrieval names are easy to read backwards: image_retrieval is
// text→image (a caption retrieves images), text_retrieval is image→text.
func MetricMeaning(name string) string {
	switch name {
	case "acc1":
		return "top-1 accuracy: the best-scoring class prompt is the right class"
	case "acc5":
		return "top-5 accuracy: the right class is among the 5 best-scoring prompts"
	case "mean_per_class_recall":
		return "mean per-class recall (balanced accuracy): top-1 accuracy averaged over classes"
	}
	if k, ok := recallAt(name, "image_retrieval_recall@"); ok {
		return fmt.Sprintf("image retrieval R@%d (text→image): share of captions whose image is among the top %d images", k, k)
	}
	if k, ok := recallAt(name, "text_retrieval_recall@"); ok {
		return fmt.Sprintf("text retrieval R@%d (image→text): share of images with a right caption among the top %d captions", k, k)
	}
	return ""
}
