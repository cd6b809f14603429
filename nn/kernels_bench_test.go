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

// BenchmarkLayerNormBackward times the layer norm's backward pass at the small preset's text
// shape ([128·77, 256]): the fused pass (statistics kept from the forward pass, gain and
// shift gradients summed on the way) against three passes that recompute the statistics, as
// the kernels did before.
func BenchmarkLayerNormBackward(b *testing.B) {
	const rows, c = 128 * 77, 256
	x, gy, gamma := randomF32(rows*c, 1), randomF32(rows*c, 2), randomF32(c, 3)
	beta := make([]float32, c)
	y, dx, dg, db := make([]float32, rows*c), make([]float32, rows*c), make([]float32, c), make([]float32, c)
	b.Run("fused", func(b *testing.B) {
		ln := &lnState[float32]{c: c, eps: LayerNormEps}
		ln.forward(y, x, gamma, beta)
		for b.Loop() {
			ln.backward(dx, x, gamma, gy)
			ln.reduce(dg, 0)
			ln.reduce(db, c)
		}
	})
	b.Run("three-pass", func(b *testing.B) {
		for b.Loop() {
			parallelRows(rows, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					xr, gr, dr := x[r*c:(r+1)*c], gy[r*c:(r+1)*c], dx[r*c:(r+1)*c]
					mean, rstd := rowStats(xr, LayerNormEps)
					var m1, m2 float64
					for j, v := range xr {
						g := float64(gr[j]) * float64(gamma[j])
						m1 += g
						m2 += g * (float64(v) - mean) * rstd
					}
					m1 /= c
					m2 /= c
					for j, v := range xr {
						xh := (float64(v) - mean) * rstd
						dr[j] = float32(rstd * (float64(gr[j])*float64(gamma[j]) - m1 - xh*m2))
					}
				}
			})
			acc := make([]float64, c)
			for r := range rows {
				xr, gr := x[r*c:(r+1)*c], gy[r*c:(r+1)*c]
				mean, rstd := rowStats(xr, LayerNormEps)
				for j, v := range xr {
					acc[j] += float64(gr[j]) * (float64(v) - mean) * rstd
				}
			}
			for j, v := range acc {
				dg[j] = float32(v)
			}
			periodicRowSum(db, gy, 1, c)
		}
	})
}

// BenchmarkBiasGrad times the bias gradient (a column sum) of the small preset's c_fc
// output, [128·77, 1024].
func BenchmarkBiasGrad(b *testing.B) {
	const rows, c = 128 * 77, 1024
	x, out := randomF32(rows*c, 5), make([]float32, c)
	b.SetBytes(4 * rows * c)
	for b.Loop() {
		periodicRowSum(out, x, 1, c)
	}
}

// withSIMD runs f with the assembly kernels switched on or off (the Go loops), restoring
// the setting after.
func withSIMD(on bool, f func()) {
	was := simdKernels
	simdKernels = on
	defer func() { simdKernels = was }()
	f()
}

// BenchmarkGELUKernels times the float32 GELU, forward and backward, on the Go loops ("go")
// and the assembly ("simd") at the MLP activations of the tiny preset (vision, 64·65 × 512)
// and of ViT-B/32 at batch 8 (8·50 × 3072). Run it with -cpu 1 -count 5: the two
// sub-benchmarks alternate, so their ratio holds on a loaded machine.
func BenchmarkGELUKernels(b *testing.B) {
	for _, shape := range []struct {
		name       string
		rows, cols int
	}{{"tiny", 64 * 65, 512}, {"vitb32", 8 * 50, 3072}} {
		x := randomF32(shape.rows*shape.cols, 1)
		gy := randomF32(len(x), 2)
		y, dx := make([]float32, len(x)), make([]float32, len(x))
		benchKernelPaths(b, shape.name, int64(20*len(x)), func() {
			geluForward(y, x)
			geluBackward(dx, gy, x)
		})
	}
}

// benchKernelPaths runs step as sub-benchmarks name/go and, where the assembly runs,
// name/simd, one after the other, so that the two paths alternate within one run.
func benchKernelPaths(b *testing.B, name string, bytes int64, step func()) {
	for _, path := range []struct {
		name string
		simd bool
	}{{"go", false}, {"simd", true}} {
		if path.simd && !simdKernels {
			continue
		}
		b.Run(name+"/"+path.name, func(b *testing.B) {
			b.SetBytes(bytes)
			withSIMD(path.simd, func() {
				for b.Loop() {
					step()
				}
			})
		})
	}
}

// BenchmarkLayerNormKernels times the float32 layer norm, forward and backward (with the
// gain and shift gradients), on the Go loops and the assembly at the model's shapes: tiny
// (64·65 × 128), small's text tower (128·77 × 512) and ViT-B/32 at batch 8 (8·50 × 768).
func BenchmarkLayerNormKernels(b *testing.B) {
	for _, shape := range []struct {
		name    string
		rows, c int
	}{{"tiny", 64 * 65, 128}, {"small", 128 * 77, 512}, {"vitb32", 8 * 50, 768}} {
		c := shape.c
		x, gy, gamma, beta := randomF32(shape.rows*c, 1), randomF32(shape.rows*c, 2), randomF32(c, 3), randomF32(c, 4)
		y, dx, dg, db := make([]float32, len(x)), make([]float32, len(x)), make([]float32, c), make([]float32, c)
		ln := &lnState[float32]{c: c, eps: LayerNormEps}
		benchKernelPaths(b, shape.name, int64(20*len(x)), func() {
			ln.forward(y, x, gamma, beta)
			ln.backward(dx, x, gamma, gy)
			ln.reduce(dg, 0)
			ln.reduce(db, c)
		})
	}
}
