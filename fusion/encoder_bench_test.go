package fusion

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
	G "gorgonia.org/gorgonia"
)

// smallPreset is the reference's `small` preset (configs/models/small.yaml).
var smallPreset = Config{EmbedDim: 256,
	Vision: vision.Config{ImageSize: 64, PatchSize: 8, Width: 256, Layers: 4, Heads: 4, MLPRatio: 4},
	Text:   text.Config{ContextLength: 77, VocabSize: 49408, Width: 256, Layers: 4, Heads: 4, MLPRatio: 4}}

// BenchmarkEncodeImages embeds 2.5 batches of images per iteration by the inference path
// (Encoder) and by the path evaluation took before it: the whole training model built
// (backward pass, gradient buffers) with the image subgraph of its graph run, the last partial
// batch padded to a full one. It reports images/s and the process's peak RSS, which is
// only the sub-benchmark's own when it runs alone in its process: `make bench` runs each so.
func BenchmarkEncodeImages(b *testing.B) {
	for _, p := range []struct {
		name  string
		cfg   Config
		batch int
	}{{"small", smallPreset, 64}, {"vit-b-32", vitB32Config, 32}} {
		n := p.batch*2 + p.batch/2
		images, _ := randomBatch(p.cfg, n, 1)
		b.Run(p.name+"/inference", func(b *testing.B) {
			enc, err := randomEncoder(p.cfg, p.batch)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			benchEncode(b, n, func() error { _, err := enc.Images(images); return err })
		})
		b.Run(p.name+"/training-graph", func(b *testing.B) {
			m, err := New(p.cfg, p.batch, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			vm := G.NewTapeMachine(m.b.G.SubgraphRoots(m.vision.Output()))
			defer vm.Close()
			per := m.cfg.Vision.ImageSize * m.cfg.Vision.ImageSize * 3
			buf := make([]float32, p.batch*per)
			benchEncode(b, n, func() error {
				for start := 0; start < n; start += p.batch {
					k := min(p.batch, n-start)
					copy(buf, images[start*per:(start+k)*per])
					for r := k; r < p.batch; r++ { // padded with the last row, as before
						copy(buf[r*per:(r+1)*per], images[(start+k-1)*per:(start+k)*per])
					}
					if err := m.vision.SetImages(buf); err != nil {
						return err
					}
					vm.Reset()
					if err := vm.RunAll(); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}

// randomEncoder is an Encoder over random weights of cfg, made without a training model (whose
// gradient buffers would count in the peak RSS).
func randomEncoder(cfg Config, batch int) (*Encoder, error) {
	params, err := WeightsOf(cfg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	w := map[string]*nn.Param{}
	for _, p := range params {
		for i := range p.Value {
			p.Value[i] = float32(0.02 * rng.NormFloat64())
		}
		w[p.Name] = p
	}
	return newEncoder(cfg, batch, w)
}

func benchEncode(b *testing.B, n int, encode func() error) {
	if err := encode(); err != nil { // warm-up: buffers touched, graphs built
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := encode(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
	if rss := peakRSSMiB(); rss > 0 {
		b.ReportMetric(rss, "peak-RSS-MiB")
	}
}

// peakRSSMiB reads the process's peak resident set (VmHWM) from /proc; 0 where there is none.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
