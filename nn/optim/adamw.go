// Package optim updates nn.Param buffers: AdamW with decoupled weight decay as
// torch.optim.AdamW computes it, open_clip's learning-rate schedules, and gradient clipping
// and accumulation helpers. It works on the flat Value and Grad buffers only, so it knows
// nothing about the graph library that fills them.
package optim

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/clipgo/clipgo/nn"
)

// AdamWConfig holds AdamW's hyper-parameters. The learning rate is not part of it: a schedule
// sets it at every step (Step's argument), as open_clip does.
type AdamWConfig struct {
	Beta1, Beta2 float64 // moment decay rates, in [0, 1)
	Eps          float64 // added to the bias-corrected sqrt of the second moment, > 0
	WeightDecay  float64 // decoupled decay, applied only to params with Decay set, >= 0
}

// DefaultAdamW is the reference's setting (../shared/peers/clip_step.py, open_clip's CLIP
// recipe): betas (0.9, 0.98), eps 1e-6, weight decay 0.2.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2}
}

// Validate reports a hyper-parameter outside its range.
func (c AdamWConfig) Validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("adamw: beta1 %v outside [0, 1)", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("adamw: beta2 %v outside [0, 1)", c.Beta2)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 1):
		return fmt.Errorf("adamw: eps %v must be positive and finite", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 1):
		return fmt.Errorf("adamw: weight decay %v must be non-negative and finite", c.WeightDecay)
	}
	return nil
}

// ChunkSize is the number of elements one worker updates at a time. Large parameters are cut
// into chunks of this size so that several workers share them; 64 Ki float32 per buffer keeps
// the four streams of a chunk (value, grad, m, v: 1 MiB) within a core's L2.
const ChunkSize = 1 << 16

// StepKey is the State key of the step count (a one-element slice, as torch stores it as a
// float tensor).
const StepKey = "step"

// chunk is a contiguous range [lo, hi) of parameter p.
type chunk struct{ p, lo, hi int }

// AdamW is torch.optim.AdamW (amsgrad off, maximize off) over a fixed list of parameters,
// fused into one pass per element: decay, both moments and the update are computed while the
// four buffers are in cache. All parameters share one step count (torch counts per parameter,
// which is the same when every parameter is stepped every time). Step allocates nothing when
// Workers is 1 and one small goroutine wrapper per extra worker otherwise.
type AdamW struct {
	Config AdamWConfig
	// Workers is the number of goroutines Step uses; it defaults to GOMAXPROCS, capped at the
	// number of chunks.
	Workers int

	params []*nn.Param
	m, v   [][]float32 // first and second moments, one buffer per param, len == Size()
	scale  []float64   // per param, its learning rate over the step's (SetLRScales)
	step   int64
	chunks []chunk
	k      coeffs         // this step's scalars, shared read-only by the workers
	pk     []paramCoeffs  // this step's scalars that depend on the param's learning rate
	next   atomic.Int64   // index of the next chunk to update
	wg     sync.WaitGroup // the workers of the current step
}

// NewAdamW returns an optimiser over params with zero moments at step 0. Names must be unique
// and non-empty (they key the checkpoint state), and Value and Grad must both hold Size()
// elements. Locked params (nn.Param.Locked) are left out: no moments, no update, nothing in
// State.
func NewAdamW(params []*nn.Param, cfg AdamWConfig) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &AdamW{Config: cfg, Workers: runtime.GOMAXPROCS(0)}
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		if p == nil {
			return nil, fmt.Errorf("adamw: param %d is nil", i)
		}
		if p.Locked {
			continue
		}
		j := len(o.params) // p's index among the updated params
		o.params = append(o.params, p)
		o.scale = append(o.scale, 1)
		if p.Name == "" {
			return nil, fmt.Errorf("adamw: param %d has no name", i)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("adamw: param %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if err := checkBuffers(p); err != nil {
			return nil, fmt.Errorf("adamw: %w", err)
		}
		n := p.Size()
		o.m = append(o.m, make([]float32, n))
		o.v = append(o.v, make([]float32, n))
		for lo := 0; lo < n; lo += ChunkSize {
			o.chunks = append(o.chunks, chunk{p: j, lo: lo, hi: min(lo+ChunkSize, n)})
		}
	}
	o.pk = make([]paramCoeffs, len(o.params))
	return o, nil
}

