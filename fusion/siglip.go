package fusion

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SigLIP's initial log temperature (ln 10) and bias (Zhai et al. 2023, open_clip's
// init_logit_scale and init_logit_bias for SigLIP models).
var (
	SigLIPInitLogitScale = math.Log(10)
	SigLIPInitLogitBias  = -10.0
)

// LogitBiasName is SigLIP's learnable bias, as open_clip names it.
const LogitBiasName = "logit_bias"

// SigLIP is the pairwise sigmoid loss (Zhai et al. 2023): every image–text pair of the batch is
// a binary decision, positive on the diagonal, with logits exp(t)·cos + b, t and b learnable;
// the loss is −Σ log σ(±logit) over the B×B pairs divided by B, as open_clip's SigLipLoss.
// With no softmax over the batch it needs no global normaliser: data parallel, each rank
// scores its own images against the all-gathered texts (positives at its offset), and the mean
// over ranks of these losses is the one-process loss of the whole batch. (open_clip passes
// text chunks from rank to rank instead of gathering them; the loss and gradients are the
// same, and the gather reuses the CLIP loss's collective.)
type SigLIP struct{}

// Build implements Loss.
func (SigLIP) Build(b *nn.Builder, in LossInputs) (LossOutputs, error) {
	scale, err := b.Param(LogitScaleName, nil, nn.Constant(float32(SigLIPInitLogitScale)))
	if err != nil {
		return LossOutputs{}, err
	}
	bias, err := b.Param(LogitBiasName, nil, nn.Constant(float32(SigLIPInitLogitBias)))
	if err != nil {
		return LossOutputs{}, err
	}
	if in.Group == nil {
		logits, err := logitsOp(in.Image, in.Text, scale)
		if err != nil {
			return LossOutputs{}, err
		}
		loss, err := sigmoidLossOp(logits, bias, 0)
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
	loss, err := sigmoidLossOp(perImage, bias, offset)
	if err != nil {
		return LossOutputs{}, fmt.Errorf("siglip loss: %w", err)
	}
	// This rank's texts against every image, for validation's in-batch retrieval only: no
	// gradient flows through it.
	perText, err := logitsOp(in.Text, imgAll, scale)
	if err != nil {
		return LossOutputs{}, err
	}
	return LossOutputs{Loss: loss, PerImage: perImage, PerText: perText}, nil
}

// sigmoidLossOp is SigLIP's loss over scaled cosines logits [b, N] (this rank's images against
// N texts) and the bias [1]: −Σᵢⱼ log σ(yᵢⱼ·(logitsᵢⱼ + bias)) / b with yᵢⱼ = +1 where
// j = offset+i, else −1. A scalar.
func sigmoidLossOp(logits, bias *G.Node, offset int) (*G.Node, error) {
	if nn.IsFloat64(logits) {
		return sigmoidLoss[float64](logits, bias, offset)
	}
	return sigmoidLoss[float32](logits, bias, offset)
}

// logSigmoid is log σ(x) = −log(1 + e^−x), without overflow for large |x|.
func logSigmoid(x float64) float64 {
	if x >= 0 {
		return -math.Log1p(math.Exp(-x))
	}
	return x - math.Log1p(math.Exp(x))
}

func sigmoidLoss[T nn.Float](logits, bias *G.Node, offset int) (*G.Node, error) {
	b, n, err := nn.Matrix("sigmoid_loss", logits)
	if err != nil {
		return nil, err
	}
	if bias.Shape().TotalSize() != 1 || offset < 0 || offset+b > n {
		return nil, fmt.Errorf("sigmoid_loss: logits %v, bias %v and positives from column %d do not fit",
			logits.Shape(), bias.Shape(), offset)
	}
	sign := func(i, j int) float64 {
		if j == offset+i {
			return 1
		}
		return -1
	}
	bshape := bias.Shape().Clone()
	return nn.Apply("sigmoid_loss", nil, G.Nodes{logits, bias}, func(y []T, in [][]T) {
		l, c := in[0], float64(in[1][0])
		var loss float64
		for i := range b {
			for j := range n {
				loss -= logSigmoid(sign(i, j) * (float64(l[i*n+j]) + c))
			}
		}
		y[0] = T(loss / float64(b))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// d/dlᵢⱼ = −yᵢⱼ·σ(−yᵢⱼ·zᵢⱼ)/b, zᵢⱼ = lᵢⱼ + bias; d/dbias = Σᵢⱼ d/dlᵢⱼ.
		dl, err := nn.Apply("sigmoid_loss_grad", tensor.Shape{b, n}, G.Nodes{in[0], in[1], g}, func(d []T, v [][]T) {
			l, c, scale := v[0], float64(v[1][0]), float64(v[2][0])/float64(b)
			for i := range b {
				for j := range n {
					s := sign(i, j)
					d[i*n+j] = T(-s * math.Exp(logSigmoid(-s*(float64(l[i*n+j])+c))) * scale)
				}
			}
		}, nil)
		if err != nil {
			return nil, err
		}
		db, err := nn.Apply("sigmoid_loss_grad_bias", bshape, G.Nodes{dl}, func(d []T, v [][]T) {
			var s float64
			for _, x := range v[0] {
				s += float64(x)
			}
			d[0] = T(s)
		}, nil)
		return G.Nodes{dl, db}, err
	})
}
