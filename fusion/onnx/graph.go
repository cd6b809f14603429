package onnx

import (
	"fmt"
	"math"
)

// Graph is an ONNX graph being built: nodes in topological order (each added after its
// inputs), initializers holding the weights and constants, and the graph's inputs and outputs.
// Node outputs get unique names from a counter; initializers keep the names they are given
// (the towers use open_clip's state-dict names, so a file's weights can be told apart).
type Graph struct {
	name, doc, producerVersion string
	nodes                      [][]byte
	inits                      []*initializer
	inputs, outputs            [][]byte
	names                      map[string]bool
	next                       int
}

// NewGraph starts a graph named name; doc becomes the model's doc_string.
func NewGraph(name, doc, producerVersion string) *Graph {
	return &Graph{name: name, doc: doc, producerVersion: producerVersion, names: map[string]bool{}}
}

// Nodes returns how many nodes the graph has.
func (g *Graph) Nodes() int { return len(g.nodes) }

// Initializers returns how many initializers the graph has.
func (g *Graph) Initializers() int { return len(g.inits) }

func (g *Graph) claim(name string) (string, error) {
	if g.names[name] {
		return "", fmt.Errorf("onnx: graph %s: the name %q is used twice", g.name, name)
	}
	g.names[name] = true
	return name, nil
}

// Input declares a graph input of element type elem and shape dims.
func (g *Graph) Input(name string, elem int, dims ...Dim) (string, error) {
	if _, err := g.claim(name); err != nil {
		return "", err
	}
	g.inputs = append(g.inputs, encodeValueInfo(name, elem, dims))
	return name, nil
}

// Output declares the value called name as a graph output of element type elem and shape dims;
// it renames the value by an Identity node, so that any value can be an output.
func (g *Graph) Output(value, name string, elem int, dims ...Dim) error {
	if _, err := g.claim(name); err != nil {
		return err
	}
	g.nodes = append(g.nodes, encodeNode(name, "Identity", []string{value}, []string{name}, nil))
	g.outputs = append(g.outputs, encodeValueInfo(name, elem, dims))
	return nil
}

// Weight adds a float32 initializer called name with shape dims, holding values (read when
// the graph is written, not copied).
func (g *Graph) Weight(name string, dims []int, values []float32) (string, error) {
	n := 1
	d := make([]int64, len(dims))
	for i, v := range dims {
		n *= v
		d[i] = int64(v)
	}
	if n != len(values) {
		return "", fmt.Errorf("onnx: weight %s: %d values for shape %v", name, len(values), dims)
	}
	if _, err := g.claim(name); err != nil {
		return "", err
	}
	g.inits = append(g.inits, &initializer{name: name, dims: d, f32: values})
	return name, nil
}

// Scalar adds a float32 constant of shape [] (it broadcasts against any tensor).
func (g *Graph) Scalar(v float32) string {
	name := g.fresh("const")
	g.inits = append(g.inits, &initializer{name: name, dims: []int64{}, f32: []float32{v}})
	return name
}

// Ints adds an int64 constant of shape [len(v)] (shapes, axes, indices).
func (g *Graph) Ints(v ...int64) string {
	name := g.fresh("ints")
	g.inits = append(g.inits, &initializer{name: name, dims: []int64{int64(len(v))}, i64: v})
	return name
}

// Index adds an int64 constant of shape [] (a Gather that drops the axis).
func (g *Graph) Index(v int64) string {
	name := g.fresh("index")
	g.inits = append(g.inits, &initializer{name: name, dims: []int64{}, i64: []int64{v}})
	return name
}

// Floats adds a float32 constant of shape dims.
func (g *Graph) Floats(dims []int64, v []float32) string {
	name := g.fresh("const")
	g.inits = append(g.inits, &initializer{name: name, dims: dims, f32: v})
	return name
}

// NegInf is the float32 −∞ of attention masks: softmax gives its entries probability 0.
var NegInf = float32(math.Inf(-1))

// fresh returns a new unique name starting with prefix.
func (g *Graph) fresh(prefix string) string {
	for {
		g.next++
		name := fmt.Sprintf("%s_%d", prefix, g.next)
		if !g.names[name] {
			g.names[name] = true
			return name
		}
	}
}

// Op adds a node of type op on inputs and returns the name of its one output.
func (g *Graph) Op(op string, inputs []string, attrs ...Attr) string {
	out := g.fresh(op)
	g.nodes = append(g.nodes, encodeNode(out, op, inputs, []string{out}, attrs))
	return out
}
