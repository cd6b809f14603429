package optim

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/nn"
)

// torchScript runs torch.optim.AdamW with the reference's param groups and its cosine_lr
// (imported from clip_step.py) on the tensors and per-step gradients of in.json, and writes
// the learning rates, final parameters and moments to out.json.
const torchScript = `
import importlib.util, json, sys
import torch
spec = importlib.util.spec_from_file_location("clip_step", sys.argv[1])
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
d = json.load(open(sys.argv[2]))
ps = [torch.tensor(t["value"], dtype=torch.float32).reshape(t["shape"]).requires_grad_() for t in d["params"]]
groups = [{"params": [p for p, t in zip(ps, d["params"]) if not t["decay"]], "weight_decay": 0.0},
          {"params": [p for p, t in zip(ps, d["params"]) if t["decay"]], "weight_decay": d["wd"]}]
opt = torch.optim.AdamW(groups, lr=d["base"], betas=(d["beta1"], d["beta2"]), eps=d["eps"])
sched = ref.cosine_lr(opt, d["base"], d["warmup"], d["steps"])
clip_g = [torch.tensor(g, dtype=torch.float32).reshape(t["shape"]) for g, t in zip(d["grads"][0], d["params"])]
clip_p = [torch.zeros(t["shape"], requires_grad=True) for t in d["params"]]
for p, g in zip(clip_p, clip_g):
    p.grad = g.clone()
clip_norm = float(torch.nn.utils.clip_grad_norm_(clip_p, d["max_norm"]))
lrs = []
for i, grads in enumerate(d["grads"]):
    lrs.append(sched(i))
    for p, g, t in zip(ps, grads, d["params"]):
        p.grad = torch.tensor(g, dtype=torch.float32).reshape(t["shape"])
    opt.step()
out = {"lrs": lrs, "values": [p.detach().reshape(-1).tolist() for p in ps],
       "exp_avg": [opt.state[p]["exp_avg"].reshape(-1).tolist() for p in ps],
       "exp_avg_sq": [opt.state[p]["exp_avg_sq"].reshape(-1).tolist() for p in ps],
       "step": [float(opt.state[p]["step"]) for p in ps],
       "clip_norm": clip_norm, "clipped": [p.grad.reshape(-1).tolist() for p in clip_p]}
json.dump(out, open(sys.argv[3], "w"))
`

type torchParam struct {
	Shape []int     `json:"shape"`
	Value []float32 `json:"value"`
	Decay bool      `json:"decay"`
}

type torchIn struct {
	Params  []torchParam  `json:"params"`
	Grads   [][][]float32 `json:"grads"` // [step][param][element]
	Base    float64       `json:"base"`
	Warmup  int           `json:"warmup"`
	Steps   int           `json:"steps"`
	Beta1   float64       `json:"beta1"`
	Beta2   float64       `json:"beta2"`
	Eps     float64       `json:"eps"`
	WD      float64       `json:"wd"`
	MaxNorm float64       `json:"max_norm"` // for clip_grad_norm_ on step 0's grads
}

type torchOut struct {
	LRs      []float64   `json:"lrs"`
	Values   [][]float32 `json:"values"`
	ExpAvg   [][]float32 `json:"exp_avg"`
	ExpAvgSq [][]float32 `json:"exp_avg_sq"`
	Step     []float64   `json:"step"`
	ClipNorm float64     `json:"clip_norm"`
	Clipped  [][]float32 `json:"clipped"`
}

// torchPython returns /usr/bin/python3 when it can import torch, else handles the absence.
func torchPython(t *testing.T) string {
	t.Helper()
	py := testenv.Command(t, "/usr/bin/python3", "apt-get install python3")
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 cannot import torch (apt-get install python3-torch): "+string(out))
	}
	return py
}

