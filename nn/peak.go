package nn

import (
	"math/rand/v2"
	"slices"
	"time"
)

// SgemmGFLOPS measures the float32 matrix product the kernels use (n×n by n×n through gemm:
// single-threaded BLAS, rows split across GOMAXPROCS goroutines) and returns the median of
// repeats timings in GFLOP/s (2·n³ per product), after two untimed warm-up products. It is
// the ceiling a benchmark's MFU is measured against, in the same process and with the same
// parallelism as the model.
func SgemmGFLOPS(n, repeats int) float64 {
	n, repeats = max(n, 1), max(repeats, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	times := make([]float64, 0, repeats)
	for i := range repeats + 2 {
		start := time.Now()
		Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		if i >= 2 {
			times = append(times, time.Since(start).Seconds())
		}
	}
	slices.Sort(times)
	med := times[len(times)/2]
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + med) / 2
	}
	return 2 * float64(n) * float64(n) * float64(n) / med / 1e9
}
