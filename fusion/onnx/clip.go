// Package onnx writes a CLIP model's two towers as ONNX graphs, for serving them with
// onnxruntime or any other ONNX runtime: ImageEncoder maps CLIP-normalised images
// [batch, 3, S, S] to L2-normalised embeddings [batch, E], TextEncoder maps token ids
// [batch, context] to the same, exactly what fusion.Encoder's Images and Tokens return.
//
// It lives under fusion because fusion is the package that composes the towers and owns their
// Config: walking a model's structure means knowing vision's ViT and ModifiedResNet and text's
// Transformer block by block (the patch embedding, class token, pre-LN blocks with a fused
// in_proj, ln_post on the class token; the ResNet's stem, anti-aliased Bottlenecks and
// attention pool; EOT pooling at the argmax id; the projections), all of which fusion already
// depends on. nn stays a generic layer library that knows nothing of CLIP; vision and text stay
// free of a serialisation format (writing the graphs there would spread the writer over three
// packages for two towers); and the export stage (stages/export) only reads a checkpoint and
// writes the files, so this code is tested against fusion.Encoder without any stage. The graph
// follows the Go towers step for step (vision/vit.go, vision/resnet.go, text/transformer.go,
// nn/layers.go), with open_clip's state-dict names on the weights; a test runs both on the same
// inputs through onnxruntime. The protobuf writer (proto.go, graph.go) is the package's own;
// proto.go says why.
package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/vision"
)

// Names of the graphs' inputs and outputs (those of Hugging Face's CLIP ONNX exports where
// they mean the same thing).
const (
	ImageInput  = "pixel_values" // float32 [batch, 3, S, S], CLIP-normalised
	ImageOutput = "image_embeds" // float32 [batch, E], L2-normalised
	TextInput   = "input_ids"    // int64 [batch, context], clipgo's (OpenAI's) tokenizer output
	TextOutput  = "text_embeds"  // float32 [batch, E], L2-normalised
	BatchDim    = "batch"        // the symbolic batch dimension of every input and output
)

// weights finds the tensors of a model by their open_clip names.
type weights map[string]*nn.Param

