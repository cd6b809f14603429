package text

import (
	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
)

// Tower is a text encoder on a graph built for a fixed batch: the seam through which fusion
// composes a text tower without knowing its insides.
type Tower interface {
	// SetTokens loads a batch of token ids [batch, L] (zero padded, EOT the largest id of each
	// row) into the tower's input; the graph reads them at its next run.
	SetTokens(tokens []int32) error
	// Output is the node of the projected text features [batch, embed], before normalisation.
	Output() *G.Node
}

// New adds the text tower cfg describes to b, for batch captions projected to embed
// dimensions. b must be a float32 builder.
func New(b *nn.Builder, cfg Config, batch, embed int, quickGELU bool) (Tower, error) {
	return NewTransformer(b, cfg, batch, embed, quickGELU)
}
