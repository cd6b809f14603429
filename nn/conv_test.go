package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestConvGradients checks the feature-map ops against central differences, batch norm in
// both modes.
func TestConvGradients(t *testing.T) {
	s := nn.Spatial{Batch: 2, H: 5, W: 4}
	train, eval := true, false
	stats := func(c int, mode *bool) *nn.BatchStats {
		st := &nn.BatchStats{Mean: make([]float32, c), Var: make([]float32, c), Count: make([]float32, 1),
			Momentum: nn.BatchNormMomentum, Eps: nn.BatchNormEps, Training: mode}
		for j := range c {
			st.Mean[j], st.Var[j] = 0.1*float32(j), 0.5+0.25*float32(j)
		}
		return st
	}
	cases := []gradCase{
		{"im2col_3x3_pad1", [][]int{{s.Rows(), 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Im2Col(in[0], s, 3, 1, 1) }},
		{"im2col_3x3_stride2_pad1", [][]int{{s.Rows(), 2}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Im2Col(in[0], s, 3, 2, 1) }},
		{"im2col_2x2_stride2", [][]int{{s.Rows(), 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Im2Col(in[0], s, 2, 2, 0) }},
		{"avg_pool_2", [][]int{{s.Rows(), 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.AvgPool2D(in[0], s, 2) }}, // drops row 4
		{"avg_pool_1", [][]int{{s.Rows(), 2}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.AvgPool2D(in[0], s, 1) }},
		{"relu", [][]int{{5, 7}}, []float64{2}, func(in G.Nodes) (*G.Node, error) { return nn.ReLU(in[0]) }},
		{"prepend_mean", [][]int{{2 * 3, 4}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.PrependMean(in[0], 2) }},
		{"concat_rows_matrices", [][]int{{2, 3}, {1, 3}, {4, 3}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.ConcatRows(in...) }},
		{"concat_rows_vectors", [][]int{{3}, {3}, {2}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.ConcatRows(in...) }},
		{"batch_norm_train", [][]int{{7, 3}, {3}, {3}}, []float64{2, 1, 1}, func(in G.Nodes) (*G.Node, error) {
			return nn.BatchNorm(in[0], in[1], in[2], stats(3, &train))
		}},
		{"batch_norm_eval", [][]int{{7, 3}, {3}, {3}}, nil, func(in G.Nodes) (*G.Node, error) {
			return nn.BatchNorm(in[0], in[1], in[2], stats(3, &eval))
		}},
		{"batch_norm_train_then_relu", [][]int{{6, 4}, {4}, {4}}, nil, func(in G.Nodes) (*G.Node, error) {
			y, err := nn.BatchNorm(in[0], in[1], in[2], stats(4, &train))
			if err != nil {
				return nil, err
			}
			return nn.ReLU(y)
		}},
	}
	// Sizes large enough that the kernels split their work over goroutines.
	big := nn.Spatial{Batch: 32, H: 8, W: 8}
	cases = append(cases,
		gradCase{"im2col_parallel", [][]int{{big.Rows(), 4}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.Im2Col(in[0], big, 3, 1, 1) }},
		gradCase{"avg_pool_parallel", [][]int{{big.Rows(), 16}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.AvgPool2D(in[0], big, 2) }},
		gradCase{"relu_parallel", [][]int{{big.Rows(), 16}}, nil, func(in G.Nodes) (*G.Node, error) { return nn.ReLU(in[0]) }},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nntest.CheckGradients(t, nntest.Case{Name: c.name, Shapes: c.shapes, Scale: c.scale, Build: c.build})
		})
	}
}

// TestBatchNormParallelMatchesSerial compares batch norm's values and gradients with its work
// split over goroutines and in one (whose gradients TestConvGradients checks): at this size
// central differences of a 32 Ki-term sum are too noisy for a 1e-6 check.
func TestBatchNormParallelMatchesSerial(t *testing.T) {
	const n, c = 2048, 16
	rng := rand.New(rand.NewPCG(7, 8))
	vals := [][]float64{randn(rng, n*c), randn(rng, c), randn(rng, c)}
	w := randn(rng, n*c)
	run := func(procs int, training bool) [][]float64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		st := &nn.BatchStats{Mean: make([]float32, c), Var: make([]float32, c), Count: make([]float32, 1),
			Momentum: nn.BatchNormMomentum, Eps: nn.BatchNormEps, Training: &training}
		for j := range c {
			st.Var[j] = 1.5
		}
		g := G.NewGraph()
		in := make(G.Nodes, 3)
		for i, shape := range [][]int{{n, c}, {c}, {c}} {
			var err error
			if in[i], err = nn.Variable(g, fmt.Sprint("x", i), append([]float64(nil), vals[i]...), shape...); err != nil {
				t.Fatal(err)
			}
		}
		y, err := nn.BatchNorm(in[0], in[1], in[2], st)
		if err != nil {
			t.Fatal(err)
		}
		out := [][]float64{make([]float64, n*c), make([]float64, n*c), make([]float64, c), make([]float64, c)}
		if y, err = nn.Tap(y, out[0]); err != nil {
			t.Fatal(err)
		}
		cost, err := nn.Apply("dot", nil, G.Nodes{y}, func(s []float64, v [][]float64) {
			s[0] = 0
			for i, x := range v[0] {
				s[0] += x * w[i]
			}
		}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
			d, err := nn.Apply("dot_grad", tensor.Shape{n, c}, G.Nodes{g}, func(d []float64, v [][]float64) {
				for i := range d {
					d[i] = w[i] * v[0][0]
				}
			}, nil)
			return G.Nodes{d}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		grads, err := G.Grad(cost, in...)
		if err != nil {
			t.Fatal(err)
		}
		for i, gn := range grads {
			if _, err := nn.Store(gn, out[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return append(out, []float64{float64(st.Mean[3]), float64(st.Var[3])})
	}
	for _, training := range []bool{true, false} {
		serial, split := run(1, training), run(4, training)
		for k, name := range []string{"y", "dx", "dgamma", "dbeta", "running stats"} {
			for i := range serial[k] {
				if d := math.Abs(serial[k][i] - split[k][i]); d > 1e-9*max(1, math.Abs(serial[k][i])) {
					t.Fatalf("training %v: %s[%d]: one goroutine %g, several %g", training, name, i, serial[k][i], split[k][i])
				}
			}
		}
	}
}

// run64 builds f over float64 inputs of the given values and shapes and returns its output.
func run64(t *testing.T, vals [][]float64, shapes [][]int, f func(G.Nodes) (*G.Node, error)) []float64 {
	t.Helper()
	g := G.NewGraph()
	in := make(G.Nodes, len(vals))
	for i := range vals {
		var err error
		if in[i], err = nn.Variable(g, "x"+string(rune('0'+i)), vals[i], shapes[i]...); err != nil {
			t.Fatal(err)
		}
	}
	y, err := f(in)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, y.Shape().TotalSize())
	if _, err := nn.Tap(y, out); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return out
}

func randn(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// TestConv2DMatchesDirect compares Conv2D (im2col + product, channels-last) with a direct
// NCHW convolution as torch defines it, for the shapes a ResNet uses.
func TestConv2DMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ b, cin, cout, h, w, k, stride, pad int }{
		{2, 3, 4, 7, 6, 3, 2, 1}, {1, 2, 3, 5, 5, 3, 1, 1}, {2, 4, 5, 3, 4, 1, 1, 0}, {1, 3, 2, 6, 6, 2, 2, 0},
	} {
		s := nn.Spatial{Batch: tc.b, H: tc.h, W: tc.w}
		o := s.Conv(tc.k, tc.stride, tc.pad)
		xNCHW := randn(rng, tc.b*tc.cin*tc.h*tc.w)
		w := randn(rng, tc.cout*tc.cin*tc.k*tc.k)
		x := make([]float64, len(xNCHW)) // channels-last rows
		for b := range tc.b {
			for c := range tc.cin {
				for y := range tc.h {
					for xx := range tc.w {
						x[((b*tc.h+y)*tc.w+xx)*tc.cin+c] = xNCHW[((b*tc.cin+c)*tc.h+y)*tc.w+xx]
					}
				}
			}
		}
		b, err := nn.NewBuilder(tensor.Float64, 0)
		if err != nil {
			t.Fatal(err)
		}
		conv, err := b.NewConv2D("conv", tc.cin, tc.cout, tc.k, tc.stride, tc.pad, nil)
		if err != nil {
			t.Fatal(err)
		}
		copy(b.Value64(0), w)
		xin, err := b.Input("x", x, s.Rows(), tc.cin)
		if err != nil {
			t.Fatal(err)
		}
		y, os, err := conv.Forward(xin, s)
		if err != nil {
			t.Fatal(err)
		}
		if os != o {
			t.Fatalf("layout %v, want %v", os, o)
		}
		got := make([]float64, o.Rows()*tc.cout)
		if _, err := nn.Tap(y, got); err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(b.G)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		m.Close()
		for bi := range tc.b {
			for co := range tc.cout {
				for oy := range o.H {
					for ox := range o.W {
						var want float64
						for ci := range tc.cin {
							for ky := range tc.k {
								for kx := range tc.k {
									iy, ix := oy*tc.stride-tc.pad+ky, ox*tc.stride-tc.pad+kx
									if iy < 0 || iy >= tc.h || ix < 0 || ix >= tc.w {
										continue
									}
									want += xNCHW[((bi*tc.cin+ci)*tc.h+iy)*tc.w+ix] * w[((co*tc.cin+ci)*tc.k+ky)*tc.k+kx]
								}
							}
						}
						g := got[((bi*o.H+oy)*o.W+ox)*tc.cout+co]
						if math.Abs(g-want) > 1e-12 {
							t.Fatalf("%+v: out (%d,%d,%d,%d) = %g, want %g", tc, bi, co, oy, ox, g, want)
						}
					}
				}
			}
		}
	}
}

// TestAvgPoolAndPrependMean checks the pooling ops' values against their definitions.
func TestAvgPoolAndPrependMean(t *testing.T) {
	s := nn.Spatial{Batch: 1, H: 5, W: 4}
	x := make([]float64, s.Rows()*2)
	for i := range x {
		x[i] = float64(i)
	}
	y := run64(t, [][]float64{x}, [][]int{{s.Rows(), 2}}, func(in G.Nodes) (*G.Node, error) { return nn.AvgPool2D(in[0], s, 2) })
	// Output pixel (1, 0), channel 1: input pixels (2..3, 0..1), rows 8, 9, 12, 13.
	if want := (x[8*2+1] + x[9*2+1] + x[12*2+1] + x[13*2+1]) / 4; len(y) != 2*2*2 || y[(1*2+0)*2+1] != want {
		t.Errorf("avg pool %v, want [1,0,1] = %g", y, want)
	}
	p := run64(t, [][]float64{x[:12]}, [][]int{{6, 2}}, func(in G.Nodes) (*G.Node, error) { return nn.PrependMean(in[0], 2) })
	want := []float64{2, 3, 0, 1, 2, 3, 4, 5, 8, 9, 6, 7, 8, 9, 10, 11}
	for i := range want {
		if p[i] != want[i] {
			t.Fatalf("prepend mean %v, want %v", p, want)
		}
	}
}

// TestBatchNormRunningStatistics checks a training pass against torch's rule: batch mean and
// biased variance normalise, the running mean and unbiased variance move by momentum 0.1,
// num_batches_tracked counts; an evaluation pass uses the running statistics and changes none.
func TestBatchNormRunningStatistics(t *testing.T) {
	const n, c = 6, 2
	rng := rand.New(rand.NewPCG(5, 6))
	x := randn(rng, n*c)
	training := true
	st := &nn.BatchStats{Mean: []float32{0.5, -1}, Var: []float32{2, 0.25}, Count: []float32{3},
		Momentum: nn.BatchNormMomentum, Eps: nn.BatchNormEps, Training: &training}
	gamma, beta := []float64{1.5, -0.5}, []float64{0.25, 2}
	build := func(in G.Nodes) (*G.Node, error) { return nn.BatchNorm(in[0], in[1], in[2], st) }
	shapes := [][]int{{n, c}, {c}, {c}}
	y := run64(t, [][]float64{x, gamma, beta}, shapes, build)
	for j := range c {
		var mean, q float64
		for r := range n {
			mean += x[r*c+j] / n
		}
		for r := range n {
			q += (x[r*c+j] - mean) * (x[r*c+j] - mean)
		}
		for r := range n {
			want := (x[r*c+j]-mean)/math.Sqrt(q/n+nn.BatchNormEps)*gamma[j] + beta[j]
			if math.Abs(y[r*c+j]-want) > 1e-12 {
				t.Fatalf("train y[%d,%d] = %g, want %g", r, j, y[r*c+j], want)
			}
		}
		oldMean, oldVar := []float64{0.5, -1}[j], []float64{2, 0.25}[j]
		if wm, wv := 0.9*oldMean+0.1*mean, 0.9*oldVar+0.1*q/(n-1); math.Abs(float64(st.Mean[j])-wm) > 1e-6 || math.Abs(float64(st.Var[j])-wv) > 1e-6 {
			t.Errorf("channel %d: running mean, var %g, %g; want %g, %g", j, st.Mean[j], st.Var[j], wm, wv)
		}
	}
	if st.Count[0] != 4 {
		t.Errorf("num_batches_tracked %g, want 4", st.Count[0])
	}
	training = false
	before := append([]float32(nil), st.Mean...)
	y = run64(t, [][]float64{x, gamma, beta}, shapes, build)
	for r := range n {
		for j := range c {
			want := (x[r*c+j]-float64(st.Mean[j]))/math.Sqrt(float64(st.Var[j])+nn.BatchNormEps)*gamma[j] + beta[j]
			if math.Abs(y[r*c+j]-want) > 1e-12 {
				t.Fatalf("eval y[%d,%d] = %g, want %g", r, j, y[r*c+j], want)
			}
		}
	}
	if st.Count[0] != 4 || st.Mean[0] != before[0] {
		t.Errorf("an evaluation pass changed the running statistics")
	}
}

// TestBatchNorm2DBuffers checks the layer's names, its buffers' initial values and that they
// are buffers (no graph node, no decay).
func TestBatchNorm2DBuffers(t *testing.T) {
	b, err := nn.NewBuilder(tensor.Float32, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.NewBatchNorm2D("bn1", 3, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		shape  int // elements
		value  float32
		buffer bool
	}{
		"bn1.weight": {3, 1, false}, "bn1.bias": {3, 0, false}, "bn1.running_mean": {3, 0, true},
		"bn1.running_var": {3, 1, true}, "bn1.num_batches_tracked": {1, 0, true},
	}
	if len(b.Params()) != len(want) {
		t.Errorf("%d params, want %d", len(b.Params()), len(want))
	}
	for name, w := range want {
		p, ok := b.Lookup(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		if p.Size() != w.shape || p.Value[0] != w.value || p.Buffer != w.buffer || p.Decay {
			t.Errorf("%s: shape %v, value %v, buffer %v, decay %v", name, p.Shape, p.Value[0], p.Buffer, p.Decay)
		}
	}
	if p, _ := b.Lookup("bn1.num_batches_tracked"); len(p.Shape) != 0 {
		t.Errorf("num_batches_tracked has shape %v, want a scalar as torch's", p.Shape)
	}
}
