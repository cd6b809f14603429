package fusion

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
)

// TestSigmoidLossGradients checks SigLIP's loss against central differences in float64: whole
// batch, a rank's rows against a gathered batch, and composed with normalisation and logits.
func TestSigmoidLossGradients(t *testing.T) {
	for _, c := range []nntest.Case{
		{Name: "square", Shapes: [][]int{{5, 5}, {1}}, Scale: []float64{3, 2},
			Build: func(in G.Nodes) (*G.Node, error) { return sigmoidLossOp(in[0], in[1], 0) }},
		{Name: "rank_rows", Shapes: [][]int{{3, 7}, {1}}, Scale: []float64{3, 2},
			Build: func(in G.Nodes) (*G.Node, error) { return sigmoidLossOp(in[0], in[1], 2) }},
		{Name: "normalize_logits_loss", Shapes: [][]int{{4, 3}, {4, 3}, {1}, {1}},
			Build: func(in G.Nodes) (*G.Node, error) {
				l, err := normalizedLogits(in[0], in[1], in[2])
				if err != nil {
					return nil, err
				}
				return sigmoidLossOp(l, in[3], 0)
			}},
	} {
		t.Run(c.Name, func(t *testing.T) { nntest.CheckGradients(t, c) })
	}
	g := G.NewGraph()
	if _, err := sigmoidLossOp(must(nn.Variable(g, "l", make([]float32, 6), 2, 3)), must(nn.Variable(g, "b", make([]float32, 1), 1)), 2); err == nil {
		t.Error("positives past the last column were accepted")
	}
}

func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(err)
	}
	return n
}

func normalizedLogits(img, txt, scale *G.Node) (*G.Node, error) {
	a, err := nn.L2Normalize(img)
	if err != nil {
		return nil, err
	}
	b, err := nn.L2Normalize(txt)
	if err != nil {
		return nil, err
	}
	return logitsOp(a, b, scale)
}

// TestSigLIPMatchesPyTorch compares the loss and the gradients of raw features, scale and bias
// with scripts/peers/losses.py (PyTorch autograd, float64).
func TestSigLIPMatchesPyTorch(t *testing.T) {
	// Near a trained model's values, where the bias matters: scale e^2.3, bias -2.
	scale, bias := []float64{2.3}, []float64{-2}
	checkLossReference(t, "siglip", map[string]any{"logit_scale": scale[0], "logit_bias": bias[0]},
		[]string{"logit_scale", "logit_bias"}, [][]float64{scale, bias},
		func(in G.Nodes) (*G.Node, error) {
			l, err := normalizedLogits(in[0], in[1], in[2])
			if err != nil {
				return nil, err
			}
			return sigmoidLossOp(l, in[3], 0)
		})
}

