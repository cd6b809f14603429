package nn

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// This file holds the numeric kernels behind the ops: plain loops over flat row-major buffers,
// generic over float32 and float64, and matrix products through BLAS. Reductions accumulate
// in float64. The float32 GELU and layer norm run row by row through geluForward32,
// rowStats32, lnNorm32 and their kin, which kernels_amd64.go backs with AVX2+FMA assembly
// (internal/simd) and kernels_generic.go with the Go loops here.

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Gemm computes c = alpha·op(a)·op(b) + beta·c for an m×k op(a) and a k×n op(b), with leading
// dimensions lda, ldb, ldc (so that column blocks of wider matrices can be used in place).
// Large products are split by rows of c across goroutines (BLAS itself runs single-threaded).
func Gemm[T Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	workers := runtime.GOMAXPROCS(0)
	if workers > 1 && m >= 2*workers && m*n*k >= 1<<20 {
		parallelRows(m, func(lo, hi int) {
			off := lo * lda // rows of a
			if tA {
				off = lo // columns of a
			}
			gemm1(tA, tB, hi-lo, n, k, alpha, a[off:], lda, b, ldb, beta, c[lo*ldc:], ldc)
		})
		return
	}
	gemm1(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemm1[T Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch a := any(a).(type) {
	case []float32:
		blas32.Implementation().Sgemm(trans(tA), trans(tB), m, n, k, float32(alpha), a, lda,
			any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		blas64.Implementation().Dgemm(trans(tA), trans(tB), m, n, k, float64(alpha), a, lda,
			any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// parallel runs f(i) for i in [0, n) on up to GOMAXPROCS goroutines, worker w getting its own
// index so that it can own scratch space.
func parallel(n int, f func(w, i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			f(0, i)
		}
		return
	}
	work := func(w int) {
		for i := w; i < n; i += workers {
			f(w, i)
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(w)
		}()
	}
	work(0) // the caller is worker 0
	wg.Wait()
}

// parallelRows splits rows [0, n) into contiguous chunks, one per goroutine.
func parallelRows(n int, f func(lo, hi int)) {
	parallelChunks(n, func(_, lo, hi int) { f(lo, hi) })
}

// rowStats returns the mean and 1/sqrt(var+eps) of a row (biased variance, as torch).
func rowStats[T Float](x []T, eps float64) (mean, rstd float64) {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	mean = s / float64(len(x))
	var q float64
	for _, v := range x {
		d := float64(v) - mean
		q += d * d
	}
	return mean, 1 / math.Sqrt(q/float64(len(x))+eps)
}

// lnState holds one layer norm's per-row statistics from its forward pass, which the
// backward pass reuses, and per-worker partial sums of the gain and shift gradients, which
// the input-gradient pass accumulates on its way (one pass over the rows for all three).
type lnState[T Float] struct {
	c          int
	eps        float64
	mean, rstd []float64   // per row, from the last forward
	part       [][]float64 // per worker [2c]: Σ gy·xhat, then Σ gy
}

// forward: y = (x-mean)·rstd·gamma + beta over rows of width c.
func (l *lnState[T]) forward(y, x, gamma, beta []T) {
	c, n := l.c, len(x)/l.c
	if len(l.mean) != n {
		l.mean, l.rstd = make([]float64, n), make([]float64, n)
	}
	if y32, ok := any(y).([]float32); ok {
		x32, g32, b32 := any(x).([]float32), any(gamma).([]float32), any(beta).([]float32)
		parallelChunks(n, func(_, lo, hi int) {
			for r := lo; r < hi; r++ {
				xr := x32[r*c : (r+1)*c]
				mean, rstd := rowStats32(xr, l.eps)
				l.mean[r], l.rstd[r] = mean, rstd
				lnNorm32(y32[r*c:(r+1)*c], xr, g32, b32, mean, rstd)
			}
		})
		return
	}
	parallelChunks(n, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*c : (r+1)*c]
			mean, rstd := rowStats(xr, l.eps)
			l.mean[r], l.rstd[r] = mean, rstd
			lnNormRow(y[r*c:(r+1)*c], xr, gamma, beta, mean, rstd)
		}
	})
}

// backward writes dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)), dxhat = gy·gamma,
// and leaves the partial sums of dgamma = Σ gy·xhat and dbeta = Σ gy for reduce.
func (l *lnState[T]) backward(dx, x, gamma, gy []T) {
	c, n := l.c, len(x)/l.c
	workers := chunkWorkers(n)
	for len(l.part) < workers {
		l.part = append(l.part, make([]float64, 2*c))
	}
	dx32, is32 := any(dx).([]float32)
	x32, _ := any(x).([]float32)
	g32, _ := any(gamma).([]float32)
	gy32, _ := any(gy).([]float32)
	parallelChunks(n, func(w, lo, hi int) {
		acc := l.part[w]
		clear(acc)
		for r := lo; r < hi; r++ {
			mean, rstd := l.mean[r], l.rstd[r]
			if is32 {
				xr, gr := x32[r*c:(r+1)*c], gy32[r*c:(r+1)*c]
				m1, m2 := lnGradStats32(acc[:c], acc[c:], xr, gr, g32, mean, rstd)
				lnGradX32(dx32[r*c:(r+1)*c], xr, gr, g32, mean, rstd, m1/float64(c), m2/float64(c))
				continue
			}
			xr, gr := x[r*c:(r+1)*c], gy[r*c:(r+1)*c]
			m1, m2 := lnGradStatsRow(acc[:c], acc[c:], xr, gr, gamma, mean, rstd)
			lnGradXRow(dx[r*c:(r+1)*c], xr, gr, gamma, mean, rstd, m1/float64(c), m2/float64(c))
		}
	})
	for w := workers; w < len(l.part); w++ {
		clear(l.part[w])
	}
}

// lnNormRow is one row of the layer norm's forward pass: y = T((x−mean)·rstd)·gamma + beta.
// (The float32 rows go through lnNorm32, which runs it in assembly where it can.)
func lnNormRow[T Float](y, x, gamma, beta []T, mean, rstd float64) {
	y, gamma, beta = y[:len(x)], gamma[:len(x)], beta[:len(x)]
	for j, v := range x {
		y[j] = T((float64(v)-mean)*rstd)*gamma[j] + beta[j]
	}
}

// lnGradStatsRow is the first half of one row of the layer norm's backward pass: with
// xh = (x−mean)·rstd it adds gy·xh to acc1 and gy to acc2 (the gain and shift gradients)
// and returns Σ gy·gamma and Σ gy·gamma·xh.
func lnGradStatsRow[T Float](acc1, acc2 []float64, x, gy, gamma []T, mean, rstd float64) (m1, m2 float64) {
	acc1, acc2, gy, gamma = acc1[:len(x)], acc2[:len(x)], gy[:len(x)], gamma[:len(x)]
	for j, v := range x {
		g := float64(gy[j])
		xh := (float64(v) - mean) * rstd
		acc1[j] += g * xh
		acc2[j] += g
		g *= float64(gamma[j])
		m1 += g
		m2 += g * xh
	}
	return m1, m2
}

// lnGradXRow is the second half: dx = rstd·(gy·gamma − m1 − xh·m2), m1 and m2 the row's
// means of gy·gamma and gy·gamma·xh.
func lnGradXRow[T Float](dx, x, gy, gamma []T, mean, rstd, m1, m2 float64) {
	dx, gy, gamma = dx[:len(x)], gy[:len(x)], gamma[:len(x)]
	for j, v := range x {
		xh := (float64(v) - mean) * rstd
		dx[j] = T(rstd * (float64(gy[j])*float64(gamma[j]) - m1 - xh*m2))
	}
}

// reduce sums the workers' partials of the last backward: off 0 gives dgamma, off c dbeta.
func (l *lnState[T]) reduce(d []T, off int) {
	for j := range d {
		var s float64
		for _, p := range l.part {
			s += p[off+j]
		}
		d[j] = T(s)
	}
}

// chunkWorkers is the number of goroutines parallelChunks uses for n rows.
func chunkWorkers(n int) int { return min(runtime.GOMAXPROCS(0), max(1, n/16)) }

// parallelChunks splits rows [0, n) into contiguous chunks, one per goroutine, passing the
// worker's index so that it can own scratch space.
func parallelChunks(n int, f func(w, lo, hi int)) {
	workers := chunkWorkers(n)
	if workers <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for w, lo := 1, step; lo < n; w, lo = w+1, lo+step {
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			f(w, lo, hi)
		}(w, lo, min(n, lo+step))
	}
	f(0, 0, min(n, step)) // the caller takes the first chunk
	wg.Wait()
}

// sumBlock is the number of output columns periodicRowSum accumulates at a time, in a
// float64 array on the stack.
const sumBlock = 128

// periodicRowSum: out[t] = Σ_b x[b·period+t] for rows of width c (the gradient of a
// broadcast over the batch: biases with period 1, positional embeddings with period L),
// accumulated in float64, blocks of columns spread over goroutines. It allocates nothing
// of its own.
func periodicRowSum[T Float](out, x []T, period, c int) {
	rows := len(x) / c
	perRow := (c + sumBlock - 1) / sumBlock
	blocks := period * perRow
	sum := func(_, i int) {
		t, j0 := i/perRow, (i%perRow)*sumBlock
		j1 := min(c, j0+sumBlock)
		var acc [sumBlock]float64
		a := acc[:j1-j0]
		r := t
		// Four rows at a time: one accumulator update per four values.
		for ; r+3*period < rows; r += 4 * period {
			x0 := x[r*c+j0 : r*c+j1]
			x1 := x[(r+period)*c+j0 : (r+period)*c+j1][:len(x0)]
			x2 := x[(r+2*period)*c+j0 : (r+2*period)*c+j1][:len(x0)]
			x3 := x[(r+3*period)*c+j0 : (r+3*period)*c+j1][:len(x0)]
			a := a[:len(x0)]
			for j, v := range x0 {
				a[j] += (float64(v) + float64(x1[j])) + (float64(x2[j]) + float64(x3[j]))
			}
		}
		for ; r < rows; r += period {
			for j, v := range x[r*c+j0 : r*c+j1] {
				a[j] += float64(v)
			}
		}
		for j, v := range a {
			out[t*c+j0+j] = T(v)
		}
	}
	if len(x) < 1<<16 {
		for i := range blocks {
			sum(0, i)
		}
		return
	}
	parallel(blocks, sum)
}

// addPeriodic: y[r] = x[r] + b[r mod period] for rows of width c, rows spread over
// goroutines when there are many.
func addPeriodic[T Float](y, x, b []T, period, c int) {
	add := func(lo, hi int) {
		for r := lo; r < hi; r++ {
			br := b[(r%period)*c : (r%period+1)*c]
			xr, yr := x[r*c:(r+1)*c], y[r*c:(r+1)*c]
			for j := range xr {
				yr[j] = xr[j] + br[j]
			}
		}
	}
	rows := len(x) / c
	if len(x) < 1<<16 {
		add(0, rows)
		return
	}
	parallelRows(rows, add)
}

const invSqrt2, invSqrt2Pi = 0.7071067811865476, 0.3989422804014327

// cubic is a polynomial a + b·t + c·t² + d·t³ on one interval of a table, t ∈ [0, 1).
type cubic [4]float64

// normRange and normSteps lay out the GELU tables: knots every 1/normSteps on
// [−normRange, normRange]; beyond, Φ is 0 or 1 to 6e-16.
const normRange, normSteps = 8, 32

// normIntervals is the number of table intervals; a power of two, so that masking the index
// proves it in range (no bounds check in the hot loop).
const normIntervals = 2 * normRange * normSteps

// hermiteTable returns, for each interval between knots, the cubic Hermite interpolant of f
// from its values and slopes df at both ends. Its error is below h⁴/384·max|f⁗|: under 2e-8
// for Φ and for Φ + x·φ at h = 1/32, far under float32's resolution.
func hermiteTable(f, df func(float64) float64) *[normIntervals]cubic {
	const h = 1.0 / normSteps
	var t [normIntervals]cubic
	for i := range t {
		x0 := float64(i)/normSteps - normRange
		x1 := x0 + h
		f0, f1, m0, m1 := f(x0), f(x1), h*df(x0), h*df(x1)
		t[i] = cubic{f0, m0, 3*(f1-f0) - 2*m0 - m1, 2*(f0-f1) + m0 + m1}
	}
	return &t
}

func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x*invSqrt2) }
func normPDF(x float64) float64 { return invSqrt2Pi * math.Exp(-0.5*x*x) }

