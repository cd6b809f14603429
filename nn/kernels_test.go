package nn

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

// TestGELUTables bounds the float32 kernels' interpolated Φ and Φ + x·φ against math.Erfc
// and math.Exp, inside the tables, at their edges and beyond, and checks NaN and ±Inf.
func TestGELUTables(t *testing.T) {
	worstC, worstD := 0.0, 0.0
	for x := -9.0; x <= 9; x += 1.0 / 1024 / 3 {
		worstC = max(worstC, math.Abs(geluCDF32(x)-normCDF(x)))
		worstD = max(worstD, math.Abs(geluDeriv32(x)-normCDF(x)-x*normPDF(x)))
	}
	if worstC > 2e-8 || worstD > 2e-8 {
		t.Errorf("interpolation error Φ %.2g, Φ+xφ %.2g > 2e-8", worstC, worstD)
	}
	t.Logf("worst error Φ %.2g, Φ+xφ %.2g", worstC, worstD)
	for _, tc := range []struct{ x, cdf, deriv float64 }{
		{math.Inf(1), 1, 1}, {math.Inf(-1), 0, 0}, {8, 1, 1}, {-8, 0, 0}, {0, 0.5, 0.5},
	} {
		c, d := geluCDF32(tc.x), geluDeriv32(tc.x)
		if math.Abs(c-tc.cdf) > 1e-12 || math.Abs(d-tc.deriv) > 1e-12 {
			t.Errorf("x = %g: Φ %g, derivative %g, want %g, %g", tc.x, c, d, tc.cdf, tc.deriv)
		}
	}
	if c, d := geluCDF32(math.NaN()), geluDeriv32(math.NaN()); !math.IsNaN(c) || !math.IsNaN(d) {
		t.Errorf("NaN gives %g, %g", c, d)
	}
}

// TestGELUFloat32MatchesFloat64 compares the float32 GELU kernel (interpolated) with the
// float64 one (math.Erf) on values and derivatives.
func TestGELUFloat32MatchesFloat64(t *testing.T) {
	const n = 4001
	x32, y32, d32, g32 := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	x64, y64, d64, g64 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		x64[i] = -10 + 20*float64(i)/(n-1)
		x32[i] = float32(x64[i])
		x64[i] = float64(x32[i])
		g32[i], g64[i] = 1, 1
	}
	geluForward(y32, x32)
	geluForward(y64, x64)
	geluBackward(d32, g32, x32)
	geluBackward(d64, g64, x64)
	for i := range n {
		if math.Abs(float64(y32[i])-y64[i]) > 1e-6*max(1, math.Abs(y64[i])) || math.Abs(float64(d32[i])-d64[i]) > 1e-6 {
			t.Fatalf("x=%g: float32 gelu %g (d %g), float64 %g (d %g)", x64[i], y32[i], d32[i], y64[i], d64[i])
		}
	}
}

// TestExpNonPos bounds expNonPos's relative error against math.Exp over softmax's range and
// checks its edges.
func TestExpNonPos(t *testing.T) {
	worst := 0.0
	for x := -700.0; x <= 0; x += 0.0007 {
		worst = max(worst, math.Abs(expNonPos(x)-math.Exp(x))/math.Exp(x))
	}
	for x := -1.0; x <= 0; x += 1e-6 {
		worst = max(worst, math.Abs(expNonPos(x)-math.Exp(x))/math.Exp(x))
	}
	if worst > 5e-12 {
		t.Errorf("relative error %.2g > 5e-12", worst)
	}
	t.Logf("worst relative error %.2g", worst)
	for _, tc := range []struct{ x, want float64 }{{0, 1}, {-701, 0}, {math.Inf(-1), 0}} {
		if got := expNonPos(tc.x); got != tc.want {
			t.Errorf("expNonPos(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if !math.IsNaN(expNonPos(math.NaN())) {
		t.Error("expNonPos(NaN) is not NaN")
	}
}

// TestPeriodicRowSum compares the blocked, parallel sum with a plain float64 loop, on sizes
// that take the serial and the parallel path, widths that are not a multiple of the block.
func TestPeriodicRowSum(t *testing.T) {
	for _, tc := range []struct{ rows, period, c int }{{6, 1, 5}, {6, 3, 5}, {600, 1, 300}, {777, 7, 129}, {64 * 77, 77, 256}} {
		x := randomF32(tc.rows*tc.c, uint64(tc.c))
		got := make([]float32, tc.period*tc.c)
		periodicRowSum(got, x, tc.period, tc.c)
		for i := range got {
			var want float64
			for r := i / tc.c; r < tc.rows; r += tc.period {
				want += float64(x[r*tc.c+i%tc.c])
			}
			if got[i] != float32(want) {
				t.Fatalf("%+v: out[%d] = %g, want %g", tc, i, got[i], want)
			}
		}
	}
}

// ulpDiff is the distance between two float32 in units in the last place (0 for two NaNs,
// and for +0 against −0; huge for a NaN against a number).
func ulpDiff(a, b float32) float64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.Inf(1)
	}
	order := func(f float32) int64 { // monotone integer image of a float32
		u := int64(math.Float32bits(f))
		if u&(1<<31) != 0 {
			return -(u &^ (1 << 31))
		}
		return u
	}
	return math.Abs(float64(order(a) - order(b)))
}

