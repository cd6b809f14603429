package text

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Transformer is the text tower built once for a fixed batch, as open_clip builds it: token and
// positional embeddings, causal pre-LN blocks, ln_final, pooling at each caption's EOT
// position (the argmax of its ids; the first on ties, as torch) and text_projection.
type Transformer struct {
	cfg    Config
	batch  int
	ids    []int32 // [batch·L], refilled by SetTokens
	eot    []int   // row of each caption's EOT token in the [batch·L, W] activations
	output *G.Node // the projected text features [batch, embed]
}

// MLPWidth is the blocks' hidden width.
func (c Config) MLPWidth() int { return int(float64(c.Width) * c.MLPRatio) }

// NewTransformer adds the text tower's parameters (token_embedding.weight, positional_embedding,
// transformer.*, ln_final.*, text_projection) and graph to b for batch captions, projecting
// to embed dimensions, initialised as open_clip's TextTransformer.init_parameters. b must be
// a float32 builder.
func NewTransformer(b *nn.Builder, cfg Config, batch, embed int, quickGELU bool) (*Transformer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if batch <= 0 || embed <= 0 {
		return nil, fmt.Errorf("text: batch %d and embed %d must be positive", batch, embed)
	}
	if b.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("text: the tower is built on float32 graphs, not %v", b.Dtype())
	}
	w, l := cfg.Width, cfg.ContextLength
	t := &Transformer{cfg: cfg, batch: batch, ids: make([]int32, batch*l), eot: make([]int, batch)}
	for i := range t.eot {
		t.eot[i] = i * l
	}
	tok, err := b.Param("token_embedding.weight", []int{cfg.VocabSize, w}, nn.Normal(0.02))
	if err != nil {
		return nil, err
	}
	pos, err := b.Param("positional_embedding", []int{l, w}, nn.Normal(0.01))
	if err != nil {
		return nil, err
	}
	blocks := nn.BlockConfig{Width: w, Heads: cfg.Heads, MLPWidth: cfg.MLPWidth(), Batch: batch, Seq: l, Causal: true, QuickGELU: quickGELU}
	tr, err := b.NewTransformer("transformer", cfg.Layers, blocks, nn.TextInit(w, cfg.Layers))
	if err != nil {
		return nil, err
	}
	lnFinal, err := b.NewNorm("ln_final", w)
	if err != nil {
		return nil, err
	}
	proj, err := b.Param("text_projection", []int{w, embed}, nn.Normal(math.Pow(float64(w), -0.5)))
	if err != nil {
		return nil, err
	}
	x, err := nn.Embedding(tok, pos, t.ids)
	if err != nil {
		return nil, err
	}
	steps := []func(*G.Node) (*G.Node, error){
		tr.Forward, lnFinal.Forward,
		func(x *G.Node) (*G.Node, error) { return nn.GatherRows(x, t.eot) },
		func(x *G.Node) (*G.Node, error) { return nn.MatMul(x, proj, false, false) },
	}
	for _, f := range steps {
		if x, err = f(x); err != nil {
			return nil, fmt.Errorf("text: %w", err)
		}
	}
	t.output = x
	return t, nil
}

// Output implements Tower.
func (t *Transformer) Output() *G.Node { return t.output }

// SetTokens loads a batch of token ids [batch, L] (zero padded, EOT the largest id of each
// row) into the tower's input. Every id must be in [0, VocabSize).
func (t *Transformer) SetTokens(tokens []int32) error {
	l := t.cfg.ContextLength
	if len(tokens) != t.batch*l {
		return fmt.Errorf("text: %d token ids, want %d (batch %d × context %d)", len(tokens), t.batch*l, t.batch, l)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= t.cfg.VocabSize {
			return fmt.Errorf("text: caption %d position %d: token id %d outside [0, %d)", i/l, i%l, id, t.cfg.VocabSize)
		}
	}
	copy(t.ids, tokens)
	for b := range t.batch {
		t.eot[b] = b*l + EOTPosition(tokens[b*l:(b+1)*l])
	}
	return nil
}

// EOTPosition is the position the text features are pooled at: the first position of the
// row's largest id (torch's argmax; the EOT token has the largest id of the vocabulary).
func EOTPosition(row []int32) int {
	best := 0
	for i, id := range row {
		if id > row[best] {
			best = i
		}
	}
	return best
}
