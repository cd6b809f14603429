package fusion

import (
	"fmt"
	"sync"
	"time"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Collective joins the ranks of a data-parallel job (internal/dist.Comm is one). Every rank
// calls the same collectives in the same order.
type Collective interface {
	Rank() int
	Size() int
	// AllGather concatenates every rank's send, in rank order, into recv (Size·len(send)).
	AllGather(send, recv []float32) error
	// AllReduceSum replaces buf by the element-wise sum over ranks.
	AllReduceSum(buf []float32) error
}

// Group runs a graph's collectives. Graph kernels cannot return errors, so the first
// collective that fails is remembered, the later ones of the run are skipped (their outputs
// zeroed), and the caller asks Err after the run.
type Group struct {
	c       Collective
	mu      sync.Mutex
	err     error
	elapsed time.Duration // spent in collectives, in total
}

// NewGroup returns a Group over c.
func NewGroup(c Collective) *Group { return &Group{c: c} }

// Rank and Size are the collective's.
func (g *Group) Rank() int { return g.c.Rank() }
func (g *Group) Size() int { return g.c.Size() }

// Err returns the first error since the last call and forgets it.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.err
	g.err = nil
	return err
}

// Elapsed is the time spent in the graph's collectives so far: communication, and waiting
// for the slowest rank.
func (g *Group) Elapsed() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.elapsed
}

// run calls f unless a collective of this run already failed.
func (g *Group) run(f func() error) {
	g.mu.Lock()
	failed := g.err != nil
	g.mu.Unlock()
	if failed {
		return
	}
	start := time.Now()
	err := f()
	g.mu.Lock()
	g.elapsed += time.Since(start)
	if err != nil {
		g.err = err
	}
	g.mu.Unlock()
}

// allGather concatenates every rank's x [b, C] into [Size·b, C] in rank order. Its gradient
// is the sum over ranks of the gradient flowing into the gathered rows, this rank's slice:
// torch.distributed.nn.all_gather's, which open_clip's --gather-with-grad uses, so that each
// rank's features receive the gradient of every rank's loss. float32 only.
func allGather(x *G.Node, g *Group) (*G.Node, error) {
	if nn.IsFloat64(x) {
		return nil, fmt.Errorf("all_gather: %s is float64; collectives carry float32", x.Name())
	}
	b, c, err := nn.Matrix("all_gather", x)
	if err != nil {
		return nil, err
	}
	w, r := g.Size(), g.Rank()
	return nn.Apply("all_gather", tensor.Shape{w * b, c}, G.Nodes{x}, func(y []float32, in [][]float32) {
		clear(y)
		g.run(func() error { return g.c.AllGather(in[0], y) })
	}, func(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
		sum := make([]float32, w*b*c) // the all-reduce works in place: the gradient input stays intact
		dx, err := nn.Apply("all_gather_grad", tensor.Shape{b, c}, G.Nodes{grad}, func(d []float32, v [][]float32) {
			copy(sum, v[0])
			g.run(func() error { return g.c.AllReduceSum(sum) })
			copy(d, sum[r*b*c:(r+1)*b*c])
		}, nil)
		return G.Nodes{dx}, err
	})
}
