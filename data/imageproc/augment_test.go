package imageproc

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/disintegration/imaging"
)

// unnorm maps a normalised CHW value of channel c back to [0, 255].
func unnorm(v float32, c int) float64 {
	return (float64(v)*float64(CLIPStd[c]) + float64(CLIPMean[c])) * 255
}

func TestSampleCropBounds(t *testing.T) {
	a, _ := Augment{Size: 32}.withDefaults()
	wide, _ := Augment{Size: 32, Scale: [2]float64{0.08, 1}}.withDefaults()
	for _, tc := range []struct {
		aug  Augment
		w, h int
	}{{a, 256, 256}, {a, 300, 200}, {a, 64, 64}, {a, 50, 90}, {wide, 256, 256}, {wide, 640, 480}} {
		rng := rand.New(rand.NewPCG(1, 2))
		fallback := fallbackCrop(tc.aug, tc.w, tc.h)
		for range 5000 {
			r := tc.aug.sampleCrop(tc.w, tc.h, rng)
			if r == fallback {
				continue // after ten misses: the centre crop, checked in TestSampleCropFallback
			}
			if !r.In(image.Rect(0, 0, tc.w, tc.h)) || r.Empty() {
				t.Fatalf("%dx%d: crop %v outside the image", tc.w, tc.h, r)
			}
			cw, ch := float64(r.Dx()), float64(r.Dy())
			// The sides are rounded to whole pixels: allow half a pixel on each.
			areaLo := (cw - 0.5) * (ch - 0.5) / float64(tc.w*tc.h)
			areaHi := (cw + 0.5) * (ch + 0.5) / float64(tc.w*tc.h)
			ratioLo, ratioHi := (cw-0.5)/(ch+0.5), (cw+0.5)/(ch-0.5)
			if areaHi < tc.aug.Scale[0] || areaLo > tc.aug.Scale[1] || ratioHi < tc.aug.Ratio[0] || ratioLo > tc.aug.Ratio[1] {
				t.Fatalf("%dx%d: crop %v: area fraction %.3f..%.3f or ratio %.3f..%.3f out of %v %v",
					tc.w, tc.h, r, areaLo, areaHi, ratioLo, ratioHi, tc.aug.Scale, tc.aug.Ratio)
			}
		}
	}
}

// fallbackCrop is sampleCrop's centre crop after ten misses, computed by a sampler that always
// misses (scale far above 1).
func fallbackCrop(a Augment, w, h int) image.Rectangle {
	a.Scale = [2]float64{1e9, 1e9}
	return a.sampleCrop(w, h, rand.New(rand.NewPCG(0, 0)))
}

func TestSampleCropFallback(t *testing.T) {
	a, _ := Augment{Size: 32}.withDefaults()
	rng := rand.New(rand.NewPCG(3, 4))
	// A 1000x20 strip never fits a 3/4..4/3 crop of 90% of its area: centre crop at ratio 4/3.
	if got, want := a.sampleCrop(1000, 20, rng), image.Rect(486, 0, 513, 20); got != want {
		t.Errorf("wide fallback %v, want %v", got, want)
	}
	if got, want := a.sampleCrop(20, 1000, rng), image.Rect(0, 486, 20, 513); got != want {
		t.Errorf("tall fallback %v, want %v", got, want)
	}
}

// identity is an Augment whose crop is always the whole square image: output = input.
func identity(size int, flip bool) Augment {
	return Augment{Size: size, Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}, Flip: flip}
}

func TestApplyIdentityAndFlip(t *testing.T) {
	const s = 16
	src := gradient(s, s)
	dst := make([]float32, 3*s*s)
	seen := map[bool]bool{}
	for seed := range uint64(20) {
		if err := identity(s, true).Apply(dst, src, rand.New(rand.NewPCG(seed, 0))); err != nil {
			t.Fatal(err)
		}
		mirrored := math.Abs(unnorm(dst[0], 0)-float64(src.Pix[src.PixOffset(s-1, 0)])) < 1e-3
		seen[mirrored] = true
		for c := range 3 {
			for y := range s {
				for x := range s {
					sx := x
					if mirrored {
						sx = s - 1 - x
					}
					want := float64(src.Pix[src.PixOffset(sx, y)+c])
					if got := unnorm(dst[c*s*s+y*s+x], c); math.Abs(got-want) > 1e-3 {
						t.Fatalf("seed %d c%d (%d,%d): %.4f, want %.0f (mirrored=%v)", seed, c, x, y, got, want, mirrored)
					}
				}
			}
		}
	}
	if !seen[true] || !seen[false] {
		t.Errorf("over 20 seeds flip happened: %v; want both outcomes", seen)
	}
}

