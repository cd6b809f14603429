package vision

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ModifiedResNet is open_clip's ModifiedResNet image tower (OpenAI's RN50 family) built once
// for a fixed batch: a stem of three 3×3 convolutions (the first of stride 2) and a 2×2
// average pool; four stages of Bottleneck blocks whose strides are anti-aliased (a 2×2 average
// pool before the stride's convolution, in the block and in its downsample path); and an
// attention pool whose query is the mean of the last feature map. Feature maps are
// channels-last matrices [B·H·W, C], so every convolution is a product. Batch norms train on
// batch statistics and evaluate on their running ones, following the builder's Training
// switch. Parameters and buffers carry open_clip's state_dict names under "visual.".
type ModifiedResNet struct {
	cfg    Config
	batch  int
	pix32  []float32 // [batch·S·S, 3] channels-last on a float32 builder, refilled by SetImages
	pix64  []float64 // the same on a float64 builder (gradient checks)
	output *G.Node   // the attention pool's output [batch, embed]
}

// NewModifiedResNet adds the tower's parameters (named visual.*) and graph to b for batch
// images, its attention pool projecting to embed dimensions. b may be float32 (training,
// inference) or float64 (gradient checks); parameters start as open_clip's init_parameters.
func NewModifiedResNet(b *nn.Builder, cfg Config, batch, embed int) (*ModifiedResNet, error) {
	if cfg.Type != TypeResNet {
		return nil, fmt.Errorf("vision: a ModifiedResNet needs model.vision.type %q, not %q", TypeResNet, cfg.Type)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if batch <= 0 || embed <= 0 {
		return nil, fmt.Errorf("vision: batch %d and embed %d must be positive", batch, embed)
	}
	t := &ModifiedResNet{cfg: cfg, batch: batch}
	s := nn.Spatial{Batch: batch, H: cfg.ImageSize, W: cfg.ImageSize}
	var pixels any
	if b.Dtype() == tensor.Float64 {
		t.pix64 = make([]float64, s.Rows()*3)
		pixels = t.pix64
	} else {
		t.pix32 = make([]float32, s.Rows()*3)
		pixels = t.pix32
	}
	x, err := b.Input("visual.pixels", pixels, s.Rows(), 3)
	if err != nil {
		return nil, err
	}
	if x, s, err = stem(b, x, s, cfg.Width); err != nil {
		return nil, fmt.Errorf("vision: stem: %w", err)
	}
	inplanes := cfg.Width
	for i, blocks := range cfg.StageLayers {
		planes, stride := cfg.Width<<i, 2
		if i == 0 {
			stride = 1
		}
		for j := range blocks {
			blk, err := newBottleneck(b, fmt.Sprintf("visual.layer%d.%d", i+1, j), inplanes, planes, stride)
			if err != nil {
				return nil, err
			}
			if x, s, err = blk.forward(x, s); err != nil {
				return nil, fmt.Errorf("vision: layer%d.%d: %w", i+1, j, err)
			}
			inplanes, stride = planes*bottleneckExpansion, 1
		}
	}
	if t.output, err = attentionPool(b, x, s, cfg.FeatureWidth(), cfg.Heads, embed); err != nil {
		return nil, fmt.Errorf("vision: attnpool: %w", err)
	}
	return t, nil
}

// convBN is a convolution without bias followed by batch norm, the unit of a ResNet.
type convBN struct {
	conv *nn.Conv2D
	bn   *nn.BatchNorm2D
}

// newConvBN creates <conv>.weight and <bn>.*; gain initialises the norm's weight (1 when nil).
func newConvBN(b *nn.Builder, conv, bn string, in, out, k, pad int, gain nn.Init) (convBN, error) {
	c, err := b.NewConv2D(conv, in, out, k, 1, pad, nil)
	if err != nil {
		return convBN{}, err
	}
	n, err := b.NewBatchNorm2D(bn, out, gain)
	return convBN{c, n}, err
}

// forward returns bn(conv(x)), and its ReLU when relu.
func (u convBN) forward(x *G.Node, s nn.Spatial, relu bool) (*G.Node, nn.Spatial, error) {
	x, s, err := u.conv.Forward(x, s)
	if err != nil {
		return nil, s, err
	}
	if x, err = u.bn.Forward(x); err != nil || !relu {
		return x, s, err
	}
	x, err = nn.ReLU(x)
	return x, s, err
}

// stem is conv1 (3→width/2, stride 2), conv2 (width/2→width/2), conv3 (width/2→width), each
// 3×3 with padding 1 and followed by batch norm and ReLU, then a 2×2 average pool.
func stem(b *nn.Builder, x *G.Node, s nn.Spatial, width int) (*G.Node, nn.Spatial, error) {
	conv1, err := b.NewConv2D("visual.conv1", 3, width/2, 3, 2, 1, nil)
	if err != nil {
		return nil, s, err
	}
	bn1, err := b.NewBatchNorm2D("visual.bn1", width/2, nil)
	if err != nil {
		return nil, s, err
	}
	units := []convBN{{conv1, bn1}}
	for i, out := range []int{width / 2, width} {
		u, err := newConvBN(b, fmt.Sprintf("visual.conv%d", i+2), fmt.Sprintf("visual.bn%d", i+2), width/2, out, 3, 1, nil)
		if err != nil {
			return nil, s, err
		}
		units = append(units, u)
	}
	for _, u := range units {
		if x, s, err = u.forward(x, s, true); err != nil {
			return nil, s, err
		}
	}
	x, err = nn.AvgPool2D(x, s, 2)
	return x, s.Pool(2), err
}

// bottleneckExpansion is the ratio of a Bottleneck's output channels to its planes.
const bottleneckExpansion = 4

// bottleneck is open_clip's Bottleneck: 1×1 (inplanes→planes), 3×3 (planes→planes), a
// stride×stride average pool when stride > 1, 1×1 (planes→4·planes), each with batch norm,
// ReLU after the first two; the identity, or a downsample path (average pool, 1×1 conv, batch
// norm) when the stride or the width changes, is added before the last ReLU.
type bottleneck struct {
	c1, c2, c3 convBN
	down       *convBN // nil: the identity
	stride     int
}

// newBottleneck creates the block's parameters under prefix ("visual.layer1.0"). The last
// batch norm's weight starts at zero (open_clip's init_parameters), so each block starts as
// its shortcut.
func newBottleneck(b *nn.Builder, prefix string, inplanes, planes, stride int) (*bottleneck, error) {
	blk := &bottleneck{stride: stride}
	var err error
	if blk.c1, err = newConvBN(b, prefix+".conv1", prefix+".bn1", inplanes, planes, 1, 0, nil); err != nil {
		return nil, err
	}
	if blk.c2, err = newConvBN(b, prefix+".conv2", prefix+".bn2", planes, planes, 3, 1, nil); err != nil {
		return nil, err
	}
	out := planes * bottleneckExpansion
	if blk.c3, err = newConvBN(b, prefix+".conv3", prefix+".bn3", planes, out, 1, 0, nn.Zeros); err != nil {
		return nil, err
	}
	if stride > 1 || inplanes != out {
		// open_clip's Sequential names the pool "-1", so the conv and norm are "0" and "1".
		d, err := newConvBN(b, prefix+".downsample.0", prefix+".downsample.1", inplanes, out, 1, 0, nil)
		if err != nil {
			return nil, err
		}
		blk.down = &d
	}
	return blk, nil
}

func (blk *bottleneck) forward(x *G.Node, s nn.Spatial) (*G.Node, nn.Spatial, error) {
	h, hs, err := blk.c1.forward(x, s, true)
	if err != nil {
		return nil, s, err
	}
	if h, hs, err = blk.c2.forward(h, hs, true); err != nil {
		return nil, s, err
	}
	if h, hs, err = blk.pool(h, hs); err != nil {
		return nil, s, err
	}
	if h, hs, err = blk.c3.forward(h, hs, false); err != nil {
		return nil, s, err
	}
	id := x
	if blk.down != nil {
		ids := s
		if id, ids, err = blk.pool(x, s); err != nil {
			return nil, s, err
		}
		if id, _, err = blk.down.forward(id, ids, false); err != nil {
			return nil, s, err
		}
	}
	if h, err = nn.Add(h, id); err != nil {
		return nil, s, err
	}
	h, err = nn.ReLU(h)
	return h, hs, err
}

// pool is the anti-aliasing average pool of a strided block (nothing at stride 1).
func (blk *bottleneck) pool(x *G.Node, s nn.Spatial) (*G.Node, nn.Spatial, error) {
	if blk.stride == 1 {
		return x, s, nil
	}
	x, err := nn.AvgPool2D(x, s, blk.stride)
	return x, s.Pool(blk.stride), err
}

// attentionPool is open_clip's AttentionPool2d over the maps x [B·H·W, C]: the tokens are the
// mean of each map followed by its H·W pixels, plus positional_embedding [H·W+1, C];
// multi-head attention (q, k, v and c_proj Linear with bias) whose output is the mean token's.
// Attention runs over every token as query and keeps the first: the same value for that row.
// The q, k and v projections are one product over their stacked weights.
func attentionPool(b *nn.Builder, x *G.Node, s nn.Spatial, width, heads, embed int) (*G.Node, error) {
	seq := s.H*s.W + 1
	std := math.Pow(float64(width), -0.5) // open_clip: c_proj.in_features ** -0.5; randn / √C
	bias := nn.Uniform(1 / math.Sqrt(float64(width)))
	pos, err := b.Param("visual.attnpool.positional_embedding", []int{seq, width}, nn.Normal(std))
	if err != nil {
		return nil, err
	}
	proj := map[string]*nn.Linear{}
	for _, name := range []string{"k", "q", "v", "c"} { // open_clip's order
		out := width
		if name == "c" {
			out = embed
		}
		if proj[name], err = b.NewLinear("visual.attnpool."+name+"_proj", width, out, nn.Normal(std), bias); err != nil {
			return nil, err
		}
	}
	w, err := nn.ConcatRows(proj["q"].W, proj["k"].W, proj["v"].W)
	if err != nil {
		return nil, err
	}
	wb, err := nn.ConcatRows(proj["q"].B, proj["k"].B, proj["v"].B)
	if err != nil {
		return nil, err
	}
	first := make([]int, s.Batch) // each image's mean token
	for i := range first {
		first[i] = i * seq
	}
	steps := []func(*G.Node) (*G.Node, error){
		func(x *G.Node) (*G.Node, error) { return nn.PrependMean(x, s.Batch) },
		func(x *G.Node) (*G.Node, error) { return nn.AddRows(x, pos) },
		func(x *G.Node) (*G.Node, error) { return nn.Affine(x, w, wb, nil) },
		func(qkv *G.Node) (*G.Node, error) { return nn.Attention(qkv, s.Batch, seq, heads, false) },
		func(x *G.Node) (*G.Node, error) { return nn.GatherRows(x, first) },
		proj["c"].Forward,
	}
	for _, f := range steps {
		if x, err = f(x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Output implements Tower.
func (t *ModifiedResNet) Output() *G.Node { return t.output }

// ImageLen is the number of values of the batch of images [batch, 3, S, S].
func (t *ModifiedResNet) ImageLen() int { return t.batch * 3 * t.cfg.ImageSize * t.cfg.ImageSize }

// SetImages loads a batch of CLIP-normalised images [batch, 3, S, S] (CHW) into the tower's
// input, channels-last: row (b, y, x) holds the pixel's three channels.
func (t *ModifiedResNet) SetImages(images []float32) error {
	if len(images) != t.ImageLen() {
		return fmt.Errorf("vision: %d image values, want %d (batch %d × 3 × %d × %d)",
			len(images), t.ImageLen(), t.batch, t.cfg.ImageSize, t.cfg.ImageSize)
	}
	hw := t.cfg.ImageSize * t.cfg.ImageSize
	for b := range t.batch {
		img := images[b*3*hw : (b+1)*3*hw]
		for p := range hw {
			r := (b*hw + p) * 3
			for c := range 3 {
				if t.pix64 != nil {
					t.pix64[r+c] = float64(img[c*hw+p])
				} else {
					t.pix32[r+c] = img[c*hw+p]
				}
			}
		}
	}
	return nil
}
