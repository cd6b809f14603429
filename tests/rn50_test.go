package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn/optim"
	"github.com/clipgo/clipgo/stages/train"
	"github.com/clipgo/clipgo/vision"
)

// TestRN50PretrainThenEvaluate trains the rn50-tiny preset (a ModifiedResNet image tower)
// with the clipgo binary for a few steps on synthetic data, checks that its checkpoint holds
// the tower under open_clip's names with batch-norm statistics that training moved, and that
// zero-shot classification and retrieval run on it.
func TestRN50PretrainThenEvaluate(t *testing.T) {
	bin := buildCLI(t)
	data := filepath.Join(t.TempDir(), "demo")
	msg, err := run(t, bin, "", "prepare", "--config", filepath.Join(testenv.RepoRoot(t), "configs/data/demo.yaml"),
		"--n", "120", "--val-count", "16", "--zeroshot-n", "16", "--out", data)
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, msg)
	}
	const steps = 4
	runDir := filepath.Join(t.TempDir(), "run")
	args := []string{"pretrain", "--config", "demo", "--out", runDir}
	for _, s := range []string{"model_preset=rn50-tiny", "data.train=" + data, "data.val=" + data,
		fmt.Sprint("train.steps=", steps), "train.batch_size=8", "train.warmup=1", "train.log_every=1",
		fmt.Sprint("train.checkpoint_every=", steps), fmt.Sprint("train.val_every=", steps), "train.val_batches=1"} {
		args = append(args, "--set", s)
	}
	if msg, err := run(t, bin, "", args...); err != nil {
		t.Fatalf("pretrain: %v\n%s", err, msg)
	}

	losses := readLosses(t, runDir)
	for step := int64(1); step <= steps; step++ {
		if l, ok := losses[step]; !ok || math.IsNaN(l) || math.IsInf(l, 0) {
			t.Errorf("step %d: loss %v (logged %v), want a finite loss", step, l, ok)
		}
	}

	ckpt := filepath.Join(runDir, fmt.Sprintf("step-%06d.safetensors", steps))
	f, err := safetensors.OpenFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := f.Metadata.Get(fusion.ConfigKey)
	f.Close()
	var cfg fusion.Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("checkpoint config %q: %v", raw, err)
	}
	if v := cfg.Vision; v.Type != vision.TypeResNet || v.StageLayers != (vision.StageLayers{1, 1, 1, 1}) || v.Width != 32 || v.ImageSize != 64 {
		t.Errorf("checkpoint vision config %+v, want rn50-tiny's", v)
	}
	tensors := readTensors(t, ckpt)
	want := map[string]int{ // name → elements
		"visual.conv1.weight":                              16 * 3 * 3 * 3,
		"visual.bn1.running_mean":                          16,
		"visual.layer1.0.bn1.running_mean":                 32,
		"visual.layer1.0.bn1.running_var":                  32,
		"visual.layer1.0.bn1.num_batches_tracked":          1,
		"visual.layer1.0.downsample.0.weight":              128 * 32,
		"visual.layer1.0.downsample.1.running_var":         128,
		"visual.layer4.0.bn3.weight":                       1024,
		"visual.attnpool.positional_embedding":             5 * 1024,
		"visual.attnpool.c_proj.weight":                    128 * 1024,
		"visual.layer4.0.downsample.1.num_batches_tracked": 1,
	}
	for name, n := range want {
		if v, ok := tensors[name]; !ok || len(v) != n {
			t.Errorf("%s: %d values (present %v), want %d", name, len(v), ok, n)
		}
	}
	for name := range tensors {
		if strings.HasPrefix(name, "visual.transformer.") || name == "visual.proj" {
			t.Errorf("a ResNet checkpoint holds the ViT's %s", name)
		}
	}
	// Each training step is one forward pass in training mode; validation runs in evaluation
	// mode and moves nothing.
	if c := tensors["visual.layer1.0.bn1.num_batches_tracked"]; len(c) == 1 && c[0] != steps {
		t.Errorf("num_batches_tracked %v after %d steps", c[0], steps)
	}
	if m := tensors["visual.layer1.0.bn1.running_mean"]; !slices.ContainsFunc(m, func(v float32) bool { return v != 0 }) {
		t.Error("training left running_mean at its initial zeros")
	}
	if v := tensors["visual.layer1.0.bn1.running_var"]; !slices.ContainsFunc(v, func(x float32) bool { return x != 1 }) {
		t.Error("training left running_var at its initial ones")
	}

	zs := filepath.Join(t.TempDir(), "zeroshot.json")
	if msg, err := run(t, bin, "", "zeroshot", "--checkpoint", runDir, "--data", data, "--task", "synthetic", "--out", zs, "--batch", "8"); err != nil {
		t.Fatalf("zeroshot: %v\n%s", err, msg)
	}
	rt := filepath.Join(t.TempDir(), "retrieval.json")
	if msg, err := run(t, bin, "", "retrieval", "--checkpoint", runDir, "--data", data, "--split", "val", "--out", rt); err != nil {
		t.Fatalf("retrieval: %v\n%s", err, msg)
	}
	for file, key := range map[string]string{zs: "acc1", rt: "image_retrieval_recall@5"} {
		var rec struct {
			Metrics map[string]float64 `json:"metrics"`
		}
		b, err := os.ReadFile(file)
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if v, ok := rec.Metrics[key]; err != nil || !ok || v < 0 || v > 1 {
			t.Errorf("%s: %s = %v (present %v, %v)", filepath.Base(file), key, v, ok, err)
		}
	}
}