func weightsOf(cfg fusion.Config, params []*nn.Param) (weights, error) {
	w := make(weights, len(params))
	for _, p := range params {
		w[p.Name] = p
	}
	want, err := fusion.WeightsOf(cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range want {
		if got, ok := w[p.Name]; !ok || !slices.Equal(got.Shape, p.Shape) || len(got.Value) != p.Size() {
			return nil, fmt.Errorf("onnx: no weights %s %v for a %s model", p.Name, p.Shape, fusion.Describe(cfg))
		}
	}
	return w, nil
}

// add puts the tensor called name into g as an initializer under the same name.
func (w weights) add(g *Graph, name string) (string, error) {
	p := w[name]
	if p == nil {
		return "", fmt.Errorf("onnx: no weights %s", name)
	}
	return g.Weight(name, p.Shape, p.Value)
}

// ImageEncoder returns the image tower of the model cfg describes, with params (every tensor
// of fusion.WeightsOf(cfg)), as a graph from ImageInput to ImageOutput: a ViT, or a
// ModifiedResNet with its batch norms on their running statistics (as clipgo evaluates).
func ImageEncoder(cfg fusion.Config, params []*nn.Param, producerVersion string) (*Graph, error) {
	w, err := weightsOf(cfg, params)
	if err != nil {
		return nil, err
	}
	s := int64(cfg.Vision.ImageSize)
	g := NewGraph("clipgo_image_encoder", fmt.Sprintf("clipgo image encoder, %s: CLIP-normalised images [batch, 3, %d, %d] to L2-normalised embeddings [batch, %d]",
		fusion.Describe(cfg), s, s, cfg.EmbedDim), producerVersion)
	b := &builder{g: g, w: w}
	x, err := g.Input(ImageInput, Float32, Dim{Param: BatchDim}, Dim{Value: 3}, Dim{Value: s}, Dim{Value: s})
	if err != nil {
		return nil, err
	}
	if cfg.Vision.Type == vision.TypeResNet {
		x = b.resnet(x, cfg.Vision)
	} else {
		x = b.vit(x, cfg)
	}
	x = b.normalize(x)
	if b.err != nil {
		return nil, b.err
	}
	if err := g.Output(x, ImageOutput, Float32, Dim{Param: BatchDim}, Dim{Value: int64(cfg.EmbedDim)}); err != nil {
		return nil, err
	}
	return g, nil
}

// vit is vision.ViT (inference: every patch kept) on images x [B, 3, S, S]: [B, E].
func (b *builder) vit(x string, cfg fusion.Config) string {
	g, v := b.g, cfg.Vision
	p, grid, width, tokens := int64(v.PatchSize), int64(v.Grid()), int64(v.Width), int64(v.Tokens())
	// conv1 (no bias): [B, W, G, G] → tokens [B, G², W].
	x = g.Op("Conv", []string{x, b.weight("visual.conv1.weight")}, AttrInts("kernel_shape", p, p), AttrInts("strides", p, p))
	x = g.Op("Reshape", []string{x, g.Ints(0, width, grid*grid)})
	x = g.Op("Transpose", []string{x}, AttrInts("perm", 0, 2, 1))
	// The class embedding, broadcast to [B, 1, W], goes first; then the positional embedding.
	batch := g.Op("Shape", []string{x}, AttrInt("start", 0), AttrInt("end", 1))
	cls := g.Op("Reshape", []string{b.weight("visual.class_embedding"), g.Ints(1, 1, width)})
	cls = g.Op("Expand", []string{cls, g.Op("Concat", []string{batch, g.Ints(1, width)}, AttrInt("axis", 0))})
	x = g.Op("Concat", []string{cls, x}, AttrInt("axis", 1))
	x = g.Op("Add", []string{x, b.weight("visual.positional_embedding")})
	x = b.layerNorm(x, "visual.ln_pre")
	x = g.Op("Reshape", []string{x, g.Ints(-1, width)}) // [B·T, W], as the Go tower's activations
	for i := range v.Layers {
		x = b.block(x, fmt.Sprintf("visual.transformer.resblocks.%d", i), v.Heads, v.Width, int(tokens), false, cfg.QuickGELU)
	}
	// ln_post on the class token (the Go tower normalises every token and then pools: the same
	// rows), then proj.
	x = g.Op("Reshape", []string{x, g.Ints(-1, tokens, width)})
	x = g.Op("Gather", []string{x, g.Index(0)}, AttrInt("axis", 1))
	x = b.layerNorm(x, "visual.ln_post")
	return g.Op("MatMul", []string{x, b.weight("visual.proj")})
}

// resnet is vision.ModifiedResNet on images x [B, 3, S, S] (NCHW here, channels-last in Go; the
// convolution weights are torch's [out, in, k, k] in both): the stem, the four stages of
// Bottleneck blocks and the attention pool, [B, E].
func (b *builder) resnet(x string, v vision.Config) string {
	g := b.g
	// Stem: three 3×3 conv + BN + ReLU (the first of stride 2), a 2×2 average pool.
	x = b.convBN(x, "visual.conv1", "visual.bn1", 3, 2, 1, true)
	x = b.convBN(x, "visual.conv2", "visual.bn2", 3, 1, 1, true)
	x = b.convBN(x, "visual.conv3", "visual.bn3", 3, 1, 1, true)
	x = b.avgPool(x, 2)
	inplanes := v.Width
	for i, blocks := range v.StageLayers {
		planes, stride := v.Width<<i, 2
		if i == 0 {
			stride = 1
		}
		for j := range blocks {
			x = b.bottleneck(x, fmt.Sprintf("visual.layer%d.%d", i+1, j), inplanes, planes, stride)
			inplanes, stride = planes*4, 1
		}
	}
	// Attention pool: tokens are each map's mean, then its H·W pixels, plus the positional
	// embedding; attention over all of them (q, k, v stacked as the Go tower stacks them),
	// the mean token's row kept, then c_proj.
	c, seq := int64(v.FeatureWidth()), int64(v.Grid()*v.Grid()+1)
	x = g.Op("Reshape", []string{x, g.Ints(0, c, -1)})
	x = g.Op("Transpose", []string{x}, AttrInts("perm", 0, 2, 1)) // [B, H·W, C]
	mean := g.Op("ReduceMean", []string{x}, AttrInts("axes", 1), AttrInt("keepdims", 1))
	x = g.Op("Concat", []string{mean, x}, AttrInt("axis", 1))
	x = g.Op("Add", []string{x, b.weight("visual.attnpool.positional_embedding")})
	x = g.Op("Reshape", []string{x, g.Ints(-1, c)})
	var qkv []string
	for _, name := range []string{"q", "k", "v"} {
		qkv = append(qkv, b.linear(x, "visual.attnpool."+name+"_proj", ".weight", ".bias"))
	}
	x = b.attention(g.Op("Concat", qkv, AttrInt("axis", 1)), v.Heads, int(c), int(seq), false)
	x = g.Op("Reshape", []string{x, g.Ints(-1, seq, c)})
	x = g.Op("Gather", []string{x, g.Index(0)}, AttrInt("axis", 1))
	return b.linear(x, "visual.attnpool.c_proj", ".weight", ".bias")
}

// convBN is a convolution without bias (k×k, stride, padding pad) and batch norm on its
// running statistics (torch's eps 1e-5), with a ReLU when relu.
func (b *builder) convBN(x, conv, bn string, k, stride, pad int64, relu bool) string {
	g := b.g
	x = g.Op("Conv", []string{x, b.weight(conv + ".weight")}, AttrInts("kernel_shape", k, k),
		AttrInts("strides", stride, stride), AttrInts("pads", pad, pad, pad, pad))
	x = g.Op("BatchNormalization", []string{x, b.weight(bn + ".weight"), b.weight(bn + ".bias"),
		b.weight(bn + ".running_mean"), b.weight(bn + ".running_var")}, AttrFloat("epsilon", nn.BatchNormEps))
	if relu {
		x = g.Op("Relu", []string{x})
	}
	return x
}

// avgPool is torch's AvgPool2d(k): k×k windows, stride k, no padding, floor mode.
func (b *builder) avgPool(x string, k int64) string {
	return b.g.Op("AveragePool", []string{x}, AttrInts("kernel_shape", k, k), AttrInts("strides", k, k))
}

// bottleneck is open_clip's Bottleneck as vision's: 1×1, 3×3, the anti-aliasing pool at
// stride > 1, 1×1 (each with batch norm, ReLU after the first two), plus the identity or the
// downsample path (pool, 1×1, batch norm), then ReLU.
func (b *builder) bottleneck(x, prefix string, inplanes, planes, stride int) string {
	g := b.g
	h := b.convBN(x, prefix+".conv1", prefix+".bn1", 1, 1, 0, true)
	h = b.convBN(h, prefix+".conv2", prefix+".bn2", 3, 1, 1, true)
	if stride > 1 {
		h = b.avgPool(h, int64(stride))
	}
	h = b.convBN(h, prefix+".conv3", prefix+".bn3", 1, 1, 0, false)
	id := x
	if stride > 1 || inplanes != planes*4 {
		if stride > 1 {
			id = b.avgPool(id, int64(stride))
		}
		id = b.convBN(id, prefix+".downsample.0", prefix+".downsample.1", 1, 1, 0, false)
	}
	return g.Op("Relu", []string{g.Op("Add", []string{h, id})})
}

// TextEncoder returns the text tower of the model cfg describes, with params, as a graph from
// TextInput to TextOutput. Ids must be in [0, vocab_size), as clipgo's tokenizer makes them:
// onnxruntime fails on a larger one, as clipgo does, but ONNX's Gather reads a negative id from
// the end of the table where clipgo refuses it.
func TextEncoder(cfg fusion.Config, params []*nn.Param, producerVersion string) (*Graph, error) {
	w, err := weightsOf(cfg, params)
	if err != nil {
		return nil, err
	}
	t := cfg.Text
	ctx, width := int64(t.ContextLength), int64(t.Width)
	g := NewGraph("clipgo_text_encoder", fmt.Sprintf("clipgo text encoder, %s: token ids [batch, %d] (CLIP tokenizer, zero padded) to L2-normalised embeddings [batch, %d]",
		fusion.Describe(cfg), ctx, cfg.EmbedDim), producerVersion)
	b := &builder{g: g, w: w}
	ids, err := g.Input(TextInput, Int64, Dim{Param: BatchDim}, Dim{Value: ctx})
	if err != nil {
		return nil, err
	}
	x := g.Op("Gather", []string{b.weight("token_embedding.weight"), ids}, AttrInt("axis", 0)) // [B, L, W]
	x = g.Op("Add", []string{x, b.weight("positional_embedding")})
	x = g.Op("Reshape", []string{x, g.Ints(-1, width)})
	for i := range t.Layers {
		x = b.block(x, fmt.Sprintf("transformer.resblocks.%d", i), t.Heads, t.Width, t.ContextLength, true, cfg.QuickGELU)
	}
	x = b.layerNorm(x, "ln_final")
	// Pool at each row's EOT: the first position of its largest id, as torch's argmax and
	// text.EOTPosition.
	x = g.Op("Reshape", []string{x, g.Ints(-1, ctx, width)})
	eot := g.Op("ArgMax", []string{ids}, AttrInt("axis", 1), AttrInt("keepdims", 1), AttrInt("select_last_index", 0)) // [B, 1]
	x = g.Op("GatherND", []string{x, eot}, AttrInt("batch_dims", 1))                                                  // [B, W]
	x = g.Op("MatMul", []string{x, b.weight("text_projection")})
	x = b.normalize(x)
	if b.err != nil {
		return nil, b.err
	}
	if err := g.Output(x, TextOutput, Float32, Dim{Param: BatchDim}, Dim{Value: int64(cfg.EmbedDim)}); err != nil {
		return nil, err
	}
	return g, nil
}

// builder adds the layers both towers share; the first error sticks and later calls do nothing
// that matters (the caller checks err once at the end).
type builder struct {
	g   *Graph
	w   weights
	err error
}

func (b *builder) weight(name string) string {
	if b.err != nil {
		return name
	}
	n, err := b.w.add(b.g, name)
	if err != nil {
		b.err = err
	}
	return n
}

// layerNorm is nn.LayerNorm over the last axis: torch's LayerNorm with eps 1e-5.
func (b *builder) layerNorm(x, prefix string) string {
	return b.g.Op("LayerNormalization", []string{x, b.weight(prefix + ".weight"), b.weight(prefix + ".bias")},
		AttrInt("axis", -1), AttrFloat("epsilon", nn.LayerNormEps))
}

// linear is torch's Linear on rows of x [N, in]: x·Wᵀ + b with W [out, in] as stored.
func (b *builder) linear(x, prefix, weight, bias string) string {
	return b.g.Op("Gemm", []string{x, b.weight(prefix + weight), b.weight(prefix + bias)}, AttrInt("transB", 1))
}

// block is nn.Block on x [B·seq, width]: x += out_proj(attention(in_proj(ln_1(x))));
// x += c_proj(act(c_fc(ln_2(x)))).
func (b *builder) block(x, prefix string, heads, width, seq int, causal, quickGELU bool) string {
	g := b.g
	h := b.layerNorm(x, prefix+".ln_1")
	h = b.linear(h, prefix+".attn.", "in_proj_weight", "in_proj_bias") // [B·S, 3W]: q, k, v
	h = b.attention(h, heads, width, seq, causal)
	x = g.Op("Add", []string{b.linear(h, prefix+".attn.out_proj", ".weight", ".bias"), x})
	h = b.layerNorm(x, prefix+".ln_2")
	h = b.linear(h, prefix+".mlp.c_fc", ".weight", ".bias")
	if quickGELU {
		h = g.Op("Mul", []string{h, g.Op("Sigmoid", []string{g.Op("Mul", []string{h, g.Scalar(1.702)})})})
	} else { // x·Φ(x) = 0.5·x·(1 + erf(x/√2)), torch.nn.GELU()
		erf := g.Op("Erf", []string{g.Op("Mul", []string{h, g.Scalar(float32(1 / math.Sqrt2))})})
		h = g.Op("Mul", []string{g.Op("Mul", []string{h, g.Scalar(0.5)}), g.Op("Add", []string{erf, g.Scalar(1)})})
	}
	return g.Op("Add", []string{b.linear(h, prefix+".mlp.c_proj", ".weight", ".bias"), x})
}

// attention is nn.Attention on qkv [B·S, 3W]: per head softmax(q·kᵀ·d^-½ + mask)·v, the heads
// concatenated back to [B·S, W]; causal masks the keys after each query with −∞.
func (b *builder) attention(qkv string, heads, width, seq int, causal bool) string {
	g := b.g
	d := width / heads
	x := g.Op("Reshape", []string{qkv, g.Ints(-1, int64(seq), 3, int64(heads), int64(d))})
	x = g.Op("Transpose", []string{x}, AttrInts("perm", 2, 0, 3, 1, 4)) // [3, B, H, S, d]
	q := g.Op("Gather", []string{x, g.Index(0)}, AttrInt("axis", 0))
	k := g.Op("Gather", []string{x, g.Index(1)}, AttrInt("axis", 0))
	v := g.Op("Gather", []string{x, g.Index(2)}, AttrInt("axis", 0))
	s := g.Op("MatMul", []string{q, g.Op("Transpose", []string{k}, AttrInts("perm", 0, 1, 3, 2))}) // [B, H, S, S]
	s = g.Op("Mul", []string{s, g.Scalar(float32(1 / math.Sqrt(float64(d))))})
	if causal {
		mask := make([]float32, seq*seq)
		for i := range seq {
			for j := i + 1; j < seq; j++ {
				mask[i*seq+j] = NegInf
			}
		}
		s = g.Op("Add", []string{s, g.Floats([]int64{int64(seq), int64(seq)}, mask)})
	}
	p := g.Op("Softmax", []string{s}, AttrInt("axis", -1))
	o := g.Op("MatMul", []string{p, v})                              // [B, H, S, d]
	o = g.Op("Transpose", []string{o}, AttrInts("perm", 0, 2, 1, 3)) // [B, S, H, d]
	return g.Op("Reshape", []string{o, g.Ints(-1, int64(width))})
}

// normalize is fusion.Encoder's last step on rows of x [B, E]: x / max(‖x‖, 1e-12), as
// F.normalize.
func (b *builder) normalize(x string) string {
	g := b.g
	n := g.Op("ReduceL2", []string{x}, AttrInts("axes", 1), AttrInt("keepdims", 1))
	n = g.Op("Max", []string{n, g.Scalar(nn.NormEps)})
	return g.Op("Div", []string{x, n})
}
