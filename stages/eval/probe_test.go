package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/clipgo/clipgo/data/synth"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

// probeFolder writes perClass synthetic zero-shot scenes of each held-out class (seeded) as an
// image folder root/<class>/<i>.png at the test model's image size, and returns root.
func probeFolder(t *testing.T, seed int64, perClass int) string {
	t.Helper()
	root := t.TempDir()
	names := synth.Classes()
	opts := synth.Options{Seed: seed, Size: evalModelConfig().Vision.ImageSize}
	for i := range perClass * len(synth.HeldOut()) {
		s := synth.ZeroShot(opts, i)
		dir := filepath.Join(root, names[s.Label])
		stagetest.Must(t, os.MkdirAll(dir, 0o755))
		var buf bytes.Buffer
		stagetest.Must(t, png.Encode(&buf, s.Image))
		stagetest.Must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d.png", i)), buf.Bytes(), 0o644))
	}
	return root
}

// folderFeatures embeds an image folder as Probe does.
func folderFeatures(t *testing.T, model *evalmodel.Model, root string) (*mat.Dense, []int) {
	t.Helper()
	set, err := openLabelled(ZeroShotOptions{Data: root}, model.Config.Vision.ImageSize, stagetest.Quiet)
	stagetest.Must(t, err)
	x, y, err := probeFeatures(context.Background(), model, set, "test", nil, stagetest.Quiet)
	stagetest.Must(t, err)
	return x, y
}

// TestLogisticGradient checks the objective's gradient against central differences.
func TestLogisticGradient(t *testing.T) {
	const n, d, K, C = 12, 4, 3, 0.7
	r := rand.New(rand.NewPCG(1, 2))
	x := mat.NewDense(n, d, nil)
	y := make([]int, n)
	for i := range n {
		for j := range d {
			x.Set(i, j, r.NormFloat64())
		}
		y[i] = i % K
	}
	o := &logregObjective{x: x, y: y, K: K, d: d, n: n, C: C, z: mat.NewDense(n, K, nil)}
	theta := make([]float64, K*d+K)
	for i := range theta {
		theta[i] = r.NormFloat64()
	}
	o.eval(theta)
	grad := append([]float64(nil), o.grad...)
	f0 := o.f
	// The objective, unscaled, by hand: C·Σ −log softmax + ½‖W‖², divided by C·n.
	var want float64
	for i := range n {
		z := make([]float64, K)
		for k := range K {
			z[k] = theta[K*d+k]
			for j := range d {
				z[k] += theta[k*d+j] * x.At(i, j)
			}
		}
		m := math.Inf(-1)
		for _, v := range z {
			m = math.Max(m, v)
		}
		var s float64
		for _, v := range z {
			s += math.Exp(v - m)
		}
		want += C * (m + math.Log(s) - z[y[i]])
	}
	for _, w := range theta[:K*d] {
		want += w * w / 2
	}
	if got := f0 * C * n; math.Abs(got-want) > 1e-10*math.Abs(want) {
		t.Errorf("objective %v, by hand %v", got, want)
	}
	const h = 1e-6
	for i := range theta {
		p := append([]float64(nil), theta...)
		p[i] += h
		o.eval(p)
		fp := o.f
		p[i] -= 2 * h
		o.eval(p)
		fd := (fp - o.f) / (2 * h)
		if math.Abs(fd-grad[i]) > 1e-7 {
			t.Errorf("gradient[%d] = %v, central difference %v", i, grad[i], fd)
		}
	}
}

