package fusion

import (
	"fmt"
	"math"

	"github.com/clipgo/clipgo/nn"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ntXentLossOp is SimCLR's NT-Xent loss (Chen et al. 2020) over n L2-normalised views z
// [n, D] at temperature tau, generalised to any number of views per image as SupCon's L_out
// (Khosla et al. 2020, eq. 2): with sᵢⱼ = zᵢ·zⱼ/tau and P(i) the other rows of row i's image
// (ids[j] == ids[i], j ≠ i),
//
//	loss = mean over rows i with positives of −(1/|P(i)|) Σ_{p∈P(i)} log( e^{sᵢₚ} / Σ_{a≠i} e^{sᵢₐ} ).
//
// With two views of each image it is SimCLR's loss (and SLIP's SIMCLRLoss): each view's
// positive is its twin, the other 2N−2 views its negatives. ids [n] is read at each run (the
// trainer's image identities); a row alone with its id adds nothing. A scalar.
func ntXentLossOp(z *G.Node, ids []int32, tau float64) (*G.Node, error) {
	n, _, err := nn.Matrix("nt_xent", z)
	if err != nil {
		return nil, err
	}
	if len(ids) != n || !(tau > 0) {
		return nil, fmt.Errorf("nt_xent: %d image identities for %d views, temperature %g (want > 0)", len(ids), n, tau)
	}
	sim, err := nn.MatMul(z, z, false, true)
	if err != nil {
		return nil, err
	}
	if nn.IsFloat64(z) {
		return ntXent[float64](sim, ids, tau)
	}
	return ntXent[float32](sim, ids, tau)
}

// ntXent is the loss of the similarities sim [n, n] (before the temperature); see ntXentLossOp.
func ntXent[T nn.Float](sim *G.Node, ids []int32, tau float64) (*G.Node, error) {
	n := sim.Shape()[0]
	// forEach calls f(i, p, lse, positives) for every row i with positives, with p the softmax
	// of row i's scaled similarities over a ≠ i (p[i] = 0) and lse the log of its
	// normaliser, and returns the number of such rows.
	p := make([]float64, n)
	forEach := func(s []T, f func(i int, p []float64, lse float64, positives int)) int {
		rows := 0
		for i := range n {
			positives := 0
			for j := range n {
				if j != i && ids[j] == ids[i] {
					positives++
				}
			}
			if positives == 0 {
				continue
			}
			rows++
			m := math.Inf(-1)
			for a := range n {
				if a != i {
					m = max(m, float64(s[i*n+a])/tau)
				}
			}
			var z float64
			for a := range n {
				p[a] = 0
				if a != i {
					p[a] = math.Exp(float64(s[i*n+a])/tau - m)
					z += p[a]
				}
			}
			for a := range n {
				p[a] /= z
			}
			f(i, p, m+math.Log(z), positives)
		}
		return rows
	}
	return nn.Apply("nt_xent", nil, G.Nodes{sim}, func(y []T, in [][]T) {
		var loss float64
		s := in[0]
		rows := forEach(s, func(i int, _ []float64, lse float64, positives int) {
			var l float64
			for j := range n {
				if j != i && ids[j] == ids[i] {
					l -= float64(s[i*n+j])/tau - lse
				}
			}
			loss += l / float64(positives)
		})
		y[0] = T(loss / float64(max(rows, 1)))
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		// d/dsᵢⱼ = (pᵢⱼ − qᵢⱼ) / (tau · rows), qᵢⱼ = 1/|P(i)| for j ∈ P(i); 0 on the diagonal
		// and in rows without positives.
		d, err := nn.Apply("nt_xent_grad", tensor.Shape{n, n}, G.Nodes{in[0], g}, func(d []T, v [][]T) {
			grad := make([]float64, n*n)
			rows := forEach(v[0], func(i int, p []float64, _ float64, positives int) {
				for j := range n {
					q := 0.0
					if j != i && ids[j] == ids[i] {
						q = 1 / float64(positives)
					}
					grad[i*n+j] = p[j] - q
				}
			})
			scale := float64(v[1][0]) / (tau * float64(max(rows, 1)))
			for k, x := range grad {
				d[k] = T(x * scale)
			}
		}, nil)
		return G.Nodes{d}, err
	})
}