// TestRN50AdamWLeavesBuffers takes a training step of the rn50-tiny model and an AdamW step
// with weight decay over every parameter the model lists, batch-norm buffers included: their
// gradient stays zero and they do not decay, so the optimiser leaves them exactly as the
// forward pass set them, while it moves the learned weights.
func TestRN50AdamWLeavesBuffers(t *testing.T) {
	rc, err := train.LoadConfig("demo", []string{"model_preset=rn50-tiny", "data.train=unused"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rc.Model
	const batch = 4
	m, err := fusion.New(cfg, batch, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	s, l := cfg.Vision.ImageSize, cfg.Text.ContextLength
	images, tokens := make([]float32, batch*3*s*s), make([]int32, batch*l)
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	for b := range batch {
		tokens[b*l] = 49406
		for i := 1; i < 5; i++ {
			tokens[b*l+i] = int32(1 + rng.IntN(40000))
		}
		tokens[b*l+5] = 49407
	}
	if _, err := m.Step(images, tokens); err != nil {
		t.Fatal(err)
	}
	opt, err := optim.NewAdamW(m.Params(), optim.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]float32{}
	buffers := 0
	for _, p := range m.Params() {
		before[p.Name] = slices.Clone(p.Value)
		if p.Buffer {
			buffers++
			if p.Decay || slices.ContainsFunc(p.Grad, func(g float32) bool { return g != 0 }) {
				t.Errorf("%s: decay %v, gradient non-zero %v", p.Name, p.Decay, p.Grad)
			}
		}
	}
	if buffers != 3*(3+4*4) { // three per norm: the stem's 3 and 4 in each of 4 blocks
		t.Errorf("%d buffers, want %d", buffers, 3*(3+4*4))
	}
	if err := opt.Step(1e-3); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		moved := !slices.Equal(before[p.Name], p.Value)
		if p.Buffer && moved {
			t.Errorf("AdamW changed buffer %s", p.Name)
		}
		if p.Name == "visual.layer1.0.conv2.weight" && !moved {
			t.Errorf("AdamW left %s unchanged", p.Name)
		}
	}
}

// TestRN50ResumeMatchesAnUninterruptedRun stops an rn50-tiny run part-way and resumes it from
// its checkpoint: the losses after the resume and every tensor at the end (the batch-norm
// running statistics and counts among them) must equal those of a run that never stopped.
func TestRN50ResumeMatchesAnUninterruptedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: three short rn50-tiny runs (minutes under the race detector)")
	}
	data := prepareSynthetic(t, 100)
	sets := []string{"model_preset=rn50-tiny", "train.steps=6", "train.batch_size=8", "train.warmup=2", "train.log_every=1",
		"train.val_every=0", "train.checkpoint_every=100"}
	ctx := context.Background()
	straight := filepath.Join(t.TempDir(), "straight")
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: straight}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	resumed := filepath.Join(t.TempDir(), "resumed")
	if first, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, StopAt: 3}, quiet, io.Discard); err != nil || first.Steps != 3 {
		t.Fatalf("first part: %+v, %v; want stopped at 3", first, err)
	}
	if _, err := train.Run(ctx, train.Options{Config: demoConfig(t, data, sets...), RunDir: resumed, Resume: "latest"}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	want, got := readLosses(t, straight), readLosses(t, resumed)
	for step, l := range want {
		if got[step] != l {
			t.Errorf("step %d: loss %v after the resume, %v uninterrupted", step, got[step], l)
		}
	}
	a, b := readTensors(t, straight+"/step-000006.safetensors"), readTensors(t, resumed+"/step-000006.safetensors")
	if c := a["visual.bn1.num_batches_tracked"]; len(c) != 1 || c[0] != 6 {
		t.Errorf("num_batches_tracked %v after 6 steps", c)
	}
	for name, v := range a {
		if !slices.Equal(v, b[name]) {
			t.Errorf("%s differs after the resume", name)
		}
	}
}
