package fusion

import (
	"fmt"
	"maps"
	"math"
	"runtime"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/text/tokenizer"
	"github.com/clipgo/clipgo/vision"
	G "gorgonia.org/gorgonia"
)

// Encoder is the inference path: it turns images and texts into L2-normalised embeddings for
// zero-shot classification, retrieval, embedding and search. Each tower runs alone as a
// forward-only graph (no backward pass, no gradient buffers, activations sharing memory by
// lifetime) over weights shared with the model or loaded from a checkpoint. Graphs are built
// on first use for the batch sizes met: full batches of up to MaxBatch rows, and a last
// partial batch at its own size, so no padding is computed. An Encoder is not safe for
// concurrent use.
type Encoder struct {
	cfg      Config
	maxBatch int
	weights  map[string]*nn.Param
	tok      *tokenizer.Tokenizer
	images   graphCache[float32]
	texts    graphCache[int32]
	dense    graphCache[float32] // PatchEmbeddings' graphs, built on first use
}

// towerGraph is one tower's forward graph for batch rows of input.
type towerGraph[T any] struct {
	batch int
	load  func([]T) error // fills the tower's input from batch rows
	out   []float32       // [batch, E] features, copied out at each run
	vm    G.VM
}

// graphCache keeps the graph of the full batch and the latest smaller one.
type graphCache[T any] struct {
	full, tail *towerGraph[T]
	build      func(batch int) (*towerGraph[T], error)
}

// get returns the graph for batch rows, building it (and dropping an older tail) if needed.
func (c *graphCache[T]) get(batch int, full bool) (*towerGraph[T], error) {
	slot := &c.tail
	if full {
		slot = &c.full
	}
	if *slot != nil && (*slot).batch == batch {
		return *slot, nil
	}
	if *slot != nil {
		(*slot).close()
		*slot = nil
	}
	g, err := c.build(batch)
	if err != nil {
		return nil, err
	}
	*slot = g
	return g, nil
}

func (c *graphCache[T]) close() {
	for _, g := range []*towerGraph[T]{c.full, c.tail} {
		if g != nil {
			g.close()
		}
	}
	c.full, c.tail = nil, nil
}

func (g *towerGraph[T]) close() {
	g.vm.Close()
	runtime.SetFinalizer(g.vm, nil) // see Model.Close
}

// NewEncoder returns the inference path over m's weights, read in place (a trainer's
// validation sees each step's weights), for batches of up to m.Batch() rows.
func NewEncoder(m *Model) (*Encoder, error) {
	return NewEncoderFrom(m.cfg, m.Params(), m.batch)
}

// LoadEncoder returns the inference path for the model in a weights file, for batches of up
// to maxBatch rows: anything ReadWeights reads (a clipgo checkpoint, whose optimiser file is
// not read; an open_clip, OpenAI or Hugging Face file; quickGELU for a bare state dict, which
// does not record its activation). No training graph is built.
func LoadEncoder(path string, maxBatch int, quickGELU bool) (*Encoder, error) {
	cfg, params, err := ReadWeights(path, quickGELU)
	if err != nil {
		return nil, err
	}
	enc, err := NewEncoderFrom(cfg, params, maxBatch)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return enc, nil
}

// NewEncoderFrom returns the inference path for a model of cfg with the given weights (every
// tensor of WeightsOf(cfg), read in place), for batches of up to maxBatch rows.
func NewEncoderFrom(cfg Config, params []*nn.Param, maxBatch int) (*Encoder, error) {
	weights := make(map[string]*nn.Param, len(params))
	for _, p := range params {
		weights[p.Name] = p
	}
	// The model's tensors named over a copy of weights, so that only a missing one is
	// allocated (WeightsOf would allocate the whole model again).
	want, err := weightsIn(cfg, maps.Clone(weights))
	if err != nil {
		return nil, fmt.Errorf("encoder: %w", err)
	}
	for _, w := range want {
		if p, ok := weights[w.Name]; !ok || p != w || len(p.Value) != w.Size() {
			return nil, fmt.Errorf("encoder: no weights %s %v for this model", w.Name, w.Shape)
		}
	}
	return newEncoder(cfg, maxBatch, weights)
}

// WeightsOf returns zero-filled parameters (values only, no gradients) of every tensor a
// model of cfg holds, in the model's order, ready to be loaded from a checkpoint.
func WeightsOf(cfg Config) ([]*nn.Param, error) {
	return weightsIn(cfg, map[string]*nn.Param{})
}

