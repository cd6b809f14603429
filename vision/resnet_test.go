package vision

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/nntest"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// tinyResNet is small enough for central differences: 64 px (a 2×2 last map), stem width 4.
var tinyResNet = Config{Type: TypeResNet, ImageSize: 64, Width: 4, Heads: 2, StageLayers: StageLayers{1, 2, 1, 1}}

// TestResNetParams checks open_clip's state_dict names and shapes, the downsample rule, the
// buffers and the init of open_clip's init_parameters.
func TestResNetParams(t *testing.T) {
	b, err := nn.NewBuilder(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewModifiedResNet(b, tinyResNet, 2, 6); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"visual.conv1.weight":                              {2, 3, 3, 3},
		"visual.bn1.running_var":                           {2},
		"visual.bn1.num_batches_tracked":                   {},
		"visual.conv2.weight":                              {2, 2, 3, 3},
		"visual.conv3.weight":                              {4, 2, 3, 3},
		"visual.bn3.weight":                                {4},
		"visual.layer1.0.conv1.weight":                     {4, 4, 1, 1},
		"visual.layer1.0.conv2.weight":                     {4, 4, 3, 3},
		"visual.layer1.0.conv3.weight":                     {16, 4, 1, 1},
		"visual.layer1.0.downsample.0.weight":              {16, 4, 1, 1}, // 4 ≠ 16 channels
		"visual.layer1.0.downsample.1.running_mean":        {16},
		"visual.layer2.0.downsample.0.weight":              {32, 16, 1, 1}, // stride 2
		"visual.layer2.1.bn3.bias":                         {32},
		"visual.layer4.0.conv3.weight":                     {128, 32, 1, 1},
		"visual.attnpool.positional_embedding":             {5, 128},
		"visual.attnpool.q_proj.weight":                    {128, 128},
		"visual.attnpool.k_proj.bias":                      {128},
		"visual.attnpool.c_proj.weight":                    {6, 128},
		"visual.layer4.0.downsample.1.num_batches_tracked": {},
	}
	for name, shape := range want {
		p, ok := b.Lookup(name)
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if !slices.Equal(p.Shape, shape) {
			t.Errorf("%s: shape %v, want %v", name, p.Shape, shape)
		}
	}
	for _, name := range []string{"visual.layer2.1.downsample.0.weight", "visual.layer1.0.downsample.2.weight", "visual.attnpool.in_proj_weight"} {
		if _, ok := b.Lookup(name); ok {
			t.Errorf("%s should not exist", name)
		}
	}
	std := func(name string) float64 {
		p, _ := b.Lookup(name)
		var s float64
		for _, v := range p.Value {
			s += float64(v) * float64(v)
		}
		return math.Sqrt(s / float64(len(p.Value)))
	}
	for _, p := range b.Params() {
		isBN := strings.Contains(p.Name, ".bn") || strings.Contains(p.Name, "downsample.1.")
		switch {
		case strings.HasSuffix(p.Name, "num_batches_tracked") || strings.HasSuffix(p.Name, "running_mean"):
			if !p.Buffer || slices.ContainsFunc(p.Value, func(v float32) bool { return v != 0 }) {
				t.Errorf("%s: buffer %v, values %v; want a zero buffer", p.Name, p.Buffer, p.Value)
			}
		case strings.HasSuffix(p.Name, "running_var"):
			if !p.Buffer || slices.ContainsFunc(p.Value, func(v float32) bool { return v != 1 }) {
				t.Errorf("%s: buffer %v; want a buffer of ones", p.Name, p.Buffer)
			}
		case strings.HasSuffix(p.Name, "bn3.weight") && strings.Contains(p.Name, "layer"):
			if slices.ContainsFunc(p.Value, func(v float32) bool { return v != 0 }) {
				t.Errorf("%s: want zeros (open_clip's init_parameters)", p.Name)
			}
		case isBN && strings.HasSuffix(p.Name, ".weight"):
			if slices.ContainsFunc(p.Value, func(v float32) bool { return v != 1 }) {
				t.Errorf("%s: want ones", p.Name)
			}
		case p.Buffer:
			t.Errorf("%s is a buffer", p.Name)
		}
		if p.Decay != (len(p.Shape) >= 2 && !isBN) {
			t.Errorf("%s: decay %v", p.Name, p.Decay)
		}
	}
	// Conv weights: U(±1/√fanIn), std 1/√(3·fanIn); attention pool: N(0, 1/C).
	if s, w := std("visual.layer3.0.conv2.weight"), 1/math.Sqrt(3*16*9); math.Abs(s-w) > 0.1*w {
		t.Errorf("conv2 std %.4f, want about %.4f", s, w)
	}
	for _, name := range []string{"visual.attnpool.q_proj.weight", "visual.attnpool.positional_embedding"} {
		if s, w := std(name), 1/math.Sqrt(128); math.Abs(s-w) > 0.1*w {
			t.Errorf("%s std %.4f, want about %.4f", name, s, w)
		}
	}
}