// TestLogisticMatchesScikitLearn fits the probe's classifier and scikit-learn's
// LogisticRegression (scripts/peers/probe_sklearn.py) on the same image features — a tiny
// model's, of synthetic scenes in image folders — at C from strong to weak regularisation:
// test accuracy within 0.5 points, the objective and the weights alike.
func TestLogisticMatchesScikitLearn(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short runs (the race run): the full test run compares with scikit-learn")
	}
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = testenv.Command(t, "python3", "apt-get install python3-sklearn")
	}
	if out, err := exec.Command(py, "-c", "import sklearn, scipy, numpy").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 cannot import sklearn (apt-get install python3-sklearn): "+strings.TrimSpace(string(out)))
	}
	// Wider than evalModelConfig: more features, better than chance even untrained.
	cfg := evalModelConfig()
	cfg.EmbedDim, cfg.Vision.PatchSize, cfg.Vision.Width = 64, 8, 32
	model, err := evalmodel.Open(stagetest.Checkpoint(t, cfg, 5), 0, false)
	stagetest.Must(t, err)
	defer model.Close()
	xTrain, yTrain := folderFeatures(t, model, probeFolder(t, 1, 12))
	xTest, yTest := folderFeatures(t, model, probeFolder(t, 2, 6))
	K := len(synth.HeldOut())
	Cs := []float64{0.1, 1, 10, 100}

	settings := logregSettings{MaxIter: 10_000, GradTol: 1e-9}
	req := map[string]any{"train_x": rows(xTrain), "train_y": yTrain, "classes": K, "Cs": Cs,
		"max_iter": settings.MaxIter, "tol": 1e-10,
		"eval": map[string]any{"test": map[string]any{"x": rows(xTest), "y": yTest}}}
	raw, err := json.Marshal(req)
	stagetest.Must(t, err)
	cmd := exec.Command(py, filepath.Join(testenv.RepoRoot(t), "scripts/peers/probe_sklearn.py"))
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe_sklearn.py: %v: %s", err, stderr.String())
	}
	var ref struct {
		Sklearn string
		Fits    []struct {
			C         float64
			NIter     int `json:"n_iter"`
			Objective float64
			Coef      [][]float64
			Intercept []float64
			Acc1      map[string]float64
		}
	}
	stagetest.Must(t, json.Unmarshal(out, &ref))
	if len(ref.Fits) != len(Cs) {
		t.Fatalf("probe_sklearn.py gave %d fits for %d values of C", len(ref.Fits), len(Cs))
	}
	for i, C := range Cs {
		want := ref.Fits[i]
		clf, err := fitLogistic(context.Background(), xTrain, yTrain, K, C, settings)
		stagetest.Must(t, err)
		acc, err := clf.accuracy(xTest, yTest)
		stagetest.Must(t, err)
		var dw, wmax float64
		for k := range K {
			for j := range clf.D {
				dw = math.Max(dw, math.Abs(clf.W[k*clf.D+j]-want.Coef[k][j]))
				wmax = math.Max(wmax, math.Abs(want.Coef[k][j]))
			}
			dw = math.Max(dw, math.Abs(clf.B[k]-want.Intercept[k]))
		}
		t.Logf("C=%g: acc1 %.4f (scikit-learn %s %.4f), objective %.10g (%.10g), iterations %d (%d), largest weight difference %.3g of %.3g, %s",
			C, acc, ref.Sklearn, want.Acc1["test"], clf.Objective, want.Objective, clf.Iterations, want.NIter, dw, wmax, clf.Status)
		if d := math.Abs(acc - want.Acc1["test"]); d > 0.005 {
			t.Errorf("C=%g: test accuracy %.4f, scikit-learn %.4f: %.2f points apart, more than 0.5", C, acc, want.Acc1["test"], 100*d)
		}
		// Both minimise the same strictly convex objective (in W; the intercepts stay summing to
		// zero from a zero start). scikit-learn 1.2 cannot pass scipy's L-BFGS-B its ftol, whose
		// default (2.2e-9 relative decrease) stops it short of its gradient tolerance: so the
		// probe's objective must be no higher, and scikit-learn's close above it.
		rel := (clf.Objective - want.Objective) / want.Objective
		if rel > 1e-9 || rel < -1e-5 {
			t.Errorf("C=%g: objective %.10g, scikit-learn reaches %.10g (relative difference %.3g)", C, clf.Objective, want.Objective, rel)
		}
		if dw > 1e-2*math.Max(wmax, 1) {
			t.Errorf("C=%g: weights differ from scikit-learn's by up to %.3g (largest weight %.3g)", C, dw, wmax)
		}
	}
}

func rows(m *mat.Dense) [][]float64 {
	n, _ := m.Dims()
	out := make([][]float64, n)
	for i := range n {
		out[i] = m.RawRowView(i)
	}
	return out
}

// TestProbeWritesCLIPBenchmarkResult runs the whole probe on image folders and checks the
// result file: CLIP_benchmark's task and metric names, a C from the grid, and acc1 equal to
// that of a fit at that C on the same features.
func TestProbeWritesCLIPBenchmarkResult(t *testing.T) {
	ckpt := evalCheckpoint(t)
	train, test := probeFolder(t, 1, 12), probeFolder(t, 2, 6)
	out := filepath.Join(t.TempDir(), "probe.json")
	var report bytes.Buffer
	res, err := Probe(context.Background(), ProbeOptions{Checkpoint: ckpt, Train: train, Test: test, Out: out,
		MaxIter: 200, Report: &report, Log: stagetest.Quiet})
	stagetest.Must(t, err)
	got, det, err := evalfile.Read(out)
	stagetest.Must(t, err)
	if got.Task != "linear_probe" || det == nil || det.Images != 6*len(synth.HeldOut()) {
		t.Fatalf("result %+v, details %+v", got, det)
	}
	for _, k := range []string{"lp_acc1", "lp_acc5", "lp_mean_per_class_recall", "C"} {
		if _, ok := got.Metrics[k]; !ok {
			t.Errorf("metric %s missing from %v", k, got.Metrics)
		}
	}
	C := got.Metrics["C"]
	onGrid := false
	for _, g := range ProbeGrid() {
		onGrid = onGrid || g == C
	}
	if !onGrid {
		t.Errorf("C = %v is not a grid value", C)
	}
	if !strings.Contains(det.Note, "hold-out") || !strings.Contains(report.String(), "sweep") {
		t.Errorf("the sweep is not reported: note %q, report %q", det.Note, report.String())
	}
	model, err := evalmodel.Open(ckpt, 0, false)
	stagetest.Must(t, err)
	defer model.Close()
	xTrain, yTrain := folderFeatures(t, model, train)
	xTest, yTest := folderFeatures(t, model, test)
	clf, err := fitLogistic(context.Background(), xTrain, yTrain, len(det.ClassNames), C, logregSettings{MaxIter: 200, GradTol: defaultLogreg.GradTol})
	stagetest.Must(t, err)
	acc, err := clf.accuracy(xTest, yTest)
	stagetest.Must(t, err)
	if math.Abs(acc-res.Metrics["lp_acc1"]) > 1e-12 {
		t.Errorf("lp_acc1 %v, a fit at C=%v gives %v", res.Metrics["lp_acc1"], C, acc)
	}
	t.Logf("C=%g lp_acc1 %.4f lp_mean_per_class_recall %.4f (chance %.3f)", C, got.Metrics["lp_acc1"], got.Metrics["lp_mean_per_class_recall"], 1/float64(len(det.ClassNames)))

	// The same set for training and testing is refused.
	if _, err := Probe(context.Background(), ProbeOptions{Checkpoint: ckpt, Train: train, Test: train, Out: out, Log: stagetest.Quiet}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("train = test: %v", err)
	}
	if _, err := Probe(context.Background(), ProbeOptions{Checkpoint: ckpt, Train: train, Test: test, Out: out, C: -1, Log: stagetest.Quiet}); err == nil {
		t.Error("C = -1 accepted")
	}
}