// weightsIn returns every tensor a model of cfg holds, in the model's order: those of weights
// as they are (their shapes checked), the others added to it zero-filled.
func weightsIn(cfg Config, weights map[string]*nn.Param) ([]*nn.Param, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A batch-1 graph of the whole model names them; it never runs.
	b := nn.NewFrozenBuilder(weights)
	img, err := vision.New(b, cfg.Vision, 1, cfg.EmbedDim, cfg.QuickGELU)
	if err != nil {
		return nil, err
	}
	txt, err := text.New(b, cfg.Text, 1, cfg.EmbedDim, cfg.QuickGELU)
	if err != nil {
		return nil, err
	}
	in := LossInputs{}
	if in.Image, err = nn.L2Normalize(img.Output()); err != nil {
		return nil, err
	}
	if in.Text, err = nn.L2Normalize(txt.Output()); err != nil {
		return nil, err
	}
	objective, err := cfg.Objective()
	if err != nil {
		return nil, err
	}
	out, err := objective.Build(b, in)
	if err != nil {
		return nil, err
	}
	if _, err := withSSL(b, cfg, img, out.Loss, identityIDs(1)); err != nil {
		return nil, err
	}
	return b.Params(), nil
}

func newEncoder(cfg Config, maxBatch int, weights map[string]*nn.Param) (*Encoder, error) {
	if maxBatch < 1 {
		return nil, fmt.Errorf("encoder: batch %d must be positive", maxBatch)
	}
	tok, err := tokenizer.New()
	if err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, maxBatch: maxBatch, weights: weights, tok: tok}
	e.images.build = func(batch int) (*towerGraph[float32], error) {
		return buildTower(e, batch, func(b *nn.Builder) (func([]float32) error, *G.Node, error) {
			t, err := vision.New(b, cfg.Vision, batch, cfg.EmbedDim, cfg.QuickGELU)
			if err != nil {
				return nil, nil, err
			}
			return t.SetImages, t.Output(), nil
		})
	}
	e.dense.build = func(batch int) (*towerGraph[float32], error) {
		return buildTower(e, batch, func(b *nn.Builder) (func([]float32) error, *G.Node, error) {
			t, err := vision.NewViT(b, cfg.Vision, batch, cfg.EmbedDim, cfg.QuickGELU)
			if err != nil {
				return nil, nil, err
			}
			d, err := t.Dense()
			return t.SetImages, d, err
		})
	}
	e.texts.build = func(batch int) (*towerGraph[int32], error) {
		return buildTower(e, batch, func(b *nn.Builder) (func([]int32) error, *G.Node, error) {
			t, err := text.New(b, cfg.Text, batch, cfg.EmbedDim, cfg.QuickGELU)
			if err != nil {
				return nil, nil, err
			}
			return t.SetTokens, t.Output(), nil
		})
	}
	return e, nil
}

// buildTower makes one tower's forward graph for batch rows on a frozen builder over e's
// weights; activations share buffers by lifetime, as a framework frees them under no_grad.
func buildTower[T any](e *Encoder, batch int, tower func(*nn.Builder) (func([]T) error, *G.Node, error)) (*towerGraph[T], error) {
	b := nn.NewFrozenBuilder(e.weights)
	load, out, err := tower(b)
	if err != nil {
		return nil, err
	}
	g := &towerGraph[T]{batch: batch, load: load, out: make([]float32, out.Shape().TotalSize())}
	if _, err := nn.Tap(out, g.out); err != nil {
		return nil, err
	}
	if _, _, err := nn.ShareBuffers(b.G, nil); err != nil {
		return nil, err
	}
	g.vm = G.NewTapeMachine(b.G)
	return g, nil
}

// Close releases the graphs.
func (e *Encoder) Close() error {
	e.images.close()
	e.texts.close()
	e.dense.close()
	return nil
}

// Config returns the model's configuration.
func (e *Encoder) Config() Config { return e.cfg }

// MaxBatch is the most rows one run of a tower takes.
func (e *Encoder) MaxBatch() int { return e.maxBatch }

// Dim returns the embedding width E.
func (e *Encoder) Dim() int { return e.cfg.EmbedDim }

// ImageLen returns the values of one CLIP-normalised image, 3·S·S.
func (e *Encoder) ImageLen() int { s := e.cfg.Vision.ImageSize; return 3 * s * s }