// SetLRScales gives the params named in scales a learning rate of the step's times their
// scale (open_clip's param-group lr_scale, as layer-wise learning-rate decay sets it); the
// others keep 1. Each scale must be finite and non-negative, and each name an updated param.
func (o *AdamW) SetLRScales(scales map[string]float64) error {
	idx := make(map[string]int, len(o.params))
	for i, p := range o.params {
		idx[p.Name] = i
	}
	for name, s := range scales {
		i, ok := idx[name]
		switch {
		case !ok:
			return fmt.Errorf("adamw: learning-rate scale for %q, which is no param this optimiser updates (locked, or none of that name)", name)
		case !(s >= 0) || math.IsInf(s, 1):
			return fmt.Errorf("adamw: learning-rate scale %v of %q must be non-negative and finite", s, name)
		}
		o.scale[i] = s
	}
	return nil
}

// LRScale returns the learning-rate scale of param i of Params.
func (o *AdamW) LRScale(i int) float64 { return o.scale[i] }

func checkBuffers(p *nn.Param) error {
	n := p.Size()
	if n < 0 {
		return fmt.Errorf("param %q: negative shape %v", p.Name, p.Shape)
	}
	if len(p.Value) != n || len(p.Grad) != n {
		return fmt.Errorf("param %q shape %v: %d elements but len(Value)=%d, len(Grad)=%d",
			p.Name, p.Shape, n, len(p.Value), len(p.Grad))
	}
	return nil
}

// Params returns the parameters the optimiser updates, in order.
func (o *AdamW) Params() []*nn.Param { return o.params }

// Steps returns the number of steps taken (torch's state["step"]).
func (o *AdamW) Steps() int64 { return o.step }

// coeffs are one step's scalars, rounded to float32 where torch's kernels round them.
type coeffs struct {
	b1, c1, b2, c2 float32 // β1, 1-β1, β2, 1-β2
	bc2sqrt        float32 // sqrt(1 - β2^t)
	eps            float32
}

// paramCoeffs are one step's scalars that follow a param's own learning rate lr·scale.
type paramCoeffs struct {
	decay   float32 // 1 - lr·wd
	negStep float32 // -lr / (1 - β1^t)
}

// Step applies one AdamW update with learning rate lr (times the param's scale, SetLRScales)
// to every parameter, reading Grad and writing Value:
//
//	p ← p·(1 − lr·wd)                      (Decay params only)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g·g
//	p ← p − lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
//
// with the operations in torch 1.13's order (_single_tensor_adamw), float32 per element and
// the scalars in float64 until they reach the kernel. It fails, changing nothing, when lr is
// negative or not finite or a buffer was resized since NewAdamW.
func (o *AdamW) Step(lr float64) error {
	if !(lr >= 0) || math.IsInf(lr, 1) {
		return fmt.Errorf("adamw step %d: learning rate %v must be non-negative and finite", o.step+1, lr)
	}
	for _, p := range o.params {
		if err := checkBuffers(p); err != nil {
			return fmt.Errorf("adamw step %d: %w", o.step+1, err)
		}
	}
	o.step++
	c := o.Config
	t := float64(o.step)
	bc1 := 1 - math.Pow(c.Beta1, t)
	bc2 := 1 - math.Pow(c.Beta2, t)
	o.k = coeffs{
		b1:      float32(c.Beta1),
		c1:      float32(1 - c.Beta1),
		b2:      float32(c.Beta2),
		c2:      float32(1 - c.Beta2),
		bc2sqrt: float32(math.Sqrt(bc2)),
		eps:     float32(c.Eps),
	}
	for i, s := range o.scale {
		plr := lr * s // lr itself at scale 1, as torch's param group has it
		o.pk[i] = paramCoeffs{decay: float32(1 - plr*c.WeightDecay), negStep: float32(-(plr / bc1))}
	}
	workers := min(max(o.Workers, 1), len(o.chunks))
	if workers <= 1 {
		for _, ch := range o.chunks {
			o.update(ch)
		}
		return nil
	}
	o.next.Store(0)
	o.wg.Add(workers)
	for range workers - 1 {
		go o.work()
	}
	o.work() // the caller is a worker too
	o.wg.Wait()
	return nil
}

// work updates chunks until none is left; Step runs it on each worker goroutine.
func (o *AdamW) work() {
	defer o.wg.Done()
	for {
		i := int(o.next.Add(1)) - 1
		if i >= len(o.chunks) {
			return
		}
		o.update(o.chunks[i])
	}
}