// cdfTable interpolates Φ (slope φ); derivTable interpolates GELU's derivative Φ + x·φ
// (slope (2 − x²)·φ). 16 KiB each: they stay in L1.
var (
	cdfTable   = hermiteTable(normCDF, normPDF)
	derivTable = hermiteTable(func(x float64) float64 { return normCDF(x) + x*normPDF(x) },
		func(x float64) float64 { return (2 - x*x) * normPDF(x) })
)

// interp evaluates a table at x inside its range (ok false outside it, and for NaN): three
// multiply-adds, no exponential, no division, and small enough to inline into the loops.
func interp(tab *[normIntervals]cubic, x float64) (y float64, ok bool) {
	if !(x > -normRange && x < normRange) {
		return 0, false
	}
	u := (x + normRange) * normSteps
	i := int(u)
	t := u - float64(i)
	c := &tab[i&(normIntervals-1)]
	return c[0] + t*(c[1]+t*(c[2]+t*c[3])), true
}

// outside is a GELU table's value beyond its range: 0 below, 1 above, NaN for NaN.
func outside(x float64) float64 {
	switch {
	case x >= normRange:
		return 1
	case x <= -normRange:
		return 0
	}
	return math.NaN()
}

// geluCDF32 is Φ(x) interpolated, as the float32 kernels compute it (inlined there).
func geluCDF32(x float64) float64 {
	if c, ok := interp(cdfTable, x); ok {
		return c
	}
	return outside(x)
}

