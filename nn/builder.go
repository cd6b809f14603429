package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

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
// float64 copies made at creation (Value64, Grad64). A frozen builder (NewFrozenBuilder)
// makes forward-only graphs over weights shared with other graphs.
type Builder struct {
	G      *G.ExprGraph
	dtype  tensor.Dtype
	rng    *rand.Rand
	params []*Param
	nodes  []*G.Node // the graph node of each learnable parameter (nil for a buffer)
	byName map[string]int
	val64  [][]float64
	grad64 [][]float64

	shared   map[string]*Param      // frozen: the weights every graph of the set reads
	training *bool                  // ops that behave differently in training (batch norm) read it
	stats    map[*Param]*BatchStats // batch norms by their buffers, for Lock
	backward bool                   // Backward has run: Lock would come too late
}

// NewBuilder starts a graph of the given dtype (tensor.Float32 or tensor.Float64) whose
// parameters are initialised from seed.
func NewBuilder(dtype tensor.Dtype, seed int64) (*Builder, error) {
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		return nil, fmt.Errorf("nn: dtype %v, want float32 or float64", dtype)
	}
	return &Builder{G: G.NewGraph(), dtype: dtype, rng: rand.New(rand.NewPCG(uint64(seed), 0x636c6970)),
		byName: map[string]int{}, training: new(bool), stats: map[*Param]*BatchStats{}}, nil
}

// NewFrozenBuilder starts a float32 graph for forward passes only (inference) whose parameters
// are the ones of those names in weights, read in place, so that graphs of several batch sizes
// share one copy of the weights. A parameter weights lacks is added to it, zero-filled and
// without a gradient buffer (the caller loads the values before the first run). Backward is
// refused, and Training stays false.
func NewFrozenBuilder(weights map[string]*Param) *Builder {
	return &Builder{G: G.NewGraph(), dtype: tensor.Float32, byName: map[string]int{}, shared: weights, training: new(bool),
		stats: map[*Param]*BatchStats{}}
}

// Frozen reports whether b builds forward-only graphs over shared weights.
func (b *Builder) Frozen() bool { return b.shared != nil }

// Training is the switch that ops whose forward pass differs between training and evaluation
// read at each run (batch norm: batch statistics, running statistics updated, or the running
// statistics alone). The model sets it before each run; it starts false.
func (b *Builder) Training() *bool { return b.training }

// Dtype is the graph's element type.
func (b *Builder) Dtype() tensor.Dtype { return b.dtype }

// Param creates the parameter name of the given shape, initialised by init, and returns its
// node. graphShape, when given, is the node's shape if it differs from the parameter's (the
// patch embedding's [W,3,P,P] weight is a [W, 3·P·P] matrix in the graph); the sizes agree.
func (b *Builder) Param(name string, shape []int, init Init, graphShape ...int) (*G.Node, error) {
	p, err := b.newParam(name, shape, init, true)
	if err != nil {
		return nil, err
	}
	n := p.Size()
	gs := graphShape
	if len(gs) == 0 {
		gs = shape
	}
	if len(gs) == 0 {
		gs = []int{1} // a scalar is a one-element vector in the graph
	}
	var node *G.Node
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
	b.params = append(b.params, p)
	b.nodes = append(b.nodes, node)
	return node, nil
}

// Buffer creates the state name of the given shape, initialised by init, that ops update
// themselves rather than the optimiser (batch norm's running statistics): a Param with Buffer
// set and a gradient that stays zero, saved in checkpoints under its name. It is not a graph
// node: the op that owns it reads and writes the returned values in place. On a float64
// builder the values are float32 all the same.
func (b *Builder) Buffer(name string, shape []int, init Init) ([]float32, error) {
	p, err := b.newParam(name, shape, init, false)
	if err != nil {
		return nil, err
	}
	b.params = append(b.params, p)
	b.nodes = append(b.nodes, nil)
	if b.dtype == tensor.Float64 { // keep Value64(i) aligned with Params()
		b.val64 = append(b.val64, nil)
		b.grad64 = append(b.grad64, nil)
	}
	return p.Value, nil
}

// newParam registers name and returns its Param: a new one initialised by init, or on a frozen
// builder the shared one (its shape checked) or a new zero-filled one added to the shared set.
func (b *Builder) newParam(name string, shape []int, init Init, learned bool) (*Param, error) {
	if _, dup := b.byName[name]; dup {
		return nil, fmt.Errorf("nn: parameter %s created twice", name)
	}
	b.byName[name] = len(b.params)
	if b.shared != nil {
		if p, ok := b.shared[name]; ok {
			if !slices.Equal(p.Shape, shape) {
				return nil, fmt.Errorf("nn: parameter %s has shape %v, the graph wants %v", name, p.Shape, shape)
			}
			return p, nil
		}
		p := &Param{Name: name, Shape: slices.Clone(shape), Buffer: !learned}
		p.Value = make([]float32, p.Size())
		b.shared[name] = p
		return p, nil
	}
	p := &Param{Name: name, Shape: slices.Clone(shape), Decay: learned && DecayByName(name, shape), Buffer: !learned}
	n := p.Size()
	p.Value, p.Grad = make([]float32, n), make([]float32, n)
	init(b.rng, p.Value)
	return p, nil
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

// Lock locks every parameter and buffer whose name locked accepts (Param.Locked): it drops
// their gradient buffers, and Backward, which must come after, builds no gradient for them,
// so that a tower locked from its input up has no backward pass at all (gorgonia
// differentiates only what lies between the cost and the parameters asked for). A locked batch
// norm buffer freezes its batch norm (BatchStats.Frozen). It returns the number of tensors
// locked.
func (b *Builder) Lock(locked func(name string) bool) (int, error) {
	if b.backward {
		return 0, fmt.Errorf("nn: lock after the backward pass was built: it would still compute their gradients")
	}
	n := 0
	for i, p := range b.params {
		if p.Locked || !locked(p.Name) {
			continue
		}
		p.Locked, p.Grad = true, nil
		if b.dtype == tensor.Float64 {
			b.grad64[i] = nil
		}
		if st := b.stats[p]; st != nil {
			st.Frozen = true
		}
		n++
	}
	return n, nil
}

// Backward adds the gradient of cost (a scalar) with respect to every parameter not locked, each stored
// into its Param.Grad (Grad64 for float64 graphs) when the graph runs.
func (b *Builder) Backward(cost *G.Node) error {
	if b.Frozen() {
		return fmt.Errorf("nn: gradient: a frozen builder makes forward-only graphs")
	}
	b.backward = true
	var learned []int // indices of the parameters that are graph nodes and not locked
	var nodes G.Nodes
	for i, n := range b.nodes {
		if n != nil && !b.params[i].Locked {
			learned = append(learned, i)
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 { // everything locked: a forward pass alone
		return nil
	}
	grads, err := G.Grad(cost, nodes...)
	if err != nil {
		return fmt.Errorf("nn: gradient: %w", err)
	}
	for k, g := range grads {
		i := learned[k]
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
