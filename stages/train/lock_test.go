package train

import (
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/nn/optim"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/stages/preset"
)

// TestLayerDecayScales: the learning-rate scale of every parameter of a 3-block ViT and a
// 2-block text tower, written out by hand from open_clip's lr_scales_for_groups
// (decay^(groups−1−group), head 1), and the tensors each lock leaves trainable.
func TestLayerDecayScales(t *testing.T) {
	var cfg fusion.Config
	stagetest.Must(t, preset.Load("tiny", &cfg))
	cfg.Vision.Layers = 3
	m, err := fusion.New(cfg, 2, 1)
	stagetest.Must(t, err)
	defer m.Close()
	opt, err := optim.NewAdamW(m.Params(), optim.DefaultAdamW())
	stagetest.Must(t, err)
	tr := &trainer{cfg: Config{Model: cfg}, params: m.Params(), opt: opt, log: stagetest.Quiet, lead: true}
	tr.cfg.Train.ImageLayerDecay, tr.cfg.Train.TextLayerDecay = 0.5, 0.8
	stagetest.Must(t, tr.applyFineTune())
	want := func(name string) float64 {
		for _, c := range []struct {
			prefix string
			scale  float64
		}{
			{"visual.proj", 1}, {"visual.ln_post.", 0.5}, {"visual.transformer.resblocks.2.", 0.5},
			{"visual.transformer.resblocks.1.", 0.25}, {"visual.transformer.resblocks.0.", 0.125},
			{"visual.conv1.", 0.0625}, {"visual.class_embedding", 0.0625}, {"visual.positional_embedding", 0.0625},
			{"visual.ln_pre.", 0.0625},
			{"text_projection", 1}, {"ln_final.", 0.8}, {"transformer.resblocks.1.", 0.8},
			{"transformer.resblocks.0.", 0.64}, {"token_embedding.", 0.512}, {"positional_embedding", 0.512},
			{"logit_scale", 1},
		} {
			if strings.HasPrefix(name, c.prefix) {
				return c.scale
			}
		}
		t.Fatalf("no expected scale for %s", name)
		return 0
	}
	for i, p := range opt.Params() {
		if got, w := opt.LRScale(i), want(p.Name); math.Abs(got-w) > 1e-12 {
			t.Errorf("%s: learning-rate scale %g, want %g", p.Name, got, w)
		}
	}

	// ViT locked but its top two groups (proj; block 2 with ln_post); text locked but its head.
	f := LoopConfig{LockImage: true, LockImageUnlockedGroups: 2, LockText: true, LockTextUnlockedLayers: 1, LockTextFreezeLayerNorm: true}
	locked := f.lockedFunc(cfg)
	for _, p := range m.Params() {
		open := p.Name == "logit_scale" || p.Name == "visual.proj" || p.Name == "text_projection" ||
			strings.HasPrefix(p.Name, "visual.ln_post.") || strings.HasPrefix(p.Name, "visual.transformer.resblocks.2.")
		if locked(p.Name) == open {
			t.Errorf("%s: locked %v", p.Name, locked(p.Name))
		}
	}
	f.LockTextFreezeLayerNorm = false // open_clip's default: the locked layers' layer norms train
	if locked := f.lockedFunc(cfg); locked("transformer.resblocks.0.ln_1.weight") || locked("ln_final.bias") || !locked("transformer.resblocks.0.attn.in_proj_weight") {
		t.Error("without lock_text_freeze_layer_norm, the layer norms of locked text layers must stay trainable, the rest locked")
	}

	// The ResNet's six groups: stem, four stages, attention pool.
	var rn fusion.Config
	stagetest.Must(t, preset.Load("rn50-tiny", &rn))
	for name, g := range map[string]int{"visual.conv2.weight": 0, "visual.bn3.running_mean": 0, "visual.layer1.0.conv1.weight": 1,
		"visual.layer4.0.downsample.1.running_var": 4, "visual.attnpool.c_proj.weight": 5} {
		if tower, group, groups, ok := layerGroup(rn, name); !ok || tower != imageTower || group != g || groups != 6 {
			t.Errorf("%s: tower %q group %d of %d (ok %v), want image %d of 6", name, tower, group, groups, ok, g)
		}
	}
	bn := LoopConfig{LockImage: true, LockImageUnlockedGroups: 1}
	if bn.lockedFunc(rn)("visual.bn1.running_mean") {
		t.Error("without freeze_bn_stats, a locked group's batch norm statistics must keep updating")
	}
	bn.LockImageFreezeBNStats = true
	if !bn.lockedFunc(rn)("visual.bn1.running_mean") || bn.lockedFunc(rn)("visual.attnpool.q_proj.weight") {
		t.Error("freeze_bn_stats: the locked stem's statistics must be locked, the unlocked pool not")
	}
}

