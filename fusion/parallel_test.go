package fusion

import (
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/clipgo/clipgo/internal/dist"
)

// TestDataParallelMatchesOneProcess: W ranks joined in memory, each with its share of a batch,
// give the whole batch's loss (the mean of their local losses) and its gradients (the mean of
// theirs), to float32 rounding, as one model with the whole batch.
// Every loss: CLIP's with its global softmax, SigLIP's with the gathered texts, the triplet
// loss's hardest negatives over the gathered batch, and CLIP plus triplet.
func TestDataParallelMatchesOneProcess(t *testing.T) {
	for _, c := range []struct {
		name string
		loss string
		trip TripletConfig
	}{
		{"clip", LossCLIP, TripletConfig{}},
		{"siglip", LossSigLIP, TripletConfig{}},
		{"triplet", LossTriplet, TripletConfig{Margin: 0.2, Hardest: true}},
		{"clip+triplet", LossCLIP, TripletConfig{Margin: 0.2, Weight: 0.5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := microConfig
			cfg.Loss, cfg.Triplet = c.loss, c.trip
			checkDataParallel(t, cfg)
		})
	}
}

func checkDataParallel(t *testing.T, cfg Config) { checkDataParallelIDs(t, cfg, nil) }

// checkDataParallelIDs is checkDataParallel with the image identities ids [12] of the rows
// (nil: all distinct; each rank is given its rows' ids) and each model's step seeded alike.
func checkDataParallelIDs(t *testing.T, cfg Config, ids []int32) {
	const N = 12
	images, tokens := randomBatch(cfg, N, 5)
	one, err := New(cfg, N, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	one.SetStepSeed(3)
	if err := one.SetImageIDs(ids); err != nil {
		t.Fatal(err)
	}
	wantLoss, err := one.Step(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	imgLen, tokLen := len(images)/N, len(tokens)/N
	for _, w := range []int{2, 3} {
		b := N / w
		comms := dist.NewLocalGroup(w)
		models := make([]*Model, w)
		losses := make([]float32, w)
		errs := make([]error, w)
		var wg sync.WaitGroup
		for r := range w {
			wg.Go(func() {
				m, err := NewDataParallel(cfg, b, 7, comms[r])
				if err != nil {
					errs[r] = err
					comms[r].Abort(1)
					return
				}
				models[r] = m
				m.SetStepSeed(3)
				if ids != nil {
					if errs[r] = m.SetImageIDs(ids[r*b : (r+1)*b]); errs[r] != nil {
						comms[r].Abort(1)
						return
					}
				}
				losses[r], errs[r] = m.Step(images[r*b*imgLen:(r+1)*b*imgLen], tokens[r*b*tokLen:(r+1)*b*tokLen])
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("%d ranks: %v", w, err)
		}
		var mean float64
		for _, l := range losses {
			mean += float64(l) / float64(w)
		}
		if d := math.Abs(mean - float64(wantLoss)); d > 1e-6*math.Abs(float64(wantLoss)) {
			t.Errorf("%d ranks: mean local loss %.8f, one process %.8f", w, mean, wantLoss)
		}
		worst, worstName := 0.0, ""
		for i, p := range one.Params() {
			var diff, norm float64
			for j, g := range p.Grad {
				var avg float64
				for _, m := range models {
					avg += float64(m.Params()[i].Grad[j]) / float64(w)
				}
				diff += (avg - float64(g)) * (avg - float64(g))
				norm += float64(g) * float64(g)
			}
			if norm == 0 {
				continue
			}
			if rel := math.Sqrt(diff / norm); rel > worst {
				worst, worstName = rel, p.Name
			}
		}
		t.Logf("%d ranks: loss %.7f vs %.7f; worst gradient relative error %.2e (%s)", w, mean, wantLoss, worst, worstName)
		if worst > 1e-5 {
			t.Errorf("%d ranks: gradient of %s differs from one process by %.2e (relative)", w, worstName, worst)
		}
		// The rows each rank holds are its own rows of the one-process logits.
		lp := one.Last().LogitsPerImage
		for r, m := range models {
			out := m.Last()
			for i := range b {
				for j := range N {
					if d := math.Abs(float64(out.LogitsPerImage[i*N+j] - lp[(r*b+i)*N+j])); d > 1e-5 {
						t.Fatalf("%d ranks: rank %d logits_per_image[%d][%d] off by %g", w, r, i, j, d)
					}
					if d := math.Abs(float64(out.LogitsPerText[i*N+j] - lp[j*N+r*b+i])); d > 1e-5 {
						t.Fatalf("%d ranks: rank %d logits_per_text[%d][%d] off by %g", w, r, i, j, d)
					}
				}
			}
			m.Close()
		}
	}
}

// TestDataParallelReportsAFailedCollective: when a rank goes away, the others' Step returns an
// error instead of training on zeros.
func TestDataParallelReportsAFailedCollective(t *testing.T) {
	comms := dist.NewLocalGroup(2)
	m, err := NewDataParallel(microConfig, 2, 1, comms[0])
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	comms[1].Abort(1)
	images, tokens := randomBatch(microConfig, 2, 3)
	if _, err := m.Step(images, tokens); err == nil {
		t.Fatal("Step succeeded with the other rank gone")
	}
}
