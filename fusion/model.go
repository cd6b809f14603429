package fusion

import (
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// InitLogitScale is CLIP's initial log temperature, ln(1/0.07).
var InitLogitScale = math.Log(1 / 0.07)

// MaxLogitScale is the clamp applied after each optimiser step, ln 100.
var MaxLogitScale = math.Log(100)

// LogitScaleName is the learnable log temperature's parameter, as open_clip names it.
const LogitScaleName = "logit_scale"

// Model is CLIP for a fixed batch size: an image and a text tower, L2-normalised features and
// a Loss (CLIP's symmetric contrastive loss with its learnable logit scale), on one gorgonia
// graph built once and run every step. Parameters live in nn.Param buffers that the graph reads in place; each Step
// writes every Param.Grad.
type Model struct {
	cfg    Config
	batch  int
	b      *nn.Builder
	vision vision.Tower
	text   text.Tower
	scale  *nn.Param

	group *Group // data-parallel collectives; nil in one process

	imgFeat, txtFeat, logits, loss []float32 // copied out by Tap nodes at each run
	logitsT                        []float32 // data-parallel: this rank's texts against every image
	onLoss                         *func()   // called once the loss is computed (SetForwardHook)
	train, eval                    G.VM

	seed int64   // the parameters' seed; patch dropout's draws derive from it
	ids  []int32 // [batch] image identity of each row (SetImageIDs), read by the loss at each run
	// evalTowers, when set, feed eval: a graph of their own (a ViT with patch dropout keeps
	// every patch in evaluation, so Forward cannot run the training graph's forward pass).
	evalTowers *towers
}

// Outputs are the results of a forward pass.
type Outputs struct {
	ImageFeatures  []float32 // [B, E], unnormalised projections
	TextFeatures   []float32 // [B, E], unnormalised projections
	LogitsPerImage []float32 // [B, B], exp(logit_scale)·normalised image·normalised textᵀ
	// Data parallel, B is this rank's batch b and N = Size·b the global one: LogitsPerImage is
	// [b, N], this rank's images against every text, LogitsPerText [b, N] its texts against
	// every image (nil in one process, where it is LogitsPerImage's transpose), and Loss is this
	// rank's local loss (the global loss is its mean over ranks).
	LogitsPerText []float32
	Loss          float32
}

// New builds the model for batches of batch pairs, initialising parameters from seed as the
// reference does, trained by the loss cfg.Loss names.
func New(cfg Config, batch int, seed int64, opts ...Option) (*Model, error) {
	return build(cfg, batch, seed, nil, opts)
}

// Option changes how New and NewDataParallel build a model.
type Option func(*buildOptions)

type buildOptions struct {
	locked func(name string) bool
}

// WithLocked locks the parameters and buffers whose names locked accepts (nn.Builder.Lock)
// before the backward pass is built: they get no gradient buffer and no gradient computation,
// and a locked batch norm buffer freezes its batch norm (fine-tuning: open_clip's
// lock_image_tower / lock_text_tower).
func WithLocked(locked func(name string) bool) Option {
	return func(o *buildOptions) { o.locked = locked }
}

// NewDataParallel builds one rank's model of a data-parallel job over c: each rank feeds its
// own batch of batch pairs; the L2-normalised features are all-gathered so that the loss
// contrasts the global batch of c.Size()·batch pairs, each rank taking the loss of its own rows
// (for CLIP, open_clip's --gather-with-grad --local-loss). The mean over ranks of the gradients is then
// the gradient of one process with the whole batch. Parameters start as New's; the caller
// still averages gradients across ranks (the towers' gradients stay local).
func NewDataParallel(cfg Config, batch int, seed int64, c Collective, opts ...Option) (*Model, error) {
	if c == nil || c.Size() < 1 || c.Rank() < 0 || c.Rank() >= c.Size() {
		return nil, fmt.Errorf("fusion: data parallel needs a collective with a rank in its world")
	}
	return build(cfg, batch, seed, NewGroup(c), opts)
}

func build(cfg Config, batch int, seed int64, group *Group, opts []Option) (*Model, error) {
	var o buildOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	objective, err := cfg.Objective()
	if err != nil {
		return nil, err
	}
	if batch < 1 {
		return nil, fmt.Errorf("fusion: batch %d must be positive", batch)
	}
	b, err := nn.NewBuilder(tensor.Float32, seed)
	if err != nil {
		return nil, err
	}
	e := cfg.EmbedDim
	global := batch
	if group != nil {
		global = group.Size() * batch
	}
	m := &Model{cfg: cfg, batch: batch, b: b, group: group, seed: seed, ids: identityIDs(batch),
		imgFeat: make([]float32, batch*e), txtFeat: make([]float32, batch*e),
		logits: make([]float32, batch*global), loss: make([]float32, 1)}
	if m.vision, err = vision.New(b, cfg.Vision, batch, e, cfg.QuickGELU); err != nil {
		return nil, err
	}
	if m.text, err = text.New(b, cfg.Text, batch, e, cfg.QuickGELU); err != nil {
		return nil, err
	}
	imgTap, err := nn.Tap(m.vision.Output(), m.imgFeat)
	if err != nil {
		return nil, err
	}
	txtTap, err := nn.Tap(m.text.Output(), m.txtFeat)
	if err != nil {
		return nil, err
	}
	img, err := nn.L2Normalize(imgTap)
	if err != nil {
		return nil, err
	}
	txt, err := nn.L2Normalize(txtTap)
	if err != nil {
		return nil, err
	}
	out, err := objective.Build(b, LossInputs{Image: img, Text: txt, Group: group, ImageIDs: m.ids})
	if err != nil {
		return nil, err
	}
	if out.Loss, err = withSSL(b, cfg, m.vision, out.Loss, m.ids); err != nil {
		return nil, err
	}
	m.scale, _ = b.Lookup(LogitScaleName) // nil for a loss without a temperature
	// The logits are copied out by taps beside the loss, roots of the forward pass of their own.
	taps := make(G.Nodes, 0, 3)
	tap, err := nn.Tap(out.PerImage, m.logits)
	if err != nil {
		return nil, err
	}
	taps = append(taps, tap)
	if out.PerText != nil {
		m.logitsT = make([]float32, len(m.logits))
		if tap, err = nn.Tap(out.PerText, m.logitsT); err != nil {
			return nil, err
		}
		taps = append(taps, tap)
	}
	loss := out.Loss
	if loss, err = nn.Tap(loss, m.loss); err != nil {
		return nil, err
	}
	// The hook must not capture m: gorgonia's tape machines carry finalizers, and a cycle from
	// a machine through its graph back to itself (as m.train) is never collected.
	onLoss := new(func())
	m.onLoss = onLoss
	if loss, err = nn.Hook(loss, func() {
		if *onLoss != nil {
			(*onLoss)()
		}
	}); err != nil {
		return nil, err
	}
	forward := b.G.SubgraphRoots(append(taps, loss)...)
	if o.locked != nil {
		if _, err := b.Lock(o.locked); err != nil {
			return nil, err
		}
	}
	if err := b.Backward(loss); err != nil {
		return nil, err
	}
	// Kernel outputs share memory by lifetime, the forward pass's too (a value the backward
	// pass reads lives until it does); where eval runs the forward subgraph, its order is
	// honoured as well.
	if _, ok := m.vision.(vision.PatchDropper); ok && cfg.Vision.PatchDropout > 0 {
		if _, _, err := nn.ShareBuffersAcross(b.G); err != nil {
			return nil, err
		}
		if m.eval, err = m.buildEval(objective); err != nil {
			return nil, err
		}
	} else {
		if _, _, err := nn.ShareBuffersAcross(b.G, forward); err != nil {
			return nil, err
		}
		m.eval = G.NewTapeMachine(forward)
	}
	m.train = G.NewTapeMachine(b.G)
	return m, nil
}

// CollectiveTime is the time this model's steps have spent in collectives (gathering
// features, summing their gradients), waiting for other ranks included; 0 in one process.
func (m *Model) CollectiveTime() time.Duration {
	if m.group == nil {
		return 0
	}
	return m.group.Elapsed()
}

// SetForwardHook makes every Step and Forward call f once the loss is computed, between the
// forward and the backward pass (benchmarks time the two from it); nil removes it.
func (m *Model) SetForwardHook(f func()) { *m.onLoss = f }

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Batch is the fixed number of image–text pairs per step (this rank's, data parallel).
func (m *Model) Batch() int { return m.batch }

// Params returns every parameter once, in a stable order (vision, text, logit_scale).
func (m *Model) Params() []*nn.Param { return m.b.Params() }

// Param returns the parameter called name (open_clip's state_dict name).
func (m *Model) Param(name string) (*nn.Param, bool) { return m.b.Lookup(name) }

// SetParam copies value into the parameter called name; its length must be the parameter's size.
func (m *Model) SetParam(name string, value []float32) error {
	p, ok := m.b.Lookup(name)
	if !ok {
		return fmt.Errorf("fusion: no parameter %q", name)
	}
	if len(value) != p.Size() {
		return fmt.Errorf("fusion: parameter %s has shape %v (%d values), got %d", name, p.Shape, p.Size(), len(value))
	}
	copy(p.Value, value)
	return nil
}

// ClampLogitScale keeps logit_scale in [0, ln 100], as CLIP does after each optimiser step
// (a loss without a temperature has none to clamp).
func (m *Model) ClampLogitScale() {
	if m.scale == nil {
		return
	}
	m.scale.Value[0] = float32(min(max(float64(m.scale.Value[0]), 0), MaxLogitScale))
}

func (m *Model) load(images []float32, tokens []int32) error {
	if err := m.vision.SetImages(images); err != nil {
		return fmt.Errorf("fusion: %w", err)
	}
	if err := m.text.SetTokens(tokens); err != nil {
		return fmt.Errorf("fusion: %w", err)
	}
	return nil
}

// run runs vm once; training says whether ops that differ between training and evaluation
// (batch norm) run in training mode.
func (m *Model) run(vm G.VM, training bool) error {
	*m.b.Training() = training
	vm.Reset()
	if err := vm.RunAll(); err != nil {
		return fmt.Errorf("fusion: run: %w", err)
	}
	if m.group != nil {
		if err := m.group.Err(); err != nil {
			return fmt.Errorf("fusion: %w", err)
		}
	}
	return nil
}

// Step runs forward and backward on one batch, images [B,3,S,S] CLIP-normalised and tokens
// [B,L] with ids below the vocabulary size, fills every Param.Grad and returns the loss.
func (m *Model) Step(images []float32, tokens []int32) (float32, error) {
	if err := m.load(images, tokens); err != nil {
		return 0, err
	}
	if err := m.run(m.train, true); err != nil {
		return 0, err
	}
	return m.loss[0], nil
}

// Forward runs the forward pass only (no gradients) and returns copies of its outputs.
func (m *Model) Forward(images []float32, tokens []int32) (Outputs, error) {
	if err := m.loadEval(images, tokens); err != nil {
		return Outputs{}, err
	}
	if err := m.run(m.eval, false); err != nil {
		return Outputs{}, err
	}
	return m.outputs(), nil
}

// Last returns copies of the outputs of the latest Step or Forward.
func (m *Model) Last() Outputs { return m.outputs() }

func (m *Model) outputs() Outputs {
	return Outputs{
		ImageFeatures:  append([]float32(nil), m.imgFeat...),
		TextFeatures:   append([]float32(nil), m.txtFeat...),
		LogitsPerImage: append([]float32(nil), m.logits...),
		LogitsPerText:  append([]float32(nil), m.logitsT...),
		Loss:           m.loss[0],
	}
}

// Close releases the machines.
func (m *Model) Close() error {
	var err error
	for _, vm := range []G.VM{m.train, m.eval} {
		if cerr := vm.Close(); err == nil {
			err = cerr
		}
		// Its finalizer (CUDA clean-up, unused here) would also keep the machine, and all its
		// graph reaches, alive through any reference cycle.
		runtime.SetFinalizer(vm, nil)
	}
	return err
}
