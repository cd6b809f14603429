package nn

import (
	"math"
	"testing"
)

// TestNormFast bounds the float32 kernels' interpolated Φ and φ against math.Erf and
// math.Exp, inside the table, at its edges and beyond, and checks NaN and ±Inf.
func TestNormFast(t *testing.T) {
	worstC, worstP := 0.0, 0.0
	for x := -9.0; x <= 9; x += 1.0 / 1024 / 3 {
		c, p := normFast(x)
		worstC = max(worstC, math.Abs(c-0.5*math.Erfc(-x/math.Sqrt2)))
		worstP = max(worstP, math.Abs(p-math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)))
	}
	if worstC > 5e-9 || worstP > 5e-9 {
		t.Errorf("interpolation error Φ %.2g, φ %.2g > 5e-9", worstC, worstP)
	}
	t.Logf("worst error Φ %.2g, φ %.2g", worstC, worstP)
	for _, tc := range []struct{ x, cdf, pdf float64 }{
		{math.Inf(1), 1, 0}, {math.Inf(-1), 0, 0}, {8, 1, 0}, {-8, 0, 0}, {0, 0.5, 1 / math.Sqrt(2*math.Pi)},
	} {
		c, p := normFast(tc.x)
		if math.Abs(c-tc.cdf) > 1e-12 || math.Abs(p-tc.pdf) > 1e-12 {
			t.Errorf("normFast(%g) = %g, %g, want %g, %g", tc.x, c, p, tc.cdf, tc.pdf)
		}
	}
	if c, p := normFast(math.NaN()); !math.IsNaN(c) || !math.IsNaN(p) {
		t.Errorf("normFast(NaN) = %g, %g", c, p)
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
