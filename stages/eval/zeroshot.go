// Package eval measures a trained model on held-out data: zero-shot classification and
// cross-modal retrieval, written as CLIP_benchmark results.
package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/metrics"
	"github.com/clipgo/clipgo/internal/plots"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/internal/readable"
	"github.com/clipgo/clipgo/pipeline"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
)

// ZeroShotOptions configures a zero-shot classification evaluation.
//
// Data is one of:
//   - a prepared dataset directory (with manifest.json), read from Split, by default the first
//     of "zeroshot", "test", "val", "train" that it has; its records must all be labelled;
//   - an image folder, root/<class>/<images> (classes sorted by name, as ImageFolder does);
//   - an IDX image file (MNIST, Fashion-MNIST), with its IDX label file in Labels.
//
// The task's class i names label i; the data's classes, when it names them, must be as many.
type ZeroShotOptions struct {
	Checkpoint string // model checkpoint (.safetensors written by pretrain), or a run directory: its latest
	Data       string
	Labels     string // IDX label file, when Data is an IDX image file
	Split      string // prepared datasets only
	Task       string // built-in task name (configs/zeroshot) or a .yaml file
	Out        string // result JSON; details and the confusion PNG go beside it
	Dataset    string // dataset name in the result (default: from Data and Split)
	Batch      int    // images per model call (default 64)
	QuickGELU  bool   // the weights use OpenAI's QuickGELU (a bare state dict does not say)
	Workers    int    // image decode goroutines (default GOMAXPROCS)

	Report   io.Writer    // where the summary and per-class table are printed (nil: nowhere)
	Log      *slog.Logger // nil: slog.Default()
	Progress io.Writer    // where a progress bar is drawn when it is a terminal (nil: none)
}

// Zero-shot and retrieval defaults.
const (
	DefaultBatch         = evalmodel.DefaultBatch // images per model call
	DefaultExamples      = 8                      // retrieval queries kept per direction
	defaultZeroShotSplit = "zeroshot"
)

