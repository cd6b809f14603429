package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/metrics"
	"github.com/clipgo/clipgo/internal/plots"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
)

// ProbeOptions configures a linear-probe evaluation: a logistic regression trained on the
// frozen image features of a labelled training set and measured on a labelled test set.
//
// Train and Test are each what ZeroShotOptions.Data takes (a prepared dataset, an image
// folder, or an IDX image file with its label file in TrainLabels/TestLabels). A prepared
// Train is read from TrainSplit (default "train"); a prepared Test from TestSplit (default:
// the first of zeroshot, test, val, train it has).
type ProbeOptions struct {
	Checkpoint  string
	Train       string
	TrainLabels string
	TrainSplit  string
	Test        string
	TestLabels  string
	TestSplit   string
	Out         string // result JSON; details and the confusion PNG go beside it
	Dataset     string // dataset name in the result (default: from Test and its split)
	Batch       int    // images per model call (default 64)
	QuickGELU   bool
	Workers     int

	// ValFraction is the share of the training images held out to choose C (default 0.2,
	// at least one image on each side); C, when positive, is used as given instead.
	ValFraction float64
	Seed        uint64  // the hold-out's shuffle
	C           float64 // scikit-learn's inverse L2 strength; 0: chosen on the hold-out
	MaxIter     int     // L-BFGS iterations per fit (default 1000, OpenAI's max_iter)

	Report   io.Writer
	Log      *slog.Logger
	Progress io.Writer
}

// TaskLinearProbe is CLIP_benchmark's name of the linear-probe task (clip_benchmark/cli.py).
const TaskLinearProbe = "linear_probe"

// Probe defaults.
const (
	DefaultProbeValFraction = 0.2
	defaultProbeTrainSplit  = "train"
)

// ProbeGrid is the values of C the sweep chooses from: 10^-6 to 10^6 in 96 logarithmic steps
// (8 a decade), the range and resolution of the CLIP paper's sweep (Radford et al. 2021,
// appendix A.3, where λ = 1/C).
func ProbeGrid() []float64 {
	g := make([]float64, probeGridSteps+1)
	for i := range g {
		g[i] = math.Pow(10, -6+float64(i)/8)
	}
	return g
}

const probeGridSteps = 96

// SweepPoint is one fit of the sweep: C, the accuracy on the hold-out, and how the fit ended.
type SweepPoint struct {
	C          float64 `json:"C"`
	ValAcc1    float64 `json:"val_acc1"`
	Iterations int     `json:"iterations"`
	Status     string  `json:"status"`
}

