package optim

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/nn"
)

// TestAdamWLockedAndScaled: a locked param is left out (no moments, nothing in State, its
// values untouched even with a gradient buffer), and a learning-rate scale s at lr is the
// same update, to the bit, as scale 1 at lr·s.
func TestAdamWLockedAndScaled(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	mk := func() []*nn.Param {
		r := rand.New(rand.NewPCG(5, 6))
		return []*nn.Param{newParam("w", []int{3, 4}, true, r), newParam("b", []int{4}, false, r), newParam("frozen", []int{2, 2}, true, r)}
	}
	scaled, plain := mk(), mk()
	scaled[2].Locked = true
	before := slices.Clone(scaled[2].Value)
	a, err := NewAdamW(scaled, DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(a.Params()); got != 2 {
		t.Fatalf("the optimiser updates %d params, want 2 (the locked one left out)", got)
	}
	if err := a.SetLRScales(map[string]float64{"w": 0.25, "b": 0.5}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetLRScales(map[string]float64{"frozen": 1}); err == nil {
		t.Error("a scale for a locked param was accepted")
	}
	if err := a.SetLRScales(map[string]float64{"w": -1}); err == nil {
		t.Error("a negative scale was accepted")
	}
	bw, _ := NewAdamW(plain[:1], DefaultAdamW())
	bb, _ := NewAdamW(plain[1:2], DefaultAdamW())
	for _, lr := range []float64{1e-3, 3e-3, 2e-3} {
		fillGrads(scaled, rng)
		copy(plain[0].Grad, scaled[0].Grad)
		copy(plain[1].Grad, scaled[1].Grad)
		if err := a.Step(lr); err != nil {
			t.Fatal(err)
		}
		bw.Step(lr * 0.25)
		bb.Step(lr * 0.5)
	}
	for i := range 2 {
		if !slices.Equal(scaled[i].Value, plain[i].Value) {
			t.Errorf("%s: scale s at lr differs from scale 1 at lr·s", scaled[i].Name)
		}
	}
	if !slices.Equal(scaled[2].Value, before) {
		t.Error("the locked param changed")
	}
	for k := range a.State() {
		if strings.HasSuffix(k, ".frozen") {
			t.Errorf("the state holds %q of the locked param", k)
		}
	}
}
