package nn

import (
	"fmt"
	"hash"
	"hash/fnv"
	"strings"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Float is the element type of a graph: float32 for training, float64 for gradient checks.
type Float interface{ ~float32 | ~float64 }

// opIDs numbers ops so that no two of them hash alike: gorgonia merges nodes whose op hash and
// children agree, and two kernels with the same inputs (a gradient pair, say) must stay apart.
var opIDs atomic.Uint64

// GradFunc builds the gradient nodes of an op's inputs (nil where an input needs none) from its
// inputs, its output and the gradient flowing into that output.
type GradFunc func(in G.Nodes, out, grad *G.Node) (G.Nodes, error)

// kernelOp is a gorgonia Op (and SDOp) whose forward pass is a Go kernel over flat row-major
// buffers. The graph is built once for fixed shapes, so the op owns its output buffer and
// rewrites it on every run: no allocation per step. Its backward pass is other kernelOps,
// built by grad.
type kernelOp[T Float] struct {
	name  string
	id    uint64
	typ   hm.Type
	shape tensor.Shape  // output shape; empty for a scalar
	out   *tensor.Dense // owned output (nil for a scalar, and until set or first run)
	run   func(out []T, in [][]T)
	diff  []bool
	grad  GradFunc
	// persistent kernels rely on their output buffer between runs (ShareBuffers leaves it).
	persistent bool
	outData    []T       // out's buffer
	in         [][]T     // Do's scratch (an op never runs concurrently with itself): input slices
	inVals     []G.Value // and the values they were taken from
}

// MarkPersistent flags n's kernel as relying on its output buffer between runs.
func MarkPersistent(n *G.Node) {
	switch op := n.Op().(type) {
	case *kernelOp[float32]:
		op.persistent = true
	case *kernelOp[float64]:
		op.persistent = true
	}
}

// Apply is the kernel API through which model code anywhere defines a graph op: it adds a node
// of the given output shape (nil for a scalar) over in, whose forward pass is run (writing out,
// a flat row-major buffer of the shape's size that the op owns and reuses, from the flat values
// of in) and whose backward pass is grad (nil for an op used only on a backward path). The
// caller checks the input shapes first (Matrix helps) and returns an error naming them;
// inputs made by Input never receive a gradient. Every input must have the dtype of T.
func Apply[T Float](name string, shape tensor.Shape, in G.Nodes, run func(out []T, in [][]T), grad GradFunc) (*G.Node, error) {
	dt := dtypeOf[T]()
	types := make([]hm.Type, 0, len(in)+1)
	diff := make([]bool, len(in))
	for i, n := range in {
		if n.Dtype() != dt {
			return nil, fmt.Errorf("%s: input %d (%s) is %v, want %v", name, i, n.Name(), n.Dtype(), dt)
		}
		types = append(types, n.Type())
		diff[i] = grad != nil && !IsData(n)
	}
	op := &kernelOp[T]{name: name, id: opIDs.Add(1), shape: shape.Clone(), run: run, diff: diff, grad: grad}
	if len(shape) == 0 {
		types = append(types, dt)
	} else {
		// The output buffer is made at the first run, not here: ShareBuffers gives most
		// kernels a shared one first, and a buffer made now would be garbage that a later
		// allocation reuses, and so zeroes, making it resident.
		types = append(types, G.TensorType{Dims: len(shape), Of: dt})
	}
	op.typ = hm.NewFnType(types...)
	out, err := G.ApplyOp(op, in...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// setOut makes buf (of the output's size) the op's output buffer.
func (o *kernelOp[T]) setOut(buf []T) {
	o.out = tensor.New(tensor.WithBacking(buf), tensor.WithShape(o.shape...))
	o.outData = buf
}

func dtypeOf[T Float]() tensor.Dtype {
	var z T
	if _, ok := any(z).(float64); ok {
		return tensor.Float64
	}
	return tensor.Float32
}

// values returns the flat data of a graph value: a tensor's backing slice, or a scalar boxed in
// a one-element slice.
func values[T Float](v G.Value) ([]T, error) {
	switch d := v.Data().(type) {
	case []T:
		return d, nil
	case T:
		return []T{d}, nil
	}
	return nil, fmt.Errorf("value of type %T holds %T", v, v.Data())
}

func (o *kernelOp[T]) Arity() int    { return len(o.diff) }
func (o *kernelOp[T]) Type() hm.Type { return o.typ }
func (o *kernelOp[T]) InferShape(...G.DimSizer) (tensor.Shape, error) {
	if len(o.shape) == 0 {
		return tensor.ScalarShape(), nil
	}
	return o.shape.Clone(), nil
}

// Do runs the kernel into the op's own buffer.
func (o *kernelOp[T]) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != len(o.diff) {
		return nil, fmt.Errorf("%s: %d inputs, want %d", o.name, len(vals), len(o.diff))
	}
	if len(o.in) != len(vals) {
		o.in, o.inVals = make([][]T, len(vals)), make([]G.Value, len(vals))
	}
	in := o.in
	for i, v := range vals {
		// A tensor that was here last run has the same buffer (kernel outputs, parameters and
		// gorgonia's preallocated registers keep theirs): its slice is reused, which spares
		// tensor's reflection-built Data() and its allocations.
		if t, ok := v.(*tensor.Dense); ok && v == o.inVals[i] && len(in[i]) == t.DataSize() {
			continue
		}
		d, err := values[T](v)
		if err != nil {
			return nil, fmt.Errorf("%s input %d: %w", o.name, i, err)
		}
		in[i], o.inVals[i] = d, v
	}
	if len(o.shape) == 0 {
		var s [1]T
		o.run(s[:], in)
		switch v := any(s[0]).(type) {
		case float32:
			return G.NewF32(v), nil
		case float64:
			return G.NewF64(v), nil
		}
	}
	if o.out == nil {
		o.setOut(make([]T, o.shape.TotalSize()))
	}
	o.run(o.outData, in)
	return o.out, nil
}

func (o *kernelOp[T]) ReturnsPtr() bool      { return true }
func (o *kernelOp[T]) CallsExtern() bool     { return false }
func (o *kernelOp[T]) OverwritesInput() int  { return -1 }
func (o *kernelOp[T]) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s#%d", o.name, o.id) }
func (o *kernelOp[T]) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *kernelOp[T]) String() string { return o.name }

func (o *kernelOp[T]) DiffWRT(int) []bool { return o.diff }

func (o *kernelOp[T]) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if o.grad == nil {
		return nil, fmt.Errorf("%s has no gradient", o.name)
	}
	gs, err := o.grad(in, out, grad)
	if err != nil {
		return nil, fmt.Errorf("gradient of %s: %w", o.name, err)
	}
	for i := range gs {
		if !o.diff[i] {
			gs[i] = nil
		}
	}
	return gs, nil
}

