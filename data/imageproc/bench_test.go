package imageproc

import (
	"fmt"
	"image"
	"math/rand/v2"
	"testing"

	"github.com/disintegration/imaging"
)

// trainAug is the heaviest training transform: crop, flip and all four jitters on every
// image (open_clip would jitter with probability color_jitter_prob).
func trainAug(size int) Augment {
	return Augment{Size: size, Flip: true, Jitter: Jitter{Prob: 1, Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}}
}

func benchDecodeAugment(b *testing.B, src, size int, aug Augment) {
	data := encodeJPEG(b, noisy(src, src, 1), 95)
	dst := make([]float32, 3*size*size)
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		img, _, err := Decode(data, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if err := aug.Apply(dst, img, rng); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkDecodeAugment64 decodes a JPEG (64 px as prepared for 64-px training, and 256 px
// as DESIGN.md measured imaging with) and applies the training transform at 64 px.
func BenchmarkDecodeAugment64(b *testing.B) {
	for _, src := range []int{64, 256} {
		b.Run(fmt.Sprintf("src=%d/jitter", src), func(b *testing.B) { benchDecodeAugment(b, src, 64, trainAug(64)) })
		b.Run(fmt.Sprintf("src=%d/crop", src), func(b *testing.B) { benchDecodeAugment(b, src, 64, Augment{Size: 64}) })
	}
}

// BenchmarkDecodeAugment224 is BenchmarkDecodeAugment64 at 224 px.
func BenchmarkDecodeAugment224(b *testing.B) {
	for _, src := range []int{224, 256} {
		b.Run(fmt.Sprintf("src=%d/jitter", src), func(b *testing.B) { benchDecodeAugment(b, src, 224, trainAug(224)) })
		b.Run(fmt.Sprintf("src=%d/crop", src), func(b *testing.B) { benchDecodeAugment(b, src, 224, Augment{Size: 224}) })
	}
}

// BenchmarkEvalTransform224 measures the eval transform alone on a decoded 256-px JPEG.
func BenchmarkEvalTransform224(b *testing.B) {
	img, _, err := Decode(encodeJPEG(b, noisy(256, 256, 1), 95), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]float32, 3*224*224)
	b.ReportAllocs()
	for b.Loop() {
		if err := EvalTransform(dst, img, 224); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkDecodeJPEG isolates the standard library's JPEG decoding inside the figures above.
func BenchmarkDecodeJPEG(b *testing.B) {
	for _, src := range []int{64, 224, 256} {
		b.Run(fmt.Sprintf("src=%d", src), func(b *testing.B) {
			data := encodeJPEG(b, noisy(src, src, 1), 95)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Decode(data, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkImagingBaseline is the path DESIGN.md measured, rebuilt with imaging on this
// machine for comparison: decode a 256-px JPEG, crop, resize (Catmull-Rom), flip, adjust
// brightness, contrast and saturation on 8-bit images, then normalise into float32 CHW.
func BenchmarkImagingBaseline(b *testing.B) {
	for _, size := range []int{64, 224} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			data := encodeJPEG(b, noisy(256, 256, 1), 95)
			dst := make([]float32, 3*size*size)
			aug, _ := Augment{Size: size}.withDefaults()
			rng := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				img, _, err := Decode(data, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				crop := aug.sampleCrop(256, 256, rng)
				m := imaging.Resize(imaging.Crop(img, crop), size, size, imaging.CatmullRom)
				m = imaging.FlipH(m)
				m = imaging.AdjustBrightness(m, 10)
				m = imaging.AdjustContrast(m, 10)
				m = imaging.AdjustSaturation(m, 10)
				toCHW(dst, m, size)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

func toCHW(dst []float32, m *image.NRGBA, size int) {
	for c := range 3 {
		for y := range size {
			for x := range size {
				dst[c*size*size+y*size+x] = (float32(m.Pix[m.PixOffset(x, y)+c])/255 - CLIPMean[c]) / CLIPStd[c]
			}
		}
	}
}
