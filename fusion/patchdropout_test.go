package fusion

import (
	"slices"
	"testing"
)

// TestPatchDropoutModel: a model with patch_dropout trains on a subset of the patches (its
// step's loss differs from the full model's over the same weights) but evaluates on all of
// them (Forward gives the full model's outputs exactly), and its step is reproducible from
// the step seed.
func TestPatchDropoutModel(t *testing.T) {
	cfg := microConfig
	cfg.Vision.ImageSize, cfg.Vision.PatchSize = 8, 2 // 16 patches
	full, err := New(cfg, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	cfg.Vision.PatchDropout = 0.5
	drop, err := New(cfg, 3, 4) // the same seed: the same initial weights
	if err != nil {
		t.Fatal(err)
	}
	defer drop.Close()
	images, tokens := randomBatch(cfg, 3, 6)
	want, err := full.Forward(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	got, err := drop.Forward(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if got.Loss != want.Loss || !slices.Equal(got.ImageFeatures, want.ImageFeatures) || !slices.Equal(got.LogitsPerImage, want.LogitsPerImage) {
		t.Errorf("evaluation with patch dropout: loss %v, want the full model's %v", got.Loss, want.Loss)
	}
	fullLoss, err := full.Step(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	drop.SetStepSeed(9)
	a, err := drop.Step(images, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if a == fullLoss {
		t.Errorf("training step with patch dropout has the full model's loss %v", a)
	}
	drop.SetStepSeed(9)
	if b, _ := drop.Step(images, tokens); b != a {
		t.Errorf("the same step seed: loss %v, then %v", a, b)
	}
	if c, _ := drop.Step(images, tokens); c == a {
		t.Error("the next step drew the same patches")
	}
}

// TestPatchDropoutDataParallel: with the same step seed, ranks drop the patches one process
// drops for the same rows, so loss and gradients match.
func TestPatchDropoutDataParallel(t *testing.T) {
	cfg := microConfig
	cfg.Vision.ImageSize, cfg.Vision.PatchSize, cfg.Vision.PatchDropout = 8, 2, 0.5
	checkDataParallelIDs(t, cfg, nil)
}
