//go:build amd64 && !purego

package simd

import "golang.org/x/sys/cpu"

// Enabled says whether this CPU runs the kernels (AVX2 and FMA). It is a variable so that
// nn's tests and benchmarks can compare the assembly with the Go loops on one machine.
var Enabled = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The kernels process len(x) rounded down to a multiple of 4 and read or write that many
// elements of every other slice: callers make them at least that long.

// GELUForward: y = x·T(x), T the cubic Hermite table tab (512 intervals × 4 coefficients,
// knots every 1/32 on [−8, 8]), 1 at or above 8, 0 at or below −8, NaN for NaN.
//
//go:noescape
func GELUForward(tab *[2048]float64, y, x []float32)

// GELUBackward: dx = gy·float32(T(x)), T as in GELUForward.
//
//go:noescape
func GELUBackward(tab *[2048]float64, dx, gy, x []float32)

// Sum is Σ x in float64.
//
//go:noescape
func Sum(x []float32) float64

// SqDev is Σ (x−mean)² in float64.
//
//go:noescape
func SqDev(x []float32, mean float64) float64

// LayerNorm: y = float32((x−mean)·rstd)·gamma + beta.
//
//go:noescape
func LayerNorm(y, x, gamma, beta []float32, mean, rstd float64)

// LayerNormGradStats: with xh = (x−mean)·rstd, acc1 += gy·xh and acc2 += gy; returns
// Σ gy·gamma and Σ gy·gamma·xh.
//
//go:noescape
func LayerNormGradStats(acc1, acc2 []float64, x, gy, gamma []float32, mean, rstd float64) (m1, m2 float64)

// LayerNormGradX: dx = float32(rstd·(gy·gamma − m1 − xh·m2)), xh = (x−mean)·rstd.
//
//go:noescape
func LayerNormGradX(dx, x, gy, gamma []float32, mean, rstd, m1, m2 float64)