// Probe runs CLIP_benchmark's linear-probe evaluation (clip_benchmark/metrics/linear_probe.py)
// with the classifier of the CLIP paper (scikit-learn's L-BFGS logistic regression) in place of
// CLIP_benchmark's AdamW-trained linear layer:
//
//  1. the image features of every train and test image, L2-normalised (Featurizer's
//     normalize=True);
//  2. unless opts.C is given, a seeded ValFraction of the training images is held out and C
//     is chosen on it by CLIP_benchmark's search over ProbeGrid: the 7 points 10^-6, 10^-4, …,
//     10^6, then [peak−s, peak, peak+s] for s = 8, 4, 2, 1 grid steps, keeping the first
//     point of highest hold-out accuracy;
//  3. a multinomial L2 logistic regression at that C on all the training images (train + the
//     hold-out, as CLIP_benchmark does when it uses every image);
//  4. acc1, acc5 (at least 5 classes) and mean per-class recall on the test images, written
//     as CLIP_benchmark's result with its metric names lp_acc1, lp_acc5 and
//     lp_mean_per_class_recall, plus C; the details (per-class table, confusion matrix,
//     the sweep in the note) and the confusion PNG go beside it.
func Probe(ctx context.Context, opts ProbeOptions) (evalfile.Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Out == "" {
		return evalfile.Result{}, errors.New("probe: --out is required")
	}
	valFrac := cmp.Or(opts.ValFraction, DefaultProbeValFraction)
	if opts.C == 0 && !(valFrac > 0 && valFrac < 1) {
		return evalfile.Result{}, fmt.Errorf("probe: --val-fraction %v, want a share in (0,1) of the training images to choose C on", opts.ValFraction)
	}
	if opts.C < 0 || math.IsNaN(opts.C) || math.IsInf(opts.C, 0) {
		return evalfile.Result{}, fmt.Errorf("probe: --C %v, want a positive finite inverse regularisation strength (or 0 to choose it)", opts.C)
	}
	settings := defaultLogreg
	if opts.MaxIter > 0 {
		settings.MaxIter = opts.MaxIter
	}
	model, err := evalmodel.Open(opts.Checkpoint, opts.Batch, opts.QuickGELU)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: %w", err)
	}
	defer model.Close()
	size := model.Config.Vision.ImageSize
	train, err := openLabelled(ZeroShotOptions{Data: opts.Train, Labels: opts.TrainLabels,
		Split: cmp.Or(opts.TrainSplit, probeTrainSplit(opts.Train, opts.TrainLabels)), Batch: opts.Batch, Workers: opts.Workers}, size, log)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: train: %w", err)
	}
	test, err := openLabelled(ZeroShotOptions{Data: opts.Test, Labels: opts.TestLabels, Split: opts.TestSplit,
		Batch: opts.Batch, Workers: opts.Workers}, size, log)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: test: %w", err)
	}
	if train.origin == test.origin {
		return evalfile.Result{}, fmt.Errorf("probe: train and test are both %s: a probe measured on its training images says nothing; give another split or set", test.origin)
	}
	if train.classes != nil && test.classes != nil && len(train.classes) != len(test.classes) {
		return evalfile.Result{}, fmt.Errorf("probe: train %s names %d classes but test %s names %d: they are not the same task",
			train.origin, len(train.classes), test.origin, len(test.classes))
	}

	xTrain, yTrain, err := probeFeatures(ctx, model, train, "probe train", opts.Progress, log)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: train %s: %w", train.origin, err)
	}
	xTest, yTest, err := probeFeatures(ctx, model, test, "probe test", opts.Progress, log)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: test %s: %w", test.origin, err)
	}
	names := train.classes
	if names == nil {
		names = test.classes
	}
	K := len(names)
	if K == 0 { // CLIP_benchmark: targets.max() + 1
		for _, y := range [][]int{yTrain, yTest} {
			for _, c := range y {
				K = max(K, c+1)
			}
		}
		for c := range K {
			names = append(names, strconv.Itoa(c))
		}
	}
	for _, set := range []struct {
		what string
		y    []int
	}{{"train " + train.origin, yTrain}, {"test " + test.origin, yTest}} {
		for _, c := range set.y {
			if c >= K {
				return evalfile.Result{}, fmt.Errorf("probe: %s has label %d but the task has %d classes", set.what, c, K)
			}
		}
	}
	if K < 2 {
		return evalfile.Result{}, fmt.Errorf("probe: train %s has %d class: a classifier needs at least 2", train.origin, K)
	}

	C := opts.C
	var sweep []SweepPoint
	if C == 0 {
		if C, sweep, err = chooseC(ctx, xTrain, yTrain, K, valFrac, opts.Seed, settings, log); err != nil {
			return evalfile.Result{}, fmt.Errorf("probe: train %s: %w", train.origin, err)
		}
	}
	log.Info("probe: final fit", "C", C, "images", len(yTrain))
	clf, err := fitLogistic(ctx, xTrain, yTrain, K, C, settings)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: train %s: %w", train.origin, err)
	}
	z, err := clf.scores(xTest)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: %w", err)
	}
	counts, err := metrics.NewClassCounts(K)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: %w", err)
	}
	logits := make([]float32, 0, len(yTest)*K)
	for i := range yTest {
		for _, v := range z.RawRowView(i) {
			logits = append(logits, float32(v))
		}
	}
	if err := counts.Add(logits, yTest); err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: test %s: %w", test.origin, err)
	}
	cls, err := counts.Result()
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: test %s: %w", test.origin, err)
	}
	m := map[string]float64{"C": C}
	for k, v := range cls.Metrics() {
		m["lp_"+k] = v
	}
	res := evalfile.Result{Dataset: cmp.Or(opts.Dataset, test.name), Model: model.Desc, Pretrained: model.Path,
		Task: TaskLinearProbe, Metrics: m}
	det := evalfile.Details{ClassNames: names, PerClass: perClass(names, counts), Images: counts.Images(),
		Note: probeNote(len(yTrain), valFrac, C, sweep, clf)}
	if K <= evalfile.MaxConfusionClasses {
		det.Confusion = counts.Confusion()
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: %w", err)
	}
	if err := evalfile.Write(opts.Out, res, det); err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: %w", err)
	}
	if K > plots.MaxClasses || det.Confusion == nil {
		log.Warn("no confusion picture", "classes", K, "limit", min(plots.MaxClasses, evalfile.MaxConfusionClasses))
	} else if err := plots.Confusion(evalfile.ConfusionPath(opts.Out), det.Confusion, names); err != nil {
		return evalfile.Result{}, fmt.Errorf("probe: confusion picture: %w", err)
	}
	if opts.Report != nil {
		writeProbeReport(opts.Report, res, det, sweep)
	}
	return res, nil
}