// geluEdgeCases are inputs at and beyond the tables' edges and at the ends of float32.
var geluEdgeCases = []float32{
	0, float32(math.Copysign(0, -1)), 1e-45, -1e-45, 1e-40, -1e-40, 1.2e-38, -1.2e-38, 1e-20, -1e-20,
	8, -8, math.Nextafter32(8, 0), math.Nextafter32(-8, 0), math.Nextafter32(8, 9), math.Nextafter32(-8, -9),
	9.5, -9.5, 1e6, -1e6, math.MaxFloat32, -math.MaxFloat32,
	float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
}

// checkGELUAccuracy checks y = GELU(x) and d = GELU'(x) against the float64 erf forms: within
// 2 float32 ulp, or 1e-6 absolute (the tail below zero, where x·Φ(x) is tiny and the table's
// absolute error dominates); beyond the tables' range, where the kernels take Φ = 0 or 1,
// and for NaN and ±Inf, exactly what x·0 or x·1 gives.
func checkGELUAccuracy(t *testing.T, x, y, d []float32) {
	t.Helper()
	for i, v := range x {
		xv := float64(v)
		if math.IsNaN(xv) || math.Abs(xv) >= normRange {
			c := outside(xv)
			if wy, wd := float32(xv*c), float32(c); ulpDiff(y[i], wy) != 0 || ulpDiff(d[i], wd) != 0 {
				t.Fatalf("x = %g: gelu %g, derivative %g, want %g, %g", v, y[i], d[i], wy, wd)
			}
			continue
		}
		wy := xv * normCDF(xv)
		wd := normCDF(xv) + xv*normPDF(xv)
		if ulpDiff(y[i], float32(wy)) > 2 && math.Abs(float64(y[i])-wy) > 1e-6 {
			t.Fatalf("x = %g: gelu %g, want %g (%g ulp)", v, y[i], wy, ulpDiff(y[i], float32(wy)))
		}
		if ulpDiff(d[i], float32(wd)) > 2 && math.Abs(float64(d[i])-wd) > 1e-6 {
			t.Fatalf("x = %g: derivative %g, want %g (%g ulp)", v, d[i], wd, ulpDiff(d[i], float32(wd)))
		}
	}
}

// TestGELUFloat32Accuracy sweeps [−10, 10] densely (every 2⁻¹² and the float32 neighbours
// of the tables' knots) plus edge cases, on the Go loops and on the assembly where the CPU
// has it.
func TestGELUFloat32Accuracy(t *testing.T) {
	var x []float32
	for i := -10 * 4096; i <= 10*4096; i++ {
		v := float32(i) / 4096
		x = append(x, v, math.Nextafter32(v, -11), math.Nextafter32(v, 11))
	}
	x = append(x, geluEdgeCases...)
	y, d, ones := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
	for i := range ones {
		ones[i] = 1
	}
	for _, on := range []bool{false, true} {
		if on && !simdKernels {
			t.Log("no assembly kernels on this build or CPU: the Go loops only")
			continue
		}
		withSIMD(on, func() {
			geluForward32(y, x)
			geluBackward32(d, ones, x)
		})
		checkGELUAccuracy(t, x, y, d)
	}
}

// geluBothPaths runs the float32 GELU forward and backward on the Go loops and on the
// assembly and fails on any result that differs by more than 1 ulp (a fused multiply-add's
// rounding) or in NaN-ness.
func geluBothPaths(t *testing.T, x, gy []float32) {
	t.Helper()
	y0, y1, d0, d1 := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
	withSIMD(false, func() { geluForward32(y0, x); geluBackward32(d0, gy, x) })
	withSIMD(true, func() { geluForward32(y1, x); geluBackward32(d1, gy, x) })
	for i := range x {
		if ulpDiff(y0[i], y1[i]) > 1 || ulpDiff(d0[i], d1[i]) > 1 {
			t.Fatalf("x = %g, gy = %g: Go gives %g, %g; assembly %g, %g", x[i], gy[i], y0[i], d0[i], y1[i], d1[i])
		}
	}
}