// TestLockedTrainingResumes trains rn50-tiny with its image tower locked but for the last stage
// and the attention pool, the locked batch norms frozen and a layer decay: locked tensors
// (batch norm statistics included) are bit-identical to the initial ones after the run and
// have no optimiser state, the unlocked ones moved, and a run stopped at step 1 and resumed
// ends bit-identical to one that never stopped.
func TestLockedTrainingResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: three short rn50-tiny runs (half a minute on two busy cores)")
	}
	pc := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "data"))
	pc.Source = "synthetic"
	pc.Synthetic.N = 80
	stagetest.Prepare(t, pc)
	data := pc.Out
	sets := []string{"model_preset=rn50-tiny", "model.text.vocab_size=49408", "data.train=" + data, "data.val=", "data.workers=1",
		"train.steps=3", "train.batch_size=4", "train.warmup=1", "train.checkpoint_every=1", "train.keep_checkpoints=0",
		"train.lock_image=true", "train.lock_image_unlocked_groups=2", "train.lock_image_freeze_bn_stats=true",
		"train.image_layer_decay=0.5", "train.text_layer_decay=0.9"}
	cfg, err := LoadConfig("demo", sets)
	stagetest.Must(t, err)
	ctx := context.Background()
	straight, resumed := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	_, err = Run(ctx, Options{Config: cfg, RunDir: straight}, stagetest.Quiet, io.Discard)
	stagetest.Must(t, err)
	_, err = Run(ctx, Options{Config: cfg, RunDir: resumed, StopAt: 1}, stagetest.Quiet, io.Discard)
	stagetest.Must(t, err)
	_, err = Run(ctx, Options{Config: cfg, RunDir: resumed, Resume: "latest"}, stagetest.Quiet, io.Discard)
	stagetest.Must(t, err)

	init, err := fusion.New(cfg.Model, 4, cfg.Train.Seed)
	stagetest.Must(t, err)
	defer init.Close()
	load := func(run string) ([]*nn.Param, map[string][]float32) {
		m, err := fusion.New(cfg.Model, 2, 99)
		stagetest.Must(t, err)
		defer m.Close()
		_, state, err := checkpoint.Load(checkpoint.ModelPath(run, 3), m.Params())
		stagetest.Must(t, err)
		return m.Params(), state
	}
	a, state := load(straight)
	b, _ := load(resumed)
	locked := cfg.Train.lockedFunc(cfg.Model)
	var nLocked, nOpen int
	for i, p := range a {
		if !slices.Equal(p.Value, b[i].Value) {
			t.Errorf("%s differs between the resumed run and the straight one", p.Name)
		}
		q, _ := init.Param(p.Name)
		same := slices.Equal(p.Value, q.Value)
		_, inState := state["exp_avg."+p.Name]
		switch {
		case locked(p.Name):
			nLocked++
			if !same || inState {
				t.Errorf("locked %s: unchanged %v, optimiser state %v; want true, false", p.Name, same, inState)
			}
		case !p.Buffer && !inState:
			t.Errorf("%s is trainable but has no optimiser state", p.Name)
		case strings.HasPrefix(p.Name, "visual.layer4.") && (strings.HasSuffix(p.Name, ".weight") || strings.HasSuffix(p.Name, "running_mean")) ||
			strings.HasPrefix(p.Name, "visual.attnpool.") && strings.HasSuffix(p.Name, "weight"):
			nOpen++
			if same {
				t.Errorf("unlocked %s did not change", p.Name)
			}
		}
	}
	if nLocked == 0 || nOpen == 0 {
		t.Fatalf("%d locked and %d unlocked tensors checked", nLocked, nOpen)
	}
	if !locked("visual.layer3.0.bn1.running_var") {
		t.Error("freeze_bn_stats did not lock layer3's statistics")
	}
}