// TestAdamWMatchesTorch runs 20 steps of AdamW + the reference's cosine schedule in torch and
// here on the same tensors and gradients, and compares learning rates, parameters and moments.
func TestAdamWMatchesTorch(t *testing.T) {
	py := torchPython(t)
	ref := testenv.SharedFile(t, "peers/clip_step.py")

	rng := rand.New(rand.NewPCG(7, 13))
	shapes := []struct {
		name  string
		shape []int
	}{
		{"token_embedding.weight", []int{37, 29}}, // 1073 elements: vector body and a tail
		{"transformer.resblocks.0.ln_1.weight", []int{29}},
		{"transformer.resblocks.0.attn.in_proj_bias", []int{87}},
		{"visual.conv1.weight", []int{5, 3, 4, 4}},
		{"logit_scale", nil},
	}
	const steps = 20
	cfg := DefaultAdamW()
	sched := Cosine{Base: 1e-2, Warmup: 5, Steps: steps}
	in := torchIn{Base: sched.Base, Warmup: sched.Warmup, Steps: sched.Steps,
		Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WD: cfg.WeightDecay, MaxNorm: 0.02}
	var params []*nn.Param
	for _, s := range shapes {
		p := &nn.Param{Name: s.name, Shape: s.shape, Decay: nn.DecayByName(s.name, s.shape)}
		p.Value = make([]float32, p.Size())
		p.Grad = make([]float32, p.Size())
		for i := range p.Value {
			p.Value[i] = float32(rng.NormFloat64() * 0.5)
		}
		in.Params = append(in.Params, torchParam{Shape: append([]int{}, s.shape...), Value: append([]float32(nil), p.Value...), Decay: p.Decay})
		params = append(params, p)
	}
	for range steps {
		var step [][]float32
		for _, p := range params {
			g := make([]float32, p.Size())
			scale := math.Pow(10, rng.Float64()*6-5) // 1e-5 .. 10: tiny and large gradients
			for i := range g {
				if rng.IntN(10) > 0 { // some exact zeros: the update is then driven by m, v alone
					g[i] = float32(rng.NormFloat64() * scale)
				}
			}
			step = append(step, g)
		}
		in.Grads = append(in.Grads, step)
	}

	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	buf, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", torchScript, ref, inPath, outPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torch script: %v\n%s", err, out)
	}
	buf, err = os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var want torchOut
	if err := json.Unmarshal(buf, &want); err != nil {
		t.Fatalf("torch output: %v", err)
	}

	// clip_grad_norm_ on step 0's gradients: the norm torch sums in float32, this package
	// in float64, so they agree to float32 precision, and so do the clipped gradients.
	for j, p := range params {
		copy(p.Grad, in.Grads[0][j])
	}
	norm := ClipGradNorm(params, in.MaxNorm)
	t.Logf("clip_grad_norm_: norm %.9g, torch %.9g", norm, want.ClipNorm)
	if d := math.Abs(norm-want.ClipNorm) / want.ClipNorm; d > 1e-6 || want.ClipNorm <= in.MaxNorm {
		t.Errorf("grad norm %.9g, torch %.9g (rel err %.3g; torch's must exceed max norm %v for this test)", norm, want.ClipNorm, d, in.MaxNorm)
	}
	for j, p := range params {
		if maxRel, differ, worst := compare(p.Grad, want.Clipped[j]); maxRel > 1e-6 {
			t.Errorf("%s clipped grad[%d]: %v, torch %v (rel err %.3g, %d elements differ)", p.Name, worst, p.Grad[worst], want.Clipped[j][worst], maxRel, differ)
		}
	}

	opt, err := NewAdamW(params, cfg)
	if err != nil {
		t.Fatal(err)
	}
	opt.Workers = 2
	for i, grads := range in.Grads {
		lr := sched.LR(i)
		if d := math.Abs(lr - want.LRs[i]); d > 1e-15*want.LRs[i] {
			t.Errorf("step %d: lr %.17g, reference cosine_lr %.17g", i, lr, want.LRs[i])
		}
		for j, p := range params {
			copy(p.Grad, grads[j])
		}
		if err := opt.Step(lr); err != nil {
			t.Fatal(err)
		}
	}

	state := opt.State()
	for j, p := range params {
		if want.Step[j] != float64(opt.Steps()) {
			t.Errorf("%s: step %v, torch %v", p.Name, opt.Steps(), want.Step[j])
		}
		for _, c := range []struct {
			what      string
			got, want []float32
		}{
			{"value", p.Value, want.Values[j]},
			{"exp_avg", state["exp_avg."+p.Name], want.ExpAvg[j]},
			{"exp_avg_sq", state["exp_avg_sq."+p.Name], want.ExpAvgSq[j]},
		} {
			maxRel, ulps, worst := compare(c.got, c.want)
			t.Logf("%-42s %-10s max rel err %.3g, %d of %d elements differ", p.Name, c.what, maxRel, ulps, len(c.want))
			if maxRel > 1e-6 {
				t.Errorf("%s %s[%d]: %v, torch %v (rel err %.3g > 1e-6)", p.Name, c.what, worst, c.got[worst], c.want[worst], maxRel)
			}
		}
	}
}

// compare returns the largest |got−want|/max(|want|, tiny), the number of elements that are
// not bit-identical, and where the largest error is.
func compare(got, want []float32) (maxRel float64, differ, worst int) {
	if len(got) != len(want) {
		return math.Inf(1), len(want), 0
	}
	for i := range want {
		if got[i] != want[i] {
			differ++
		}
		rel := math.Abs(float64(got[i])-float64(want[i])) / math.Max(math.Abs(float64(want[i])), 1e-30)
		if math.IsNaN(rel) || rel > maxRel {
			maxRel, worst = rel, i
			if math.IsNaN(rel) {
				maxRel = math.Inf(1)
			}
		}
	}
	return maxRel, differ, worst
}
