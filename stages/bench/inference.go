package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/nn"
)

// InferenceResult is one encoder-throughput run, with the field names of
// scripts/peers/infer_peer.py (the PyTorch reference's encode_image and encode_text under
// no_grad), so that scripts/bench_peer.py compares the two line by line.
type InferenceResult struct {
	Bench            string        `json:"bench"`
	Mode             string        `json:"mode"`
	Preset           string        `json:"preset"`
	Threads          int           `json:"threads"`
	Batch            int           `json:"batch"`
	TimedBatches     int           `json:"timed_batches"`
	WarmupBatches    int           `json:"warmup_batches"`
	Params           int           `json:"params"`
	ImageBatchMedian float64       `json:"image_batch_median_s"`
	TextBatchMedian  float64       `json:"text_batch_median_s"`
	ImagesPerSec     float64       `json:"images_per_s"`
	TextsPerSec      float64       `json:"texts_per_s"`
	FlopsImage       int64         `json:"flops_per_image"`
	FlopsText        int64         `json:"flops_per_text"`
	ImageGFLOPS      float64       `json:"image_gflops"`
	TextGFLOPS       float64       `json:"text_gflops"`
	PeakRSSMiB       float64       `json:"peak_rss_mib"`
	AllocsPerBatch   float64       `json:"allocs_per_batch"`
	Path             string        `json:"path"`
	Config           fusion.Config `json:"config"`
	BLAS             string        `json:"blas"`
	GoVersion        string        `json:"go"`
	ImageTimes       []float64     `json:"image_times_s,omitempty"`
	TextTimes        []float64     `json:"text_times_s,omitempty"`
	LoadAvg1m        float64       `json:"loadavg_1m"`
}

// newEncoder makes the inference path RunInference times: fusion.NewEncoderFrom, the
// constructor evaluation, embed and search reach through fusion.LoadEncoder. A variable so
// that a test can see it used.
var newEncoder = fusion.NewEncoderFrom

// RunInference times the inference path (fusion.Encoder: each tower a forward-only graph, no
// gradient buffers) embedding random batches laid out as the training benchmark's: Steps timed
// batches of Batch images, then as many of Batch token rows, each after Warmup untimed batches
// of both towers; defaults as Run's (tiny 64 rows, 30 batches, 5 warm-up; small 128, 10, 2).
// The weights are random (every tensor N(0, 0.02), as fusion's BenchmarkEncodeImages): no
// training model is built, so the peak RSS is that of inference. Options.CPUProfile covers the
// timed batches alone; PeakN and LR do not apply.
func RunInference(ctx context.Context, opts Options) (InferenceResult, error) {
	cfg, batch, steps, warmup, err := opts.setup()
	if err != nil {
		return InferenceResult{}, err
	}
	if batch < 1 {
		return InferenceResult{}, fmt.Errorf("bench: batch %d must be positive", batch)
	}
	if opts.Threads > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(opts.Threads))
	}
	res := InferenceResult{Bench: "clipgo_infer", Mode: "inference", Preset: opts.Preset, Threads: runtime.GOMAXPROCS(0),
		Batch: batch, TimedBatches: steps, WarmupBatches: warmup, Path: "fusion.Encoder", Config: cfg,
		BLAS: nn.BLASName, GoVersion: runtime.Version()}

	params, err := fusion.WeightsOf(cfg)
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), 0x696e666572))
	for _, p := range params {
		res.Params += p.Size()
		for i := range p.Value {
			p.Value[i] = float32(0.02 * rng.NormFloat64())
		}
	}
	enc, err := newEncoder(cfg, params, batch)
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	defer enc.Close()
	data := make([]benchBatch, max(opts.DataBatches, 1))
	drng := rand.New(rand.NewPCG(uint64(opts.Seed)+1, 0x62656e6368))
	for i := range data {
		data[i] = randomBenchBatch(cfg, batch, drng)
	}
	images := func(i int) ([]float32, error) { return enc.Images(data[i%len(data)].images) }
	texts := func(i int) ([]float32, error) { return enc.Tokens(data[i%len(data)].tokens) }

	for i := range warmup { // both towers' graphs built and their buffers touched before timing
		for _, embed := range []func(int) ([]float32, error){images, texts} {
			if _, err := embed(i); err != nil {
				return res, fmt.Errorf("bench: warm-up batch %d: %w", i, err)
			}
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	if opts.CPUProfile != nil && steps > 0 {
		if err := pprof.StartCPUProfile(opts.CPUProfile); err != nil {
			return res, fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	timed := func(name string, embed func(int) ([]float32, error)) ([]float64, error) {
		var times []float64
		for i := range steps {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t0 := time.Now()
			out, err := embed(warmup + i)
			if err != nil {
				return nil, fmt.Errorf("bench: %s batch %d: %w", name, i, err)
			}
			times = append(times, time.Since(t0).Seconds())
			if err := checkEmbeddings(out, batch, cfg.EmbedDim); err != nil {
				return nil, fmt.Errorf("bench: %s batch %d: %w", name, i, err)
			}
		}
		return times, nil
	}
	ti, err := timed("image", images)
	if err != nil {
		return res, err
	}
	tt, err := timed("text", texts)
	if err != nil {
		return res, err
	}
	runtime.ReadMemStats(&ms1)
	if opts.CPUProfile != nil && steps > 0 {
		pprof.StopCPUProfile()
	}
	fl := FlopsPerSample(cfg, batch)
	res.FlopsImage, res.FlopsText = fl["vision_matmul"]+fl["vision_attn"], fl["text_matmul"]+fl["text_attn"]
	if steps > 0 {
		res.AllocsPerBatch = round(float64(ms1.Mallocs-ms0.Mallocs)/float64(2*steps), 1)
		mi, mt := median(ti), median(tt)
		res.ImageBatchMedian, res.TextBatchMedian = round(mi, 5), round(mt, 5)
		res.ImagesPerSec, res.TextsPerSec = round(float64(batch)/mi, 2), round(float64(batch)/mt, 2)
		res.ImageGFLOPS = round(float64(res.FlopsImage)*float64(batch)/mi/1e9, 2)
		res.TextGFLOPS = round(float64(res.FlopsText)*float64(batch)/mt/1e9, 2)
		for _, t := range ti {
			res.ImageTimes = append(res.ImageTimes, round(t, 5))
		}
		for _, t := range tt {
			res.TextTimes = append(res.TextTimes, round(t, 5))
		}
	}
	res.PeakRSSMiB = round(peakRSSMiB(), 1)
	res.LoadAvg1m = loadAvg()
	return res, nil
}

// checkEmbeddings refuses a batch's output that is not rows × dim finite unit vectors (the
// Encoder's L2-normalised embeddings): a timing of a broken run is no timing.
func checkEmbeddings(out []float32, rows, dim int) error {
	if len(out) != rows*dim {
		return fmt.Errorf("%d values, want %d rows of %d", len(out), rows, dim)
	}
	for r := range rows {
		var ss float64
		for _, x := range out[r*dim : (r+1)*dim] {
			ss += float64(x) * float64(x)
		}
		if n := math.Sqrt(ss); !(math.Abs(n-1) < 1e-3) {
			return fmt.Errorf("embedding %d has norm %v, want a finite unit vector", r, n)
		}
	}
	return nil
}
