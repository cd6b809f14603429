package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// Linear is torch.nn.Linear: y = x·Wᵀ + b with W [out, in] (PyTorch layout) and b [out].
type Linear struct {
	W, B *G.Node // B is nil without bias
}

// NewLinear creates prefix.weight (and prefix.bias unless bias is nil).
func (b *Builder) NewLinear(prefix string, in, out int, weight, bias Init) (*Linear, error) {
	w, err := b.Param(prefix+".weight", []int{out, in}, weight)
	if err != nil {
		return nil, err
	}
	l := &Linear{W: w}
	if bias != nil {
		if l.B, err = b.Param(prefix+".bias", []int{out}, bias); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Forward maps x [N, in] to [N, out].
func (l *Linear) Forward(x *G.Node) (*G.Node, error) { return Affine(x, l.W, l.B, nil) }

// Residual returns resid + Forward(x), the residual add fused into the product.
func (l *Linear) Residual(x, resid *G.Node) (*G.Node, error) { return Affine(x, l.W, l.B, resid) }

// Norm is torch.nn.LayerNorm(width) with its gain (weight, init 1) and shift (bias, init 0).
type Norm struct{ Weight, Bias *G.Node }

// NewNorm creates prefix.weight and prefix.bias.
func (b *Builder) NewNorm(prefix string, width int) (*Norm, error) {
	w, err := b.Param(prefix+".weight", []int{width}, Ones)
	if err != nil {
		return nil, err
	}
	bias, err := b.Param(prefix+".bias", []int{width}, Zeros)
	if err != nil {
		return nil, err
	}
	return &Norm{w, bias}, nil
}

// Forward normalises the rows of x [N, width].
func (n *Norm) Forward(x *G.Node) (*G.Node, error) { return LayerNorm(x, n.Weight, n.Bias) }

// BlockConfig sizes a residual attention block for a fixed batch of sequences.
type BlockConfig struct {
	Width, Heads, MLPWidth int
	Batch, Seq             int  // the activations are [Batch·Seq, Width]
	Causal                 bool // mask keys after the query (text)
	QuickGELU              bool // x·σ(1.702x) instead of the erf GELU
}

// BlockInit says how a block's matrices start. Biases of in_proj and out_proj start at 0, the
// MLP biases as torch's Linear default, layer norms at (1, 0).
type BlockInit struct{ InProj, OutProj, FC, Proj Init }

// VisionInit is the reference's init for a vision block: xavier in_proj, torch's Linear
// default elsewhere.
func VisionInit(width, mlpWidth int) BlockInit {
	return BlockInit{
		InProj:  XavierUniform(width, 3*width),
		OutProj: Uniform(1 / math.Sqrt(float64(width))),
		FC:      Uniform(1 / math.Sqrt(float64(width))),
		Proj:    Uniform(1 / math.Sqrt(float64(mlpWidth))),
	}
}

// TextInit is open_clip's TextTransformer.init_parameters for a text block of a tower of
// layers blocks: normal with std w^-½ (in_proj), (2w)^-½ (c_fc) and w^-½·(2·layers)^-½ (out_proj, c_proj).
func TextInit(width, layers int) BlockInit {
	w := float64(width)
	proj := math.Pow(w, -0.5) * math.Pow(2*float64(layers), -0.5)
	return BlockInit{InProj: Normal(math.Pow(w, -0.5)), OutProj: Normal(proj), FC: Normal(math.Pow(2*w, -0.5)), Proj: Normal(proj)}
}

// Block is open_clip's pre-LN ResidualAttentionBlock: x += attn(ln_1(x)); x += mlp(ln_2(x)),
// attention with a fused in_proj (q, k, v) and out_proj, mlp = c_fc → GELU → c_proj.
type Block struct {
	cfg      BlockConfig
	ln1, ln2 *Norm
	inProj   *Linear
	outProj  *Linear
	fc, proj *Linear
}

// NewBlock creates the block's parameters under prefix ("transformer.resblocks.0").
func (b *Builder) NewBlock(prefix string, cfg BlockConfig, init BlockInit) (*Block, error) {
	if cfg.Width <= 0 || cfg.Heads <= 0 || cfg.Width%cfg.Heads != 0 || cfg.MLPWidth <= 0 || cfg.Batch <= 0 || cfg.Seq <= 0 {
		return nil, fmt.Errorf("nn: block %s: bad config %+v", prefix, cfg)
	}
	blk := &Block{cfg: cfg}
	var err error
	if blk.ln1, err = b.NewNorm(prefix+".ln_1", cfg.Width); err != nil {
		return nil, err
	}
	// in_proj is a bare pair of parameters in open_clip's Attention, not a Linear module.
	blk.inProj = &Linear{}
	if blk.inProj.W, err = b.Param(prefix+".attn.in_proj_weight", []int{3 * cfg.Width, cfg.Width}, init.InProj); err != nil {
		return nil, err
	}
	if blk.inProj.B, err = b.Param(prefix+".attn.in_proj_bias", []int{3 * cfg.Width}, Zeros); err != nil {
		return nil, err
	}
	if blk.outProj, err = b.NewLinear(prefix+".attn.out_proj", cfg.Width, cfg.Width, init.OutProj, Zeros); err != nil {
		return nil, err
	}
	if blk.ln2, err = b.NewNorm(prefix+".ln_2", cfg.Width); err != nil {
		return nil, err
	}
	if blk.fc, err = b.NewLinear(prefix+".mlp.c_fc", cfg.Width, cfg.MLPWidth, init.FC, Uniform(1/math.Sqrt(float64(cfg.Width)))); err != nil {
		return nil, err
	}
	if blk.proj, err = b.NewLinear(prefix+".mlp.c_proj", cfg.MLPWidth, cfg.Width, init.Proj, Uniform(1/math.Sqrt(float64(cfg.MLPWidth)))); err != nil {
		return nil, err
	}
	return blk, nil
}

// Forward applies the block to x [Batch·Seq, Width].
func (blk *Block) Forward(x *G.Node) (*G.Node, error) {
	h, err := chain(x,
		blk.ln1.Forward,
		blk.inProj.Forward,
		func(qkv *G.Node) (*G.Node, error) {
			return Attention(qkv, blk.cfg.Batch, blk.cfg.Seq, blk.cfg.Heads, blk.cfg.Causal)
		})
	if err != nil {
		return nil, err
	}
	if x, err = blk.outProj.Residual(h, x); err != nil {
		return nil, err
	}
	act := GELU
	if blk.cfg.QuickGELU {
		act = QuickGELU
	}
	if h, err = chain(x, blk.ln2.Forward, blk.fc.Forward, act); err != nil {
		return nil, err
	}
	return blk.proj.Residual(h, x)
}

// Transformer is a stack of blocks, named prefix.resblocks.{i}.
type Transformer struct{ Blocks []*Block }

// NewTransformer creates layers blocks under prefix ("visual.transformer").
func (b *Builder) NewTransformer(prefix string, layers int, cfg BlockConfig, init BlockInit) (*Transformer, error) {
	t := &Transformer{}
	for i := range layers {
		blk, err := b.NewBlock(fmt.Sprintf("%s.resblocks.%d", prefix, i), cfg, init)
		if err != nil {
			return nil, err
		}
		t.Blocks = append(t.Blocks, blk)
	}
	return t, nil
}

// Forward applies the blocks in order.
func (t *Transformer) Forward(x *G.Node) (*G.Node, error) {
	var err error
	for _, blk := range t.Blocks {
		if x, err = blk.Forward(x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// chain applies fs in order, stopping at the first error.
func chain(x *G.Node, fs ...func(*G.Node) (*G.Node, error)) (*G.Node, error) {
	var err error
	for _, f := range fs {
		if x, err = f(x); err != nil {
			return nil, err
		}
	}
	return x, nil
}
