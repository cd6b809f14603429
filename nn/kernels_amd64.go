//go:build amd64 && !purego

package nn

import (
	"math"
	"unsafe"

	"github.com/clipgo/clipgo/nn/internal/simd"
)

// simdKernels says whether the float32 GELU and layer-norm kernels run on the AVX2+FMA
// assembly of internal/simd (hand-written because the Go compiler does not vectorise, and
// these element-wise passes were 15–20% of a training step in scalar float64). A variable so
// that the tests and benchmarks can compare both paths on one machine.
var simdKernels = simd.Enabled

// The wrappers below reslice every slice to the row's length (panicking if one is short,
// before the assembly could read past it) and do the tails of fewer than 4 in Go.

// geluForward32 is y = x·Φ(x) with Φ interpolated (as geluForward32Go).
func geluForward32(y, x []float32) {
	y = y[:len(x)]
	h := len(x) &^ 3
	if !simdKernels {
		h = 0
	}
	if h > 0 {
		simd.GELUForward(flatTable(cdfTable), y[:h], x[:h])
	}
	geluForward32Go(y[h:], x[h:])
}

// geluBackward32 is dx = gy·(Φ(x) + x·φ(x)) interpolated (as geluBackward32Go).
func geluBackward32(dx, gy, x []float32) {
	dx, gy = dx[:len(x)], gy[:len(x)]
	h := len(x) &^ 3
	if !simdKernels {
		h = 0
	}
	if h > 0 {
		simd.GELUBackward(flatTable(derivTable), dx[:h], gy[:h], x[:h])
	}
	geluBackward32Go(dx[h:], gy[h:], x[h:])
}

// rowStats32 is rowStats for float32 rows.
func rowStats32(x []float32, eps float64) (mean, rstd float64) {
	h := len(x) &^ 3
	if !simdKernels || h == 0 {
		return rowStats(x, eps)
	}
	s := simd.Sum(x[:h])
	for _, v := range x[h:] {
		s += float64(v)
	}
	mean = s / float64(len(x))
	q := simd.SqDev(x[:h], mean)
	for _, v := range x[h:] {
		d := float64(v) - mean
		q += d * d
	}
	return mean, 1 / math.Sqrt(q/float64(len(x))+eps)
}

// lnNorm32 is lnNormRow for float32 rows.
func lnNorm32(y, x, gamma, beta []float32, mean, rstd float64) {
	y, gamma, beta = y[:len(x)], gamma[:len(x)], beta[:len(x)]
	h := len(x) &^ 3
	if !simdKernels {
		h = 0
	}
	if h > 0 {
		simd.LayerNorm(y[:h], x[:h], gamma[:h], beta[:h], mean, rstd)
	}
	lnNormRow(y[h:], x[h:], gamma[h:], beta[h:], mean, rstd)
}

// lnGradStats32 is lnGradStatsRow for float32 rows.
func lnGradStats32(acc1, acc2 []float64, x, gy, gamma []float32, mean, rstd float64) (m1, m2 float64) {
	acc1, acc2, gy, gamma = acc1[:len(x)], acc2[:len(x)], gy[:len(x)], gamma[:len(x)]
	h := len(x) &^ 3
	if !simdKernels {
		h = 0
	}
	if h > 0 {
		m1, m2 = simd.LayerNormGradStats(acc1[:h], acc2[:h], x[:h], gy[:h], gamma[:h], mean, rstd)
	}
	t1, t2 := lnGradStatsRow(acc1[h:], acc2[h:], x[h:], gy[h:], gamma[h:], mean, rstd)
	return m1 + t1, m2 + t2
}

// lnGradX32 is lnGradXRow for float32 rows.
func lnGradX32(dx, x, gy, gamma []float32, mean, rstd, m1, m2 float64) {
	dx, gy, gamma = dx[:len(x)], gy[:len(x)], gamma[:len(x)]
	h := len(x) &^ 3
	if !simdKernels {
		h = 0
	}
	if h > 0 {
		simd.LayerNormGradX(dx[:h], x[:h], gy[:h], gamma[:h], mean, rstd, m1, m2)
	}
	lnGradXRow(dx[h:], x[h:], gy[h:], gamma[h:], mean, rstd, m1, m2)
}

// flatTable views a GELU table as the flat coefficients the assembly reads.
func flatTable(t *[normIntervals]cubic) *[4 * normIntervals]float64 {
	return (*[4 * normIntervals]float64)(unsafe.Pointer(t))
}