// geluDeriv32 is GELU's derivative Φ(x) + x·φ(x) interpolated, as the float32 kernels compute it.
func geluDeriv32(x float64) float64 {
	if d, ok := interp(derivTable, x); ok {
		return d
	}
	return outside(x)
}

// geluForward is y = x·Φ(x), the erf form, as torch.nn.GELU(): Φ interpolated for float32,
// exact (math.Erf) for float64.
func geluForward[T Float](y, x []T) {
	if y32, ok := any(y).([]float32); ok {
		x32 := any(x).([]float32)
		parallelRows(len(x), func(lo, hi int) { geluForward32(y32[lo:hi], x32[lo:hi]) })
		return
	}
	parallelRows(len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			y[i] = T(v * 0.5 * (1 + math.Erf(v*invSqrt2)))
		}
	})
}

// geluBackward is dx = gy·(Φ(x) + x·φ(x)), recomputed from x (cheaper than keeping the
// derivative: one table lookup against a buffer of the activation's size per block).
func geluBackward[T Float](dx, gy, x []T) {
	if d32, ok := any(dx).([]float32); ok {
		g32, x32 := any(gy).([]float32), any(x).([]float32)
		parallelRows(len(x), func(lo, hi int) { geluBackward32(d32[lo:hi], g32[lo:hi], x32[lo:hi]) })
		return
	}
	parallelRows(len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			dx[i] = gy[i] * T(0.5*(1+math.Erf(v*invSqrt2))+v*invSqrt2Pi*math.Exp(-0.5*v*v))
		}
	})
}

