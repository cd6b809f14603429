package optim

import (
	"fmt"
	"testing"

	"github.com/clipgo/clipgo/nn"
)

// benchParams is the demo preset's token embedding (49408×128) plus the MLP and attention
// matrices of one width-128 block and a few vectors: 6.59 M parameters.
func benchParams() []*nn.Param {
	shapes := []struct {
		name  string
		shape []int
	}{
		{"token_embedding.weight", []int{49408, 128}},
		{"transformer.resblocks.0.attn.in_proj_weight", []int{384, 128}},
		{"transformer.resblocks.0.attn.out_proj.weight", []int{128, 128}},
		{"transformer.resblocks.0.mlp.c_fc.weight", []int{512, 128}},
		{"transformer.resblocks.0.mlp.c_proj.weight", []int{128, 512}},
		{"transformer.resblocks.0.mlp.c_fc.bias", []int{512}},
		{"transformer.resblocks.0.ln_1.weight", []int{128}},
		{"logit_scale", nil},
	}
	var ps []*nn.Param
	for _, s := range shapes {
		p := &nn.Param{Name: s.name, Shape: s.shape, Decay: nn.DecayByName(s.name, s.shape)}
		p.Value = make([]float32, p.Size())
		p.Grad = make([]float32, p.Size())
		for i := range p.Grad {
			p.Value[i] = float32(i%97) * 1e-3
			p.Grad[i] = float32(i%89-44) * 1e-4
		}
		ps = append(ps, p)
	}
	return ps
}

// BenchmarkAdamW times one Step over benchParams with 1 and 2 workers; ns/param is the time
// per parameter element, B/s counts the 16 bytes each element reads and writes (value, grad,
// m, v).
func BenchmarkAdamW(b *testing.B) {
	ps := benchParams()
	n := 0
	for _, p := range ps {
		n += p.Size()
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			opt, err := NewAdamW(ps, DefaultAdamW())
			if err != nil {
				b.Fatal(err)
			}
			opt.Workers = workers
			b.SetBytes(int64(16 * n))
			b.ReportAllocs()
			for b.Loop() {
				if err := opt.Step(5e-4); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/param")
			b.ReportMetric(float64(n), "params")
		})
	}
}

// BenchmarkClipGradNorm times the global norm plus the scaling pass over benchParams.
func BenchmarkClipGradNorm(b *testing.B) {
	ps := benchParams()
	n := 0
	for _, p := range ps {
		n += p.Size()
	}
	b.SetBytes(int64(4 * n))
	for b.Loop() {
		ClipGradNorm(ps, 1e9) // no scaling: the norm pass alone, as in most steps
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/param")
}
