package optim

import (
	"fmt"
	"math"
)

// Schedule gives the learning rate of a step, counted from 0. The trainer asks it once per
// step and passes the result to AdamW.Step (open_clip's schedulers assign it the same way).
type Schedule interface {
	LR(step int) float64
}

// Cosine is open_clip's cosine_lr (scheduler.py, as ../shared/peers/clip_step.py copies it):
// a linear warmup from Base/Warmup to Base over the first Warmup steps, then a half cosine
// from Base down to 0 at step Steps. Past Steps the cosine rises again, as open_clip's does;
// the trainer stops before.
type Cosine struct {
	Base   float64 // peak learning rate
	Warmup int     // warmup steps, >= 0
	Steps  int     // total steps including warmup, > Warmup
}

// LR returns base·(step+1)/warmup during warmup, else 0.5·(1+cos(π·e/es))·base with
// e = step−warmup and es = steps−warmup, evaluated in the reference's order.
func (c Cosine) LR(step int) float64 {
	if step < c.Warmup {
		return warmupLR(c.Base, step, c.Warmup)
	}
	e, es := float64(step-c.Warmup), float64(c.Steps-c.Warmup)
	return 0.5 * (1 + math.Cos(math.Pi*e/es)) * c.Base
}

// Validate reports a schedule the reference would divide by zero on, or a negative rate.
func (c Cosine) Validate() error {
	if err := checkBase(c.Base); err != nil {
		return err
	}
	if c.Warmup < 0 || c.Steps <= c.Warmup {
		return fmt.Errorf("cosine schedule: need 0 <= warmup (%d) < steps (%d)", c.Warmup, c.Steps)
	}
	return nil
}

// Constant is a fixed learning rate.
type Constant struct{ Base float64 }

// LR returns Base.
func (c Constant) LR(int) float64 { return c.Base }

// Validate reports a negative or non-finite rate.
func (c Constant) Validate() error { return checkBase(c.Base) }

// ConstantWarmup is open_clip's const_lr: the same linear warmup as Cosine, then Base.
type ConstantWarmup struct {
	Base   float64
	Warmup int // >= 0
}

// LR returns base·(step+1)/warmup during warmup, else Base.
func (c ConstantWarmup) LR(step int) float64 {
	if step < c.Warmup {
		return warmupLR(c.Base, step, c.Warmup)
	}
	return c.Base
}

// Validate reports a negative warmup or a negative or non-finite rate.
func (c ConstantWarmup) Validate() error {
	if c.Warmup < 0 {
		return fmt.Errorf("constant schedule: negative warmup %d", c.Warmup)
	}
	return checkBase(c.Base)
}

// warmupLR is open_clip's _warmup_lr: base_lr * (step + 1) / warmup_length, left to right.
func warmupLR(base float64, step, warmup int) float64 {
	return base * float64(step+1) / float64(warmup)
}

func checkBase(base float64) error {
	if !(base >= 0) || math.IsInf(base, 1) {
		return fmt.Errorf("learning rate %v must be non-negative and finite", base)
	}
	return nil
}
