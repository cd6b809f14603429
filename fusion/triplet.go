package fusion

import (
	"fmt"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TripletConfig sets the margin ranking loss. YAML keys are those of `model.triplet.*`.
type TripletConfig struct {
	Margin float64 `yaml:"margin,omitempty" json:"margin,omitempty"` // α: a negative must score α below the positive (VSE++: 0.2)
	// Hardest takes each anchor's hardest in-batch negative (VSE++'s max of violations, Faghri
	// et al. 2018) instead of the sum over every negative.
	Hardest bool `yaml:"hardest,omitempty" json:"hardest,omitempty"`
	// Weight adds the triplet loss, times Weight, to the CLIP loss when model.loss is clip; 0
	// leaves the CLIP loss alone. model.loss: triplet trains with the triplet loss only.
	Weight float64 `yaml:"weight,omitempty" json:"weight,omitempty"`
}

// Triplet is the margin ranking loss of Siamese/triplet training over in-batch negatives, as
// VSE++ computes it on cosine similarities s: for each positive pair (i, i), image i as anchor
// costs [α − s(i,i) + s(i,j)]₊ for every other caption j, and caption i as anchor
// [α − s(i,i) + s(j,i)]₊ for every other image j, summed over j or, Hardest, the largest. VSE++
// sums over the batch; here the result is divided by B (the mean over anchors), so that it
// adds to the CLIP loss with a weight that does not depend on the batch size, and so that, data
// parallel, the mean of the ranks' losses over the gathered batch is the one-process loss.
type Triplet struct{ TripletConfig }

// Build implements Loss. Alone it makes no parameter: it has no temperature.
func (l Triplet) Build(_ *nn.Builder, in LossInputs) (LossOutputs, error) {
	img, txt := in.Image, in.Text
	imgAll, txtAll, offset, err := in.global()
	if err != nil {
		return LossOutputs{}, err
	}
	perImage, err := nn.MatMul(img, txtAll, false, true) // [b, N] cosines, image anchors
	if err != nil {
		return LossOutputs{}, err
	}
	perText, err := nn.MatMul(txt, imgAll, false, true) // [b, N] cosines, caption anchors
	if err != nil {
		return LossOutputs{}, err
	}
	loss, err := tripletLossOp(perImage, perText, offset, l.Margin, l.Hardest)
	if err != nil {
		return LossOutputs{}, err
	}
	out := LossOutputs{Loss: loss, PerImage: perImage}
	if in.Group != nil {
		out.PerText = perText
	}
	return out, nil
}

// withTriplet is the CLIP loss plus Weight times the triplet loss on the same features.
type withTriplet struct{ Triplet }

// Build implements Loss.
func (l withTriplet) Build(b *nn.Builder, in LossInputs) (LossOutputs, error) {
	clip, err := CLIP{}.Build(b, in)
	if err != nil {
		return LossOutputs{}, err
	}
	trip, err := l.Triplet.Build(b, in)
	if err != nil {
		return LossOutputs{}, err
	}
	sum, err := weightedSumOp(clip.Loss, trip.Loss, l.Weight)
	clip.Loss = sum
	return clip, err
}

// tripletLossOp is the mean over this rank's b anchors of the triplet costs: perImage [b, N]
// scores its images against every caption, perText [b, N] its captions against every image,
// and the positive of row i is column offset+i. A scalar.
func tripletLossOp(perImage, perText *G.Node, offset int, margin float64, hardest bool) (*G.Node, error) {
	if nn.IsFloat64(perImage) {
		return tripletLoss[float64](perImage, perText, offset, margin, hardest)
	}
	return tripletLoss[float32](perImage, perText, offset, margin, hardest)
}

// tripletCosts adds to d (when not nil, scaled by g) the gradient of row i's cost with
// respect to the row's scores, and returns the cost: [α − sᵢ,ₚ + sᵢ,ⱼ]₊ over j ≠ p, summed or
// the largest (the first of equal largest, as torch's max).
func tripletCosts[T nn.Float](row []T, p int, margin float64, hardest bool, d []T, g float64) float64 {
	pos := float64(row[p])
	var cost float64
	worst, worstJ := 0.0, -1
	for j, s := range row {
		c := margin - pos + float64(s)
		if j == p || c <= 0 {
			continue
		}
		if !hardest {
			cost += c
			if d != nil {
				d[j] += T(g)
				d[p] -= T(g)
			}
		} else if c > worst {
			worst, worstJ = c, j
		}
	}
	if hardest && worstJ >= 0 {
		cost = worst
		if d != nil {
			d[worstJ] += T(g)
			d[p] -= T(g)
		}
	}
	return cost
}

func tripletLoss[T nn.Float](perImage, perText *G.Node, offset int, margin float64, hardest bool) (*G.Node, error) {
	b, n, err := nn.Matrix("triplet_loss", perImage)
	if err != nil {
		return nil, err
	}
	if !perText.Shape().Eq(perImage.Shape()) || offset < 0 || offset+b > n {
		return nil, fmt.Errorf("triplet_loss: scores %v and %v with positives from column %d do not fit",
			perImage.Shape(), perText.Shape(), offset)
	}
	return nn.Apply("triplet_loss", nil, G.Nodes{perImage, perText}, func(y []T, in [][]T) {
		var loss float64
		for _, s := range in {
			for i := range b {
				loss += tripletCosts(s[i*n:(i+1)*n], offset+i, margin, hardest, nil, 0)
			}
		}
		y[0] = T(loss / float64(b))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		grads := make(G.Nodes, 2)
		for k := range grads {
			d, err := nn.Apply("triplet_loss_grad", tensor.Shape{b, n}, G.Nodes{in[k], g}, func(d []T, v [][]T) {
				clear(d)
				scale := float64(v[1][0]) / float64(b)
				for i := range b {
					tripletCosts(v[0][i*n:(i+1)*n], offset+i, margin, hardest, d[i*n:(i+1)*n], scale)
				}
			}, nil)
			if err != nil {
				return nil, err
			}
			grads[k] = d
		}
		return grads, nil
	})
}

// weightedSumOp is a + w·b for scalars a and b.
func weightedSumOp(a, b *G.Node, w float64) (*G.Node, error) {
	if nn.IsFloat64(a) {
		return weightedSum[float64](a, b, w)
	}
	return weightedSum[float32](a, b, w)
}

func weightedSum[T nn.Float](a, b *G.Node, w float64) (*G.Node, error) {
	if a.Shape().TotalSize() > 1 || b.Shape().TotalSize() > 1 {
		return nil, fmt.Errorf("weighted_sum: %v and %v are not scalars", a.Shape(), b.Shape())
	}
	return nn.Apply("weighted_sum", nil, G.Nodes{a, b}, func(y []T, in [][]T) {
		y[0] = in[0][0] + T(w)*in[1][0]
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		db, err := nn.Apply("weighted_sum_grad", nil, G.Nodes{g}, func(d []T, in [][]T) { d[0] = T(w) * in[0][0] }, nil)
		return G.Nodes{g, db}, err
	})
}
