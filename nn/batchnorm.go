package nn

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BatchNormEps and BatchNormMomentum are torch.nn.BatchNorm2d's defaults.
const (
	BatchNormEps      = 1e-5
	BatchNormMomentum = 0.1
)

// BatchStats is the state of a batch norm that lives outside the graph: the running statistics
// that evaluation normalises with and training updates, and the switch between the two. The
// slices are read and written in place at every run (Builder.Buffer makes them, so that
// checkpoints carry them); they stay float32 on a float64 graph.
type BatchStats struct {
	Mean, Var []float32 // running mean and (unbiased) variance per channel: [C]
	// Count is num_batches_tracked, one value: the training forward passes so far. (torch
	// counts it in int64; it only matters there when momentum is None, a cumulative average.)
	Count    []float32
	Momentum float64 // weight of the new batch in the running statistics
	Eps      float64 // added to the variance under the square root
	// Training is read at each run: true normalises with the batch's statistics and folds
	// them into the running ones; false (or nil) normalises with the running statistics.
	Training *bool
	// Frozen keeps evaluation's behaviour in training too: the running statistics normalise
	// and are never updated (torchvision's FrozenBatchNorm2d, which open_clip's
	// freeze_bn_stats swaps in). Builder.Lock sets it when it locks the statistics.
	Frozen bool
}

// BatchNorm normalises each column (channel) of x [N, C] as torch's BatchNorm2d (or 1d) does
// over the rows (every pixel of every image of the batch), then scales by gamma [C] and shifts
// by beta [C]. In training the statistics are the batch's (biased variance), and the running
// statistics move towards them with momentum, the variance unbiased (N/(N−1)); in evaluation
// the running statistics are used as they stand. The gradient follows the mode of the forward
// pass it belongs to.
func BatchNorm(x, gamma, beta *G.Node, st *BatchStats) (*G.Node, error) {
	if IsFloat64(x) {
		return batchNorm[float64](x, gamma, beta, st)
	}
	return batchNorm[float32](x, gamma, beta, st)
}

func batchNorm[T Float](x, gamma, beta *G.Node, st *BatchStats) (*G.Node, error) {
	n, c, err := Matrix("batch_norm", x)
	if err != nil {
		return nil, err
	}
	if err := vecLen("batch_norm", gamma, c); err != nil {
		return nil, err
	}
	if err := vecLen("batch_norm", beta, c); err != nil {
		return nil, err
	}
	if st == nil || len(st.Mean) != c || len(st.Var) != c || len(st.Count) != 1 {
		return nil, fmt.Errorf("batch_norm: %s has %d channels; the running statistics do not match", x.Name(), c)
	}
	if !(st.Eps > 0) || !(st.Momentum >= 0 && st.Momentum <= 1) {
		return nil, fmt.Errorf("batch_norm: eps %g must be positive and momentum %g in [0, 1]", st.Eps, st.Momentum)
	}
	bn := &bnState[T]{n: n, c: c, st: st, mean: make([]float64, c), rstd: make([]float64, c), sums: make([]float64, 2*c)}
	return Apply("batch_norm", tensor.Shape{n, c}, G.Nodes{x, gamma, beta}, func(y []T, in [][]T) {
		bn.forward(y, in[0], in[1], in[2])
	}, func(in G.Nodes, _, g *G.Node) (G.Nodes, error) {
		dx, err := Apply("batch_norm_grad_x", tensor.Shape{n, c}, G.Nodes{in[0], in[1], g}, func(d []T, v [][]T) {
			bn.backward(d, v[0], v[1], v[2])
		}, nil)
		if err != nil {
			return nil, err
		}
		// The dx pass sums both; taking dx as input orders these copies after it.
		dg, err := Apply("batch_norm_grad_gamma", tensor.Shape{c}, G.Nodes{dx}, func(d []T, _ [][]T) {
			for j := range d {
				d[j] = T(bn.sums[c+j])
			}
		}, nil)
		if err != nil {
			return nil, err
		}
		db, err := Apply("batch_norm_grad_beta", tensor.Shape{c}, G.Nodes{dx}, func(d []T, _ [][]T) {
			for j := range d {
				d[j] = T(bn.sums[j])
			}
		}, nil)
		return G.Nodes{dx, dg, db}, err
	})
}

// bnState holds one batch norm's statistics from its forward pass, which the backward pass
// reuses, and the column sums of the output gradient that the backward pass computes.
type bnState[T Float] struct {
	n, c       int
	st         *BatchStats
	training   bool        // the mode of the last forward pass
	mean, rstd []float64   // per channel, what the last forward pass normalised with
	sums       []float64   // [2c]: Σ gy, then Σ gy·xhat, per channel
	part       [][]float64 // per worker [2c]: colSums' partial sums
}

// colSums has f add its per-channel sums over rows [lo, hi) into acc [width·c] (cleared),
// rows split over goroutines when there are many, each with its own acc; it returns the
// total, which lives in the first worker's slice until the next call.
func (s *bnState[T]) colSums(width int, f func(acc []float64, lo, hi int)) []float64 {
	workers := 1
	if s.n*s.c >= 1<<15 {
		workers = chunkWorkers(s.n)
	}
	for len(s.part) < workers {
		s.part = append(s.part, make([]float64, 2*s.c))
	}
	if workers == 1 {
		acc := s.part[0][:width*s.c]
		clear(acc)
		f(acc, 0, s.n)
		return acc
	}
	parallelChunks(s.n, func(w, lo, hi int) {
		acc := s.part[w][:width*s.c]
		clear(acc)
		f(acc, lo, hi)
	})
	total := s.part[0][:width*s.c]
	for _, p := range s.part[1:workers] {
		for j, v := range p[:width*s.c] {
			total[j] += v
		}
	}
	return total
}