func TestNormalizeKnownPixel(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []uint8{255, 0, 128, 255})
	}
	dst := make([]float32, 3*4*4)
	if err := EvalTransform(dst, img, 4); err != nil {
		t.Fatal(err)
	}
	want := []float64{
		(1 - 0.48145466) / 0.26862954,
		(0 - 0.4578275) / 0.26130258,
		(128.0/255 - 0.40821073) / 0.27577711,
	}
	for c, w := range want {
		for i := range 16 {
			if got := float64(dst[c*16+i]); math.Abs(got-w) > 1e-5 {
				t.Fatalf("channel %d: %.6f, want %.6f", c, got, w)
			}
		}
	}
}

func TestApplySeedDeterminism(t *testing.T) {
	src := gradient(90, 70)
	a := Augment{Size: 24, Flip: true, Jitter: Jitter{Prob: 1, Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1, GrayProb: 0.2}}
	run := func(seed uint64) []float32 {
		dst := make([]float32, 3*24*24)
		if err := a.Apply(dst, src, rand.New(rand.NewPCG(seed, 7))); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	x, y, z := run(5), run(5), run(6)
	same := func(p, q []float32) bool {
		for i := range p {
			if p[i] != q[i] {
				return false
			}
		}
		return true
	}
	if !same(x, y) {
		t.Error("same seed gave different tensors")
	}
	if same(x, z) {
		t.Error("different seeds gave identical tensors")
	}
}

func TestEvalTransform(t *testing.T) {
	src := halves(200, 100) // resize to 128x64, crop x 32..96: red | blue at column 32
	const s = 64
	a, b := make([]float32, 3*s*s), make([]float32, 3*s*s)
	if err := EvalTransform(a, src, s); err != nil {
		t.Fatal(err)
	}
	if err := EvalTransform(b, src, s); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("EvalTransform is not deterministic")
		}
	}
	for _, tc := range []struct {
		x       int
		r, g, b float64
	}{{0, 255, 0, 0}, {28, 255, 0, 0}, {35, 0, 0, 255}, {63, 0, 0, 255}} {
		y := 40
		got := [3]float64{unnorm(a[y*s+tc.x], 0), unnorm(a[s*s+y*s+tc.x], 1), unnorm(a[2*s*s+y*s+tc.x], 2)}
		if math.Abs(got[0]-tc.r) > 1 || math.Abs(got[1]-tc.g) > 1 || math.Abs(got[2]-tc.b) > 1 {
			t.Errorf("column %d: %v, want (%v %v %v)", tc.x, got, tc.r, tc.g, tc.b)
		}
	}
}

// TestResampleMatchesImaging compares the resampler with imaging's independent Catmull-Rom
// (Keys a = -0.5, the same kernel, antialiased by the same support scaling), which rounds to
// 8 bits after each pass: the two agree within about one grey level.
func TestResampleMatchesImaging(t *testing.T) {
	src := noisy(256, 200, 9)
	for _, tc := range []struct {
		name string
		crop image.Rectangle
		size int
	}{
		{"downscale whole", image.Rect(0, 0, 256, 200), 64},
		{"downscale crop", image.Rect(17, 9, 240, 190), 100},
		{"upscale crop", image.Rect(30, 40, 50, 60), 48},
		{"non-square crop", image.Rect(0, 50, 256, 150), 37},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.size
			dst := make([]float32, 3*s*s)
			win := window{Bounds: tc.crop, X0: float64(tc.crop.Min.X), Y0: float64(tc.crop.Min.Y),
				SX: float64(tc.crop.Dx()) / float64(s), SY: float64(tc.crop.Dy()) / float64(s)}
			resampleCHW(dst, src, win, s, false)
			ref := imaging.Resize(imaging.Crop(src, tc.crop), s, s, imaging.CatmullRom)
			var worst float64
			for c := range 3 {
				for y := range s {
					for x := range s {
						d := math.Abs(float64(dst[c*s*s+y*s+x])*255 - float64(ref.Pix[ref.PixOffset(x, y)+c]))
						worst = max(worst, d)
					}
				}
			}
			if worst > 1.5 { // imaging rounds twice; cubic lobes amplify the first rounding a little
				t.Errorf("max difference %.3f grey levels", worst)
			}
		})
	}
}