// bytesToF32 reads little-endian float32 from b (fuzz input: any bit pattern).
func bytesToF32(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}

// FuzzGELUKernels compares the assembly GELU with the Go loops on arbitrary bit patterns
// (lengths that are not multiples of 4 exercise the tails) and checks both for accuracy.
func FuzzGELUKernels(f *testing.F) {
	if !simdKernels {
		f.Skip("no assembly kernels on this build or CPU to compare with the Go loops")
	}
	seed := make([]byte, 0, 4*len(geluEdgeCases))
	for _, v := range geluEdgeCases {
		seed = binary.LittleEndian.AppendUint32(seed, math.Float32bits(v))
	}
	f.Add(seed)
	f.Add(seed[:4*7])
	f.Add([]byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xbf, 0, 0, 0, 0x41, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		x := bytesToF32(b)
		gy := make([]float32, len(x))
		for i := range gy {
			gy[i] = 1
		}
		geluBothPaths(t, x, gy)
		y, d := make([]float32, len(x)), make([]float32, len(x))
		geluForward32(y, x)
		geluBackward32(d, gy, x)
		checkGELUAccuracy(t, x, y, d)
	})
}

// TestGELUSIMDMatchesGo compares the two paths on random data, all lengths up to 40 and
// misaligned starts, with random upstream gradients.
func TestGELUSIMDMatchesGo(t *testing.T) {
	if !simdKernels {
		t.Skip("no assembly kernels on this build or CPU to compare with the Go loops")
	}
	x, gy := randomF32(4096+3, 7), randomF32(4096+3, 8)
	for i := range x {
		x[i] *= 4
	}
	geluBothPaths(t, x, gy)
	for n := range 41 {
		geluBothPaths(t, x[3:3+n], gy[1:1+n])
	}
}

// lnReference is the layer norm of float32 rows of width c in float64 throughout: y, dx,
// dgamma, dbeta, and for each output the magnitude of the terms it sums (the scale its
// rounding error is relative to).
func lnReference(x, gamma, beta, gy []float32, c int) (y, dx, dg, db, ys, dxs []float64) {
	n := len(x) / c
	y, dx, ys, dxs = make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
	dg, db = make([]float64, c), make([]float64, c)
	for r := range n {
		xr := x[r*c : (r+1)*c]
		var s float64
		for _, v := range xr {
			s += float64(v)
		}
		mean := s / float64(c)
		var q float64
		for _, v := range xr {
			q += (float64(v) - mean) * (float64(v) - mean)
		}
		rstd := 1 / math.Sqrt(q/float64(c)+LayerNormEps)
		var m1, m2 float64
		for j, v := range xr {
			xh := (float64(v) - mean) * rstd
			g := float64(gy[r*c+j])
			y[r*c+j] = xh*float64(gamma[j]) + float64(beta[j])
			ys[r*c+j] = math.Abs(xh*float64(gamma[j])) + math.Abs(float64(beta[j]))
			dg[j] += g * xh
			db[j] += g
			m1 += g * float64(gamma[j])
			m2 += g * float64(gamma[j]) * xh
		}
		m1 /= float64(c)
		m2 /= float64(c)
		for j, v := range xr {
			xh := (float64(v) - mean) * rstd
			gg := float64(gy[r*c+j]) * float64(gamma[j])
			dx[r*c+j] = rstd * (gg - m1 - xh*m2)
			dxs[r*c+j] = rstd * (math.Abs(gg) + math.Abs(m1) + math.Abs(xh*m2))
		}
	}
	return y, dx, dg, db, ys, dxs
}

// checkLayerNorm runs the float32 layer norm forward and backward and compares it with
// lnReference: every output within rel of the magnitude of the terms it is made of.
func checkLayerNorm(t *testing.T, name string, x, gamma, beta, gy []float32, c int, rel float64) {
	t.Helper()
	y, dx, dg, db := make([]float32, len(x)), make([]float32, len(x)), make([]float32, c), make([]float32, c)
	ln := &lnState[float32]{c: c, eps: LayerNormEps}
	ln.forward(y, x, gamma, beta)
	ln.backward(dx, x, gamma, gy)
	ln.reduce(dg, 0)
	ln.reduce(db, c)
	wy, wdx, wdg, wdb, ys, dxs := lnReference(x, gamma, beta, gy, c)
	bad := func(got float32, want, scale float64) bool {
		return !(math.Abs(float64(got)-want) <= rel*scale+1e-30)
	}
	for i := range x {
		if bad(y[i], wy[i], ys[i]) || bad(dx[i], wdx[i], dxs[i]) {
			t.Fatalf("%s [%d]: y %g dx %g, want %g, %g", name, i, y[i], dx[i], wy[i], wdx[i])
		}
	}
	dgs, dbs := make([]float64, c), make([]float64, c)
	for i, g := range gy {
		dgs[i%c] += math.Abs(float64(g)) * 2 // |xh| is at most √c; 2 covers typical rows
		dbs[i%c] += math.Abs(float64(g))
	}
	for j := range c {
		if bad(dg[j], wdg[j], dgs[j]+math.Abs(wdg[j])) || bad(db[j], wdb[j], dbs[j]) {
			t.Fatalf("%s column %d: dgamma %g dbeta %g, want %g, %g", name, j, dg[j], db[j], wdg[j], wdb[j])
		}
	}
}

