package fusion

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds the ops of CLIP's contrastive objective: the scaled logits between
// normalised features and the symmetric cross-entropy over in-batch negatives, whole-batch and
// per rank. Each is checked against finite differences in loss_test.go.

// logitsOp returns exp(scale)·img·txtᵀ, [M, N], for img [M, E] and txt [N, E] (normalised
// features) and the learnable log-scale scale (one element). M = N = B in one process; in a
// data-parallel step, M is this rank's rows and N the gathered global batch.
func logitsOp(img, txt, scale *G.Node) (*G.Node, error) {
	if nn.IsFloat64(img) {
		return logits[float64](img, txt, scale)
	}
	return logits[float32](img, txt, scale)
}

func logits[T nn.Float](img, txt, scale *G.Node) (*G.Node, error) {
	m, e, err := nn.Matrix("logits", img)
	if err != nil {
		return nil, err
	}
	n, e2, err := nn.Matrix("logits", txt)
	if err != nil {
		return nil, err
	}
	if e2 != e || scale.Shape().TotalSize() != 1 {
		return nil, fmt.Errorf("logits: image %v, text %v and scale %v do not fit", img.Shape(), txt.Shape(), scale.Shape())
	}
	exp := func(s []T) T { return T(math.Exp(float64(s[0]))) }
	sshape := scale.Shape().Clone()
	return nn.Apply("logits", tensor.Shape{m, n}, G.Nodes{img, txt, scale}, func(y []T, in [][]T) {
		nn.Gemm(false, true, m, n, e, exp(in[2]), in[0], e, in[1], e, 0, y, n)
	}, func(in G.Nodes, out, g *G.Node) (G.Nodes, error) {
		// d img [M,E] = s·g[M,N]·txt[N,E]; d txt [N,E] = s·gᵀ[N,M]·img[M,E]; d scale = Σ y∘g.
		di, err := nn.Apply("logits_grad_img", tensor.Shape{m, e}, G.Nodes{in[1], in[2], g}, func(d []T, v [][]T) {
			nn.Gemm(false, false, m, e, n, exp(v[1]), v[2], n, v[0], e, 0, d, e)
		}, nil)
		if err != nil {
			return nil, err
		}
		dt, err := nn.Apply("logits_grad_txt", tensor.Shape{n, e}, G.Nodes{in[0], in[2], g}, func(d []T, v [][]T) {
			nn.Gemm(true, false, n, e, m, exp(v[1]), v[2], n, v[0], e, 0, d, e)
		}, nil)
		if err != nil {
			return nil, err
		}
		ds, err := nn.Apply("logits_grad_scale", sshape, G.Nodes{out, g}, func(d []T, v [][]T) {
			var s float64
			for i, l := range v[0] {
				s += float64(l) * float64(v[1][i])
			}
			d[0] = T(s)
		}, nil)
		return G.Nodes{di, dt, ds}, err
	})
}

// contrastiveLossOp is CLIP's symmetric cross-entropy over in-batch negatives for logits [B, B]
// (row i: image i against every text): the mean of the image→text and text→image
// cross-entropies with the diagonal as targets, from max-subtracted log-softmaxes. A scalar.
func contrastiveLossOp(logits *G.Node) (*G.Node, error) {
	if nn.IsFloat64(logits) {
		return contrastiveLoss[float64](logits)
	}
	return contrastiveLoss[float32](logits)
}

// softmaxCE returns −log softmax(row)[target] and writes softmax(row) into p, reading row
// elements at stride apart.
func softmaxCE[T nn.Float](l []T, n, stride, target int, p []float64) float64 {
	m := math.Inf(-1)
	for j := range n {
		m = max(m, float64(l[j*stride]))
	}
	var z float64
	for j := range n {
		p[j] = math.Exp(float64(l[j*stride]) - m)
		z += p[j]
	}
	for j := range n {
		p[j] /= z
	}
	return -(float64(l[target*stride]) - m - math.Log(z))
}