// TestResNetGradients checks the whole tower end to end in float64, in training mode (batch
// statistics) and in evaluation mode, against central differences: stem, a block with a
// downsample path, strided blocks, an identity block and the attention pool. A deep ReLU net
// has kinks: a ReLU input within h·(its sensitivity) of zero makes the h = 1e-6 difference
// disagree while h = 1e-7 agrees with the analytic gradient (seen for other sizes and
// seeds, e.g. batch 2 with two blocks in layer1); the batch and seeds here have none.
func TestResNetGradients(t *testing.T) {
	for _, training := range []bool{true, false} {
		name := map[bool]string{true: "train", false: "eval"}[training]
		t.Run(name, func(t *testing.T) {
			b, err := nn.NewBuilder(tensor.Float64, 3)
			if err != nil {
				t.Fatal(err)
			}
			*b.Training() = training
			tw, err := NewModifiedResNet(b, tinyResNet, 1, 6)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(9, 9))
			img := make([]float32, tw.ImageLen())
			for i := range img {
				img[i] = float32(rng.NormFloat64())
			}
			if err := tw.SetImages(img); err != nil {
				t.Fatal(err)
			}
			// Move every norm off its init (bn3 starts at zero, which would leave the residual
			// branches without gradient) and give evaluation running statistics to use.
			for i, p := range b.Params() {
				if p.Buffer {
					if strings.HasSuffix(p.Name, "running_var") {
						for j := range p.Value {
							p.Value[j] = 0.5 + rng.Float32()
						}
					} else if strings.HasSuffix(p.Name, "running_mean") {
						for j := range p.Value {
							p.Value[j] = 0.2 * float32(rng.NormFloat64())
						}
					}
					continue
				}
				if len(p.Shape) == 1 {
					for j := range b.Value64(i) {
						b.Value64(i)[j] = 0.5 + 0.5*rng.Float64()
						if strings.HasSuffix(p.Name, "bias") {
							b.Value64(i)[j] = 0.3 * rng.NormFloat64()
						}
					}
				}
			}
			nntest.CheckBuilder(t, b, tw.Output())
		})
	}
}

