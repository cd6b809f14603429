package optim

import (
	"math"
	"strings"
	"testing"
)

func TestSchedules(t *testing.T) {
	cos := Cosine{Base: 1, Warmup: 4, Steps: 12}
	cw := ConstantWarmup{Base: 2, Warmup: 2}
	for _, tc := range []struct {
		name string
		s    Schedule
		step int
		want float64
	}{
		{"cosine warmup first", cos, 0, 0.25},
		{"cosine warmup last", cos, 3, 1},
		{"cosine peak", cos, 4, 1},
		{"cosine half", cos, 8, 0.5},
		{"cosine quarter", cos, 6, 0.5 * (1 + math.Sqrt2/2)},
		{"cosine end", cos, 12, 0},
		{"cosine past end rises", cos, 16, 0.5},
		{"cosine no warmup", Cosine{Base: 3, Steps: 2}, 0, 3},
		{"constant", Constant{Base: 5e-4}, 100, 5e-4},
		{"constant warmup first", cw, 0, 1},
		{"constant warmup after", cw, 2, 2},
		{"constant warmup much later", cw, 1000, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.LR(tc.step); math.Abs(got-tc.want) > 1e-15 {
				t.Errorf("LR(%d) = %.17g, want %.17g", tc.step, got, tc.want)
			}
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    interface{ Validate() error }
		want string // "" means valid
	}{
		{"cosine ok", Cosine{Base: 5e-4, Warmup: 5, Steps: 30}, ""},
		{"cosine steps == warmup", Cosine{Base: 5e-4, Warmup: 5, Steps: 5}, "warmup (5) < steps (5)"},
		{"cosine negative warmup", Cosine{Base: 5e-4, Warmup: -1, Steps: 5}, "warmup"},
		{"cosine NaN base", Cosine{Base: math.NaN(), Steps: 5}, "learning rate"},
		{"constant negative", Constant{Base: -1}, "learning rate"},
		{"constant inf", Constant{Base: math.Inf(1)}, "learning rate"},
		{"constant warmup ok", ConstantWarmup{Base: 1, Warmup: 0}, ""},
		{"constant warmup negative", ConstantWarmup{Base: 1, Warmup: -2}, "negative warmup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
