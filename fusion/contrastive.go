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
// (row i: image i against every text), with several positives per row where a batch holds
// several captions of one image: ids [B] (read at each run; nil: all distinct) is the image
// identity of each row, and the pairs (i, j) with ids[i] = ids[j] are the positives. Each
// row's loss is the cross-entropy between its softmax and the uniform distribution over its
// positives P(i), −(1/|P(i)|)·Σ_{p∈P(i)} log softmax(row)[p]: SupCon's L_out (Khosla et al.
// 2020, eq. 2), which they found better than putting the sum inside the log. Image→text rows
// and text→image columns each give B such terms; the loss is their mean. With all ids
// distinct it is CLIP's loss (the diagonal as targets), computed in the same operations. A
// scalar.
func contrastiveLossOp(logits *G.Node, ids []int32) (*G.Node, error) {
	if nn.IsFloat64(logits) {
		return contrastiveLoss[float64](logits, ids)
	}
	return contrastiveLoss[float32](logits, ids)
}

// softmaxCE returns −log softmax(row)[target] and writes softmax(row) into p, reading row
// elements at stride apart.
func softmaxCE[T nn.Float](l []T, n, stride, target int, p []float64) float64 {
	m, logZ := softmax(l, n, stride, p)
	return -(float64(l[target*stride]) - m - logZ)
}

// softmax writes softmax(row) into p, reading row elements at stride apart, and returns the
// row's max and log Σ exp(x − max).
func softmax[T nn.Float](l []T, n, stride int, p []float64) (m, logZ float64) {
	m = math.Inf(-1)
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
	return m, math.Log(z)
}

// positives lists, for each of the b rows with image identities ids (nil: 0 … b−1), the rows
// of the same image (itself included), ascending.
func positives(ids []int32, b int) [][]int {
	pos := make([][]int, b)
	if ids == nil {
		for i := range pos {
			pos[i] = []int{i}
		}
		return pos
	}
	by := make(map[int32][]int, b)
	for i, id := range ids[:b] {
		by[id] = append(by[id], i)
	}
	for i, id := range ids[:b] {
		pos[i] = by[id]
	}
	return pos
}

// multiCE returns −(1/|P|)·Σ_{p∈P} log softmax(row)[offset+p] and writes softmax(row) into
// p: a row's cross-entropy against the uniform distribution over its positives P.
func multiCE[T nn.Float](l []T, n, stride, offset int, P []int, p []float64) float64 {
	m, logZ := softmax(l, n, stride, p)
	var loss float64
	for _, t := range P {
		loss += -(float64(l[(offset+t)*stride]) - m - logZ)
	}
	return loss / float64(len(P))
}

func checkIDs(what string, ids []int32, b int) error {
	if ids != nil && len(ids) != b {
		return fmt.Errorf("%s: %d image identities for %d rows", what, len(ids), b)
	}
	return nil
}

func contrastiveLoss[T nn.Float](logits *G.Node, ids []int32) (*G.Node, error) {
	b, b2, err := nn.Matrix("contrastive_loss", logits)
	if err != nil {
		return nil, err
	}
	if b != b2 {
		return nil, fmt.Errorf("contrastive_loss: logits %v are not square", logits.Shape())
	}
	if err := checkIDs("contrastive_loss", ids, b); err != nil {
		return nil, err
	}
	return nn.Apply("contrastive_loss", nil, G.Nodes{logits}, func(y []T, in [][]T) {
		pos := positives(ids, b)
		p := make([]float64, b)
		var loss float64
		for i := range b {
			loss += multiCE(in[0][i*b:], b, 1, 0, pos[i], p) // image i → texts
			loss += multiCE(in[0][i:], b, b, 0, pos[i], p)   // text i → images
		}
		y[0] = T(loss / float64(2*b))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// d/dl[i][j] = (softmax_row_i[j] + softmax_col_j[i] − 2·[j∈P(i)]/|P(i)|) / 2B (the
		// positive relation is symmetric and |P(i)| = |P(j)| for a positive pair).
		dl, err := nn.Apply("contrastive_loss_grad", tensor.Shape{b, b}, G.Nodes{in[0], g}, func(d []T, v [][]T) {
			pos := positives(ids, b)
			l, scale := v[0], float64(v[1][0])/float64(2*b)
			p := make([]float64, b)
			for i := range b {
				softmax(l[i*b:], b, 1, p)
				for j := range b {
					d[i*b+j] = T(p[j] * scale)
				}
			}
			for j := range b {
				softmax(l[j:], b, b, p)
				for i := range b {
					d[i*b+j] += T(p[i] * scale)
				}
				for _, i := range pos[j] {
					d[i*b+j] -= T(2 * scale / float64(len(pos[j])))
				}
			}
		}, nil)
		return G.Nodes{dl}, err
	})
}

// localContrastiveLossOp is contrastiveLossOp for this rank's rows of a global batch
// (open_clip's --local-loss): perImage [b, N] are its images against every text, perText
// [b, N] its texts against every image, and the positives of row i are the columns offset+j
// with ids[j] = ids[i] (ids [b], read at each run; nil: column offset+i alone). The captions
// of one image are on one rank, so no other rank's rows are positives. The result is the mean
// over the 2b rows; the mean of it over ranks is the whole batch's contrastiveLossOp. A scalar.
func localContrastiveLossOp(perImage, perText *G.Node, offset int, ids []int32) (*G.Node, error) {
	if nn.IsFloat64(perImage) {
		return localContrastiveLoss[float64](perImage, perText, offset, ids)
	}
	return localContrastiveLoss[float32](perImage, perText, offset, ids)
}

func localContrastiveLoss[T nn.Float](perImage, perText *G.Node, offset int, ids []int32) (*G.Node, error) {
	b, n, err := nn.Matrix("local_contrastive_loss", perImage)
	if err != nil {
		return nil, err
	}
	if !perText.Shape().Eq(perImage.Shape()) || offset < 0 || offset+b > n {
		return nil, fmt.Errorf("local_contrastive_loss: logits %v and %v with targets from column %d do not fit",
			perImage.Shape(), perText.Shape(), offset)
	}
	if err := checkIDs("local_contrastive_loss", ids, b); err != nil {
		return nil, err
	}
	return nn.Apply("local_contrastive_loss", nil, G.Nodes{perImage, perText}, func(y []T, in [][]T) {
		pos := positives(ids, b)
		p := make([]float64, n)
		var loss float64
		for i := range b {
			loss += multiCE(in[0][i*n:], n, 1, offset, pos[i], p)
			loss += multiCE(in[1][i*n:], n, 1, offset, pos[i], p)
		}
		y[0] = T(loss / float64(2*b))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// d/dl[i][j] = (softmax_row_i[j] − [j−offset ∈ P(i)]/|P(i)|) / 2b for each of the two.
		grads := make(G.Nodes, 2)
		for k := range grads {
			d, err := nn.Apply("local_contrastive_loss_grad", tensor.Shape{b, n}, G.Nodes{in[k], g}, func(d []T, v [][]T) {
				pos := positives(ids, b)
				scale := float64(v[1][0]) / float64(2*b)
				p := make([]float64, n)
				for i := range b {
					softmax(v[0][i*n:], n, 1, p)
					for j := range n {
						d[i*n+j] = T(p[j] * scale)
					}
					for _, j := range pos[i] {
						d[i*n+offset+j] -= T(scale / float64(len(pos[i])))
					}
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
