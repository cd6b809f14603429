package fusion

import (
	"math"
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
)

// normalizedNTXent is the NT-Xent loss of raw views x, L2-normalised first.
func normalizedNTXent(x *G.Node, ids []int32, tau float64) (*G.Node, error) {
	z, err := nn.L2Normalize(x)
	if err != nil {
		return nil, err
	}
	return ntXentLossOp(z, ids, tau)
}

// TestNTXentGradients checks the NT-Xent loss against central differences in float64: two
// views per image side by side (SimCLR), three per image (SupCon's L_out), and a row alone
// with its image (no positive: it only serves as a negative).
func TestNTXentGradients(t *testing.T) {
	for _, c := range []struct {
		name string
		ids  []int32
		tau  float64
	}{
		{"pairs", []int32{0, 0, 1, 1, 2, 2}, 0.1},
		{"triples", []int32{4, 4, 4, 1, 1, 1, 7, 7, 7}, 0.5},
		{"alone", []int32{0, 0, 1, 2, 2}, 0.2},
	} {
		t.Run(c.name, func(t *testing.T) {
			nntest.CheckGradients(t, nntest.Case{Name: c.name, Shapes: [][]int{{len(c.ids), 4}},
				Build: func(in G.Nodes) (*G.Node, error) { return normalizedNTXent(in[0], c.ids, c.tau) }})
		})
	}
	g := G.NewGraph()
	x := must(nn.Variable(g, "x", make([]float32, 8), 4, 2))
	if _, err := ntXentLossOp(x, []int32{0, 0, 1}, 0.1); err == nil {
		t.Error("3 identities for 4 views were accepted")
	}
	if _, err := ntXentLossOp(x, []int32{0, 0, 1, 1}, 0); err == nil {
		t.Error("temperature 0 was accepted")
	}
}

// TestNTXentValues: orthogonal views with their twins equal score the least possible loss,
// log(n−2+e^{1/τ}) − 1/τ per view, and a lone image's row adds nothing.
func TestNTXentValues(t *testing.T) {
	// Views 0,1 of image 0 along e0, views 2,3 of image 1 along e1, view 4 (alone) along e2.
	z := []float64{1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1}
	g := G.NewGraph()
	loss, err := ntXentLossOp(must(nn.Variable(g, "z", z, 5, 3)), []int32{0, 0, 1, 1, 9}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, 1)
	if _, err := nn.Tap(loss, got); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	// Each of the 4 paired views: its twin at 2 = 1/τ, the 3 others at 0.
	want := math.Log(3+math.Exp(2)) - 2
	if math.Abs(got[0]-want) > 1e-12 {
		t.Errorf("loss %v, want %v", got[0], want)
	}
}

// TestNTXentMatchesPyTorch compares the loss and the gradients of both views' raw features
// with scripts/peers/losses.py ntxent (SimCLR's formulation: the two views concatenated, the
// diagonal masked, each view's target its twin; PyTorch autograd, float64).
func TestNTXentMatchesPyTorch(t *testing.T) {
	const n = 6 // checkLossReference's batch
	ids := make([]int32, 2*n)
	for i := range n {
		ids[i], ids[n+i] = int32(i), int32(i)
	}
	checkLossReference(t, "ntxent", map[string]any{"temperature": 0.1}, nil, nil,
		func(in G.Nodes) (*G.Node, error) {
			a, err := nn.L2Normalize(in[0])
			if err != nil {
				return nil, err
			}
			b, err := nn.L2Normalize(in[1])
			if err != nil {
				return nil, err
			}
			z, err := nn.ConcatRows(a, b)
			if err != nil {
				return nil, err
			}
			return ntXentLossOp(z, ids, 0.1)
		})
}