func (s *bnState[T]) forward(y, x, gamma, beta []T) {
	n, c := s.n, s.c
	s.training = !s.st.Frozen && s.st.Training != nil && *s.st.Training
	if s.training {
		sum := s.colSums(1, func(acc []float64, lo, hi int) {
			for r := lo; r < hi; r++ {
				for j, v := range x[r*c : (r+1)*c] {
					acc[j] += float64(v)
				}
			}
		})
		for j, v := range sum {
			s.mean[j] = v / float64(n)
		}
		sq := s.colSums(1, func(acc []float64, lo, hi int) { // two passes: no cancellation
			for r := lo; r < hi; r++ {
				for j, v := range x[r*c : (r+1)*c] {
					d := float64(v) - s.mean[j]
					acc[j] += d * d
				}
			}
		})
		m := s.st.Momentum
		for j, v := range sq {
			variance := v / float64(n)
			s.rstd[j] = 1 / math.Sqrt(variance+s.st.Eps)
			unbiased := variance // torch refuses one value per channel; keep the update finite
			if n > 1 {
				unbiased = v / float64(n-1)
			}
			s.st.Mean[j] = float32((1-m)*float64(s.st.Mean[j]) + m*s.mean[j])
			s.st.Var[j] = float32((1-m)*float64(s.st.Var[j]) + m*unbiased)
		}
		s.st.Count[0]++
	} else {
		for j := range c {
			s.mean[j] = float64(s.st.Mean[j])
			s.rstd[j] = 1 / math.Sqrt(float64(s.st.Var[j])+s.st.Eps)
		}
	}
	splitWork(n, n*c, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*c:(r+1)*c], y[r*c:(r+1)*c]
			for j, v := range xr {
				yr[j] = T((float64(v)-s.mean[j])*s.rstd[j]*float64(gamma[j]) + float64(beta[j]))
			}
		}
	})
}

// backward writes dx and leaves Σ gy and Σ gy·xhat per channel (dbeta, dgamma) in sums. In
// training dx = γ·rstd·(gy − mean(gy) − xhat·mean(gy·xhat)), the batch statistics depending
// on x; in evaluation dx = γ·rstd·gy.
func (s *bnState[T]) backward(dx, x, gamma, gy []T) {
	n, c := s.n, s.c
	sums := s.colSums(2, func(acc []float64, lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, gr := x[r*c:(r+1)*c], gy[r*c:(r+1)*c]
			for j, v := range xr {
				g := float64(gr[j])
				acc[j] += g
				acc[c+j] += g * (float64(v) - s.mean[j]) * s.rstd[j]
			}
		}
	})
	copy(s.sums, sums)
	var mg, mgx []float64 // per-channel means, training only
	if s.training {
		mg, mgx = make([]float64, c), make([]float64, c)
		for j := range c {
			mg[j], mgx[j] = s.sums[j]/float64(n), s.sums[c+j]/float64(n)
		}
	}
	splitWork(n, n*c, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, gr, dr := x[r*c:(r+1)*c], gy[r*c:(r+1)*c], dx[r*c:(r+1)*c]
			for j, v := range xr {
				g := float64(gr[j])
				if s.training {
					xh := (float64(v) - s.mean[j]) * s.rstd[j]
					g -= mg[j] + xh*mgx[j]
				}
				dr[j] = T(float64(gamma[j]) * s.rstd[j] * g)
			}
		}
	})
}

// BatchNorm2D is torch.nn.BatchNorm2d(C) over channels-last maps: a learned gain (weight,
// init 1) and shift (bias, init 0), and running statistics (running_mean 0, running_var 1,
// num_batches_tracked 0) that are Builder buffers, saved in checkpoints under their torch
// names. Training or evaluation follows the builder's Training switch at each run.
type BatchNorm2D struct {
	Weight, Bias *G.Node
	Stats        BatchStats
}

// NewBatchNorm2D creates prefix.{weight,bias,running_mean,running_var,num_batches_tracked} for
// c channels; gain initialises the weight (Ones when nil).
func (b *Builder) NewBatchNorm2D(prefix string, c int, gain Init) (*BatchNorm2D, error) {
	if c <= 0 {
		return nil, fmt.Errorf("nn: batch norm %s: %d channels", prefix, c)
	}
	if gain == nil {
		gain = Ones
	}
	bn := &BatchNorm2D{Stats: BatchStats{Momentum: BatchNormMomentum, Eps: BatchNormEps, Training: b.Training()}}
	var err error
	if bn.Weight, err = b.Param(prefix+".weight", []int{c}, gain); err != nil {
		return nil, err
	}
	if bn.Bias, err = b.Param(prefix+".bias", []int{c}, Zeros); err != nil {
		return nil, err
	}
	if bn.Stats.Mean, err = b.Buffer(prefix+".running_mean", []int{c}, Zeros); err != nil {
		return nil, err
	}
	if bn.Stats.Var, err = b.Buffer(prefix+".running_var", []int{c}, Ones); err != nil {
		return nil, err
	}
	if bn.Stats.Count, err = b.Buffer(prefix+".num_batches_tracked", nil, Zeros); err != nil {
		return nil, err
	}
	for _, name := range []string{".running_mean", ".running_var", ".num_batches_tracked"} {
		p, _ := b.Lookup(prefix + name)
		b.stats[p] = &bn.Stats
	}
	return bn, nil
}

// Forward normalises the channels (columns) of x [N, C].
func (bn *BatchNorm2D) Forward(x *G.Node) (*G.Node, error) {
	return BatchNorm(x, bn.Weight, bn.Bias, &bn.Stats)
}
