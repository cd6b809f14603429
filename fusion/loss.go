package fusion

import (
	"fmt"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
)

// Loss is a training objective over the two towers' L2-normalised features: the seam where
// CLIP's symmetric InfoNCE, SigLIP's sigmoid loss or a margin loss plug into the model. A loss
// owns the parameters it needs (CLIP's logit_scale), created on the model's builder under
// their open_clip names, and in a data-parallel job it exchanges features through the group.
type Loss interface {
	// Build adds the loss of one step to the graph of b. Image and Text are this rank's
	// normalised features [b, E]; group is nil in one process.
	Build(b *nn.Builder, in LossInputs) (LossOutputs, error)
}

// LossInputs are what a Loss sees of a step.
type LossInputs struct {
	Image, Text *G.Node // [b, E] this rank's L2-normalised features
	Group       *Group  // the data-parallel collectives; nil in one process
	// ImageIDs [b] is the image identity of each of this rank's rows, read at each run: rows
	// of equal ids are captions of one image, positives of each other (multi-positive
	// InfoNCE; the rows of one image are always on one rank). nil: every row its own image.
	// Only CLIP's loss reads it.
	ImageIDs []int32
}

// global returns the features this rank's rows are scored against: its own in one process;
// data parallel, every rank's, all-gathered (with the gradient summed back), and the offset
// of this rank's rows among them.
func (in LossInputs) global() (img, txt *G.Node, offset int, err error) {
	if in.Group == nil {
		return in.Image, in.Text, 0, nil
	}
	rows, _, err := nn.Matrix("loss", in.Image)
	if err != nil {
		return nil, nil, 0, err
	}
	if img, err = allGather(in.Image, in.Group); err != nil {
		return nil, nil, 0, err
	}
	if txt, err = allGather(in.Text, in.Group); err != nil {
		return nil, nil, 0, err
	}
	return img, txt, in.Group.Rank() * rows, nil
}

// LossOutputs are the nodes a Loss adds. PerImage and PerText feed validation's in-batch
// retrieval and the parity outputs.
type LossOutputs struct {
	Loss *G.Node // the scalar to minimise (data parallel: this rank's share; its mean over ranks is the global loss)
	// PerImage [b, N] scores this rank's images against every text of the global batch of N;
	// PerText [b, N] its texts against every image, or nil in one process, where it is
	// PerImage's transpose.
	PerImage, PerText *G.Node
}

// CLIP is the symmetric cross-entropy over in-batch negatives with a learnable temperature
// (Radford et al. 2021): logit_scale starts at InitLogitScale (ln 1/0.07) and the trainer
// clamps it to [0, MaxLogitScale]. Data parallel it is open_clip's --gather-with-grad
// --local-loss: features are all-gathered and each rank takes the loss of its own rows.
type CLIP struct{}

// Build implements Loss.
func (CLIP) Build(b *nn.Builder, in LossInputs) (LossOutputs, error) {
	scale, err := b.Param(LogitScaleName, nil, nn.Constant(float32(InitLogitScale)))
	if err != nil {
		return LossOutputs{}, err
	}
	if in.Group == nil {
		logits, err := logitsOp(in.Image, in.Text, scale)
		if err != nil {
			return LossOutputs{}, err
		}
		loss, err := contrastiveLossOp(logits, in.ImageIDs)
		return LossOutputs{Loss: loss, PerImage: logits}, err
	}
	imgAll, txtAll, offset, err := in.global()
	if err != nil {
		return LossOutputs{}, err
	}
	perImage, err := logitsOp(in.Image, txtAll, scale)
	if err != nil {
		return LossOutputs{}, err
	}
	perText, err := logitsOp(in.Text, imgAll, scale)
	if err != nil {
		return LossOutputs{}, err
	}
	loss, err := localContrastiveLossOp(perImage, perText, offset, in.ImageIDs)
	if err != nil {
		return LossOutputs{}, fmt.Errorf("clip loss: %w", err)
	}
	return LossOutputs{Loss: loss, PerImage: perImage, PerText: perText}, nil
}