// TestYCbCrPathMatchesRGBA checks the direct YCbCr reader against conversion to RGBA first, for
// every chroma subsampling and for sub-images with offset bounds.
func TestYCbCrPathMatchesRGBA(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, ratio := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		full := image.NewYCbCr(image.Rect(0, 0, 45, 37), ratio)
		for _, p := range [][]uint8{full.Y, full.Cb, full.Cr} {
			for i := range p {
				p[i] = uint8(rng.IntN(256))
			}
		}
		for _, img := range []*image.YCbCr{full, full.SubImage(image.Rect(3, 5, 40, 30)).(*image.YCbCr)} {
			rgba, _, _ := toRGB(img.SubImage(img.Rect)) // via color.YCbCrToRGB when Min != 0
			if img.Rect.Min == (image.Point{}) {
				conv := image.NewRGBA(image.Rect(0, 0, img.Rect.Dx(), img.Rect.Dy()))
				for y := range img.Rect.Dy() {
					for x := range img.Rect.Dx() {
						conv.Set(x, y, img.At(x, y))
					}
				}
				rgba = conv
			}
			aug := Augment{Size: 20, Flip: true}
			p, q := make([]float32, 3*20*20), make([]float32, 3*20*20)
			if err := aug.Apply(p, img, rand.New(rand.NewPCG(1, 1))); err != nil {
				t.Fatal(err)
			}
			if err := aug.Apply(q, rgba, rand.New(rand.NewPCG(1, 1))); err != nil {
				t.Fatal(err)
			}
			for i := range p {
				if p[i] != q[i] {
					t.Fatalf("%v %v: element %d: YCbCr %v, RGBA %v", ratio, img.Rect, i, p[i], q[i])
				}
			}
		}
	}
}

func TestYCCToRGBMatchesStdlib(t *testing.T) {
	for y := range 256 {
		for cb := range 256 {
			for cr := range 256 {
				r, g, b := yccToRGB(uint8(y), uint8(cb), uint8(cr))
				wr, wg, wb := color.YCbCrToRGB(uint8(y), uint8(cb), uint8(cr))
				if r != wr || g != wg || b != wb {
					t.Fatalf("YCbCr(%d,%d,%d): %d,%d,%d, want %d,%d,%d", y, cb, cr, r, g, b, wr, wg, wb)
				}
			}
		}
	}
}

func TestAntialias(t *testing.T) {
	// Alternating black and white columns downscaled 4x must come out mid-grey, not aliased.
	img := image.NewGray(image.Rect(0, 0, 128, 128))
	for i := range img.Pix {
		if i%2 == 0 {
			img.Pix[i] = 255
		}
	}
	const s = 32
	dst := make([]float32, 3*s*s)
	if err := EvalTransform(dst, img, s); err != nil {
		t.Fatal(err)
	}
	for i, v := range dst[:s*s] {
		if g := unnorm(v, 0); g < 115 || g > 140 {
			t.Fatalf("pixel %d: %.1f, want about 127.5", i, g)
		}
	}
}

func TestJitterOps(t *testing.T) {
	const s = 2
	tensor := func(rgb ...[3]float32) []float32 {
		t := make([]float32, 3*s*s)
		for i, p := range rgb {
			t[i], t[s*s+i], t[2*s*s+i] = p[0], p[1], p[2]
		}
		return t
	}
	near := func(got []float32, want []float32) bool {
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-5 {
				return false
			}
		}
		return true
	}
	in := func() []float32 {
		return tensor([3]float32{1, 0, 0}, [3]float32{0.2, 0.4, 0.6}, [3]float32{0.5, 0.5, 0.5}, [3]float32{0.9, 0.1, 0.3})
	}
	g := func(r, gg, b float32) float32 { return lumR*r + lumG*gg + lumB*b }

	x := in()
	brightness(x, 2)
	if !near(x, tensor([3]float32{1, 0, 0}, [3]float32{0.4, 0.8, 1}, [3]float32{1, 1, 1}, [3]float32{1, 0.2, 0.6})) {
		t.Errorf("brightness 2: %v", x)
	}
	x = in()
	saturation(x, s, 0)
	g1 := g(0.2, 0.4, 0.6)
	if !near(x, tensor([3]float32{lumR, lumR, lumR}, [3]float32{g1, g1, g1}, [3]float32{g(.5, .5, .5), g(.5, .5, .5), g(.5, .5, .5)}, [3]float32{g(0.9, 0.1, 0.3), g(0.9, 0.1, 0.3), g(0.9, 0.1, 0.3)})) {
		t.Errorf("saturation 0: %v", x)
	}
	x = in()
	contrast(x, s, 0)
	m := (lumR + g1 + g(.5, .5, .5) + g(0.9, 0.1, 0.3)) / 4
	for _, v := range x {
		if math.Abs(float64(v-m)) > 1e-5 {
			t.Fatalf("contrast 0: %v, want all %v", x, m)
		}
	}
	x = in()
	hue(x, s, 1.0/3)
	if !near(x[:1], []float32{0}) || !near(x[s*s:s*s+1], []float32{1}) || !near(x[2*s*s:2*s*s+1], []float32{0}) {
		t.Errorf("hue +1/3 should turn red green: %v", x)
	}
	if !near(x[2:3], []float32{0.5}) {
		t.Errorf("hue must leave grey alone: %v", x)
	}
	// hue against a textbook HSV round trip, over random pixels and shifts.
	rng := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		r, gg, b := rng.Float32(), rng.Float32(), rng.Float32()
		shift := rng.Float32() - 0.5
		x := tensor([3]float32{r, gg, b})
		hue(x, s, shift)
		h, sat, v := refRGBToHSV(r, gg, b)
		h += float64(shift)
		h -= math.Floor(h)
		wr, wg, wb := refHSVToRGB(h, sat, v)
		if math.Abs(float64(x[0])-wr)+math.Abs(float64(x[s*s])-wg)+math.Abs(float64(x[2*s*s])-wb) > 1e-5 {
			t.Fatalf("hue %v of %v,%v,%v: %v,%v,%v, want %v,%v,%v", shift, r, gg, b, x[0], x[s*s], x[2*s*s], wr, wg, wb)
		}
	}
	// Grey always: channels equal; brightness 0.5 on a flat image: one factor in [0.5, 1.5].
	x = in()
	Jitter{GrayProb: 1}.apply(x, s, rng)
	for i := range s * s {
		if x[i] != x[s*s+i] || x[i] != x[2*s*s+i] {
			t.Fatalf("gray: %v", x)
		}
	}
	flat := tensor([3]float32{0.4, 0.4, 0.4}, [3]float32{0.4, 0.4, 0.4}, [3]float32{0.4, 0.4, 0.4}, [3]float32{0.4, 0.4, 0.4})
	Jitter{Prob: 1, Brightness: 0.5}.apply(flat, s, rng)
	for _, v := range flat {
		if v != flat[0] || v < 0.2 || v > 0.6 {
			t.Fatalf("brightness: %v", flat)
		}
	}
}

