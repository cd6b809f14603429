package optim

import (
	"math"
	"slices"
	"testing"

	"github.com/clipgo/clipgo/nn"
)

func gradParams(grads ...[]float32) []*nn.Param {
	var ps []*nn.Param
	for i, g := range grads {
		ps = append(ps, &nn.Param{Name: string(rune('a' + i)), Shape: []int{len(g)},
			Value: make([]float32, len(g)), Grad: slices.Clone(g)})
	}
	return ps
}

func TestGradNormAndClip(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, tc := range []struct {
		name     string
		grads    [][]float32
		maxNorm  float64
		norm     float64   // NaN: want NaN
		clipped  []float32 // all grads flattened after clipping
		finite   bool
		firstBad string
	}{
		{"3-4-12 clipped", [][]float32{{3, 4}, {12}}, 1, 13, scaled(float32(1/(13+1e-6)), 3, 4, 12), true, ""},
		{"below max untouched", [][]float32{{3, 4}, {12}}, 20, 13, []float32{3, 4, 12}, true, ""},
		{"at max within 1e-6 clipped", [][]float32{{3}, {4}}, 5, 5, scaled(float32(5/(5+1e-6)), 3, 4), true, ""},
		{"empty", [][]float32{{}, {}}, 1, 0, []float32{}, true, ""},
		{"zeros", [][]float32{{0, 0}}, 1, 0, []float32{0, 0}, true, ""},
		{"inf left alone", [][]float32{{1}, {2, inf}}, 1, math.Inf(1), []float32{1, 2, inf}, false, "b"},
		{"NaN left alone", [][]float32{{nan}, {2}}, 1, math.NaN(), []float32{nan, 2}, false, "a"},
		{"-inf", [][]float32{{1}, {2}, {-inf}}, 1, math.Inf(1), []float32{1, 2, -inf}, false, "c"},
		{"inf inside a long gradient", [][]float32{{1, 2, 3, 4, 5}, {0, 0, 0, 0, 0, inf, 0, 0, 0}}, 1, math.Inf(1),
			[]float32{1, 2, 3, 4, 5, 0, 0, 0, 0, 0, inf, 0, 0, 0}, false, "b"},
		{"largest finite values", [][]float32{{math.MaxFloat32, -math.MaxFloat32, math.MaxFloat32, 1, 1}}, 1e39,
			math.Sqrt(3*float64(math.MaxFloat32)*float64(math.MaxFloat32) + 2),
			[]float32{math.MaxFloat32, -math.MaxFloat32, math.MaxFloat32, 1, 1}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := gradParams(tc.grads...)
			ok, bad := GradsFinite(ps)
			if ok != tc.finite || bad != tc.firstBad {
				t.Errorf("GradsFinite = %v, %q; want %v, %q", ok, bad, tc.finite, tc.firstBad)
			}
			n := GradNorm(ps)
			if !sameFloat(n, tc.norm) {
				t.Errorf("GradNorm = %v, want %v", n, tc.norm)
			}
			if n := ClipGradNorm(ps, tc.maxNorm); !sameFloat(n, tc.norm) {
				t.Errorf("ClipGradNorm returned %v, want the norm before clipping %v", n, tc.norm)
			}
			var got []float32
			for _, p := range ps {
				got = append(got, p.Grad...)
			}
			for i := range tc.clipped {
				if !sameFloat(float64(got[i]), float64(tc.clipped[i])) {
					t.Errorf("clipped grads %v, want %v", got, tc.clipped)
					break
				}
			}
		})
	}
}

// scaled returns gs times the float32 clip factor c, as torch's grad.mul_(clip_coef) computes it.
func scaled(c float32, gs ...float32) []float32 {
	for i := range gs {
		gs[i] *= c
	}
	return gs
}

func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) <= 1e-12*math.Abs(b)
}

func TestAccumulationHelpers(t *testing.T) {
	acc := gradParams([]float32{1, 2}, []float32{3})
	micro := gradParams([]float32{10, 20}, []float32{30})
	ZeroGrads(acc)
	for range 2 {
		if err := AddGrads(acc, micro); err != nil {
			t.Fatal(err)
		}
	}
	ScaleGrads(acc, 0.5)
	if !slices.Equal(acc[0].Grad, []float32{10, 20}) || !slices.Equal(acc[1].Grad, []float32{30}) {
		t.Errorf("mean of two micro-batches = %v %v, want [10 20] [30]", acc[0].Grad, acc[1].Grad)
	}

	for _, tc := range []struct {
		name string
		src  []*nn.Param
	}{
		{"count", gradParams([]float32{1, 2})},
		{"size", gradParams([]float32{1, 2}, []float32{3, 4})},
		{"name", []*nn.Param{{Name: "a", Grad: []float32{1, 2}}, {Name: "z", Grad: []float32{3}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := gradParams([]float32{1, 2}, []float32{3})
			if err := AddGrads(dst, tc.src); err == nil {
				t.Error("AddGrads accepted mismatched lists")
			}
			if !slices.Equal(dst[0].Grad, []float32{1, 2}) || !slices.Equal(dst[1].Grad, []float32{3}) {
				t.Errorf("failed AddGrads changed dst: %v %v", dst[0].Grad, dst[1].Grad)
			}
		})
	}
}