// Images embeds n images given as [n,3,S,S] CLIP-normalised values; the result is [n,E].
func (e *Encoder) Images(images []float32) ([]float32, error) {
	per := e.ImageLen()
	if len(images)%per != 0 {
		return nil, fmt.Errorf("encoder: %d image values are not a whole number of %d-value images", len(images), per)
	}
	return run(e, &e.images, images, per)
}

// PatchEmbeddings returns, for n images given as Images takes them, every patch token after
// ln_post projected by visual.proj and L2-normalised, as open_clip's dense features: [n,G²,E]
// with patches row by row over the G×G grid (G is returned). A text embedding's dot product
// with them maps where in the image the text matches. Only a ViT has patch tokens; a
// ModifiedResNet is refused.
func (e *Encoder) PatchEmbeddings(images []float32) ([]float32, int, error) {
	vc := e.cfg.Vision
	if vc.Type != "" && vc.Type != vision.TypeViT {
		return nil, 0, fmt.Errorf("encoder: patch embeddings need a ViT image tower, not model.vision.type %q", vc.Type)
	}
	per, grid, E := e.ImageLen(), vc.Grid(), e.cfg.EmbedDim
	if len(images)%per != 0 {
		return nil, 0, fmt.Errorf("encoder: %d image values are not a whole number of %d-value images", len(images), per)
	}
	n, tokens := len(images)/per, vc.Tokens()
	out := make([]float32, 0, n*grid*grid*E)
	for start := 0; start < n; start += e.maxBatch {
		k := min(e.maxBatch, n-start)
		g, err := e.dense.get(k, k == e.maxBatch)
		if err != nil {
			return nil, 0, err
		}
		if err := g.load(images[start*per : (start+k)*per]); err != nil {
			return nil, 0, fmt.Errorf("encoder: %w", err)
		}
		g.vm.Reset()
		if err := g.vm.RunAll(); err != nil {
			return nil, 0, fmt.Errorf("encoder: run: %w", err)
		}
		for r := range k * tokens {
			if r%tokens != 0 { // the class token is Images' output
				out = appendNormalized(out, g.out[r*E:(r+1)*E])
			}
		}
	}
	return out, grid, nil
}

// Texts embeds texts, tokenized with the CLIP tokenizer at the model's context length (longer
// texts are truncated, EOT kept last, as OpenAI's tokenizer does with truncate=True); the
// result is [len(texts),E].
func (e *Encoder) Texts(texts []string) ([]float32, error) {
	L := e.cfg.Text.ContextLength
	ids := make([]int32, len(texts)*L)
	for i, s := range texts {
		if err := e.tok.TokenizeInto(ids[i*L:(i+1)*L], s); err != nil {
			return nil, fmt.Errorf("encoder: text %d: %w", i, err)
		}
	}
	return e.Tokens(ids)
}

// Tokens embeds token rows [n,L]; the result is [n,E].
func (e *Encoder) Tokens(ids []int32) ([]float32, error) {
	L := e.cfg.Text.ContextLength
	if len(ids)%L != 0 {
		return nil, fmt.Errorf("encoder: %d token ids are not a whole number of %d-token rows", len(ids), L)
	}
	return run(e, &e.texts, ids, L)
}

// run embeds the rows of in (per values each) in batches of up to MaxBatch, the last one at
// its own size, and L2-normalises every output row.
func run[T any](e *Encoder, graphs *graphCache[T], in []T, per int) ([]float32, error) {
	E := e.cfg.EmbedDim
	n := len(in) / per
	out := make([]float32, 0, n*E)
	for start := 0; start < n; start += e.maxBatch {
		k := min(e.maxBatch, n-start)
		g, err := graphs.get(k, k == e.maxBatch)
		if err != nil {
			return nil, err
		}
		if err := g.load(in[start*per : (start+k)*per]); err != nil {
			return nil, fmt.Errorf("encoder: %w", err)
		}
		g.vm.Reset()
		if err := g.vm.RunAll(); err != nil {
			return nil, fmt.Errorf("encoder: run: %w", err)
		}
		for r := range k {
			out = appendNormalized(out, g.out[r*E:(r+1)*E])
		}
	}
	return out, nil
}

// appendNormalized appends v / max(‖v‖, 1e-12) to out, as F.normalize does.
func appendNormalized(out, v []float32) []float32 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	inv := 1 / math.Max(math.Sqrt(ss), nn.NormEps)
	for _, x := range v {
		out = append(out, float32(float64(x)*inv))
	}
	return out
}
