package vision

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ViT is the vision transformer image tower built once for a fixed batch, as open_clip builds it: conv1
// patch embedding without bias (a matmul over extracted patches; the weight keeps its
// [W,3,P,P] shape), class token, positional embedding, patch dropout (training graphs with
// model.vision.patch_dropout only), ln_pre, pre-LN blocks, ln_post on all tokens, class-token
// pooling and proj.
type ViT struct {
	cfg     Config
	batch   int
	patches []float32 // [batch·Grid², 3·P·P], refilled by SetImages
	output  *G.Node   // the projected image features [batch, embed]
	tokens  *G.Node   // every token after ln_post [batch·seq, width], for Dense
	pooled  *G.Node   // the class tokens after ln_post [batch, width], before proj
	proj    *G.Node   // visual.proj [width, embed]

	// Patch dropout: kept lists the token rows that go on, per image its class token and
	// keep patches in ascending order; SetImages redraws them in place (the gather reads the
	// slice at each run). nil when the tower keeps every token.
	kept     []int
	keep     int
	seed     uint64 // the next draw's seed
	firstRow int    // the batch's first row in the global batch (data parallel)
}

// MLPWidth is the blocks' hidden width.
func (c Config) MLPWidth() int { return int(float64(c.Width) * c.MLPRatio) }

// NewViT adds the vision transformer's parameters (named visual.*) and graph to b for batch
// images, projecting to embed dimensions. b must be a float32 builder.
func NewViT(b *nn.Builder, cfg Config, batch, embed int, quickGELU bool) (*ViT, error) {
	if cfg.Type != "" && cfg.Type != TypeViT {
		return nil, fmt.Errorf("vision: a ViT needs model.vision.type %q, not %q", TypeViT, cfg.Type)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if batch <= 0 || embed <= 0 {
		return nil, fmt.Errorf("vision: batch %d and embed %d must be positive", batch, embed)
	}
	if b.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("vision: the tower is built on float32 graphs, not %v", b.Dtype())
	}
	w, p, grid := cfg.Width, cfg.PatchSize, cfg.Grid()
	t := &ViT{cfg: cfg, batch: batch, patches: make([]float32, batch*grid*grid*3*p*p)}
	scale := math.Pow(float64(w), -0.5)
	patches, err := b.Input("visual.patches", t.patches, batch*grid*grid, 3*p*p)
	if err != nil {
		return nil, err
	}
	conv, err := b.Param("visual.conv1.weight", []int{w, 3, p, p}, nn.Uniform(1/math.Sqrt(float64(3*p*p))), w, 3*p*p)
	if err != nil {
		return nil, err
	}
	cls, err := b.Param("visual.class_embedding", []int{w}, nn.Normal(scale))
	if err != nil {
		return nil, err
	}
	pos, err := b.Param("visual.positional_embedding", []int{cfg.Tokens(), w}, nn.Normal(scale))
	if err != nil {
		return nil, err
	}
	lnPre, err := b.NewNorm("visual.ln_pre", w)
	if err != nil {
		return nil, err
	}
	seq := cfg.Tokens()
	if cfg.PatchDropout > 0 && !b.Frozen() { // a frozen builder's graphs are inference: every patch counts
		t.keep = cfg.KeptPatches()
		t.kept = make([]int, batch*(1+t.keep))
		t.seed = 0x666c6970 // "flip"; a trainer sets its own with SetPatchSeed
		seq = 1 + t.keep
	}
	blocks := nn.BlockConfig{Width: w, Heads: cfg.Heads, MLPWidth: cfg.MLPWidth(), Batch: batch, Seq: seq, QuickGELU: quickGELU}
	tr, err := b.NewTransformer("visual.transformer", cfg.Layers, blocks, nn.VisionInit(w, cfg.MLPWidth()))
	if err != nil {
		return nil, err
	}
	lnPost, err := b.NewNorm("visual.ln_post", w)
	if err != nil {
		return nil, err
	}
	proj, err := b.Param("visual.proj", []int{w, embed}, nn.Normal(scale))
	if err != nil {
		return nil, err
	}
	cls0 := make([]int, batch) // the class token of each image
	for i := range cls0 {
		cls0[i] = i * seq
	}
	x, err := nn.MatMul(patches, conv, false, true) // [B·G², W]
	if err != nil {
		return nil, err
	}
	if x, err = nn.ClassTokens(x, cls, pos); err != nil {
		return nil, err
	}
	t.proj = proj
	steps := []func(*G.Node) (*G.Node, error){
		t.dropPatches, lnPre.Forward, tr.Forward, lnPost.Forward,
		func(x *G.Node) (*G.Node, error) { t.tokens = x; return nn.GatherRows(x, cls0) },
		func(x *G.Node) (*G.Node, error) { t.pooled = x; return nn.MatMul(x, proj, false, false) },
	}
	for _, f := range steps {
		if x, err = f(x); err != nil {
			return nil, fmt.Errorf("vision: %w", err)
		}
	}
	t.output = x
	return t, nil
}