// checkLossReference builds a loss in float64 with build(in) — in[0] raw image features
// [6, 5], in[1] raw text features, then a leaf of one value for each of extra, named names —
// and compares the loss and every input's gradient with scripts/peers/losses.py LOSS, sent the
// features and params.
func checkLossReference(t *testing.T, loss string, params map[string]any, names []string, extra [][]float64,
	build func(in G.Nodes) (*G.Node, error)) {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = testenv.Command(t, "python3", "apt-get install python3-torch")
	}
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		testenv.Missing(t, "python3 cannot import torch (apt-get install python3-torch)")
	}
	const B, E = 6, 5
	rng := rand.New(rand.NewPCG(3, 9))
	img, txt := make([]float64, B*E), make([]float64, B*E)
	for i := range img {
		img[i], txt[i] = rng.NormFloat64(), rng.NormFloat64()
	}
	g := G.NewGraph()
	in := G.Nodes{must(nn.Variable(g, "img", img, B, E)), must(nn.Variable(g, "txt", txt, B, E))}
	vals := [][]float64{img, txt}
	for i, x := range extra {
		in = append(in, must(nn.Variable(g, names[i], x, 1)))
		vals = append(vals, x)
	}
	out, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, 1)
	if out, err = nn.Tap(out, got); err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(out, in...)
	if err != nil {
		t.Fatal(err)
	}
	gotGrads := make([][]float64, len(in))
	for i, gn := range grads {
		gotGrads[i] = make([]float64, len(vals[i]))
		if _, err := nn.Store(gn, gotGrads[i]); err != nil {
			t.Fatal(err)
		}
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}

	rows := func(x []float64) [][]float64 {
		var r [][]float64
		for i := 0; i < len(x); i += E {
			r = append(r, x[i:i+E])
		}
		return r
	}
	req := map[string]any{"image": rows(img), "text": rows(txt)}
	maps.Copy(req, params)
	body, _ := json.Marshal(req)
	cmd := exec.Command(py, testenv.RepoRoot(t)+"/scripts/peers/losses.py", loss)
	cmd.Stdin = bytes.NewReader(body)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("losses.py %s: %v", loss, err)
	}
	var ref map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatalf("losses.py printed %q: %v", raw, err)
	}
	refOf := func(key string) []float64 {
		var x float64
		if json.Unmarshal(ref[key], &x) == nil {
			return []float64{x}
		}
		var r [][]float64
		if err := json.Unmarshal(ref[key], &r); err != nil {
			t.Fatalf("losses.py %s: %v", key, err)
		}
		var flat []float64
		for _, row := range r {
			flat = append(flat, row...)
		}
		return flat
	}
	cases := []struct {
		name      string
		got, want []float64
	}{{"loss", got, refOf("loss")}, {"d image", gotGrads[0], refOf("image")}, {"d text", gotGrads[1], refOf("text")}}
	for i, n := range names {
		cases = append(cases, struct {
			name      string
			got, want []float64
		}{"d " + n, gotGrads[2+i], refOf(n)})
	}
	for _, c := range cases {
		if len(c.got) != len(c.want) {
			t.Fatalf("%s: %d values, reference %d", c.name, len(c.got), len(c.want))
		}
		var worst, top float64
		for i := range c.got {
			worst = max(worst, math.Abs(c.got[i]-c.want[i]))
			top = max(top, math.Abs(c.want[i]))
		}
		t.Logf("%s %s: max |diff| %.2e (max |ref| %.3g)", loss, c.name, worst, top)
		if worst > 1e-10*max(1, top) {
			t.Errorf("%s %s differs from PyTorch by %.3g", loss, c.name, worst)
		}
	}
}

// TestSigLIPModel trains nothing but builds the model with SigLIP's parameters at their
// initial values, and its checkpoint's weights load on the inference path.
func TestSigLIPModel(t *testing.T) {
	cfg := microConfig
	cfg.Loss = LossSigLIP
	m, err := New(cfg, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, want := range map[string]float64{LogitScaleName: SigLIPInitLogitScale, LogitBiasName: SigLIPInitLogitBias} {
		p, ok := m.Param(name)
		if !ok || p.Value[0] != float32(want) {
			t.Errorf("%s: %v (present %v), want %v", name, p, ok, want)
		}
	}
	images, tokens := randomBatch(cfg, 3, 2)
	loss, err := m.Step(images, tokens)
	if err != nil || math.IsNaN(float64(loss)) {
		t.Fatalf("Step: %v, %v", loss, err)
	}
	// At the initial bias every pair looks negative: the loss is about B·σ-loss of the
	// positives, ≈ 10 per image, and the bias gradient is positive.
	if loss < 9 || loss > 12 {
		t.Errorf("initial SigLIP loss %v, want about 10", loss)
	}
	params, err := WeightsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range params {
		names = append(names, p.Name)
	}
	if len(params) != len(m.Params()) {
		t.Errorf("WeightsOf names %d tensors, the model %d: %v", len(params), len(m.Params()), names)
	}
	bad := microConfig
	bad.Loss = "triplet-ish"
	if _, err := New(bad, 2, 1); err == nil {
		t.Error("an unknown loss was accepted")
	}
}
