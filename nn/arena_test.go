package nn

import (
	"fmt"
	"testing"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestShareBuffers trains the same two-block transformer twice, with and without shared
// backward buffers, and requires bit-identical gradients over two runs (the second run
// reads buffers the first left behind) and fewer bytes.
func TestShareBuffers(t *testing.T) {
	cfg := BlockConfig{Width: 8, Heads: 2, MLPWidth: 32, Batch: 3, Seq: 5, Causal: true}
	build := func(share bool) (*Builder, G.VM, int, int) {
		b, err := NewBuilder(tensor.Float32, 3)
		if err != nil {
			t.Fatal(err)
		}
		x, err := b.Param("x", []int{cfg.Batch * cfg.Seq, cfg.Width}, Normal(1))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := b.NewTransformer("t", 2, cfg, BlockInit{Normal(0.5), Normal(0.5), Normal(0.5), Normal(0.5)})
		if err != nil {
			t.Fatal(err)
		}
		y, err := tr.Forward(x)
		if err == nil {
			y, err = GELU(y) // a non-linear loss, so that every gradient depends on the values
		}
		if err != nil {
			t.Fatal(err)
		}
		cost, err := G.Sum(y)
		if err != nil {
			t.Fatal(err)
		}
		forward := b.G.SubgraphRoots(cost).AllNodes()
		if err := b.Backward(cost); err != nil {
			t.Fatal(err)
		}
		var before, after int
		if share {
			if before, after, err = ShareBuffers(b.G, forward); err != nil {
				t.Fatal(err)
			}
		}
		return b, G.NewTapeMachine(b.G), before, after
	}
	ref, refVM, _, _ := build(false)
	got, gotVM, before, after := build(true)
	defer refVM.Close()
	defer gotVM.Close()
	if !(after < before) {
		t.Errorf("shared buffers %d bytes, unshared %d", after, before)
	}
	t.Logf("kernel outputs: %d bytes unshared, %d shared", before, after)
	for run := range 2 {
		for _, vm := range []G.VM{refVM, gotVM} {
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
		}
		for i, p := range ref.Params() {
			q := got.Params()[i]
			for j := range p.Grad {
				if p.Grad[j] != q.Grad[j] {
					t.Fatalf("run %d: %s[%d] gradient %v shared, %v unshared", run, p.Name, j, q.Grad[j], p.Grad[j])
				}
			}
		}
	}
}

// TestShareBuffersAcross shares every kernel output of a two-block transformer's training
// graph, the forward pass's included, while a second machine runs the forward subgraph in its
// own order (as a model's evaluation does), and requires, over alternating runs of the two,
// bit-identical gradients and forward outputs to an unshared copy, and fewer bytes than
// ShareBuffers keeping the forward pass.
func TestShareBuffersAcross(t *testing.T) {
	cfg := BlockConfig{Width: 8, Heads: 2, MLPWidth: 32, Batch: 3, Seq: 5, Causal: true}
	type model struct {
		b           *Builder
		train, eval G.VM
		out         []float32 // the transformer's output, tapped at each run
		cost        *G.Node
	}
	build := func(share int) (model, int) {
		b, err := NewBuilder(tensor.Float32, 3)
		if err != nil {
			t.Fatal(err)
		}
		m := model{b: b, out: make([]float32, cfg.Batch*cfg.Seq*cfg.Width)}
		// Two towers, as a model's image and text towers: the forward subgraph's order
		// interleaves them otherwise than the training graph's.
		var costs G.Nodes
		for i := range 2 {
			x, err := b.Param(fmt.Sprint("x", i), []int{cfg.Batch * cfg.Seq, cfg.Width}, Normal(1))
			if err != nil {
				t.Fatal(err)
			}
			tr, err := b.NewTransformer(fmt.Sprint("t", i), 2, cfg, BlockInit{Normal(0.5), Normal(0.5), Normal(0.5), Normal(0.5)})
			if err != nil {
				t.Fatal(err)
			}
			y, err := tr.Forward(x)
			if err == nil && i == 0 {
				y, err = Tap(y, m.out)
			}
			if err == nil {
				y, err = GELU(y)
			}
			if err == nil {
				y, err = G.Sum(y)
			}
			if err != nil {
				t.Fatal(err)
			}
			costs = append(costs, y)
		}
		if m.cost, err = G.Add(costs[0], costs[1]); err != nil {
			t.Fatal(err)
		}
		forward := b.G.SubgraphRoots(m.cost)
		if err := b.Backward(m.cost); err != nil {
			t.Fatal(err)
		}
		var after int
		switch share {
		case 1:
			_, after, err = ShareBuffers(b.G, forward.AllNodes())
		case 2:
			_, after, err = ShareBuffersAcross(b.G, forward)
		}
		if err != nil {
			t.Fatal(err)
		}
		m.train, m.eval = G.NewTapeMachine(b.G), G.NewTapeMachine(forward)
		t.Cleanup(func() { m.train.Close(); m.eval.Close() })
		return m, after
	}
	ref, _ := build(0)
	_, keptForward := build(1)
	got, after := build(2)
	if !(after < keptForward) {
		t.Errorf("forward pass shared: %d bytes; kept: %d", after, keptForward)
	}
	t.Logf("kernel outputs: %d bytes with the forward pass kept, %d with it shared", keptForward, after)
	run := func(vm G.VM) {
		t.Helper()
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	for i, eval := range []bool{false, true, false, true, false} {
		for _, m := range []model{ref, got} {
			if eval {
				run(m.eval)
			} else {
				run(m.train)
			}
		}
		if a, b := ref.cost.Value().Data(), got.cost.Value().Data(); a != b {
			t.Fatalf("run %d (eval %v): cost %v shared, %v unshared", i, eval, b, a)
		}
		for j := range ref.out {
			if ref.out[j] != got.out[j] {
				t.Fatalf("run %d (eval %v): output[%d] %v shared, %v unshared", i, eval, j, got.out[j], ref.out[j])
			}
		}
		if eval {
			continue
		}
		for k, p := range ref.b.Params() {
			q := got.b.Params()[k]
			for j := range p.Grad {
				if p.Grad[j] != q.Grad[j] {
					t.Fatalf("run %d: %s[%d] gradient %v shared, %v unshared", i, p.Name, j, q.Grad[j], p.Grad[j])
				}
			}
		}
	}
}

// TestShareBuffersHonoursEveryOrder plans a two-tower training graph's buffers for its tape
// order and another valid order of its forward pass (the towers interleaved), and
// requires that no two kernels whose buffers overlap are alive at once in either order.
func TestShareBuffersHonoursEveryOrder(t *testing.T) {
	cfg := BlockConfig{Width: 8, Heads: 2, MLPWidth: 32, Batch: 2, Seq: 3, Causal: true}
	b, err := NewBuilder(tensor.Float32, 5)
	if err != nil {
		t.Fatal(err)
	}
	var costs G.Nodes
	for i := range 2 {
		x, err := b.Param(fmt.Sprint("x", i), []int{cfg.Batch * cfg.Seq, cfg.Width}, Normal(1))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := b.NewTransformer(fmt.Sprint("t", i), 2, cfg, BlockInit{Normal(0.5), Normal(0.5), Normal(0.5), Normal(0.5)})
		if err != nil {
			t.Fatal(err)
		}
		y, err := tr.Forward(x)
		// Taps: values that die as soon as the next op has read them (their gradient reads
		// nothing), so that the forward pass's own values share buffers.
		for k := 0; k < 4 && err == nil; k++ {
			y, err = Tap(y, make([]float32, cfg.Batch*cfg.Seq*cfg.Width))
		}
		if err == nil {
			y, err = G.Sum(y)
		}
		if err != nil {
			t.Fatal(err)
		}
		costs = append(costs, y)
	}
	cost, err := G.Add(costs[0], costs[1])
	if err != nil {
		t.Fatal(err)
	}
	forward := b.G.SubgraphRoots(cost)
	if err := b.Backward(cost); err != nil {
		t.Fatal(err)
	}
	main, err := tapeOrder(b.G)
	if err != nil {
		t.Fatal(err)
	}
	// other: the forward pass with tower 1 run whole in the middle of tower 0's taps, where
	// tower 0's first tap is still to be read: a value of tower 1 that shares its buffer in
	// the training order (where tower 0's taps are long gone) would overwrite it.
	tower1 := map[*G.Node]bool{}
	for _, n := range b.G.SubgraphRoots(costs[1]).AllNodes() {
		tower1[n] = true
	}
	var before, rest, t1 G.Nodes
	for _, n := range main {
		switch {
		case !forward.Has(n.ID()):
		case tower1[n]:
			t1 = append(t1, n)
		case len(rest) == 0 && (len(before) == 0 || before[len(before)-1].Op() == nil || before[len(before)-1].Op().String() != "tap"):
			before = append(before, n)
		default:
			rest = append(rest, n)
		}
	}
	other := append(append(before, t1...), rest...)
	others := []G.Nodes{other}
	if _, _, err := shareBuffers(b.G, nil, others); err != nil {
		t.Fatal(err)
	}
	idx := map[*G.Node]int{}
	var ops []*kernelOp[float32]
	for _, n := range main {
		if op, ok := n.Op().(*kernelOp[float32]); ok && len(op.shape) > 0 {
			idx[n] = len(ops)
			ops = append(ops, op)
		}
	}
	lives := [][]life{lifetimes(b.G, main, idx)}
	for _, o := range others {
		lives = append(lives, lifetimes(b.G, o, idx))
	}
	span := func(op *kernelOp[float32]) (lo, hi uintptr) {
		lo = uintptr(unsafe.Pointer(unsafe.SliceData(op.outData)))
		return lo, lo + uintptr(4*len(op.outData))
	}
	shared := 0
	for i, a := range ops {
		alo, ahi := span(a)
		for j := i + 1; j < len(ops); j++ {
			blo, bhi := span(ops[j])
			if alo >= bhi || blo >= ahi {
				continue
			}
			shared++
			for o, l := range lives {
				if l[i].overlaps(l[j]) {
					t.Fatalf("order %d: %s %v and %s %v share memory", o, a.name, l[i], ops[j].name, l[j])
				}
			}
		}
	}
	if shared == 0 {
		t.Fatal("no two kernels share a buffer")
	}
}
