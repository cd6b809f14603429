package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Init fills a parameter's initial values from rng.
type Init func(rng *rand.Rand, v []float32)

// Zeros, Ones and Constant(c) fill with a constant.
func Zeros(*rand.Rand, []float32) {}

// Ones fills with 1 (layer norm gains).
func Ones(_ *rand.Rand, v []float32) { Constant(1)(nil, v) }

// Constant fills with c.
func Constant(c float32) Init {
	return func(_ *rand.Rand, v []float32) {
		for i := range v {
			v[i] = c
		}
	}
}

// Normal draws from N(0, std²) (torch.nn.init.normal_; scale·randn with std = scale).
func Normal(std float64) Init {
	return func(rng *rand.Rand, v []float32) {
		for i := range v {
			v[i] = float32(std * rng.NormFloat64())
		}
	}
}

// Uniform draws from U(−bound, bound). torch's default Linear and Conv2d init
// (kaiming_uniform with a = √5, and the bias rule) is Uniform(1/√fanIn).
func Uniform(bound float64) Init {
	return func(rng *rand.Rand, v []float32) {
		for i := range v {
			v[i] = float32(bound * (2*rng.Float64() - 1))
		}
	}
}

// XavierUniform is torch.nn.init.xavier_uniform_ for a [fanOut, fanIn] matrix.
func XavierUniform(fanIn, fanOut int) Init {
	return Uniform(math.Sqrt(6 / float64(fanIn+fanOut)))
}

// Builder creates named parameters and their nodes on one graph. Float32 graphs read and
// write Param.Value in place (zero-copy); float64 graphs, used by gradient checks, work on
// float64 copies made at creation (Value64, Grad64).
type Builder struct {
	G      *G.ExprGraph
	dtype  tensor.Dtype
	rng    *rand.Rand
	params []*Param
	nodes  []*G.Node
	byName map[string]int
	val64  [][]float64
	grad64 [][]float64
}

// NewBuilder starts a graph of the given dtype (tensor.Float32 or tensor.Float64) whose
// parameters are initialised from seed.
func NewBuilder(dtype tensor.Dtype, seed int64) (*Builder, error) {
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		return nil, fmt.Errorf("nn: dtype %v, want float32 or float64", dtype)
	}
	return &Builder{G: G.NewGraph(), dtype: dtype, rng: rand.New(rand.NewPCG(uint64(seed), 0x636c6970)),
		byName: map[string]int{}}, nil
}

// Dtype is the graph's element type.
func (b *Builder) Dtype() tensor.Dtype { return b.dtype }

// Param creates the parameter name of the given shape, initialised by init, and returns its
// node. graphShape, when given, is the node's shape if it differs from the parameter's (the
// patch embedding's [W,3,P,P] weight is a [W, 3·P·P] matrix in the graph); the sizes agree.
func (b *Builder) Param(name string, shape []int, init Init, graphShape ...int) (*G.Node, error) {
	if _, dup := b.byName[name]; dup {
		return nil, fmt.Errorf("nn: parameter %s created twice", name)
	}
	p := &Param{Name: name, Shape: append([]int(nil), shape...), Decay: DecayByName(name, shape)}
	n := p.Size()
	p.Value, p.Grad = make([]float32, n), make([]float32, n)
	init(b.rng, p.Value)
	gs := graphShape
	if len(gs) == 0 {
		gs = shape
	}
	if len(gs) == 0 {
		gs = []int{1} // a scalar is a one-element vector in the graph
	}
	var node *G.Node
	var err error
	if b.dtype == tensor.Float64 {
		v := make([]float64, n)
		for i, x := range p.Value {
			v[i] = float64(x)
		}
		b.val64 = append(b.val64, v)
		b.grad64 = append(b.grad64, make([]float64, n))
		node, err = leaf(b.G, name, v, gs)
	} else {
		node, err = leaf(b.G, name, p.Value, gs)
	}
	if err != nil {
		return nil, err
	}
	b.byName[name] = len(b.params)
	b.params = append(b.params, p)
	b.nodes = append(b.nodes, node)
	return node, nil
}

// Params returns the parameters in creation order.
func (b *Builder) Params() []*Param { return b.params }

// Lookup returns the parameter called name.
func (b *Builder) Lookup(name string) (*Param, bool) {
	i, ok := b.byName[name]
	if !ok {
		return nil, false
	}
	return b.params[i], true
}

// Value64 and Grad64 return the float64 buffers of parameter i of a float64 graph.
func (b *Builder) Value64(i int) []float64 { return b.val64[i] }

// Grad64 returns the float64 gradient buffer of parameter i of a float64 graph.
func (b *Builder) Grad64(i int) []float64 { return b.grad64[i] }

// Backward adds the gradient of cost (a scalar) with respect to every parameter, each stored
// into its Param.Grad (Grad64 for float64 graphs) when the graph runs.
func (b *Builder) Backward(cost *G.Node) error {
	grads, err := G.Grad(cost, b.nodes...)
	if err != nil {
		return fmt.Errorf("nn: gradient: %w", err)
	}
	for i, g := range grads {
		var dst any = b.params[i].Grad
		if b.dtype == tensor.Float64 {
			dst = b.grad64[i]
		}
		if _, err := Store(g, dst); err != nil {
			return fmt.Errorf("nn: gradient of %s: %w", b.params[i].Name, err)
		}
	}
	return nil
}

// Input adds a data input of the builder's dtype; value is float32 or float64 to match.
func (b *Builder) Input(name string, value any, shape ...int) (*G.Node, error) {
	switch v := value.(type) {
	case []float32:
		if b.dtype == tensor.Float32 {
			return Input(b.G, name, v, shape...)
		}
	case []float64:
		if b.dtype == tensor.Float64 {
			return Input(b.G, name, v, shape...)
		}
	}
	return nil, fmt.Errorf("nn: input %s of %T on a %v graph", name, value, b.dtype)
}