// ZeroShot classifies every image of opts.Data by CLIP's zero-shot recipe — each class's
// weight is the normalised mean of its prompts' normalised text embeddings, each image goes to
// the class of largest cosine similarity — and writes CLIP_benchmark's result (acc1, acc5 with
// at least 5 classes, mean_per_class_recall) to opts.Out, the details (per-class recall, most
// confused class, confusion matrix) beside it, and the confusion matrix as a PNG.
func ZeroShot(ctx context.Context, opts ZeroShotOptions) (evalfile.Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Out == "" {
		return evalfile.Result{}, errors.New("zeroshot: --out is required")
	}
	task, err := LoadTask(opts.Task)
	if err != nil {
		return evalfile.Result{}, err
	}
	model, err := evalmodel.Open(opts.Checkpoint, opts.Batch, opts.QuickGELU)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot: %w", err)
	}
	defer model.Close()
	set, err := openLabelled(opts, model.Config.Vision.ImageSize, log)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot: %w", err)
	}
	C := len(task.ClassNames)
	if set.classes != nil && len(set.classes) != C {
		return evalfile.Result{}, fmt.Errorf("zeroshot: %s names %d classes but task %s has %d: the data does not fit the task",
			set.origin, len(set.classes), task.Name, C)
	}

	weights, dim, err := classifier(model.Enc, task)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot: task %s: %w", task.Name, err)
	}
	// Each batch is scored as it comes, and only counts are kept: memory grows with
	// batch × classes (the batch's logits), never with images × classes.
	counts, err := metrics.NewClassCounts(C)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot: task %s: %w", task.Name, err)
	}
	bar := progress.New(opts.Progress, log, "zeroshot", set.total)
	failures := newFailureKeeper(model.Config.Vision.ImageSize)
	labels := make([]int, 0, cmp.Or(max(opts.Batch, 0), DefaultBatch))
	err = set.stream(ctx, func(images []float32, keys []string, labs []int32) error {
		e, err := model.Enc.Images(images)
		if err != nil {
			return err
		}
		labels = labels[:0]
		for i, y := range labs {
			if y < 0 {
				return fmt.Errorf("image %s has no label: zero-shot classification needs every image labelled", keys[i])
			}
			if int(y) >= C {
				return fmt.Errorf("image %s has label %d but task %s has %d classes: the data does not fit the task", keys[i], y, task.Name, C)
			}
			labels = append(labels, int(y))
		}
		logits, err := metrics.ZeroShotLogits(e, len(labels), dim, weights, C)
		if err != nil {
			return err
		}
		if err := counts.Add(logits, labels); err != nil {
			return err
		}
		if err := failures.add(images, keys, labels, logits, task.ClassNames); err != nil {
			return err
		}
		bar.Add(int64(len(labs)), "")
		return nil
	})
	bar.Finish()
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot %s: %w", set.origin, err)
	}
	if counts.Images() == 0 {
		return evalfile.Result{}, fmt.Errorf("zeroshot %s: no image to classify", set.origin)
	}
	cls, err := counts.Result()
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot %s: %w", set.origin, err)
	}

	res := evalfile.Result{Dataset: cmp.Or(opts.Dataset, set.name), Model: model.Desc, Pretrained: model.Path,
		Task: evalfile.TaskZeroShot, Metrics: cls.Metrics()}
	det := evalfile.Details{ClassNames: task.ClassNames, PerClass: perClass(task.ClassNames, counts), Images: counts.Images()}
	det.Failures = failures.list(det.PerClass)
	if C <= evalfile.MaxConfusionClasses {
		det.Confusion = counts.Confusion()
	} else {
		for _, p := range counts.TopConfusions(evalfile.MaxTopConfusions) {
			det.TopConfusions = append(det.TopConfusions, evalfile.Confusion{True: task.ClassNames[p.True],
				Predicted: task.ClassNames[p.Predicted], Count: p.Count})
		}
		det.Note = fmt.Sprintf("%d classes: the confusion matrix (more than %d classes) is left out; top_confusions lists its %d largest off-diagonal cells of %d",
			C, evalfile.MaxConfusionClasses, len(det.TopConfusions), counts.OffDiagonal())
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot: %w", err)
	}
	if err := evalfile.Write(opts.Out, res, det); err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot: %w", err)
	}
	if C > plots.MaxClasses || det.Confusion == nil { // a picture that large is unreadable
		log.Warn("no confusion picture", "classes", C, "limit", min(plots.MaxClasses, evalfile.MaxConfusionClasses))
	} else if err := plots.Confusion(evalfile.ConfusionPath(opts.Out), det.Confusion, task.ClassNames); err != nil {
		return evalfile.Result{}, fmt.Errorf("zeroshot: confusion picture: %w", err)
	}
	if opts.Report != nil {
		WriteZeroShotReport(opts.Report, res, det)
	}
	return res, nil
}

