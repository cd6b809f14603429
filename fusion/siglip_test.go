package fusion

import (
	"bytes"
	"encoding/json"
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
// with scripts/peers/siglip_loss.py (PyTorch autograd, float64).
func TestSigLIPMatchesPyTorch(t *testing.T) {
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
	// Near a trained model's values, where the bias matters: scale e^2.3, bias -2.
	scale, bias := []float64{2.3}, []float64{-2}
	g := G.NewGraph()
	in := G.Nodes{must(nn.Variable(g, "img", img, B, E)), must(nn.Variable(g, "txt", txt, B, E)),
		must(nn.Variable(g, "scale", scale, 1)), must(nn.Variable(g, "bias", bias, 1))}
	l, err := normalizedLogits(in[0], in[1], in[2])
	if err != nil {
		t.Fatal(err)
	}
	loss, err := sigmoidLossOp(l, in[3], 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, 1)
	if loss, err = nn.Tap(loss, got); err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(loss, in...)
	if err != nil {
		t.Fatal(err)
	}
	gotGrads := [][]float64{make([]float64, B*E), make([]float64, B*E), make([]float64, 1), make([]float64, 1)}
	for i, gn := range grads {
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
	req, _ := json.Marshal(map[string]any{"image": rows(img), "text": rows(txt), "logit_scale": scale[0], "logit_bias": bias[0]})
	cmd := exec.Command(py, testenv.RepoRoot(t)+"/scripts/peers/siglip_loss.py")
	cmd.Stdin = bytes.NewReader(req)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("siglip_loss.py: %v", err)
	}
	var ref struct {
		Loss       float64     `json:"loss"`
		Image      [][]float64 `json:"image"`
		Text       [][]float64 `json:"text"`
		LogitScale float64     `json:"logit_scale"`
		LogitBias  float64     `json:"logit_bias"`
	}
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("siglip_loss.py printed %q: %v", out, err)
	}
	flat := func(r [][]float64) []float64 {
		var x []float64
		for _, row := range r {
			x = append(x, row...)
		}
		return x
	}
	for _, c := range []struct {
		name      string
		got, want []float64
	}{
		{"loss", got, []float64{ref.Loss}},
		{"d image", gotGrads[0], flat(ref.Image)},
		{"d text", gotGrads[1], flat(ref.Text)},
		{"d logit_scale", gotGrads[2], []float64{ref.LogitScale}},
		{"d logit_bias", gotGrads[3], []float64{ref.LogitBias}},
	} {
		if len(c.got) != len(c.want) {
			t.Fatalf("%s: %d values, reference %d", c.name, len(c.got), len(c.want))
		}
		var worst, top float64
		for i := range c.got {
			worst = max(worst, math.Abs(c.got[i]-c.want[i]))
			top = max(top, math.Abs(c.want[i]))
		}
		t.Logf("%s: max |diff| %.2e (max |ref| %.3g)", c.name, worst, top)
		if worst > 1e-10*max(1, top) {
			t.Errorf("%s differs from PyTorch by %.3g", c.name, worst)
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