func contrastiveLoss[T nn.Float](logits *G.Node) (*G.Node, error) {
	b, b2, err := nn.Matrix("contrastive_loss", logits)
	if err != nil {
		return nil, err
	}
	if b != b2 {
		return nil, fmt.Errorf("contrastive_loss: logits %v are not square", logits.Shape())
	}
	return nn.Apply("contrastive_loss", nil, G.Nodes{logits}, func(y []T, in [][]T) {
		p := make([]float64, b)
		var loss float64
		for i := range b {
			loss += softmaxCE(in[0][i*b:], b, 1, i, p) // image i → texts
			loss += softmaxCE(in[0][i:], b, b, i, p)   // text i → images
		}
		y[0] = T(loss / float64(2*b))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// d/dl[i][j] = (softmax_row_i[j] − δij + softmax_col_j[i] − δij) / 2B
		dl, err := nn.Apply("contrastive_loss_grad", tensor.Shape{b, b}, G.Nodes{in[0], g}, func(d []T, v [][]T) {
			l, scale := v[0], float64(v[1][0])/float64(2*b)
			p := make([]float64, b)
			for i := range b {
				softmaxCE(l[i*b:], b, 1, i, p)
				for j := range b {
					d[i*b+j] = T(p[j] * scale)
				}
			}
			for j := range b {
				softmaxCE(l[j:], b, b, j, p)
				for i := range b {
					d[i*b+j] += T(p[i] * scale)
				}
				d[j*b+j] -= T(2 * scale)
			}
		}, nil)
		return G.Nodes{dl}, err
	})
}

// localContrastiveLossOp is CLIP's symmetric cross-entropy for this rank's rows of a global
// batch (open_clip's --local-loss): perImage [b, N] are its images against every text,
// perText [b, N] its texts against every image, and the target of row i is column offset+i.
// The result is the mean over the 2b rows; the mean of it over ranks is the whole batch's
// contrastiveLossOp. A scalar.
func localContrastiveLossOp(perImage, perText *G.Node, offset int) (*G.Node, error) {
	if nn.IsFloat64(perImage) {
		return localContrastiveLoss[float64](perImage, perText, offset)
	}
	return localContrastiveLoss[float32](perImage, perText, offset)
}

func localContrastiveLoss[T nn.Float](perImage, perText *G.Node, offset int) (*G.Node, error) {
	b, n, err := nn.Matrix("local_contrastive_loss", perImage)
	if err != nil {
		return nil, err
	}
	if !perText.Shape().Eq(perImage.Shape()) || offset < 0 || offset+b > n {
		return nil, fmt.Errorf("local_contrastive_loss: logits %v and %v with targets from column %d do not fit",
			perImage.Shape(), perText.Shape(), offset)
	}
	return nn.Apply("local_contrastive_loss", nil, G.Nodes{perImage, perText}, func(y []T, in [][]T) {
		p := make([]float64, n)
		var loss float64
		for i := range b {
			loss += softmaxCE(in[0][i*n:], n, 1, offset+i, p)
			loss += softmaxCE(in[1][i*n:], n, 1, offset+i, p)
		}
		y[0] = T(loss / float64(2*b))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// d/dl[i][j] = (softmax_row_i[j] − δ(j, offset+i)) / 2b for each of the two.
		grads := make(G.Nodes, 2)
		for k := range grads {
			d, err := nn.Apply("local_contrastive_loss_grad", tensor.Shape{b, n}, G.Nodes{in[k], g}, func(d []T, v [][]T) {
				scale := float64(v[1][0]) / float64(2*b)
				p := make([]float64, n)
				for i := range b {
					softmaxCE(v[0][i*n:], n, 1, offset+i, p)
					for j := range n {
						d[i*n+j] = T(p[j] * scale)
					}
					d[i*n+offset+i] -= T(scale)
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