// classifier embeds every prompt of every class and builds CLIP's zero-shot weights [E,C].
// The prompts are embedded a block at a time, each class's weight built as soon as its last
// template is in, so memory holds the weights and one block, not every prompt's embedding.
// A block is a whole number of the encoder's batches, so the model sees the batches it would
// see for the whole list at once, and the weights are the same to the bit.
func classifier(enc *fusion.Encoder, task Task) ([]float32, int, error) {
	C, T, E := len(task.ClassNames), len(task.Templates), enc.Dim()
	block := max(1, classifierBlockPrompts/max(enc.MaxBatch(), 1)) * max(enc.MaxBatch(), 1)
	weights := make([]float32, E*C)
	pending := make([][]float32, 0, T) // embeddings of the templates of class c so far
	c := 0
	prompts := make([]string, 0, block)
	flush := func() error {
		if len(prompts) == 0 {
			return nil
		}
		flat, err := enc.Texts(prompts)
		if err != nil {
			return err
		}
		for r := range prompts {
			pending = append(pending, flat[r*E:(r+1)*E])
			if len(pending) < T {
				continue
			}
			w, _, err := metrics.ZeroShotClassifier([][][]float32{pending})
			if err != nil {
				return fmt.Errorf("class %d %s: %w", c, readable.Quote(task.ClassNames[c]), err)
			}
			for d := range E {
				weights[d*C+c] = w[d]
			}
			c, pending = c+1, pending[:0]
		}
		prompts = prompts[:0]
		return nil
	}
	for k := range C {
		for _, p := range task.Prompts(k) {
			prompts = append(prompts, p)
			if len(prompts) == block {
				if err := flush(); err != nil {
					return nil, 0, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, 0, err
	}
	return weights, E, nil
}

// classifierBlockPrompts is about how many prompts classifier embeds at a time (a variable
// for the tests).
var classifierBlockPrompts = 4096

// perClass makes the per-class table from the counts.
func perClass(names []string, counts *metrics.ClassCounts) []evalfile.ClassScore {
	out := make([]evalfile.ClassScore, len(names))
	top := counts.MostConfused()
	for c := range names {
		s := evalfile.ClassScore{Class: names[c], Count: counts.Count(c)}
		if s.Count > 0 {
			s.Recall = float64(counts.Correct(c)) / float64(s.Count)
		}
		if top[c] >= 0 {
			s.Top = names[top[c]]
		}
		out[c] = s
	}
	return out
}

// WriteZeroShotReport prints a zero-shot result for people: the metrics, then one line per
// class that has images (recall, count, the class its images are most often taken for).
func WriteZeroShotReport(w io.Writer, res evalfile.Result, det evalfile.Details) {
	fmt.Fprintf(w, "zero-shot %s: %d images, %d classes (chance %.4f)\n", res.Dataset, det.Images, len(det.ClassNames), 1/float64(max(len(det.ClassNames), 1)))
	for _, k := range slices.Sorted(maps.Keys(res.Metrics)) {
		fmt.Fprintf(w, "  %-22s %.4f\n", k, res.Metrics[k])
	}
	fmt.Fprintf(w, "  %-24s %6s %7s  %s\n", "class", "images", "recall", "most confused with")
	for _, s := range det.PerClass {
		if s.Count == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-24s %6d %7.3f  %s\n", s.Class, s.Count, s.Recall, s.Top)
	}
}

// labelledSet is a source of labelled images: its name for results and messages, its class
// names when it has them, its size when known (-1 otherwise), and a stream of chunks of
// CLIP-normalised images [n,3,S,S] with their keys and labels (-1: none).
type labelledSet struct {
	name    string // short, for the result's dataset field
	origin  string // where it is, for messages
	classes []string
	total   int64
	stream  func(ctx context.Context, fn func(images []float32, keys []string, labels []int32) error) error
}

// openLabelled opens opts.Data as a prepared dataset, an image folder or IDX files.
func openLabelled(opts ZeroShotOptions, size int, log *slog.Logger) (*labelledSet, error) {
	batch := cmp.Or(max(opts.Batch, 0), DefaultBatch)
	if opts.Data == "" {
		return nil, errors.New("--data is required")
	}
	fi, err := os.Stat(opts.Data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if opts.Labels != "" {
		if fi.IsDir() {
			return nil, fmt.Errorf("data %s is a directory: --labels goes with an IDX image file", opts.Data)
		}
		src, err := ingest.IDX(opts.Data, opts.Labels)
		if err != nil {
			return nil, err
		}
		return sourceSet(src, filepath.Base(opts.Data), int64(src.Len()), size, batch, opts.Workers, log), nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("data %s is a file: give a prepared dataset or image folder directory, or an IDX image file with --labels", opts.Data)
	}
	if _, err := os.Stat(filepath.Join(opts.Data, shard.ManifestName)); err == nil {
		return preparedSet(opts.Data, opts.Split, size, batch, opts.Workers, log)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if opts.Split != "" {
		return nil, fmt.Errorf("data %s has no %s: --split applies to prepared datasets only", opts.Data, shard.ManifestName)
	}
	src, err := ingest.ImageFolder(opts.Data)
	if err != nil {
		return nil, err
	}
	return sourceSet(src, filepath.Base(filepath.Clean(opts.Data)), -1, size, batch, opts.Workers, log), nil
}

// zeroShotSplits are the splits a prepared dataset is evaluated on when none is named, in
// order of preference.
var zeroShotSplits = []string{defaultZeroShotSplit, "test", "val", "train"}

// preparedSet reads a split of a prepared dataset with the loader in eval mode.
func preparedSet(dir, split string, size, batch, workers int, log *slog.Logger) (*labelledSet, error) {
	m, err := shard.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if split == "" {
		for _, s := range zeroShotSplits {
			if m.Splits[s] != nil {
				split = s
				break
			}
		}
		if split == "" {
			return nil, fmt.Errorf("dataset %s has none of the splits %v: name one with --split", dir, zeroShotSplits)
		}
	}
	files, err := m.Files(dir, split)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(filepath.Clean(dir)) + ":" + split
	if len(m.ClassNames) == 0 {
		return nil, fmt.Errorf("dataset %s has no class names: it is not a labelled set (prepare one from an image folder, IDX files or the synthetic source)", dir)
	}
	ld, err := loader.New(loader.Config{Files: files, Mode: loader.Eval, BatchSize: batch, ImageSize: size,
		ContextLen: 1, Tokenize: func([]int32, string) error { return nil }, DecodeWorkers: workers})
	if err != nil {
		return nil, err
	}
	stream := func(ctx context.Context, fn func([]float32, []string, []int32) error) error {
		ep := ld.Epoch(ctx, 0, 0)
		defer ep.Close()
		for {
			b, err := ep.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if b.Labels == nil {
				b.Release()
				return fmt.Errorf("split %q has no labels: zero-shot classification needs a labelled split", split)
			}
			err = fn(b.Images, b.Keys, b.Labels)
			b.Release()
			if err != nil {
				return err
			}
		}
		logSkips(log, name, ep.Stats().Skipped)
		return nil
	}
	return &labelledSet{name: name, origin: dir + " split " + split, classes: m.ClassNames, total: m.Splits[split].Images, stream: stream}, nil
}

func logSkips(log *slog.Logger, name string, skipped map[string]int64) {
	for reason, n := range skipped {
		log.Warn("skipped records", "data", name, "reason", reason, "count", n)
	}
}

// sourceSet reads a labelled ingest source (image folder, IDX), decoding and transforming
// its images on workers goroutines.
func sourceSet(src ingest.Source, name string, total int64, size, batch, workers int, log *slog.Logger) *labelledSet {
	type decoded struct {
		key   string
		label int32
		image []float32
	}
	stream := func(ctx context.Context, fn func([]float32, []string, []int32) error) error {
		rejected := map[string]int64{}
		p := pipeline.New(ctx)
		items := pipeline.Source(p, "scan", func(ctx context.Context, emit func(ingest.Item) error) error {
			return src.Scan(ctx, emit, func(r ingest.Reject) error { rejected[r.Reason]++; return nil })
		})
		imgs := pipeline.Map(p, "decode", items, pipeline.Options{Workers: max(workers, 1)},
			func(_ context.Context, it ingest.Item) (decoded, error) {
				img := it.Image
				if img == nil {
					raw, err := it.Load()
					if err != nil {
						return decoded{}, fmt.Errorf("%s: %w", it.Origin, err)
					}
					if img, _, err = imageproc.Decode(raw, imageproc.DefaultLimits); err != nil {
						return decoded{}, fmt.Errorf("%s: %w", it.Origin, err)
					}
				}
				d := decoded{key: it.Key, label: -1, image: make([]float32, 3*size*size)}
				if it.Label != nil {
					d.label = *it.Label
				}
				if err := imageproc.EvalTransform(d.image, img, size); err != nil {
					return decoded{}, fmt.Errorf("%s: %w", it.Origin, err)
				}
				return d, nil
			})
		batches := pipeline.Batch(p, "batch", imgs, batch, true)
		pipeline.Sink(p, "embed", batches, func(_ context.Context, ds []decoded) error {
			images := make([]float32, 0, len(ds)*3*size*size)
			keys := make([]string, len(ds))
			labels := make([]int32, len(ds))
			for i, d := range ds {
				images = append(images, d.image...)
				keys[i], labels[i] = d.key, d.label
			}
			return fn(images, keys, labels)
		})
		if err := p.Wait(); err != nil {
			return err
		}
		logSkips(log, name, rejected)
		return nil
	}
	return &labelledSet{name: name, origin: src.Name(), classes: src.Classes(), total: total, stream: stream}
}