// dataPrefix marks graph inputs that are data, not parameters: no gradient is built for them.
const dataPrefix = "data:"

// Input adds a data input (images, patches) of the given shape to g, backed by value, a buffer
// of the shape's size that the caller refills before each run. No gradient flows into it.
func Input[T Float](g *G.ExprGraph, name string, value []T, shape ...int) (*G.Node, error) {
	return leaf(g, dataPrefix+name, value, shape)
}

// IsData reports whether n is a data input made by Input.
func IsData(n *G.Node) bool { return n.Op() == nil && strings.HasPrefix(n.Name(), dataPrefix) }

// Variable adds a differentiable leaf (a parameter outside a Builder, or a gradient check's
// input) of the given shape to g, backed by value in place.
func Variable[T Float](g *G.ExprGraph, name string, value []T, shape ...int) (*G.Node, error) {
	if strings.HasPrefix(name, dataPrefix) {
		return nil, fmt.Errorf("variable %s: the prefix %q marks data inputs", name, dataPrefix)
	}
	return leaf(g, name, value, shape)
}

func leaf[T Float](g *G.ExprGraph, name string, value []T, shape []int) (*G.Node, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if len(value) != n {
		return nil, fmt.Errorf("%s: %d values for shape %v", name, len(value), shape)
	}
	t := tensor.New(tensor.WithBacking(value), tensor.WithShape(shape...))
	return G.NewTensor(g, dtypeOf[T](), len(shape), G.WithShape(shape...), G.WithValue(t), G.WithName(name)), nil
}
