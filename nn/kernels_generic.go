//go:build !amd64 || purego

package nn

// simdKernels is false where there is no assembly (other CPUs, the purego build): the
// float32 GELU and layer-norm kernels are the pure-Go loops.
var simdKernels = false

func geluForward32(y, x []float32)       { geluForward32Go(y, x) }
func geluBackward32(dx, gy, x []float32) { geluBackward32Go(dx, gy, x) }

func rowStats32(x []float32, eps float64) (mean, rstd float64) { return rowStats(x, eps) }

func lnNorm32(y, x, gamma, beta []float32, mean, rstd float64) {
	lnNormRow(y, x, gamma, beta, mean, rstd)
}

func lnGradStats32(acc1, acc2 []float64, x, gy, gamma []float32, mean, rstd float64) (m1, m2 float64) {
	return lnGradStatsRow(acc1, acc2, x, gy, gamma, mean, rstd)
}

func lnGradX32(dx, x, gy, gamma []float32, mean, rstd, m1, m2 float64) {
	lnGradXRow(dx, x, gy, gamma, mean, rstd, m1, m2)
}