// TestResNetRunningStatistics runs the float32 tower once in training mode (every batch norm
// counts a batch and moves its running statistics) and once in evaluation mode (nothing moves).
func TestResNetRunningStatistics(t *testing.T) {
	b, err := nn.NewBuilder(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := New(b, tinyResNet, 2, 6, false)
	if err != nil {
		t.Fatal(err)
	}
	img := make([]float32, 2*3*64*64)
	for i := range img {
		img[i] = float32(math.Sin(float64(i)))
	}
	if err := tw.SetImages(img); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(b.G)
	defer m.Close()
	run := func(training bool) {
		*b.Training() = training
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	run(true)
	count, _ := b.Lookup("visual.layer3.0.downsample.1.num_batches_tracked")
	mean, _ := b.Lookup("visual.bn1.running_mean")
	if count.Value[0] != 1 || !slices.ContainsFunc(mean.Value, func(v float32) bool { return v != 0 }) {
		t.Fatalf("after a training pass: num_batches_tracked %v, bn1.running_mean %v", count.Value, mean.Value)
	}
	before := slices.Clone(mean.Value)
	run(false)
	if count.Value[0] != 1 || !slices.Equal(before, mean.Value) {
		t.Errorf("an evaluation pass moved the running statistics")
	}
	if err := tw.SetImages(img[1:]); err == nil {
		t.Error("SetImages accepted a short batch")
	}
}

// TestResNetSetImagesLayout checks the channels-last input: row (b, y, x), column c is image
// b, channel c, pixel (y, x).
func TestResNetSetImagesLayout(t *testing.T) {
	b, _ := nn.NewBuilder(tensor.Float32, 1)
	cfg := tinyResNet
	cfg.ImageSize = 32
	tw, err := NewModifiedResNet(b, cfg, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	img := make([]float32, tw.ImageLen())
	for i := range img {
		img[i] = float32(i)
	}
	if err := tw.SetImages(img); err != nil {
		t.Fatal(err)
	}
	for _, px := range [][4]int{{0, 0, 0, 0}, {1, 2, 5, 7}, {1, 1, 31, 30}} {
		bi, c, y, x := px[0], px[1], px[2], px[3]
		got := tw.pix32[((bi*32+y)*32+x)*3+c]
		if want := img[((bi*3+c)*32+y)*32+x]; got != want {
			t.Errorf("image %d channel %d pixel (%d,%d): %v, want %v", bi, c, y, x, got, want)
		}
	}
}

func TestConfigValidatePerType(t *testing.T) {
	vit := Config{ImageSize: 32, PatchSize: 4, Width: 8, Layers: 1, Heads: 2, MLPRatio: 4}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"vit", vit, ""},
		{"resnet", tinyResNet, ""},
		{"resnet ignores the vit keys", func() Config { c := tinyResNet; c.PatchSize, c.MLPRatio = 16, 4; return c }(), ""},
		{"unknown type", func() Config { c := vit; c.Type = "convnext"; return c }(), `"resnet"`},
		{"vit with stages", func() Config { c := vit; c.StageLayers = StageLayers{1, 1, 1, 1}; return c }(), "stage_layers"},
		{"resnet size", func() Config { c := tinyResNet; c.ImageSize = 48; return c }(), "multiple of 32"},
		{"resnet odd width", func() Config { c := tinyResNet; c.Width = 5; return c }(), "even"},
		{"resnet heads", func() Config { c := tinyResNet; c.Heads = 3; return c }(), "heads 3"},
		{"resnet empty stage", func() Config { c := tinyResNet; c.StageLayers[2] = 0; return c }(), "stage_layers"},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestConfigJSON checks that a ViT's config encodes as before the ResNet keys existed, and
// that a ResNet's round-trips.
func TestConfigJSON(t *testing.T) {
	vit := Config{ImageSize: 32, PatchSize: 4, Width: 128, Layers: 2, Heads: 2, MLPRatio: 4}
	raw, err := json.Marshal(vit)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"image_size":32,"patch_size":4,"width":128,"layers":2,"heads":2,"mlp_ratio":4}`; string(raw) != want {
		t.Errorf("ViT JSON %s, want %s", raw, want)
	}
	raw, err = json.Marshal(tinyResNet)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(raw, &back); err != nil || back != tinyResNet {
		t.Errorf("ResNet JSON %s read back as %+v (%v)", raw, back, err)
	}
}

// BenchmarkResNetStep times the rn50-tiny image tower's forward and backward pass (training
// mode) at batch 32.
func BenchmarkResNetStep(b *testing.B) {
	cfg := Config{Type: TypeResNet, ImageSize: 64, Width: 32, Heads: 16, StageLayers: StageLayers{1, 1, 1, 1}}
	const batch = 32
	bld, err := nn.NewBuilder(tensor.Float32, 1)
	if err != nil {
		b.Fatal(err)
	}
	*bld.Training() = true
	tw, err := NewModifiedResNet(bld, cfg, batch, 128)
	if err != nil {
		b.Fatal(err)
	}
	img := make([]float32, tw.ImageLen())
	for i := range img {
		img[i] = float32(math.Sin(float64(i)))
	}
	if err := tw.SetImages(img); err != nil {
		b.Fatal(err)
	}
	sum, err := nn.Apply("sum", nil, G.Nodes{tw.Output()}, func(s []float32, in [][]float32) {
		var acc float32
		for _, v := range in[0] {
			acc += v
		}
		s[0] = acc
	}, func(_ G.Nodes, _, g *G.Node) (G.Nodes, error) {
		d, err := nn.Apply("sum_grad", tw.Output().Shape(), G.Nodes{g}, func(d []float32, in [][]float32) {
			for i := range d {
				d[i] = in[0][0]
			}
		}, nil)
		return G.Nodes{d}, err
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := bld.Backward(sum); err != nil {
		b.Fatal(err)
	}
	m := G.NewTapeMachine(bld.G)
	defer m.Close()
	for b.Loop() {
		m.Reset()
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
}
