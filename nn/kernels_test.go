package nn

import (
	"math"
	"testing"
)

// TestErfExp bounds the float32 kernels' erf approximation against math.Erf.
func TestErfExp(t *testing.T) {
	worst := 0.0
	for x := -8.0; x <= 8; x += 1e-3 {
		erf, e := erfExp(x)
		worst = max(worst, math.Abs(erf-math.Erf(x/math.Sqrt2)))
		if d := math.Abs(e - math.Exp(-x*x/2)); d > 1e-15 {
			t.Fatalf("exp(-x²/2) at %g off by %g", x, d)
		}
	}
	if worst > 1.5e-7 {
		t.Errorf("erf approximation error %g > 1.5e-7", worst)
	}
	t.Logf("worst erf error %.2g", worst)
}
