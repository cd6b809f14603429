package nn

import (
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
