package optim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/nn"
)

func newParam(name string, shape []int, decay bool, rng *rand.Rand) *nn.Param {
	p := &nn.Param{Name: name, Shape: shape, Decay: decay}
	p.Value = make([]float32, p.Size())
	p.Grad = make([]float32, p.Size())
	for i := range p.Value {
		p.Value[i] = float32(rng.NormFloat64())
	}
	return p
}

func fillGrads(ps []*nn.Param, rng *rand.Rand) {
	for _, p := range ps {
		for i := range p.Grad {
			p.Grad[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
}

// TestAdamWFormula checks several steps against AdamW written out in float64, for both a
// decayed and an undecayed param and several hyper-parameter settings.
func TestAdamWFormula(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  AdamWConfig
		lrs  []float64
	}{
		{"default", DefaultAdamW(), []float64{1e-3, 2e-3, 3e-3, 2e-3, 1e-3}},
		{"no decay, adam betas", AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, []float64{1e-2, 1e-2, 1e-2}},
		{"beta1 0, big eps", AdamWConfig{Beta1: 0, Beta2: 0.5, Eps: 1e-2, WeightDecay: 1}, []float64{0.1, 0.05}},
		{"lr 0", DefaultAdamW(), []float64{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ps := []*nn.Param{newParam("w", []int{3, 4}, true, rng), newParam("b", []int{4}, false, rng)}
			type ref struct{ p, m, v []float64 }
			refs := make([]ref, len(ps))
			for j, p := range ps {
				refs[j] = ref{make([]float64, p.Size()), make([]float64, p.Size()), make([]float64, p.Size())}
				for i, x := range p.Value {
					refs[j].p[i] = float64(x)
				}
			}
			opt, err := NewAdamW(ps, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := tc.cfg
			for s, lr := range tc.lrs {
				fillGrads(ps, rng)
				if err := opt.Step(lr); err != nil {
					t.Fatal(err)
				}
				step := float64(s + 1)
				for j, p := range ps {
					r := refs[j]
					for i, g32 := range p.Grad {
						g := float64(g32)
						if p.Decay {
							r.p[i] *= 1 - lr*c.WeightDecay
						}
						r.m[i] = c.Beta1*r.m[i] + (1-c.Beta1)*g
						r.v[i] = c.Beta2*r.v[i] + (1-c.Beta2)*g*g
						mhat := r.m[i] / (1 - math.Pow(c.Beta1, step))
						vhat := r.v[i] / (1 - math.Pow(c.Beta2, step))
						r.p[i] -= lr * mhat / (math.Sqrt(vhat) + c.Eps)
					}
				}
			}
			if opt.Steps() != int64(len(tc.lrs)) {
				t.Errorf("Steps() = %d, want %d", opt.Steps(), len(tc.lrs))
			}
			st := opt.State()
			for j, p := range ps {
				for _, c := range []struct {
					what string
					got  []float32
					want []float64
				}{{"value", p.Value, refs[j].p}, {"exp_avg", st["exp_avg."+p.Name], refs[j].m}, {"exp_avg_sq", st["exp_avg_sq."+p.Name], refs[j].v}} {
					for i := range c.want {
						// 1e-6 relative, plus float32 rounding of the terms (grads ~0.1) where they cancel
						if d := math.Abs(float64(c.got[i]) - c.want[i]); d > 1e-6*math.Abs(c.want[i])+2e-8 {
							t.Errorf("%s %s[%d] = %.9g, float64 formula %.9g", p.Name, c.what, i, c.got[i], c.want[i])
						}
					}
				}
			}
		})
	}
}

// TestAdamWDecayOnlyWhereDecay: with zero gradients the moments stay 0, so the update term
// is exactly 0 and only the decay remains: Decay params shrink by (1 − lr·wd), the others
// do not move.
func TestAdamWDecayOnlyWhereDecay(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	w := newParam("visual.proj", []int{4, 3}, true, rng)
	b := newParam("ln_final.bias", []int{3}, false, rng)
	w0, b0 := slices.Clone(w.Value), slices.Clone(b.Value)
	opt, err := NewAdamW([]*nn.Param{w, b}, DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	const lr = 0.1
	if err := opt.Step(lr); err != nil {
		t.Fatal(err)
	}
	decay := float32(1 - lr*0.2)
	for i := range w0 {
		if w.Value[i] != w0[i]*decay {
			t.Errorf("decayed %s[%d] = %v, want %v·%v = %v", w.Name, i, w.Value[i], w0[i], decay, w0[i]*decay)
		}
	}
	if !slices.Equal(b.Value, b0) {
		t.Errorf("undecayed %s moved: %v, was %v", b.Name, b.Value, b0)
	}
}

// TestAdamWWorkersAgree: the chunked parallel update gives bit-identical results for any
// number of workers, on params larger than a chunk.
func TestAdamWWorkersAgree(t *testing.T) {
	var results [][]float32
	for _, workers := range []int{1, 2, 3, 0} {
		rng := rand.New(rand.NewPCG(5, 6))
		ps := []*nn.Param{
			newParam("big", []int{3*ChunkSize + 17}, true, rng),
			newParam("small", []int{5}, false, rng),
			newParam("scalar", nil, false, rng),
		}
		opt, err := NewAdamW(ps, DefaultAdamW())
		if err != nil {
			t.Fatal(err)
		}
		opt.Workers = workers
		for range 3 {
			fillGrads(ps, rng)
			if err := opt.Step(1e-3); err != nil {
				t.Fatal(err)
			}
		}
		var all []float32
		for _, p := range ps {
			all = append(all, p.Value...)
		}
		results = append(results, all)
	}
	for i := 1; i < len(results); i++ {
		if !slices.Equal(results[0], results[i]) {
			t.Errorf("run %d differs from the single-worker run", i)
		}
	}
}

func TestNewAdamWErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	good := func(name string) *nn.Param { return newParam(name, []int{2, 2}, true, rng) }
	short := good("short")
	short.Grad = short.Grad[:3]
	bad := func(f func(*AdamWConfig)) AdamWConfig { c := DefaultAdamW(); f(&c); return c }
	for _, tc := range []struct {
		name   string
		params []*nn.Param
		cfg    AdamWConfig
		want   string
	}{
		{"nil param", []*nn.Param{good("a"), nil}, DefaultAdamW(), "param 1 is nil"},
		{"no name", []*nn.Param{good("")}, DefaultAdamW(), "has no name"},
		{"duplicate", []*nn.Param{good("a"), good("a")}, DefaultAdamW(), `"a" listed twice`},
		{"short grad", []*nn.Param{short}, DefaultAdamW(), "len(Grad)=3"},
		{"beta1 1", nil, bad(func(c *AdamWConfig) { c.Beta1 = 1 }), "beta1"},
		{"beta2 NaN", nil, bad(func(c *AdamWConfig) { c.Beta2 = math.NaN() }), "beta2"},
		{"eps 0", nil, bad(func(c *AdamWConfig) { c.Eps = 0 }), "eps"},
		{"wd negative", nil, bad(func(c *AdamWConfig) { c.WeightDecay = -0.1 }), "weight decay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAdamW(tc.params, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAdamWStepErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	p := newParam("w", []int{2, 3}, true, rng)
	opt, err := NewAdamW([]*nn.Param{p}, DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	v0 := slices.Clone(p.Value)
	for _, lr := range []float64{-1e-3, math.NaN(), math.Inf(1)} {
		if err := opt.Step(lr); err == nil || !strings.Contains(err.Error(), "learning rate") {
			t.Errorf("Step(%v): error %v, want a learning rate error", lr, err)
		}
	}
	p.Value = p.Value[:5]
	if err := opt.Step(1e-3); err == nil || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("Step after resizing Value: error %v, want one naming the param", err)
	}
	if opt.Steps() != 0 || !slices.Equal(p.Value, v0[:5]) {
		t.Errorf("failed steps changed state: steps %d, value %v", opt.Steps(), p.Value)
	}
}

// TestAdamWStateRoundTrip: an optimiser restored from State continues exactly as the original.
func TestAdamWStateRoundTrip(t *testing.T) {
	mk := func() ([]*nn.Param, *AdamW) {
		rng := rand.New(rand.NewPCG(11, 12))
		ps := []*nn.Param{newParam("a.weight", []int{3, 5}, true, rng), newParam("logit_scale", nil, false, rng)}
		opt, err := NewAdamW(ps, DefaultAdamW())
		if err != nil {
			t.Fatal(err)
		}
		return ps, opt
	}
	ps1, opt1 := mk()
	rng := rand.New(rand.NewPCG(13, 14))
	for range 3 {
		fillGrads(ps1, rng)
		if err := opt1.Step(1e-2); err != nil {
			t.Fatal(err)
		}
	}
	st := opt1.State()
	if got := st[StepKey]; !slices.Equal(got, []float32{3}) {
		t.Errorf("state step = %v, want [3]", got)
	}
	if len(st) != 5 {
		t.Errorf("state has %d keys, want 5: %v", len(st), slices.Sorted(func(yield func(string) bool) {
			for k := range st {
				if !yield(k) {
					return
				}
			}
		}))
	}
	ps2, opt2 := mk()
	for i := range ps1 {
		copy(ps2[i].Value, ps1[i].Value)
	}
	if err := opt2.LoadState(st); err != nil {
		t.Fatal(err)
	}
	st["exp_avg.a.weight"][0] = 42 // State returns copies: this must not reach opt1 or opt2
	for range 2 {
		fillGrads(ps1, rng)
		for i := range ps1 {
			copy(ps2[i].Grad, ps1[i].Grad)
		}
		if err := opt1.Step(1e-2); err != nil {
			t.Fatal(err)
		}
		if err := opt2.Step(1e-2); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ps1 {
		if !slices.Equal(ps1[i].Value, ps2[i].Value) {
			t.Errorf("%s: restored run %v, original %v", ps1[i].Name, ps2[i].Value, ps1[i].Value)
		}
	}
	if opt2.Steps() != 5 {
		t.Errorf("restored Steps() = %d, want 5", opt2.Steps())
	}
}

func TestAdamWLoadStateErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	ps := []*nn.Param{newParam("w", []int{2, 3}, true, rng), newParam("b", []int{3}, false, rng)}
	opt, err := NewAdamW(ps, DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	fillGrads(ps, rng)
	if err := opt.Step(1e-3); err != nil {
		t.Fatal(err)
	}
	before := opt.State()
	for _, tc := range []struct {
		name string
		edit func(map[string][]float32)
		want []string
	}{
		{"missing moment", func(s map[string][]float32) { delete(s, "exp_avg_sq.b") }, []string{`missing "exp_avg_sq.b"`}},
		{"wrong length", func(s map[string][]float32) { s["exp_avg.w"] = s["exp_avg.w"][:5] }, []string{`"exp_avg.w" has 5 elements`, "[2 3]"}},
		{"extra key", func(s map[string][]float32) { s["exp_avg.x"] = []float32{1} }, []string{`unexpected key "exp_avg.x"`}},
		{"missing step", func(s map[string][]float32) { delete(s, StepKey) }, []string{`missing "step"`}},
		{"fractional step", func(s map[string][]float32) { s[StepKey] = []float32{1.5} }, []string{"not an integer"}},
		{"negative step", func(s map[string][]float32) { s[StepKey] = []float32{-1} }, []string{"not an integer"}},
		{"NaN step", func(s map[string][]float32) { s[StepKey] = []float32{float32(math.NaN())} }, []string{"not an integer"}},
		{"two steps", func(s map[string][]float32) { s[StepKey] = []float32{1, 2} }, []string{"want 1"}},
		{"several problems", func(s map[string][]float32) { delete(s, "exp_avg.w"); delete(s, "exp_avg.b") }, []string{`"exp_avg.w"`, `"exp_avg.b"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := opt.State()
			for k := range s {
				s[k] = slices.Clone(s[k])
			}
			for k := range s {
				if k != StepKey {
					for i := range s[k] {
						s[k][i] = 7 // would show if a failed load wrote anything
					}
				}
			}
			tc.edit(s)
			err := opt.LoadState(s)
			if err == nil {
				t.Fatal("LoadState accepted a bad state")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			after := opt.State()
			for k, v := range before {
				if !slices.Equal(after[k], v) {
					t.Errorf("failed load changed %q", k)
				}
			}
		})
	}
}
