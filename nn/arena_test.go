package nn

import (
	"testing"

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
