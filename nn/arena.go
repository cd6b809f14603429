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
// that may overwrite its input in place). Nodes in keep and kernels that rely on their buffer
// between runs keep their own. Only float32 kernels share. It returns the bytes of output
// buffers before and after.
func ShareBuffers(g *G.ExprGraph, keep G.Nodes) (before, after int, err error) {
	return shareBuffers(g, keep, nil)
}

// ShareBuffersAcross is ShareBuffers with the forward pass's values sharing too, as a
// framework frees an activation once nothing reads it any more: in a training graph most
// forward values are read only by the next op, and those the backward pass reads die as it
// goes. subs are subgraphs of g that machines of their own run in their own order (a model's
// forward pass for evaluation): two values share a buffer only if their lives are apart in
// g's tape order and in every sub's. No kernel output may be read once its run is over (Tap
// copies a value out while the graph runs).
func ShareBuffersAcross(g *G.ExprGraph, subs ...*G.ExprGraph) (before, after int, err error) {
	orders := make([]G.Nodes, len(subs))
	for i, s := range subs {
		if orders[i], err = tapeOrder(s); err != nil {
			return 0, 0, err
		}
	}
	return shareBuffers(g, nil, orders)
}

// life is a value's span in one tape order: written at start, last read at last; start < 0
// when the order does not run it.
type life struct{ start, last int }

func (a life) overlaps(b life) bool {
	return a.start >= 0 && b.start >= 0 && a.start <= b.last && b.start <= a.last
}

// shareBuffers plans g's buffers for its tape order and the orders others (of subgraphs of g).
func shareBuffers(g *G.ExprGraph, keep G.Nodes, others []G.Nodes) (before, after int, err error) {
	order, err := tapeOrder(g)
	if err != nil {
		return 0, 0, err
	}
	// The float32 kernels with a tensor output, numbered in g's tape order.
	idx := map[*G.Node]int{}
	var ops []*kernelOp[float32]
	var nodes G.Nodes
	for _, n := range order {
		if op, ok := n.Op().(*kernelOp[float32]); ok && len(op.shape) > 0 {
			idx[n] = len(ops)
			ops = append(ops, op)
			nodes = append(nodes, n)
		}
	}
	lives := [][]life{lifetimes(g, order, idx)}
	for _, o := range others {
		lives = append(lives, lifetimes(g, o, idx))
	}
	kept := make(map[*G.Node]bool, len(keep))
	for _, n := range keep {
		kept[n] = true
	}
	type slab struct {
		size      int
		freeAfter int   // in g's order, the last read of its latest tenant
		tenants   []int // kernel numbers
	}
	var slabs []*slab
	// free says whether s can take kernel k: in g's order its tenants are placed in order, so
	// the latest one's end decides; in a sub's order every tenant is checked.
	free := func(s *slab, k int) bool {
		if s.freeAfter >= lives[0][k].start {
			return false
		}
		for _, l := range lives[1:] {
			if l[k].start < 0 {
				continue
			}
			for _, t := range s.tenants {
				if l[t].overlaps(l[k]) {
					return false
				}
			}
		}
		return true
	}
	var plan [][2]int // kernel number, slab number
	for k, op := range ops {
		size := op.shape.TotalSize()
		before += 4 * size
		if kept[nodes[k]] || op.persistent || op.outData != nil {
			after += 4 * size
			continue
		}
		// The smallest free slab that fits without wasting half of it (a small gradient read
		// only at the end of the step must not pin a large slab); else the largest smaller
		// free one, grown; else a new one.
		best, grow := -1, -1
		for j, s := range slabs {
			switch {
			case s.size > 2*size || !free(s, k):
			case s.size >= size && (best < 0 || s.size < slabs[best].size):
				best = j
			case s.size < size && (grow < 0 || s.size > slabs[grow].size):
				grow = j
			}
		}
		if best < 0 && grow >= 0 {
			best = grow
			slabs[grow].size = size
		}
		if best < 0 {
			best = len(slabs)
			slabs = append(slabs, &slab{})
			slabs[best].size = size
		}
		s := slabs[best]
		s.freeAfter = lives[0][k].last
		s.tenants = append(s.tenants, k)
		plan = append(plan, [2]int{k, best})
	}
	// Each slab is allocated once, at the size of its largest tenant.
	bufs := make([][]float32, len(slabs))
	for j, s := range slabs {
		bufs[j] = make([]float32, s.size)
		after += 4 * s.size
	}
	for _, p := range plan {
		op := ops[p[0]]
		op.setOut(bufs[p[1]][:op.shape.TotalSize()])
	}
	return before, after, nil
}

// tapeOrder is the order in which a tape machine runs g: the reverse of G.Sort(g).
func tapeOrder(g *G.ExprGraph) (G.Nodes, error) {
	order, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("share buffers: %w", err)
	}
	slices.Reverse(order)
	return order, nil
}

// lifetimes returns, for each kernel numbered in idx, its value's life in order (a tape order
// of g or of a subgraph of it): from the kernel to the last op that reads its value or a value
// aliasing it (a gorgonia op that may overwrite its input in place).
func lifetimes(g *G.ExprGraph, order G.Nodes, idx map[*G.Node]int) []life {
	lives := make([]life, len(idx))
	for i := range lives {
		lives[i] = life{-1, -1}
	}
	// root maps a node to the kernel whose buffer holds its value.
	root := map[*G.Node]int{}
	for i, n := range order {
		children := inputsOf(g, n)
		if k, ok := idx[n]; ok {
			root[n] = k
			lives[k] = life{i, i}
		} else if op := n.Op(); op != nil {
			if c := op.OverwritesInput(); c >= 0 && c < len(children) {
				if r, ok := root[children[c]]; ok {
					root[n] = r
				}
			}
		}
		for _, c := range children {
			if r, ok := root[c]; ok {
				lives[r].last = max(lives[r].last, i)
			}
		}
		if r, ok := root[n]; ok {
			lives[r].last = max(lives[r].last, i)
		}
	}
	return lives
}

// inputsOf returns n's inputs in order.
func inputsOf(g *G.ExprGraph, n *G.Node) []*G.Node {
	var in []*G.Node
	for it := g.From(n.ID()); it.Next(); {
		in = append(in, it.Node().(*G.Node))
	}
	return in
}
