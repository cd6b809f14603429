package nn

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
)

// ShareBuffers lets kernel outputs whose lifetimes do not overlap share memory, as a
// framework frees activation gradients once used: a backward pass otherwise holds one buffer
// per op, most of them dead long before the step ends. It must be called once the graph is
// complete and before it first runs, and only for graphs run whole by a tape machine
// (G.NewTapeMachine(g)), whose order is the reverse of G.Sort(g): a buffer's life is from
// the op that writes it to the last op that reads it or anything aliasing it (a gorgonia op
// that may overwrite its input in place). Nodes in keep (the forward pass, which other
// machines run in other orders and whose values the backward pass reads) and kernels that
// rely on their buffer between runs keep their own. Only float32 kernels share. It returns
// the bytes of output buffers before and after.
func ShareBuffers(g *G.ExprGraph, keep G.Nodes) (before, after int, err error) {
	order, err := G.Sort(g)
	if err != nil {
		return 0, 0, fmt.Errorf("share buffers: %w", err)
	}
	slices.Reverse(order)
	pos := make(map[*G.Node]int, len(order))
	for i, n := range order {
		pos[n] = i
	}
	kept := make(map[*G.Node]bool, len(keep))
	for _, n := range keep {
		kept[n] = true
	}
	// root maps a node to the kernel node whose buffer holds its value.
	root := map[*G.Node]*G.Node{}
	last := map[*G.Node]int{}
	for i, n := range order {
		children := inputsOf(g, n)
		switch op := n.Op().(type) {
		case nil:
		case *kernelOp[float32]:
			if op.out != nil {
				root[n] = n
				last[n] = i
			}
		default:
			if k := op.OverwritesInput(); k >= 0 && k < len(children) {
				if r, ok := root[children[k]]; ok {
					root[n] = r
				}
			}
		}
		for _, c := range children {
			if r, ok := root[c]; ok {
				last[r] = max(last[r], i)
			}
		}
		if r, ok := root[n]; ok {
			last[r] = max(last[r], i)
		}
	}
	type slab struct {
		buf       []float32
		freeAfter int // position of the last op that reads the current tenant
	}
	var slabs []*slab
	for i, n := range order {
		op, ok := n.Op().(*kernelOp[float32])
		if !ok || op.out == nil {
			continue
		}
		size := op.out.Shape().TotalSize()
		before += 4 * size
		if kept[n] || op.persistent {
			after += 4 * size
			continue
		}
		// The smallest free slab that fits without wasting half of it (a small gradient read
		// only at the end of the step must not pin a large slab); else the largest smaller
		// free one, grown; else a new one.
		var best, grow *slab
		for _, s := range slabs {
			switch {
			case s.freeAfter >= i || len(s.buf) > 2*size:
			case len(s.buf) >= size && (best == nil || len(s.buf) < len(best.buf)):
				best = s
			case len(s.buf) < size && (grow == nil || len(s.buf) > len(grow.buf)):
				grow = s
			}
		}
		if best == nil && grow != nil {
			best = grow
			after += 4 * (size - len(grow.buf))
			grow.buf = make([]float32, size)
		}
		if best == nil {
			best = &slab{buf: make([]float32, size)}
			slabs = append(slabs, best)
			after += 4 * size
		}
		best.freeAfter = last[n]
		op.setOut(best.buf[:size])
	}
	return before, after, nil
}

// inputsOf returns n's inputs in order.
func inputsOf(g *G.ExprGraph, n *G.Node) []*G.Node {
	var in []*G.Node
	for it := g.From(n.ID()); it.Next(); {
		in = append(in, it.Node().(*G.Node))
	}
	return in
}
