package tests

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
	"go.yaml.in/yaml/v3"
)

// toF16 rounds a float32 to the nearest IEEE half (ties to even), as torch's .half() does.
func toF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	man := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0:
		return sign
	case exp >= 31: // overflow (the weights here never do)
		return sign | 0x7c00
	case exp <= 0: // subnormal half
		if exp < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint(14 - exp)
		half, rest := man>>shift, man&(1<<shift-1)
		if mid := uint32(1) << (shift - 1); rest > mid || (rest == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half, rest := uint32(exp)<<10|man>>13, man&0x1fff
	if rest > 0x1000 || (rest == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent: still the right rounding
	}
	return sign | uint16(half)
}

// writeBareStateDict rewrites a clipgo checkpoint as another tool saves the same model: an
// open_clip state dict under "module." (DistributedDataParallel), every float in F16, the
// scalars as [1], and no metadata (so no model config, no head counts: open_clip's rule gives
// them). It returns the F16 values read back as float32, by clipgo name.
func writeBareStateDict(t *testing.T, src, dst string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.OpenFile(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tensors []safetensors.Tensor
	want := map[string][]float32{}
	for _, info := range f.Tensors {
		v, err := f.Float32s(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		raw, back := make([]byte, 2*len(v)), make([]float32, len(v))
		for i, x := range v {
			h := toF16(x)
			binary.LittleEndian.PutUint16(raw[2*i:], h)
			back[i] = safetensors.F16ToFloat32(h)
		}
		shape := info.Shape
		if len(shape) == 0 {
			shape = []int{1}
		}
		tensors = append(tensors, safetensors.Tensor{Name: "module." + info.Name, DType: safetensors.F16, Shape: shape, Data: raw})
		want[info.Name] = back
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(out, tensors, nil); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// writeStateDict rewrites a clipgo checkpoint as a plain F32 open_clip state dict with meta
// instead of clipgo's metadata.
func writeStateDict(t *testing.T, src, dst string, meta safetensors.Metadata) {
	t.Helper()
	f, err := safetensors.OpenFile(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tensors []safetensors.Tensor
	for _, info := range f.Tensors {
		v, err := f.Float32s(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: info.Name, DType: safetensors.F32, Shape: info.Shape, Data: v})
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(out, tensors, meta); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPretrainInit starts runs from pretrained weights (issue 14 item 1): a short demo run's
// checkpoint rewritten as a bare F16 state dict under "module." is given to `pretrain --init`.
// With a learning rate too small to move a float32, the run's first checkpoint must hold
// exactly the state dict's values (the model starts from them, every tensor by name), and the
// first loss must be the source model's on the same first batch (a run initialised from the
// float32 checkpoint itself); with the recipe's learning rate the run trains. The run records
// the weights (config.yaml's init, their SHA-256 in config-history.jsonl) and a resume
// continues from its own checkpoint without them; init cannot change on resume. A SigLIP state
// dict (logit_bias) trains with model.loss siglip. Weights that do not fit a given model
// section are refused, naming the key.
func TestPretrainInit(t *testing.T) {
	bin := buildCLI(t)
	data := prepareSynthetic(t, 300)
	dir := t.TempDir()
	base := []string{"--set", "data.train=" + data, "--set", "data.val=" + data, "--set", "data.workers=2",
		"--set", "train.batch_size=16", "--set", "train.warmup=1", "--set", "train.log_every=1", "--set", "train.val_batches=1"}
	pretrain := func(out string, extra ...string) (string, error) {
		return run(t, bin, "", append(append([]string{"pretrain", "--out", out}, base...), extra...)...)
	}
	firstLoss := func(run string) float64 {
		t.Helper()
		l, ok := readLosses(t, run)[1]
		if !ok || math.IsNaN(l) || math.IsInf(l, 0) {
			t.Fatalf("%s: no finite loss at step 1", run)
		}
		return l
	}

	src := filepath.Join(dir, "src")
	if out, err := pretrain(src, "--set", "train.steps=4", "--set", "train.lr=0.002"); err != nil {
		t.Fatalf("source run: %v\n%s", err, out)
	}
	srcCkpt := checkpoint.ModelPath(src, 4)
	bare := filepath.Join(dir, "open_clip.safetensors")
	want := writeBareStateDict(t, srcCkpt, bare)

	// The model starts from the weights: lr 1e-30 moves no float32 weight of this model.
	still := filepath.Join(dir, "still")
	if out, err := pretrain(still, "--init", bare, "--set", "train.steps=2", "--set", "train.lr=1e-30", "--stop-at", "1"); err != nil {
		t.Fatalf("--init %s: %v\n%s", bare, err, out)
	}
	got := readTensors(t, checkpoint.ModelPath(still, 1))
	if len(got) != len(want) {
		t.Fatalf("the run's checkpoint has %d tensors, the state dict %d", len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || len(g) != len(w) {
			t.Fatalf("tensor %s: missing or mis-sized in the run's checkpoint", name)
		}
		for i := range w {
			if d := math.Abs(float64(g[i] - w[i])); d > 1e-20 {
				t.Fatalf("%s[%d] = %g after a step of lr 1e-30, the state dict holds %g", name, i, g[i], w[i])
			}
		}
	}
	// The first loss is the source model's on the same batch (F16 rounding apart), and far from
	// a fresh model's.
	fromSrc, fresh := filepath.Join(dir, "from-src"), filepath.Join(dir, "fresh")
	if out, err := pretrain(fromSrc, "--init", src, "--set", "train.steps=2", "--stop-at", "1"); err != nil { // a run directory: its newest checkpoint
		t.Fatalf("--init %s: %v\n%s", src, err, out)
	}
	if out, err := pretrain(fresh, "--set", "train.steps=2", "--stop-at", "1"); err != nil {
		t.Fatalf("fresh run: %v\n%s", err, out)
	}
	lBare, lSrc, lFresh := firstLoss(still), firstLoss(fromSrc), firstLoss(fresh)
	t.Logf("first loss: from the F16 state dict %.5f, from the source checkpoint %.5f, fresh model %.5f", lBare, lSrc, lFresh)
	if math.Abs(lBare-lSrc) > 2e-3*math.Max(1, lSrc) {
		t.Errorf("first loss %.5f from the F16 state dict, %.5f from its source checkpoint: want equal up to F16 rounding", lBare, lSrc)
	}
	if math.Abs(lSrc-lFresh) < 10*math.Abs(lBare-lSrc) {
		t.Errorf("the source model's first loss %.5f is too close to a fresh model's %.5f for the check to tell them apart", lSrc, lFresh)
	}

	// It trains, and records where it started.
	tuned := filepath.Join(dir, "tuned")
	if out, err := pretrain(tuned, "--init", bare, "--set", "train.steps=2", "--stop-at", "1"); err != nil {
		t.Fatalf("--init %s: %v\n%s", bare, err, out)
	}
	moved := 0
	for name, g := range readTensors(t, checkpoint.ModelPath(tuned, 1)) {
		for i := range g {
			if g[i] != want[name][i] {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Error("a step at the recipe's learning rate moved no weight")
	}
	var rec struct {
		Init  string `yaml:"init"`
		Model struct {
			Vision struct {
				Heads int `yaml:"heads"`
			} `yaml:"vision"`
		} `yaml:"model"`
	}
	if err := yaml.Unmarshal(readFile(filepath.Join(tuned, runlog.ConfigName)), &rec); err != nil || rec.Init != bare || rec.Model.Vision.Heads != 2 {
		t.Errorf("config.yaml: init %q, vision heads %d (%v); want %q and open_clip's rule 128/64 = 2", rec.Init, rec.Model.Vision.Heads, err, bare)
	}
	if h := string(readFile(filepath.Join(tuned, runlog.HistoryName))); !strings.Contains(h, `"key":"init"`) || !strings.Contains(h, "sha256 ") {
		t.Errorf("config-history.jsonl does not record the init weights and their SHA-256:\n%s", h)
	}
	// A resume continues the run from its own checkpoint: the weights are not needed again...
	if err := os.Rename(bare, bare+".moved"); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, bin, "", "pretrain", "--out", tuned, "--resume", "latest"); err != nil || !strings.Contains(out, "steps 1..2") {
		t.Fatalf("resume of an --init run: %v\n%s", err, out)
	}
	if err := os.Rename(bare+".moved", bare); err != nil {
		t.Fatal(err)
	}
	// ...and init cannot change.
	if out, err := run(t, bin, "", "pretrain", "--out", tuned, "--resume", "latest", "--set", "train.steps=3", "--init", srcCkpt); err == nil ||
		!strings.Contains(out, "init: "+bare+" -> "+srcCkpt) {
		t.Errorf("a resume that changes init: %v\n%s", err, out)
	}

	// A SigLIP state dict (it has logit_bias) trains with the sigmoid loss.
	sig := filepath.Join(dir, "siglip")
	if out, err := pretrain(sig, "--set", "train.steps=2", "--set", "model.loss=siglip"); err != nil {
		t.Fatalf("siglip source: %v\n%s", err, out)
	}
	sigBare := filepath.Join(dir, "siglip.safetensors")
	writeBareStateDict(t, checkpoint.ModelPath(sig, 2), sigBare)
	sigTuned := filepath.Join(dir, "siglip-tuned")
	if out, err := pretrain(sigTuned, "--init", sigBare, "--set", "train.steps=2"); err != nil {
		t.Fatalf("--init %s: %v\n%s", sigBare, err, out)
	}
	if c := string(readFile(filepath.Join(sigTuned, runlog.ConfigName))); !strings.Contains(c, "loss: siglip") {
		t.Errorf("a run from a SigLIP state dict does not train with model.loss siglip:\n%s", c)
	}

	// A Hugging Face CLIPModel directory (transformers' names, config.json with quick_gelu):
	// the same weights, read exactly, and the activation from config.json.
	t.Run("hugging face", func(t *testing.T) {
		peers := filepath.Dir(testenv.SharedFile(t, "peers/clip_step.py"))
		withHeads := filepath.Join(dir, "heads.safetensors")
		writeStateDict(t, srcCkpt, withHeads, safetensors.Metadata{{Key: "vision_heads", Value: "2"}, {Key: "text_heads", Value: "2"}})
		hf := filepath.Join(dir, "hf")
		cmd := exec.Command("/usr/bin/python3", filepath.Join(testenv.RepoRoot(t), "scripts/peers/to_huggingface.py"), "--peers", peers,
			"--in", withHeads, "--out", hf, "--hidden-act", "quick_gelu")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("to_huggingface.py: %v\n%s", err, b)
		}
		run3 := filepath.Join(dir, "from-hf")
		if out, err := pretrain(run3, "--init", hf, "--set", "train.steps=2", "--set", "train.lr=1e-30", "--stop-at", "1"); err != nil {
			t.Fatalf("--init %s: %v\n%s", hf, err, out)
		}
		srcT := readTensors(t, srcCkpt)
		for name, g := range readTensors(t, checkpoint.ModelPath(run3, 1)) {
			for i := range g {
				if d := math.Abs(float64(g[i] - srcT[name][i])); d > 1e-20 {
					t.Fatalf("%s[%d] = %g from the Hugging Face directory, %g in the source", name, i, g[i], srcT[name][i])
				}
			}
		}
		if c := string(readFile(filepath.Join(run3, runlog.ConfigName))); !strings.Contains(c, "quick_gelu: true") {
			t.Errorf("config.json's hidden_act quick_gelu not taken:\n%s", c)
		}
	})

	// Keys that keep the tensors may be set (quick_gelu: a bare state dict does not record it);
	// keys that change them are refused by name, and so is a preset.
	qg := filepath.Join(dir, "quick")
	if out, err := pretrain(qg, "--init", bare, "--quick-gelu", "--set", "train.steps=2", "--stop-at", "1"); err != nil {
		t.Fatalf("--init with --quick-gelu: %v\n%s", err, out)
	} else if c := string(readFile(filepath.Join(qg, runlog.ConfigName))); !strings.Contains(c, "quick_gelu: true") {
		t.Errorf("--quick-gelu not recorded:\n%s", c)
	}
	recipe := filepath.Join(dir, "wide.yaml")
	if err := os.WriteFile(recipe, []byte("init: "+bare+"\nmodel:\n  quick_gelu: true\n  vision: {width: 256}\ndata: {train: "+data+"}\ntrain: {steps: 2, batch_size: 16, warmup: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"a model section that changes a shape", []string{"--config", recipe}, []string{"model.vision.width: 128 in the weights, 256 in the recipe"}},
		{"a --set that changes a shape", []string{"--init", bare, "--set", "model.text.context_length=16"}, []string{"model.text.context_length: 32 in the weights, 16 in the recipe"}},
		{"a loss whose tensors are not there", []string{"--init", bare, "--set", "model.loss=siglip"}, []string{"model.loss", "siglip"}},
		{"a preset", []string{"--init", bare, "--set", "model_preset=tiny"}, []string{"model_preset", "leave out model_preset"}},
		{"missing weights", []string{"--init", filepath.Join(dir, "nothing.safetensors")}, []string{"init", "nothing.safetensors", "no such file"}},
	} {
		out, err := run(t, bin, "", append([]string{"pretrain", "--out", filepath.Join(dir, "refused"), "--set", "data.train=" + data}, tc.args...)...)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s: error does not say %q:\n%s", tc.name, w, out)
			}
		}
		if strings.Contains(out, "panic") {
			t.Errorf("%s: panicked:\n%s", tc.name, out)
		}
	}
	if _, err := os.Stat(checkpoint.ModelPath(filepath.Join(dir, "refused"), 1)); err == nil {
		t.Error("a refused run wrote a checkpoint")
	}
}
