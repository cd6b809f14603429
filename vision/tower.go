package vision

import (
	"fmt"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
)

// Tower is an image encoder on a graph built for a fixed batch: the seam through which fusion
// composes any image tower (ViT, ModifiedResNet) without knowing its insides. Its parameters
// carry open_clip's state_dict names under "visual.".
type Tower interface {
	// SetImages loads a batch of CLIP-normalised images [batch, 3, S, S] (CHW) into the
	// tower's input; the graph reads them at its next run.
	SetImages(images []float32) error
	// Output is the node of the projected image features [batch, embed], before normalisation.
	Output() *G.Node
}

// PatchDropper is a tower that drops patch tokens at random in training (a ViT with
// model.vision.patch_dropout): a trainer seeds each step's draw so that it is reproducible.
type PatchDropper interface {
	// SetPatchSeed seeds the draw of the next SetImages; firstRow is the batch's first row in
	// the global batch of a data-parallel step (0 in one process).
	SetPatchSeed(seed uint64, firstRow int)
}

// New adds the image tower cfg describes to b, for batch images projected to embed
// dimensions: a ViT (quickGELU picks its activation) or a ModifiedResNet (ReLU throughout).
// b must be a float32 builder.
func New(b *nn.Builder, cfg Config, batch, embed int, quickGELU bool) (Tower, error) {
	switch cfg.Type {
	case "", TypeViT:
		return NewViT(b, cfg, batch, embed, quickGELU)
	case TypeResNet:
		return NewModifiedResNet(b, cfg, batch, embed)
	}
	return nil, fmt.Errorf("model.vision.type %q is not a known image tower (want %q or %q)", cfg.Type, TypeViT, TypeResNet)
}