// update runs the fused kernel over one chunk.
func (o *AdamW) update(ch chunk) {
	k, pk := &o.k, o.pk[ch.p]
	p := o.params[ch.p]
	val := p.Value[ch.lo:ch.hi]
	grad := p.Grad[ch.lo:ch.hi]
	m := o.m[ch.p][ch.lo:ch.hi]
	v := o.v[ch.p][ch.lo:ch.hi]
	m = m[:len(val)]
	v = v[:len(val)]
	grad = grad[:len(val)]
	decay := float32(1)
	if p.Decay {
		decay = pk.decay
	}
	for i, x := range val {
		g := grad[i]
		// torch: exp_avg.mul_(β1).add_(grad, alpha=1-β1); its AVX2 kernel fuses the add
		// (fmadd): (1-β1)·g is not rounded before the sum. In float64 that product is exact
		// and the sum is rounded twice (to float64, then float32), which differs from one
		// rounding only on rare halfway cases (none in TestAdamWMatchesTorch).
		mi := float32(float64(m[i]*k.b1) + float64(g)*float64(k.c1))
		// torch: exp_avg_sq.mul_(β2).addcmul_(g, g, value=1-β2) = v·β2 + ((1-β2)·g)·g, the
		// last multiply-add fused by the compiler of torch's AVX2 kernel.
		vi := float32(float64(v[i]*k.b2) + float64(k.c2*g)*float64(g))
		// torch: denom = sqrt(v)/sqrt(bc2) + eps; p.addcdiv_(m, denom, value=-step) = p + (-step·m)/denom.
		den := float32(math.Sqrt(float64(vi)))/k.bc2sqrt + k.eps
		// The explicit conversions round each product, so that Go (which may fuse a
		// multiply-add, e.g. with GOAMD64=v3) computes torch's two separate kernels.
		val[i] = float32(x*decay) + float32(pk.negStep*mi)/den
		m[i], v[i] = mi, vi
	}
}

// State returns the optimiser state for a checkpoint: "exp_avg.<name>" and
// "exp_avg_sq.<name>" for every parameter (torch's names, flat, in the parameter's row-major
// order) and StepKey holding the step count. The slices are copies.
func (o *AdamW) State() map[string][]float32 {
	s := make(map[string][]float32, 2*len(o.params)+1)
	for i, p := range o.params {
		s["exp_avg."+p.Name] = append([]float32(nil), o.m[i]...)
		s["exp_avg_sq."+p.Name] = append([]float32(nil), o.v[i]...)
	}
	s[StepKey] = []float32{float32(o.step)}
	return s
}

// MaxStateSteps bounds the step count LoadState accepts: float32 holds every integer up to 2^24.
const MaxStateSteps = 1 << 24

// LoadState replaces the moments and step count with s, as State returns it. Every key must
// be present with the parameter's element count, the step a non-negative integer, and no
// other key present; on error nothing changes. All problems found are reported together.
func (o *AdamW) LoadState(s map[string][]float32) error {
	var errs []error
	want := map[string]bool{StepKey: true}
	for i, p := range o.params {
		for _, key := range []string{"exp_avg." + p.Name, "exp_avg_sq." + p.Name} {
			want[key] = true
			got, ok := s[key]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("missing %q", key))
			case len(got) != len(o.m[i]):
				errs = append(errs, fmt.Errorf("%q has %d elements, param %q shape %v has %d",
					key, len(got), p.Name, p.Shape, len(o.m[i])))
			}
		}
	}
	for key := range s {
		if !want[key] {
			errs = append(errs, fmt.Errorf("unexpected key %q (no such parameter)", key))
		}
	}
	var step int64
	switch st, ok := s[StepKey]; {
	case !ok:
		errs = append(errs, fmt.Errorf("missing %q", StepKey))
	case len(st) != 1:
		errs = append(errs, fmt.Errorf("%q has %d elements, want 1", StepKey, len(st)))
	case !(st[0] >= 0 && st[0] <= MaxStateSteps) || st[0] != float32(math.Trunc(float64(st[0]))):
		errs = append(errs, fmt.Errorf("%q = %v is not an integer in [0, %d]", StepKey, st[0], MaxStateSteps))
	default:
		step = int64(st[0])
	}
	if len(errs) > 0 {
		return fmt.Errorf("adamw: load state: %w", errors.Join(errs...))
	}
	for i, p := range o.params {
		copy(o.m[i], s["exp_avg."+p.Name])
		copy(o.v[i], s["exp_avg_sq."+p.Name])
	}
	o.step = step
	return nil
}