func TestTransformErrors(t *testing.T) {
	img := gradient(8, 8)
	rng := rand.New(rand.NewPCG(1, 1))
	good := make([]float32, 3*8*8)
	for _, tc := range []struct {
		name string
		a    Augment
		dst  []float32
		img  image.Image
		rng  *rand.Rand
	}{
		{"short dst", Augment{Size: 8}, good[:10], img, rng},
		{"size 0", Augment{}, good, img, rng},
		{"nil image", Augment{Size: 8}, good, nil, rng},
		{"empty image", Augment{Size: 8}, good, image.NewRGBA(image.Rectangle{}), rng},
		{"nil rng", Augment{Size: 8}, good, img, nil},
		{"scale reversed", Augment{Size: 8, Scale: [2]float64{1, 0.5}}, good, img, rng},
		{"ratio zero", Augment{Size: 8, Ratio: [2]float64{0, 1}}, good, img, rng},
		{"jitter prob", Augment{Size: 8, Jitter: Jitter{Prob: 2}}, good, img, rng},
		{"jitter hue", Augment{Size: 8, Jitter: Jitter{Prob: 1, Hue: 0.7}}, good, img, rng},
		{"jitter negative", Augment{Size: 8, Jitter: Jitter{Prob: 1, Contrast: -1}}, good, img, rng},
	} {
		if err := tc.a.Apply(tc.dst, tc.img, tc.rng); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if err := EvalTransform(good[:5], img, 8); err == nil {
		t.Error("EvalTransform accepted a short dst")
	}
	if err := EvalTransform(good, img, 0); err == nil {
		t.Error("EvalTransform accepted size 0")
	}
}

// noisy is a w×h photo-like test image: smooth gradients plus noise, so that JPEG decoding
// costs what it costs on photographs.
func noisy(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, seed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := rng.IntN(40)
			img.SetRGBA(x, y, color.RGBA{uint8((x*200/w + n) % 256), uint8((y*180/h + n) % 256), uint8((x + y + n) % 256), 255})
		}
	}
	return img
}

// refRGBToHSV and refHSVToRGB are the textbook conversions in float64 (hue in turns), the
// reference for hue.
func refRGBToHSV(r32, g32, b32 float32) (h, s, v float64) {
	r, g, b := float64(r32), float64(g32), float64(b32)
	mx, mn := math.Max(r, math.Max(g, b)), math.Min(r, math.Min(g, b))
	d := mx - mn
	if d == 0 {
		return 0, 0, mx
	}
	switch mx {
	case r:
		h = math.Mod((g-b)/d+6, 6)
	case g:
		h = (b-r)/d + 2
	default:
		h = (r-g)/d + 4
	}
	return h / 6, d / mx, mx
}

func refHSVToRGB(h, s, v float64) (r, g, b float64) {
	i := math.Floor(h * 6)
	f := h*6 - i
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	switch int(i) % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	}
	return v, p, q
}
