package bench

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/stages/preset"
)

// TestFlopsPerSampleMatchesReference compares with the values the reference's
// flops_per_sample and matmul_params print for its presets
// (/usr/bin/python3 -c 'import clip_step as c; a = c.parse(["--preset", p]); print(c.flops_per_sample(a), c.matmul_params(a))').
func TestFlopsPerSampleMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		preset string
		batch  int
		want   map[string]int64
		matmul int
	}{
		{"tiny", 64, map[string]int64{"fwd": 82543616, "train": 247630848, "vision_matmul": 51937280,
			"text_matmul": 25198592, "vision_attn": 4326400, "text_attn": 1048576, "logits": 32768}, 825344},
		{"small", 128, map[string]int64{"fwd": 941662208, "train": 2824986624, "vision_matmul": 415367168,
			"text_matmul": 484573184, "vision_attn": 17305600, "text_attn": 24285184, "logits": 131072}, 6471680},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			var cfg fusion.Config
			if err := preset.Load(tc.preset, &cfg); err != nil {
				t.Fatal(err)
			}
			got := FlopsPerSample(cfg, tc.batch)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %d, reference %d", k, got[k], v)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("keys %v, reference %v", got, tc.want)
			}
			if m := MatmulParams(cfg); m != tc.matmul {
				t.Errorf("matmul params %d, reference %d", m, tc.matmul)
			}
		})
	}
}

// TestRandomBenchBatchLayout checks the reference's make_batch layout: normalised 8-bit
// pixels, [SOT, words…, EOT, 0…] captions with EOT the largest id, exactly once.
func TestRandomBenchBatchLayout(t *testing.T) {
	var cfg fusion.Config
	if err := preset.Load("tiny", &cfg); err != nil {
		t.Fatal(err)
	}
	const batch = 16
	b := randomBenchBatch(cfg, batch, rand.New(rand.NewPCG(1, 2)))
	s, l, v := cfg.Vision.ImageSize, cfg.Text.ContextLength, int32(cfg.Text.VocabSize)
	if len(b.images) != batch*3*s*s || len(b.tokens) != batch*l {
		t.Fatalf("sizes %d, %d", len(b.images), len(b.tokens))
	}
	for i, x := range b.images {
		ch := (i / (s * s)) % 3
		lo, hi := -openAIMean[ch]/openAIStd[ch], (1-openAIMean[ch])/openAIStd[ch]
		if x < lo-1e-5 || x > hi+1e-5 {
			t.Fatalf("pixel %d (channel %d) = %g outside [%g, %g]", i, ch, x, lo, hi)
		}
	}
	for r := range batch {
		row := b.tokens[r*l : (r+1)*l]
		if row[0] != v-2 {
			t.Fatalf("row %d starts with %d, want SOT %d", r, row[0], v-2)
		}
		eot := -1
		for j, id := range row {
			switch {
			case id == v-1 && eot < 0:
				eot = j
			case id == v-1:
				t.Fatalf("row %d: second EOT at %d", r, j)
			case eot >= 0 && id != 0:
				t.Fatalf("row %d: id %d after EOT", r, id)
			case eot < 0 && j > 0 && (id < 1 || id >= v-2):
				t.Fatalf("row %d: word id %d outside [1, %d)", r, id, v-2)
			}
		}
		if eot < 1 {
			t.Fatalf("row %d: no EOT in %v", r, row)
		}
	}
}

// TestBench runs a short benchmark and checks that its figures hang together.
func TestBench(t *testing.T) {
	res, err := Run(context.Background(), Options{Preset: "tiny", Threads: 2, Steps: 3, Warmup: 1, Batch: 4, PeakN: 64})
	if err != nil {
		t.Fatal(err)
	}
	if res.Batch != 4 || res.TimedSteps != 3 || res.WarmupSteps != 1 || res.Threads != 2 || len(res.StepTimes) != 3 {
		t.Fatalf("settings not applied: %+v", res)
	}
	if res.Params != 1369601 {
		t.Errorf("params %d, want the reference's 1369601 for tiny", res.Params)
	}
	split := res.FwdMedian + res.BwdMedian + res.OptMedian
	if !(res.StepMedian > 0 && res.FwdMedian > 0 && res.BwdMedian > 0 && res.OptMedian > 0) ||
		split > 1.5*res.StepMax || res.StepMin > res.StepMedian || res.StepMedian > res.StepMax {
		t.Errorf("times: step %v (min %v max %v), fwd %v bwd %v opt %v", res.StepMedian, res.StepMin, res.StepMax,
			res.FwdMedian, res.BwdMedian, res.OptMedian)
	}
	if math.Abs(res.SamplesPerSec-4/res.StepMedian) > 0.01*res.SamplesPerSec+0.01 {
		t.Errorf("samples/s %v for step %v", res.SamplesPerSec, res.StepMedian)
	}
	if len(res.SgemmRuns) != 2 || res.SgemmGFLOPS != max(res.SgemmRuns[0], res.SgemmRuns[1]) {
		t.Errorf("ceiling %v from runs %v, want the higher of two", res.SgemmGFLOPS, res.SgemmRuns)
	}
	if !(res.SgemmGFLOPS > 0 && res.MFU > 0 && res.GFLOPS > 0 && res.PeakRSSMiB > 0) {
		t.Errorf("ceiling %v, mfu %v, gflops %v, rss %v", res.SgemmGFLOPS, res.MFU, res.GFLOPS, res.PeakRSSMiB)
	}
	// Four random pairs: the loss starts near ln 4.
	if math.Abs(res.LossFirst-math.Log(4)) > 0.5 || math.IsNaN(res.LossLast) {
		t.Errorf("loss first %v last %v", res.LossFirst, res.LossLast)
	}
	if res.LogitScale > math.Log(100) || res.LogitScale < 0 {
		t.Errorf("logit scale %v not clamped", res.LogitScale)
	}
}

// TestBenchCPUProfile checks that Options.CPUProfile receives a profile (gzip-compressed
// protobuf, as pprof writes) and that the profiler is stopped when Run returns.
func TestBenchCPUProfile(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Run(context.Background(), Options{Preset: "tiny", Threads: 2, Steps: 2, Warmup: 1, Batch: 4, PeakN: -1,
		CPUProfile: &buf}); err != nil {
		t.Fatal(err)
	}
	if b := buf.Bytes(); len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("cpu profile: %d bytes, not a gzip-compressed pprof profile", len(b))
	}
	if err := pprof.StartCPUProfile(&bytes.Buffer{}); err != nil {
		t.Fatalf("profiler still running after Run: %v", err)
	}
	pprof.StopCPUProfile()
}

func TestBenchErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"unknown preset", Options{Preset: "huge"}, "preset"},
		{"vit-b-32 is not a reference preset", Options{Preset: "vit-b-32"}, "tiny or small"},
		{"negative steps", Options{Preset: "tiny", Steps: -1}, "negative"},
		{"negative threads", Options{Preset: "tiny", Threads: -2}, "negative"},
		{"batch of one", Options{Preset: "tiny", Batch: 1}, "at least 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
