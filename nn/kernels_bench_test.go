package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// geluShape is the tiny preset's vision MLP activation: batch 64 × 65 tokens × 512.
const geluRows, geluCols = 64 * 65, 512

func randomF32(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// BenchmarkGELU times the float32 GELU kernels (interpolated Φ and φ), forward and backward,
// against the same loops on math.Erf and math.Exp, the path they replaced.
func BenchmarkGELU(b *testing.B) {
	x := randomF32(geluRows*geluCols, 1)
	gy := randomF32(len(x), 2)
	y, dx := make([]float32, len(x)), make([]float32, len(x))
	b.Run("table", func(b *testing.B) {
		b.SetBytes(int64(20 * len(x)))
		for b.Loop() {
			geluForward(y, x)
			geluBackward(dx, gy, x)
		}
	})
	b.Run("erf-exp", func(b *testing.B) {
		b.SetBytes(int64(20 * len(x)))
		for b.Loop() {
			parallelRows(len(x), func(lo, hi int) {
				for i := lo; i < hi; i++ {
					v := float64(x[i])
					y[i] = float32(v * 0.5 * (1 + math.Erf(v*invSqrt2)))
				}
			})
			parallelRows(len(x), func(lo, hi int) {
				for i := lo; i < hi; i++ {
					v := float64(x[i])
					c := 0.5 * (1 + math.Erf(v*invSqrt2))
					dx[i] = gy[i] * float32(c+v*invSqrt2Pi*math.Exp(-0.5*v*v))
				}
			})
		}
	})
}

// BenchmarkSoftmax times attention's row softmax over [64·2·65, 65] scores (the tiny vision
// tower's, one layer) with expNonPos against the same loop on math.Exp.
func BenchmarkSoftmax(b *testing.B) {
	const rows, n = 64 * 2 * 65, 65
	src := randomF32(rows*n, 4)
	s := make([]float32, len(src))
	b.Run("expNonPos", func(b *testing.B) {
		for b.Loop() {
			copy(s, src)
			for r := range rows {
				softmaxRow(s[r*n:(r+1)*n], n)
			}
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		for b.Loop() {
			copy(s, src)
			for r := range rows {
				row := s[r*n : (r+1)*n]
				m := slices.Max(row)
				var z float64
				for j, v := range row {
					e := math.Exp(float64(v - m))
					row[j] = float32(e)
					z += e
				}
				for j := range row {
					row[j] = float32(float64(row[j]) / z)
				}
			}
		}
	})
}