// TestLockedDataParallel: two in-memory ranks of a ViT run with the image tower locked but its
// head end where one process with the same two data streams does; the locked tensors, left
// out of the all-reduce, stay bit-identical to the initial ones on both.
func TestLockedDataParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: three short training runs")
	}
	pc := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "data"))
	pc.Source = "synthetic"
	pc.Synthetic.N = 80
	stagetest.Prepare(t, pc)
	sets := []string{"model_preset=tiny", "model.text.vocab_size=49408", "model.vision.layers=2", "model.text.layers=1",
		"data.train=" + pc.Out, "data.val=", "data.workers=1", "data.streams=2", "train.steps=3", "train.batch_size=8",
		"train.warmup=1", "train.checkpoint_every=3", "train.lock_image=true", "train.lock_image_unlocked_groups=1",
		"train.text_layer_decay=0.7"}
	cfg, err := LoadConfig("demo", sets)
	stagetest.Must(t, err)
	ctx := context.Background()
	one, two := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")
	_, err = Run(ctx, Options{Config: cfg, RunDir: one}, stagetest.Quiet, io.Discard)
	stagetest.Must(t, err)
	comms := dist.NewLocalGroup(2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Go(func() {
			if _, errs[r] = Run(ctx, Options{Config: cfg, RunDir: two, Comm: c}, stagetest.Quiet, io.Discard); errs[r] != nil {
				c.Abort(1)
			}
		})
	}
	wg.Wait()
	stagetest.Must(t, errors.Join(errs...))

	init, err := fusion.New(cfg.Model, 4, cfg.Train.Seed)
	stagetest.Must(t, err)
	defer init.Close()
	read := func(run string) []*nn.Param {
		m, err := fusion.New(cfg.Model, 2, 99)
		stagetest.Must(t, err)
		defer m.Close()
		_, _, err = checkpoint.Load(checkpoint.ModelPath(run, 3), m.Params())
		stagetest.Must(t, err)
		return m.Params()
	}
	a, b := read(one), read(two)
	locked := cfg.Train.lockedFunc(cfg.Model)
	var d, n float64
	for i, p := range a {
		q, _ := init.Param(p.Name)
		if locked(p.Name) && (!slices.Equal(p.Value, q.Value) || !slices.Equal(b[i].Value, q.Value)) {
			t.Errorf("locked %s changed", p.Name)
		}
		for j, x := range p.Value {
			dx := float64(b[i].Value[j] - x)
			d, n = d+dx*dx, n+float64(x)*float64(x)
		}
	}
	if e := math.Sqrt(d / n); e > 1e-5 {
		t.Errorf("2 ranks end %.2e (relative) from one process", e)
	} else {
		t.Logf("2 ranks vs 1 process: parameters differ by %.2e (relative)", e)
	}
}

// TestAdaptOptimizerState: a resume whose locks changed (--allow-changes) keeps the moments of
// the params still trained, drops those of params now locked and gives the newly unlocked
// ones zeros, so that AdamW.LoadState takes it.
func TestAdaptOptimizerState(t *testing.T) {
	w := &nn.Param{Name: "w", Shape: []int{2}, Value: make([]float32, 2), Grad: make([]float32, 2)}
	u := &nn.Param{Name: "u", Shape: []int{3}, Value: make([]float32, 3), Grad: make([]float32, 3)}
	opt, err := optim.NewAdamW([]*nn.Param{w, u}, optim.DefaultAdamW())
	stagetest.Must(t, err)
	old := map[string][]float32{optim.StepKey: {4}, "exp_avg.w": {1, 2}, "exp_avg_sq.w": {3, 4},
		"exp_avg.gone": {5}, "exp_avg_sq.gone": {6}}
	if err := opt.LoadState(old); err == nil {
		t.Fatal("the unadapted state loaded")
	}
	stagetest.Must(t, opt.LoadState(adaptOptimizerState(old, opt.Params())))
	s := opt.State()
	if !slices.Equal(s["exp_avg.w"], []float32{1, 2}) || !slices.Equal(s["exp_avg_sq.u"], []float32{0, 0, 0}) || opt.Steps() != 4 {
		t.Errorf("adapted state %v", s)
	}
}
