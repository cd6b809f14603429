package nn_test

import (
	"slices"
	"testing"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// lockGraph is x → linear a → batch norm bn → linear b → sum, with the tensors whose names
// locked accepts locked before the backward pass; it returns the builder and the graph's node
// count.
func lockGraph(t *testing.T, locked func(string) bool) (*nn.Builder, int) {
	t.Helper()
	b, err := nn.NewBuilder(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	x, err := b.Input("x", []float32{1, 2, 3, -1, 0, 2, 4, 1, -2, 3, 3, 0}, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	a, err := b.NewLinear("a", 3, 3, nn.Normal(1), nn.Normal(1))
	if err != nil {
		t.Fatal(err)
	}
	bn, err := b.NewBatchNorm2D("bn", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.NewLinear("b", 3, 2, nn.Normal(1), nn.Normal(1))
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.Forward(x)
	if err == nil {
		h, err = bn.Forward(h)
	}
	if err == nil {
		h, err = l.Forward(h)
	}
	if err != nil {
		t.Fatal(err)
	}
	cost, err := G.Sum(h)
	if err != nil {
		t.Fatal(err)
	}
	if locked != nil {
		if _, err := b.Lock(locked); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Backward(cost); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(func(string) bool { return true }); err == nil {
		t.Error("Lock after Backward was accepted")
	}
	*b.Training() = true
	vm := G.NewTapeMachine(b.G)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return b, b.G.Nodes().Len()
}

// TestBuilderLock: locked tensors have no gradient buffer, the backward pass below the first
// unlocked parameter is not built, and a locked batch norm buffer freezes its statistics in
// training; the unlocked parameter still gets its gradient.
func TestBuilderLock(t *testing.T) {
	_, all := lockGraph(t, nil)
	b, some := lockGraph(t, func(name string) bool { return name != "b.weight" && name != "b.bias" })
	if some >= all {
		t.Errorf("the graph with a and bn locked has %d nodes, not fewer than the unlocked one's %d", some, all)
	}
	for _, p := range b.Params() {
		switch {
		case p.Name == "b.weight" || p.Name == "b.bias":
			if p.Locked || len(p.Grad) != p.Size() || !slices.ContainsFunc(p.Grad, func(g float32) bool { return g != 0 }) {
				t.Errorf("%s: unlocked but locked %v, gradient %v", p.Name, p.Locked, p.Grad)
			}
		case !p.Locked || p.Grad != nil:
			t.Errorf("%s: locked %v, gradient buffer of %d", p.Name, p.Locked, len(p.Grad))
		}
	}
	mean, _ := b.Lookup("bn.running_mean")
	count, _ := b.Lookup("bn.num_batches_tracked")
	if slices.ContainsFunc(mean.Value, func(v float32) bool { return v != 0 }) || count.Value[0] != 0 {
		t.Errorf("a frozen batch norm updated its statistics in training: mean %v, count %v", mean.Value, count.Value)
	}
	u, _ := lockGraph(t, nil)
	if c, _ := u.Lookup("bn.num_batches_tracked"); c.Value[0] != 1 {
		t.Errorf("an unlocked batch norm's count is %v after a training run, want 1", c.Value[0])
	}
}
