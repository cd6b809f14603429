// Package bench measures the training step against the PyTorch reference
// (../shared/peers/clip_step.py): its throughput (Run) and its numbers (Parity).
package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/config"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/optim"
	"github.com/clipgo/clipgo/stages/preset"
)

// Options sets up a training-throughput benchmark, the counterpart of
// ../shared/peers/clip_step.py's benchmark mode: same presets, batch, step counts, optimiser
// and random data layout. Zero values take the preset's defaults.
type Options struct {
	Preset      string // configs/models/<Preset>.yaml: "tiny" or "small" (the reference's)
	Threads     int    // GOMAXPROCS, hence the kernels' and the optimiser's goroutines; 0 keeps it
	Steps       int    // timed steps (tiny 30, small 10)
	Warmup      int    // untimed steps first; negative: the preset's (tiny 5, small 2)
	Batch       int    // pairs per step (tiny 64, small 128)
	DataBatches int    // distinct random batches, cycled (2)
	Seed        int64  // model init; data from Seed+1
	PeakN       int    // size of the n×n sgemm that measures the ceiling (1024); < 0 skips it
	LR          float64
	// Sets override model sizes by their model.* keys without the prefix
	// ("text.vocab_size=49408"), to time a recipe's model (e.g. the demo's) on the same
	// footing as the reference's presets.
	Sets []string
	// CPUProfile, when set, receives a pprof CPU profile of the timed steps alone (not the
	// model set-up, the warm-up steps or the sgemm ceiling), so that its shares are those of a
	// training step (scripts/profile_steps.py reads it).
	CPUProfile io.Writer
}

// benchDefaults are the reference's per-preset batch, timed and warm-up steps.
var benchDefaults = map[string][3]int{"tiny": {64, 30, 5}, "small": {128, 10, 2}}

// Result is one benchmark run, with the reference's JSON field names where it has them.
type Result struct {
	Bench          string           `json:"bench"`
	Preset         string           `json:"preset"`
	Threads        int              `json:"threads"`
	Batch          int              `json:"batch"`
	TimedSteps     int              `json:"timed_steps"`
	WarmupSteps    int              `json:"warmup_steps"`
	Params         int              `json:"params"`
	ParamsMatmul   int              `json:"params_matmul"`
	ParamsDecayed  int              `json:"params_decayed"`
	StepMedian     float64          `json:"step_median_s"`
	StepMean       float64          `json:"step_mean_s"`
	StepMin        float64          `json:"step_min_s"`
	StepMax        float64          `json:"step_max_s"`
	FwdMedian      float64          `json:"fwd_median_s"`
	BwdMedian      float64          `json:"bwd_median_s"`
	OptMedian      float64          `json:"opt_median_s"`
	SamplesPerSec  float64          `json:"samples_per_s"`
	FlopsFwd       int64            `json:"flops_per_sample_fwd"`
	FlopsTrain     int64            `json:"flops_per_sample_train"`
	FlopsBreakdown map[string]int64 `json:"flops_breakdown_fwd"`
	GFLOPS         float64          `json:"achieved_gflops"`
	SgemmN         int              `json:"sgemm_n,omitempty"`
	SgemmGFLOPS    float64          `json:"sgemm_peak_gflops,omitempty"` // the higher of SgemmRuns
	SgemmRuns      []float64        `json:"sgemm_runs_gflops,omitempty"` // before and after the steps
	MFU            float64          `json:"mfu,omitempty"`
	PeakRSSMiB     float64          `json:"peak_rss_mib"`
	AllocsPerStep  float64          `json:"allocs_per_step"`
	BytesPerStep   float64          `json:"alloc_bytes_per_step"`
	LossFirst      float64          `json:"loss_first"`
	LossLast       float64          `json:"loss_last"`
	LogitScale     float64          `json:"logit_scale"`
	Config         fusion.Config    `json:"config"`
	BLAS           string           `json:"blas"`
	GoVersion      string           `json:"go"`
	StepTimes      []float64        `json:"step_times_s,omitempty"`
	LoadAvg1m      float64          `json:"loadavg_1m"`
}