// geluForward32Go is the float32 GELU in Go, one table lookup per element: the path on
// CPUs without AVX2+FMA and under the purego tag, and the tails of geluForward32.
func geluForward32Go(y, x []float32) {
	y = y[:len(x)]
	for i, v64 := range x {
		v := float64(v64)
		c, ok := interp(cdfTable, v)
		if !ok {
			c = outside(v)
		}
		y[i] = float32(v * c)
	}
}

// geluBackward32Go is the float32 GELU derivative in Go (as geluForward32Go).
func geluBackward32Go(dx, gy, x []float32) {
	dx, gy = dx[:len(x)], gy[:len(x)]
	for i, v64 := range x {
		v := float64(v64)
		d, ok := interp(derivTable, v)
		if !ok {
			d = outside(v)
		}
		dx[i] = gy[i] * float32(d)
	}
}

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// quickGELUForward is OpenAI's y = x·σ(1.702x).
func quickGELUForward[T Float](y, x []T) {
	parallelRows(len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			y[i] = T(v * sigmoid(1.702*v))
		}
	})
}

// quickGELUBackward is dx = gy·(σ + 1.702·x·σ·(1−σ)), σ = σ(1.702x).
func quickGELUBackward[T Float](dx, gy, x []T) {
	parallelRows(len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			s := sigmoid(1.702 * v)
			dx[i] = gy[i] * T(s+1.702*v*s*(1-s))
		}
	})
}

// softmaxRow turns s into softmax(s) in place over its first n entries (max-subtracted) and
// zeroes the rest (the causally masked keys). float32 rows use expNonPos, float64 math.Exp.
func softmaxRow[T Float](s []T, n int) {
	m := s[0]
	for _, v := range s[1:n] {
		m = max(m, v)
	}
	var z float64
	if s32, ok := any(s).([]float32); ok {
		m32 := float32(m)
		for j, v := range s32[:n] {
			e := expNonPos(float64(v - m32))
			s32[j] = float32(e)
			z += e
		}
	} else {
		for j := range n {
			e := math.Exp(float64(s[j] - m))
			s[j] = T(e)
			z += e
		}
	}
	inv := 1 / z
	for j := range n {
		s[j] = T(float64(s[j]) * inv)
	}
	clear(s[n:])
}

// expTable holds 2^(j/64), j = 0..63, for expNonPos.
var expTable = func() (t [64]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 64)
	}
	return t
}()

// expNonPos is e^x for x <= 0 (softmax's max-subtracted scores), with relative error below
// 5e-12: x = (k/64)·ln 2 + r, |r| < ln 2/64, e^x = 2^(k>>6) · 2^((k&63)/64) · e^r, e^r by
// a degree-4 polynomial. Below −700 it is 0 (float32 underflows long before); NaN stays NaN.
// About three times faster than math.Exp, and inlined.
func expNonPos(x float64) float64 {
	if !(x >= -700) {
		if x != x {
			return x
		}
		return 0
	}
	const ln2by64, inv = 0.6931471805599453 / 64, 64 / 0.6931471805599453
	k := int(x * inv) // truncated toward 0: r = x − k·ln2/64 is in (−ln2/64, 0]
	r := x - float64(k)*ln2by64
	p := 1 + r*(1+r*(0.5+r*(1.0/6+r*(1.0/24))))
	scale := math.Float64frombits(uint64(k>>6+1023) << 52)
	return scale * expTable[k&63] * p
}