// probeTrainSplit is the default training split: "train" for a prepared dataset, none for an
// image folder or IDX files (which have no splits).
func probeTrainSplit(data, labels string) string {
	if labels != "" {
		return ""
	}
	if _, err := os.Stat(filepath.Join(data, shard.ManifestName)); err == nil {
		return defaultProbeTrainSplit
	}
	return ""
}

// probeFeatures embeds every image of set: the L2-normalised image features [n,E] (float64
// for the solver) and the labels, each of which must be present.
func probeFeatures(ctx context.Context, model *evalmodel.Model, set *labelledSet, what string, w io.Writer, log *slog.Logger) (*mat.Dense, []int, error) {
	E := model.Enc.Dim()
	var feats []float64
	var labels []int
	bar := progress.New(w, log, what, set.total)
	err := set.stream(ctx, func(images []float32, keys []string, labs []int32) error {
		for i, y := range labs {
			if y < 0 {
				return fmt.Errorf("image %s has no label: a linear probe needs every image labelled", keys[i])
			}
		}
		e, err := model.Enc.Images(images) // L2-normalised rows
		if err != nil {
			return err
		}
		for _, v := range e {
			feats = append(feats, float64(v))
		}
		for _, y := range labs {
			labels = append(labels, int(y))
		}
		bar.Add(int64(len(labs)), "")
		return nil
	})
	bar.Finish()
	if err != nil {
		return nil, nil, err
	}
	if len(labels) == 0 {
		return nil, nil, errors.New("no image")
	}
	return mat.NewDense(len(labels), E, feats), labels, nil
}

// chooseC holds out a seeded valFrac of the rows and searches ProbeGrid for the C of best
// hold-out accuracy as CLIP_benchmark's find_peak does (see Probe).
func chooseC(ctx context.Context, x *mat.Dense, y []int, K int, valFrac float64, seed uint64, settings logregSettings, log *slog.Logger) (float64, []SweepPoint, error) {
	fitX, fitY, valX, valY, err := holdOut(x, y, valFrac, seed)
	if err != nil {
		return 0, nil, err
	}
	grid := ProbeGrid()
	tried := map[int]SweepPoint{}
	var sweep []SweepPoint
	acc := func(i int) (float64, error) {
		if p, ok := tried[i]; ok {
			return p.ValAcc1, nil
		}
		clf, err := fitLogistic(ctx, fitX, fitY, K, grid[i], settings)
		if err != nil {
			return 0, err
		}
		a, err := clf.accuracy(valX, valY)
		if err != nil {
			return 0, err
		}
		p := SweepPoint{C: grid[i], ValAcc1: a, Iterations: clf.Iterations, Status: clf.Status}
		tried[i] = p
		sweep = append(sweep, p)
		log.Info("probe: sweep", "C", p.C, "val_acc1", a, "iterations", clf.Iterations, "status", clf.Status)
		return a, nil
	}
	peak := func(idx []int) (int, error) {
		best, bestAcc := idx[0], -1.0
		for _, i := range idx {
			a, err := acc(i)
			if err != nil {
				return 0, err
			}
			if a > bestAcc {
				best, bestAcc = i, a
			}
		}
		return best, nil
	}
	p, err := peak([]int{0, 16, 32, 48, 64, 80, 96})
	if err != nil {
		return 0, nil, err
	}
	for span := 8; span > 0; span /= 2 {
		if p, err = peak([]int{max(p-span, 0), p, min(p+span, probeGridSteps)}); err != nil {
			return 0, nil, err
		}
	}
	return grid[p], sweep, nil
}