// Run times full training steps of a preset on random in-memory data, as the reference
// does: forward and loss, backward, then the trainer's optimiser phase (the finite check and
// gradient norm train.Run takes every step, the AdamW step with the cosine schedule's rate,
// and the logit-scale clamp). Inputs are made before timing. It also measures the process's
// sgemm ceiling at the same parallelism (before and after the steps, the higher counting),
// peak RSS and heap allocations per timed step.
func Run(ctx context.Context, opts Options) (Result, error) {
	cfg, batch, steps, warmup, err := opts.setup()
	if err != nil {
		return Result{}, err
	}
	if batch < 2 {
		return Result{}, fmt.Errorf("bench: batch %d: a contrastive batch needs at least 2 pairs", batch)
	}
	if opts.Threads > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(opts.Threads))
	}
	lr := cmp.Or(opts.LR, 5e-4)
	res := Result{Bench: "clipgo_step", Preset: opts.Preset, Threads: runtime.GOMAXPROCS(0), Batch: batch,
		TimedSteps: steps, WarmupSteps: warmup, Config: cfg, BLAS: nn.BLASName, GoVersion: runtime.Version()}

	// The ceiling is measured before and after the steps and the higher taken: one
	// measurement can catch a neighbour's burst, which would inflate MFU.
	peak := func() {
		if opts.PeakN >= 0 {
			res.SgemmN = cmp.Or(opts.PeakN, 1024)
			g := round(nn.SgemmGFLOPS(res.SgemmN, 10), 2)
			res.SgemmRuns = append(res.SgemmRuns, g)
			res.SgemmGFLOPS = max(res.SgemmGFLOPS, g)
		}
	}
	peak()

	model, err := fusion.New(cfg, batch, opts.Seed)
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	defer model.Close()
	params := model.Params()
	adamw := optim.DefaultAdamW()
	opt, err := optim.NewAdamW(params, adamw)
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	total := warmup + steps
	sched := optim.Cosine{Base: lr, Warmup: 5, Steps: max(total, 6)}
	for _, p := range params {
		res.Params += p.Size()
		if p.Decay {
			res.ParamsDecayed += p.Size()
		}
	}
	data := make([]benchBatch, cmp.Or(opts.DataBatches, 2)) // not negative: checked above
	rng := rand.New(rand.NewPCG(uint64(opts.Seed)+1, 0x62656e6368))
	for i := range data {
		data[i] = randomBenchBatch(cfg, batch, rng)
	}

	var fwdDone time.Time
	model.SetForwardHook(func() { fwdDone = time.Now() })
	defer model.SetForwardHook(nil)
	var tt, tf, tb, to []float64
	var ms0, ms1 runtime.MemStats
	for i := range total {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if i == warmup {
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			if opts.CPUProfile != nil {
				if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
					return res, fmt.Errorf("bench: cpu profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
		}
		d := data[i%len(data)]
		t0 := time.Now()
		loss, err := model.Step(d.images, d.tokens)
		if err != nil {
			return res, fmt.Errorf("bench: step %d: %w", i, err)
		}
		t2 := time.Now()
		if ok, name := optim.GradsFinite(params); !ok || math.IsNaN(float64(loss)) {
			return res, fmt.Errorf("bench: step %d: non-finite loss %v or gradient (%s)", i, loss, name)
		}
		_ = optim.GradNorm(params)
		if err := opt.Step(sched.LR(i)); err != nil {
			return res, fmt.Errorf("bench: step %d: %w", i, err)
		}
		model.ClampLogitScale()
		t3 := time.Now()
		if i == 0 {
			res.LossFirst = round(float64(loss), 5)
		}
		res.LossLast = round(float64(loss), 5)
		if i >= warmup {
			tt = append(tt, t3.Sub(t0).Seconds())
			tf = append(tf, fwdDone.Sub(t0).Seconds())
			tb = append(tb, t2.Sub(fwdDone).Seconds())
			to = append(to, t3.Sub(t2).Seconds())
		}
	}
	runtime.ReadMemStats(&ms1)
	if opts.CPUProfile != nil && steps > 0 {
		pprof.StopCPUProfile()
	}
	peak()
	if steps > 0 {
		res.AllocsPerStep = round(float64(ms1.Mallocs-ms0.Mallocs)/float64(steps), 1)
		res.BytesPerStep = round(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(steps), 0)
		med := median(tt)
		res.StepMedian, res.StepMean = round(med, 5), round(mean(tt), 5)
		res.StepMin, res.StepMax = round(slices.Min(tt), 5), round(slices.Max(tt), 5)
		res.FwdMedian, res.BwdMedian, res.OptMedian = round(median(tf), 5), round(median(tb), 5), round(median(to), 5)
		res.SamplesPerSec = round(float64(batch)/med, 2)
		for _, t := range tt {
			res.StepTimes = append(res.StepTimes, round(t, 5))
		}
	}
	fl := FlopsPerSample(cfg, batch)
	res.FlopsFwd, res.FlopsTrain = fl["fwd"], fl["train"]
	res.FlopsBreakdown = map[string]int64{}
	for k, v := range fl {
		if k != "fwd" && k != "train" {
			res.FlopsBreakdown[k] = v
		}
	}
	res.ParamsMatmul = MatmulParams(cfg)
	if res.StepMedian > 0 {
		res.GFLOPS = round(float64(res.FlopsTrain)*float64(batch)/res.StepMedian/1e9, 2)
		if res.SgemmGFLOPS > 0 {
			res.MFU = round(res.GFLOPS/res.SgemmGFLOPS, 4)
		}
	}
	if p, ok := model.Param("logit_scale"); ok {
		res.LogitScale = round(float64(p.Value[0]), 5)
	}
	res.PeakRSSMiB = round(peakRSSMiB(), 1)
	res.LoadAvg1m = loadAvg()
	return res, nil
}

// setup returns the model of opts (its preset with the Sets applied) and the batch, timed
// and warm-up steps, the preset's where opts leaves them.
func (opts Options) setup() (cfg fusion.Config, batch, steps, warmup int, err error) {
	def, ok := benchDefaults[opts.Preset]
	if !ok {
		return cfg, 0, 0, 0, fmt.Errorf("bench: preset %q: want tiny or small (the reference's presets)", opts.Preset)
	}
	if err := preset.Load(opts.Preset, &cfg); err != nil {
		return cfg, 0, 0, 0, fmt.Errorf("bench: %w", err)
	}
	for _, set := range opts.Sets {
		if err := config.Set(&cfg, set); err != nil {
			return cfg, 0, 0, 0, fmt.Errorf("bench: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, 0, 0, 0, fmt.Errorf("bench: %w", err)
	}
	if opts.Threads < 0 || opts.Steps < 0 || opts.Batch < 0 || opts.DataBatches < 0 {
		return cfg, 0, 0, 0, fmt.Errorf("bench: threads %d, steps %d, batch %d and data batches %d must not be negative",
			opts.Threads, opts.Steps, opts.Batch, opts.DataBatches)
	}
	batch, steps, warmup = cmp.Or(opts.Batch, def[0]), cmp.Or(opts.Steps, def[1]), opts.Warmup
	if warmup < 0 {
		warmup = def[2]
	}
	return cfg, batch, steps, warmup, nil
}

// FlopsPerSample counts matrix-product FLOPs per sample exactly as the reference's
// flops_per_sample: multiply+add = 2, every matmul parameter times the tokens it acts on, the
// attention scores and weighted sums over the full N×N (masked half included), the two B×B
// logit products; train = 3·fwd. Element-wise work is not counted.
func FlopsPerSample(c fusion.Config, batch int) map[string]int64 {
	v, t := c.Vision, c.Text
	g := int64(v.ImageSize / v.PatchSize)
	nv, nt := g*g+1, int64(t.ContextLength)
	wv, wt, e := int64(v.Width), int64(t.Width), int64(c.EmbedDim)
	blk := func(w int64, r float64) int64 { return int64((4 + 2*r) * float64(w*w)) }
	p := int64(v.PatchSize)
	vmm := 2 * (3*p*p*wv*g*g + int64(v.Layers)*blk(wv, v.MLPRatio)*nv + wv*e)
	tmm := 2 * (int64(t.Layers)*blk(wt, t.MLPRatio)*nt + wt*e)
	vatt := int64(v.Layers) * 4 * nv * nv * wv
	tatt := int64(t.Layers) * 4 * nt * nt * wt
	logits := 2 * 2 * int64(batch) * e
	fwd := vmm + tmm + vatt + tatt + logits
	return map[string]int64{"fwd": fwd, "train": 3 * fwd, "vision_matmul": vmm, "text_matmul": tmm,
		"vision_attn": vatt, "text_attn": tatt, "logits": logits}
}

// MatmulParams is the reference's matmul_params: the parameters that take part in matrix
// products (patch embedding, blocks, projections).
func MatmulParams(c fusion.Config) int {
	v, t := c.Vision, c.Text
	blk := func(w int, r float64) float64 { return (4 + 2*r) * float64(w*w) }
	return int(float64(3*v.PatchSize*v.PatchSize*v.Width) + float64(v.Layers)*blk(v.Width, v.MLPRatio) +
		float64(v.Width*c.EmbedDim) + float64(t.Layers)*blk(t.Width, t.MLPRatio) + float64(t.Width*c.EmbedDim))
}

// benchBatch is one random batch: CLIP-normalised images [B,3,S,S] and token ids [B,L].
type benchBatch struct {
	images []float32
	tokens []int32
}

// openAIMean and openAIStd normalise images as CLIP's preprocessing (and the reference) do.
var (
	openAIMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	openAIStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// randomBenchBatch follows the reference's make_batch: uniform 8-bit pixels normalised with
// the OpenAI mean and std, and captions [SOT, t_1..t_k, EOT, 0, …] with SOT = vocab−2,
// EOT = vocab−1, the EOT position uniform in [1, L) and the words uniform in [1, vocab−2).
func randomBenchBatch(c fusion.Config, batch int, rng *rand.Rand) benchBatch {
	s, l, v := c.Vision.ImageSize, c.Text.ContextLength, c.Text.VocabSize
	b := benchBatch{images: make([]float32, batch*3*s*s), tokens: make([]int32, batch*l)}
	for i := range b.images {
		ch := (i / (s * s)) % 3
		b.images[i] = (float32(rng.IntN(256))/255 - openAIMean[ch]) / openAIStd[ch]
	}
	for r := range batch {
		row := b.tokens[r*l : (r+1)*l]
		eot := 1 + rng.IntN(l-1)
		row[0] = int32(v - 2)
		for j := 1; j < eot; j++ {
			row[j] = int32(1 + rng.IntN(v-3))
		}
		row[eot] = int32(v - 1)
	}
	return b
}

func median(x []float64) float64 {
	s := slices.Sorted(slices.Values(x))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mean(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// peakRSSMiB is the process's peak resident set (getrusage ru_maxrss, KiB on Linux) in MiB.
func peakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// loadAvg is the 1-minute load average (/proc/loadavg), 0 where unavailable: it says how
// quiet the machine was.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