// TestLayerNormFloat32Accuracy checks the float32 layer norm, on the Go loops and the
// assembly, against float64 at the models' widths and odd ones, on rows with a large mean
// (10⁴ + noise of 10⁻²), constant rows and rows of one element.
func TestLayerNormFloat32Accuracy(t *testing.T) {
	for _, on := range []bool{false, true} {
		if on && !simdKernels {
			t.Log("no assembly kernels on this build or CPU: the Go loops only")
			continue
		}
		withSIMD(on, func() {
			for _, c := range []int{1, 3, 7, 128, 130, 512, 768} {
				const rows = 9
				x, gy, gamma, beta := randomF32(rows*c, uint64(c)), randomF32(rows*c, 2), randomF32(c, 3), randomF32(c, 4)
				for j := range c { // row 1: large mean; row 2: constant
					x[c+j] = 1e4 + 1e-2*x[c+j]
					x[2*c+j] = 3.25
				}
				name := fmt.Sprintf("simd %v, c %d", on, c)
				checkLayerNorm(t, name, x, gamma, beta, gy, c, 1e-5)
			}
		})
	}
}

// FuzzLayerNormKernels compares the assembly layer norm with the Go loops on rows read from
// the input (its first byte picks the width), values bounded to keep the variance finite.
func FuzzLayerNormKernels(f *testing.F) {
	if !simdKernels {
		f.Skip("no assembly kernels on this build or CPU to compare with the Go loops")
	}
	f.Add(byte(5), []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
	f.Add(byte(128), make([]byte, 4*256))
	f.Fuzz(func(t *testing.T, width byte, b []byte) {
		c := int(width)%200 + 1
		v := bytesToF32(b)
		n := len(v) / c
		if n == 0 {
			return
		}
		x, gy := make([]float32, n*c), make([]float32, n*c)
		gamma, beta := make([]float32, c), make([]float32, c)
		for i := range x {
			x[i] = sanitize(v[i], 1e6)
			gy[i] = sanitize(v[(i+1)%len(v)], 1e3)
		}
		for j := range c {
			gamma[j], beta[j] = sanitize(v[(j+2)%len(v)], 10), sanitize(v[(j+3)%len(v)], 10)
		}
		var out [2][4][]float32
		for k, on := range []bool{false, true} {
			y, dx, dg, db := make([]float32, len(x)), make([]float32, len(x)), make([]float32, c), make([]float32, c)
			withSIMD(on, func() {
				ln := &lnState[float32]{c: c, eps: LayerNormEps}
				ln.forward(y, x, gamma, beta)
				ln.backward(dx, x, gamma, gy)
				ln.reduce(dg, 0)
				ln.reduce(db, c)
			})
			out[k] = [4][]float32{y, dx, dg, db}
		}
		_, _, _, _, ys, dxs := lnReference(x, gamma, beta, gy, c)
		scale := [4]func(i int) float64{
			func(i int) float64 { return ys[i] }, func(i int) float64 { return dxs[i] },
			func(int) float64 { return math.Inf(1) }, func(int) float64 { return math.Inf(1) },
		}
		for k := range 4 {
			for i, a := range out[0][k] {
				b := out[1][k][i]
				if ulpDiff(a, b) > 4 && !(math.Abs(float64(a-b)) <= 1e-6*scale[k](i)) && !(k >= 2 && math.Abs(float64(a-b)) <= 1e-6*math.Abs(float64(a))+1e-3) {
					t.Fatalf("output %d [%d]: Go %g, assembly %g", k, i, a, b)
				}
			}
		}
	})
}

// sanitize maps any float32 to a finite value in [−limit, limit] (NaN to 0).
func sanitize(v float32, limit float64) float32 {
	f := float64(v)
	if f != f {
		return 0
	}
	return float32(math.Max(-limit, math.Min(limit, f)))
}
