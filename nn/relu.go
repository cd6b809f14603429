package nn

import G "gorgonia.org/gorgonia"

// ReLU is max(x, 0), as torch.nn.ReLU; its gradient passes where x > 0 (0 at x = 0, as torch).
func ReLU(x *G.Node) (*G.Node, error) {
	if IsFloat64(x) {
		return pointwise(x, "relu", reluForward[float64], reluBackward[float64])
	}
	return pointwise(x, "relu", reluForward[float32], reluBackward[float32])
}

func reluForward[T Float](y, x []T) {
	splitWork(len(x), len(x), func(lo, hi int) {
		for i, v := range x[lo:hi] {
			y[lo+i] = max(v, 0)
		}
	})
}

func reluBackward[T Float](dx, gy, x []T) {
	splitWork(len(x), len(x), func(lo, hi int) {
		for i, v := range x[lo:hi] {
			if v > 0 {
				dx[lo+i] = gy[lo+i]
			} else {
				dx[lo+i] = 0
			}
		}
	})
}