// holdOut splits the rows of x into a fitting part and a hold-out of round(valFrac·n) rows
// (at least one each), by a permutation seeded with seed.
func holdOut(x *mat.Dense, y []int, valFrac float64, seed uint64) (fitX *mat.Dense, fitY []int, valX *mat.Dense, valY []int, err error) {
	n, d := x.Dims()
	nVal := int(math.Round(valFrac * float64(n)))
	if nVal < 1 || nVal >= n {
		return nil, nil, nil, nil, fmt.Errorf("%d images cannot be split %.0f%% / %.0f%% to choose C (need at least one on each side); give more images, another --val-fraction, or --C",
			n, 100*(1-valFrac), 100*valFrac)
	}
	perm := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)).Perm(n)
	take := func(rows []int) (*mat.Dense, []int) {
		m := mat.NewDense(len(rows), d, nil)
		labels := make([]int, len(rows))
		for i, r := range rows {
			m.SetRow(i, x.RawRowView(r))
			labels[i] = y[r]
		}
		return m, labels
	}
	valX, valY = take(perm[:nVal])
	fitX, fitY = take(perm[nVal:])
	return fitX, fitY, valX, valY, nil
}

// probeNote says in the details how C was found and how the final fit ended.
func probeNote(nTrain int, valFrac, C float64, sweep []SweepPoint, clf logistic) string {
	fit := fmt.Sprintf("final fit on %d images at C=%g: %d L-BFGS iterations (%s), objective C·Σloss+½‖W‖² = %.6g",
		nTrain, C, clf.Iterations, clf.Status, clf.Objective)
	if len(sweep) == 0 {
		return "C given; " + fit
	}
	s := fmt.Sprintf("C chosen on a %.0f%% hold-out of the training images over 10^-6..10^6 (8 steps a decade), %d fits:", 100*valFrac, len(sweep))
	for _, p := range sweep {
		s += fmt.Sprintf(" C=%.4g→%.4f", p.C, p.ValAcc1)
	}
	return s + "; " + fit
}

// writeProbeReport prints a probe result for people: the metrics, the sweep, the per-class
// recall.
func writeProbeReport(w io.Writer, res evalfile.Result, det evalfile.Details, sweep []SweepPoint) {
	fmt.Fprintf(w, "linear probe %s: %d test images, %d classes (chance %.4f)\n", res.Dataset, det.Images, len(det.ClassNames), 1/float64(max(len(det.ClassNames), 1)))
	for _, k := range []string{"lp_acc1", "lp_acc5", "lp_mean_per_class_recall", "C"} {
		if v, ok := res.Metrics[k]; ok {
			fmt.Fprintf(w, "  %-26s %.4g\n", k, v)
		}
	}
	if len(sweep) > 0 {
		fmt.Fprintf(w, "  sweep (hold-out acc1 by C):\n")
		for _, p := range sweep {
			fmt.Fprintf(w, "    C=%-10.4g %.4f  (%d iterations, %s)\n", p.C, p.ValAcc1, p.Iterations, p.Status)
		}
	}
	fmt.Fprintf(w, "  %-24s %6s %7s  %s\n", "class", "images", "recall", "most confused with")
	for _, s := range det.PerClass {
		if s.Count == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-24s %6d %7.3f  %s\n", s.Class, s.Count, s.Recall, s.Top)
	}
}
