package tests

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/fusion/weights"
	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/stages/convert"
	"github.com/clipgo/clipgo/stages/train"
)

// TestTrainedWeightsInterop (make interop): weights clipgo trained (a few steps of the demo recipe
// with QuickGELU) go back to PyTorch: converted to open_clip's naming (stages/convert, as
// `clipgo convert --to open_clip`), the reference model (scripts/peers/clip_embed.py, built on
// ../shared/peers/clip_step.py) loads them strictly, every name and shape its own, and embeds a
// batch of images and token ids as clipgo's encoder does from the checkpoint.
func TestTrainedWeightsInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode (the race run): trains, then runs the PyTorch reference")
	}
	py := testenv.Command(t, "/usr/bin/python3", "apt-get install python3-torch")
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		testenv.Missing(t, "python3 cannot import torch (make test-deps: apt-get install python3-torch)")
	}
	peers := filepath.Dir(testenv.SharedFile(t, "peers/clip_step.py"))
	script := filepath.Join(testenv.RepoRoot(t), "scripts", "peers", "clip_embed.py")

	data := prepareSynthetic(t, 64)
	cfg := demoConfig(t, data, "model.quick_gelu=true", "train.steps=3", "train.batch_size=4", "train.warmup=1",
		"train.log_every=1", "train.checkpoint_every=3", "train.val_every=3", "train.val_batches=1")
	run := t.TempDir()
	if _, err := train.Run(context.Background(), train.Options{Config: cfg, RunDir: run}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(run, "step-000003.safetensors")
	dir := t.TempDir()
	openCLIP := filepath.Join(dir, "open_clip.safetensors")
	res, err := convert.Run(convert.Config{In: ckpt, Out: openCLIP, Format: weights.OpenCLIP})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Model.QuickGELU {
		t.Fatalf("the checkpoint's config %+v: want QuickGELU (model.quick_gelu=true)", res.Model)
	}

	// A batch: random images, and token ids that end at the EOT (the largest id), zeros after.
	const B = 5
	S, L, V := res.Model.Vision.ImageSize, res.Model.Text.ContextLength, res.Model.Text.VocabSize
	r := rand.New(rand.NewPCG(1, 2))
	images := make([]float32, B*3*S*S)
	for i := range images {
		images[i] = float32(r.NormFloat64())
	}
	ids, ids32 := make([]int64, B*L), make([]int32, B*L)
	for b := range B {
		n := 1 + r.IntN(L-1)
		for i := range n {
			ids[b*L+i] = 1 + r.Int64N(int64(V-2))
		}
		ids[b*L+n] = int64(V - 1)
	}
	for i, v := range ids {
		ids32[i] = int32(v)
	}
	inputs := filepath.Join(dir, "inputs.safetensors")
	f, err := os.Create(inputs)
	if err != nil {
		t.Fatal(err)
	}
	err = safetensors.Write(f, []safetensors.Tensor{{Name: "images", DType: safetensors.F32, Shape: []int{B, 3, S, S}, Data: images},
		{Name: "texts", DType: safetensors.I64, Shape: []int{B, L}, Data: ids}}, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(res.Model)
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(dir, "reference.safetensors")
	if b, err := exec.Command(py, script, "embed", "--peers", peers, "--config", string(raw), "--weights", openCLIP,
		"--inputs", inputs, "--out", ref).CombinedOutput(); err != nil {
		t.Fatalf("clip_embed.py embed: %v\n%s", err, b)
	}
	want := readTensors(t, ref)

	enc, err := fusion.LoadEncoder(ckpt, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	img, err := enc.Images(images)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := enc.Tokens(ids32)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"image", img, want["image_embedding"]}, {"text", txt, want["text_embedding"]}} {
		if len(c.got) != len(c.want) || len(c.want) != B*res.Model.EmbedDim {
			t.Fatalf("%s embeddings: %d values, the reference has %d, want %d", c.name, len(c.got), len(c.want), B*res.Model.EmbedDim)
		}
		var d float64
		for i := range c.want {
			d = max(d, math.Abs(float64(c.got[i])-float64(c.want[i])))
		}
		t.Logf("%s embeddings: max difference %.2e from PyTorch's (unit vectors)", c.name, d)
		if d > 1e-5 {
			t.Errorf("%s embeddings differ from PyTorch's by %.2e", c.name, d)
		}
	}
}