// Output implements Tower.
func (t *ViT) Output() *G.Node { return t.output }

// Pooled is the tower's trunk output, the class tokens after ln_post and before proj [batch,
// width]: what an image self-supervised head reads (SLIP's SimCLR branch, model.ssl).
func (t *ViT) Pooled() *G.Node { return t.pooled }

// Dense adds to the graph the projection of every token after ln_post, open_clip's dense
// features [batch·Tokens, embed] (each image's class token first, then its patches row by
// row): compared with a text embedding, the patch rows show where in the image the text
// matches. Only inference graphs need it, so it is built on request; a tower that drops
// patches has no full grid to show.
func (t *ViT) Dense() (*G.Node, error) {
	if t.kept != nil {
		return nil, fmt.Errorf("vision: no dense features from a tower that drops patches (a training graph)")
	}
	return nn.MatMul(t.tokens, t.proj, false, false)
}

// dropPatches keeps the rows of t.kept of the token sequences x [B·Tokens, W] (a gather whose
// gradient reaches the kept tokens alone), or passes x on when the tower drops none.
func (t *ViT) dropPatches(x *G.Node) (*G.Node, error) {
	if t.kept == nil {
		return x, nil
	}
	return nn.GatherRows(x, t.kept)
}

// SetPatchSeed makes the next SetImages draw the kept patches from seed: image i of the batch
// keeps the patches a PCG seeded with (seed, firstRow+i) picks, so that a trainer that passes
// a function of its step (and, data parallel, each rank its first row in the global batch)
// draws the same patches after a resume and on any number of ranks. Without it each
// SetImages draws from the previous seed advanced.
func (t *ViT) SetPatchSeed(seed uint64, firstRow int) { t.seed, t.firstRow = seed, firstRow }

// PatchDropout reports the patches each image keeps in training, and whether the tower drops
// any (a training graph with model.vision.patch_dropout > 0).
func (t *ViT) PatchDropout() (keep int, on bool) { return t.keep, t.kept != nil }

// drawKept refills t.kept: per image, its class token, then keep of its Grid² patches chosen
// uniformly without replacement (a partial Fisher–Yates shuffle), in ascending order (the
// blocks are permutation-equivariant and pool the class token, so order does not matter;
// open_clip keeps topk order). It then advances the seed for the next draw.
func (t *ViT) drawKept() {
	n, tokens := t.cfg.Grid()*t.cfg.Grid(), t.cfg.Tokens()
	perm := make([]int, n)
	for b := range t.batch {
		rng := rand.New(rand.NewPCG(t.seed, uint64(t.firstRow+b)))
		for i := range perm {
			perm[i] = i
		}
		for i := range t.keep {
			j := i + rng.IntN(n-i)
			perm[i], perm[j] = perm[j], perm[i]
		}
		chosen := perm[:t.keep]
		slices.Sort(chosen)
		row := t.kept[b*(1+t.keep) : (b+1)*(1+t.keep)]
		row[0] = b * tokens
		for i, p := range chosen {
			row[1+i] = b*tokens + 1 + p
		}
	}
	t.seed = splitmix(t.seed)
}

// splitmix is splitmix64's step: successive seeds far apart.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ImageLen is the number of float32 values of the batch of images [batch, 3, S, S].
func (t *ViT) ImageLen() int { return t.batch * 3 * t.cfg.ImageSize * t.cfg.ImageSize }

// SetImages loads a batch of CLIP-normalised images [batch, 3, S, S] (CHW) into the tower's
// input, rearranged as patches: row (b, gy, gx) holds the patch's values in (channel, y, x)
// order, the layout of the flattened conv1 weight.
func (t *ViT) SetImages(images []float32) error {
	if len(images) != t.ImageLen() {
		return fmt.Errorf("vision: %d image values, want %d (batch %d × 3 × %d × %d)",
			len(images), t.ImageLen(), t.batch, t.cfg.ImageSize, t.cfg.ImageSize)
	}
	s, p, g := t.cfg.ImageSize, t.cfg.PatchSize, t.cfg.Grid()
	row := 0
	for b := range t.batch {
		img := images[b*3*s*s : (b+1)*3*s*s]
		for gy := range g {
			for gx := range g {
				dst := t.patches[row*3*p*p : (row+1)*3*p*p]
				for c := range 3 {
					for y := range p {
						src := img[c*s*s+(gy*p+y)*s+gx*p:]
						copy(dst[(c*p+y)*p:(c*p+y+1)*p], src[:p])
					}
				}
				row++
			}
		}
	}
	if t.kept != nil {
		t.drawKept()
	}
	return nil
}
