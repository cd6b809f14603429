package fusion

import (
	"math"
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
)

// Image identities with repeats: rows 0, 2, 3 are captions of one image, 1 and 5 of another.
var multiIDs = []int32{7, 1, 7, 7, 4, 1}

// TestMultiPositiveGradients checks the multi-positive loss ops against central differences
// in float64: whole batch, a rank's rows against a gathered batch, and composed with
// normalisation and logits.
func TestMultiPositiveGradients(t *testing.T) {
	for _, c := range []nntest.Case{
		{Name: "square", Shapes: [][]int{{6, 6}}, Scale: []float64{3},
			Build: func(in G.Nodes) (*G.Node, error) { return contrastiveLossOp(in[0], multiIDs) }},
		{Name: "rank_rows", Shapes: [][]int{{6, 9}, {6, 9}}, Scale: []float64{3, 3},
			Build: func(in G.Nodes) (*G.Node, error) { return localContrastiveLossOp(in[0], in[1], 3, multiIDs) }},
		{Name: "normalize_logits_loss", Shapes: [][]int{{6, 3}, {6, 3}, {1}},
			Build: func(in G.Nodes) (*G.Node, error) {
				l, err := normalizedLogits(in[0], in[1], in[2])
				if err != nil {
					return nil, err
				}
				return contrastiveLossOp(l, multiIDs)
			}},
	} {
		t.Run(c.Name, func(t *testing.T) { nntest.CheckGradients(t, c) })
	}
}

// TestMultiPositiveHandExample works one case out by hand: two rows of one image and equal
// logits everywhere make every softmax uniform (1/2), so each row's loss is log 2 whatever
// its positives; with distinct ids the same. Logits favouring the positives lower it, and a
// row that puts all its mass on one of its two positives pays log 2.
func TestMultiPositiveHandExample(t *testing.T) {
	loss := func(l []float64, ids []int32) float64 {
		g := G.NewGraph()
		x := must(nn.Variable(g, "l", l, 2, 2))
		out, err := contrastiveLossOp(x, ids)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float64, 1)
		if _, err := nn.Store(out, got); err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	for _, ids := range [][]int32{nil, {0, 0}} {
		if got := loss([]float64{0, 0, 0, 0}, ids); math.Abs(got-math.Ln2) > 1e-12 {
			t.Errorf("ids %v, equal logits: loss %v, want log 2", ids, got)
		}
	}
	// One image twice, each row all on its first text: row softmaxes (1, 0); columns: column
	// 0 is (½, ½), column 1 (½, ½). Rows: −½(log 1 + log 0⁺) is huge; use a finite gap d:
	// row i: p = (σ(d), σ(−d)), loss_row = −½(log σ(d) + log σ(−d)); columns uniform: log 2.
	d := 3.0
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	want := (-0.5*(math.Log(sig(d))+math.Log(sig(-d))) + math.Ln2) / 2
	if got := loss([]float64{d, 0, d, 0}, []int32{5, 5}); math.Abs(got-want) > 1e-12 {
		t.Errorf("one image twice, rows on their first text: loss %v, want %v", got, want)
	}
	// Distinct images, the same logits: row 0 on its own text (σ(d)), row 1 on the wrong one.
	wantCLIP := (-math.Log(sig(d)) - math.Log(sig(-d)) - 2*math.Log(0.5)) / 4
	if got := loss([]float64{d, 0, d, 0}, nil); math.Abs(got-wantCLIP) > 1e-12 {
		t.Errorf("distinct images: loss %v, want %v", got, wantCLIP)
	}
}

// TestMultiPositiveMatchesPyTorch compares the loss and the gradients of raw features and
// scale with scripts/peers/losses.py multipos (PyTorch autograd, float64).
func TestMultiPositiveMatchesPyTorch(t *testing.T) {
	scale := []float64{2.3}
	checkLossReference(t, "multipos", map[string]any{"logit_scale": scale[0], "ids": multiIDs},
		[]string{"logit_scale"}, [][]float64{scale},
		func(in G.Nodes) (*G.Node, error) {
			l, err := normalizedLogits(in[0], in[1], in[2])
			if err != nil {
				return nil, err
			}
			return contrastiveLossOp(l, multiIDs)
		})
}

// TestMultiPositiveDataParallel: W ranks with their rows' image identities give the loss and
// gradients of one process with the whole batch (pairs of rows share an image; the pairs do
// not straddle ranks).
func TestMultiPositiveDataParallel(t *testing.T) {
	checkDataParallelIDs(t, microConfig, []int32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5})
}

// TestSetImageIDs: repeated ids change CLIP's loss; other losses refuse them; nil restores.
func TestSetImageIDs(t *testing.T) {
	m, err := New(microConfig, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	images, tokens := randomBatch(microConfig, 4, 2)
	single, err := m.Step(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetImageIDs([]int32{0, 0, 1, 1}); err != nil {
		t.Fatal(err)
	}
	multi, err := m.Step(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if multi == single {
		t.Error("repeated image ids left the loss unchanged")
	}
	if err := m.SetImageIDs(nil); err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Step(images, tokens); again != single {
		t.Errorf("ids reset: loss %v, want %v", again, single)
	}
	if m.SetImageIDs([]int32{0, 1}) == nil {
		t.Error("ids of the wrong length accepted")
	}
	cfg := microConfig
	cfg.Loss = LossSigLIP
	s, err := New(cfg, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.SetImageIDs([]int32{0, 0, 1, 1}) == nil {
		t.Error("SigLIP accepted several captions of one image")
	}
	if err := s.SetImageIDs([]int32{3, 2, 1, 0}); err != nil {
		t.Errorf("SigLIP refused distinct ids: %v", err)
	}
}
