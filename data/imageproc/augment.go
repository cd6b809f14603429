package imageproc

import (
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
)

// CLIPMean and CLIPStd are OpenAI CLIP's per-channel (R, G, B) normalisation constants for
// pixel values in [0, 1].
var (
	CLIPMean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	CLIPStd  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// Default crop parameters: open_clip's training scale and torchvision's ratio.
var (
	DefaultScale = [2]float64{0.9, 1.0}
	DefaultRatio = [2]float64{3.0 / 4, 4.0 / 3}
)

// Augment is open_clip's training transform: torchvision's RandomResizedCrop(Size, Scale,
// Ratio, bicubic), an optional horizontal flip (p = 0.5), an optional colour jitter, then CLIP
// normalisation into float32 CHW. A zero Scale or Ratio takes DefaultScale / DefaultRatio.
type Augment struct {
	Size   int        // output side S in pixels; Apply writes 3·S·S floats
	Scale  [2]float64 // range of the crop's area as a fraction of the image's
	Ratio  [2]float64 // range of the crop's aspect ratio, width / height (sampled log-uniformly)
	Flip   bool       // mirror left-right with probability 0.5
	Jitter Jitter
}

// Jitter is torchvision's ColorJitter applied with probability Prob, then RandomGrayscale with
// probability GrayProb (open_clip's color_jitter / color_jitter_prob / gray_scale_prob). It
// works on the float32 tensor in [0, 1]: doing it on 8-bit images through imaging cost ~40% of
// the whole augmentation (DESIGN.md). The zero value does nothing.
type Jitter struct {
	Prob       float64 // chance that the four jitters run (in a random order, as torchvision does)
	Brightness float64 // factor drawn from [max(0, 1-b), 1+b]
	Contrast   float64 // factor drawn from [max(0, 1-c), 1+c]; blends with the mean grey level
	Saturation float64 // factor drawn from [max(0, 1-s), 1+s]; blends with each pixel's grey
	Hue        float64 // shift drawn from [-h, h] in turns, 0 <= h <= 0.5
	GrayProb   float64 // chance of converting to grey (ITU-R 601 luma on all three channels)
}

func (a Augment) withDefaults() (Augment, error) {
	if a.Scale == [2]float64{} {
		a.Scale = DefaultScale
	}
	if a.Ratio == [2]float64{} {
		a.Ratio = DefaultRatio
	}
	switch {
	case a.Size <= 0:
		return a, fmt.Errorf("imageproc: augment size %d must be positive", a.Size)
	case !(a.Scale[0] > 0 && a.Scale[0] <= a.Scale[1]):
		return a, fmt.Errorf("imageproc: augment scale %v must satisfy 0 < min <= max", a.Scale)
	case !(a.Ratio[0] > 0 && a.Ratio[0] <= a.Ratio[1]) || math.IsInf(a.Ratio[1], 0):
		return a, fmt.Errorf("imageproc: augment ratio %v must satisfy 0 < min <= max < inf", a.Ratio)
	}
	return a, a.Jitter.validate()
}

func (j Jitter) validate() error {
	ok := func(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
	switch {
	case !(j.Prob >= 0 && j.Prob <= 1), !(j.GrayProb >= 0 && j.GrayProb <= 1):
		return fmt.Errorf("imageproc: jitter probabilities %v, %v must lie in [0, 1]", j.Prob, j.GrayProb)
	case !ok(j.Brightness), !ok(j.Contrast), !ok(j.Saturation):
		return fmt.Errorf("imageproc: jitter brightness %v, contrast %v, saturation %v must be finite and >= 0", j.Brightness, j.Contrast, j.Saturation)
	case !(j.Hue >= 0 && j.Hue <= 0.5):
		return fmt.Errorf("imageproc: jitter hue %v must lie in [0, 0.5]", j.Hue)
	}
	return nil
}

// checkShape validates the destination tensor and the image.
func checkShape(dst []float32, img image.Image, size int) error {
	if len(dst) != 3*size*size {
		return fmt.Errorf("imageproc: dst has %d floats, want 3*%d*%d = %d (CHW)", len(dst), size, size, 3*size*size)
	}
	if img == nil || img.Bounds().Empty() {
		return fmt.Errorf("imageproc: transform input: %w", ErrEmpty)
	}
	return nil
}

// Apply writes one augmented sample of img into dst as normalised float32 CHW
// ([3][Size][Size], R, G, B planes). All randomness comes from rng, drawn in a fixed order
// (crop, flip, jitter), so equal seeds give identical tensors whatever the worker count.
// Apply allocates nothing in steady state.
func (a Augment) Apply(dst []float32, img image.Image, rng *rand.Rand) error {
	a, err := a.withDefaults()
	if err != nil {
		return err
	}
	if err := checkShape(dst, img, a.Size); err != nil {
		return err
	}
	if rng == nil {
		return errors.New("imageproc: Augment.Apply needs a non-nil *rand.Rand")
	}
	b := img.Bounds()
	crop := a.sampleCrop(b.Dx(), b.Dy(), rng)
	flip := a.Flip && rng.Float64() < 0.5
	sx := float64(crop.Dx()) / float64(a.Size)
	sy := float64(crop.Dy()) / float64(a.Size)
	// torchvision crops first, then resizes: the filter reads only pixels inside the crop.
	resampleCHW(dst, img, window{Bounds: crop, X0: float64(crop.Min.X), Y0: float64(crop.Min.Y), SX: sx, SY: sy}, a.Size, flip)
	a.Jitter.apply(dst, a.Size, rng)
	normalize(dst, a.Size)
	return nil
}

// sampleCrop is torchvision's RandomResizedCrop.get_params for a w×h image: ten tries at a
// random area fraction and log-uniform aspect ratio, then a centre crop of the image clamped
// to the ratio range. The rectangle is relative to the image's Bounds().Min.
func (a Augment) sampleCrop(w, h int, rng *rand.Rand) image.Rectangle {
	area := float64(w) * float64(h)
	logR0, logR1 := math.Log(a.Ratio[0]), math.Log(a.Ratio[1])
	for range 10 {
		target := area * (a.Scale[0] + (a.Scale[1]-a.Scale[0])*rng.Float64())
		aspect := math.Exp(logR0 + (logR1-logR0)*rng.Float64())
		cw := int(math.RoundToEven(math.Sqrt(target * aspect))) // Python's round() is half-to-even
		ch := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			top := rng.IntN(h - ch + 1)
			left := rng.IntN(w - cw + 1)
			return image.Rect(left, top, left+cw, top+ch)
		}
	}
	cw, ch := w, h
	switch in := float64(w) / float64(h); {
	case in < a.Ratio[0]:
		ch = int(math.RoundToEven(float64(cw) / a.Ratio[0]))
	case in > a.Ratio[1]:
		cw = int(math.RoundToEven(float64(ch) * a.Ratio[1]))
	}
	cw, ch = min(max(cw, 1), w), min(max(ch, 1), h)
	top, left := (h-ch)/2, (w-cw)/2
	return image.Rect(left, top, left+cw, top+ch)
}

// normalize maps [0, 1] CHW planes to (v - mean) / std in place.
func normalize(dst []float32, size int) {
	plane := size * size
	for c := 0; c < 3; c++ {
		m, inv := CLIPMean[c], 1/CLIPStd[c]
		p := dst[c*plane : (c+1)*plane]
		for i, v := range p {
			p[i] = (v - m) * inv
		}
	}
}

// Luma weights of torchvision's rgb_to_grayscale (ITU-R 601-2).
const lumR, lumG, lumB = 0.2989, 0.587, 0.114

// apply runs the jitter on a [3][size][size] tensor in [0, 1].
func (j Jitter) apply(t []float32, size int, rng *rand.Rand) {
	if j.Prob > 0 && rng.Float64() < j.Prob {
		order := [4]int{0, 1, 2, 3}
		for i := 3; i > 0; i-- { // Fisher–Yates, as torch.randperm(4) permutes
			k := rng.IntN(i + 1)
			order[i], order[k] = order[k], order[i]
		}
		factor := func(s float64) float32 { return float32(max(0, 1-s) + (1+s-max(0, 1-s))*rng.Float64()) }
		var fb, fc, fs, fh float32 = 1, 1, 1, 0
		if j.Brightness > 0 {
			fb = factor(j.Brightness)
		}
		if j.Contrast > 0 {
			fc = factor(j.Contrast)
		}
		if j.Saturation > 0 {
			fs = factor(j.Saturation)
		}
		if j.Hue > 0 {
			fh = float32(-j.Hue + 2*j.Hue*rng.Float64())
		}
		for _, op := range order {
			switch {
			case op == 0 && j.Brightness > 0:
				brightness(t, fb)
			case op == 1 && j.Contrast > 0:
				contrast(t, size, fc)
			case op == 2 && j.Saturation > 0:
				saturation(t, size, fs)
			case op == 3 && j.Hue > 0:
				hue(t, size, fh)
			}
		}
	}
	if j.GrayProb > 0 && rng.Float64() < j.GrayProb {
		saturation(t, size, 0)
	}
}

func brightness(t []float32, f float32) {
	for i, v := range t {
		t[i] = clamp01(v * f)
	}
}

// contrast blends every value with the mean grey level of the whole image.
func contrast(t []float32, size int, f float32) {
	n := size * size
	r, g, b := t[:n], t[n:2*n], t[2*n:3*n]
	var sum float64
	for i := range r {
		sum += float64(lumR*r[i] + lumG*g[i] + lumB*b[i])
	}
	off := (1 - f) * float32(sum/float64(n))
	for i, v := range t {
		t[i] = clamp01(f*v + off)
	}
}

// saturation blends every pixel with its own grey level; f = 0 is greyscale.
func saturation(t []float32, size int, f float32) {
	n := size * size
	r, g, b := t[:n], t[n:2*n], t[2*n:3*n]
	for i := range r {
		off := (1 - f) * (lumR*r[i] + lumG*g[i] + lumB*b[i])
		r[i] = clamp01(f*r[i] + off)
		g[i] = clamp01(f*g[i] + off)
		b[i] = clamp01(f*b[i] + off)
	}
}

// hue rotates every pixel's hue by shift turns, as torchvision's adjust_hue does through HSV.
// HSV is not materialised: with mx, mn the largest and smallest channel and d = mx - mn, the
// value is mx and the rotated pixel's channels are mx, mn and mn + d*f or mx - d*f for the
// fraction f of the new hue within its sixth of the circle, one division per pixel.
func hue(t []float32, size int, shift float32) {
	n := size * size
	r, g, b := t[:n], t[n:2*n], t[2*n:3*n]
	g, b = g[:len(r)], b[:len(r)]
	shift6 := 6 * shift
	for i := range r {
		R, G, B := r[i], g[i], b[i]
		mx, mn := R, R
		if G > mx {
			mx = G
		}
		if B > mx {
			mx = B
		}
		if G < mn {
			mn = G
		}
		if B < mn {
			mn = B
		}
		d := mx - mn
		if d == 0 {
			continue // grey has no hue
		}
		var h float32 // in sixths of a turn, [0, 6)
		switch inv := 1 / d; mx {
		case R:
			h = (G - B) * inv
			if h < 0 {
				h += 6
			}
		case G:
			h = (B-R)*inv + 2
		default:
			h = (R-G)*inv + 4
		}
		h += shift6
		if h < 0 {
			h += 6
		} else if h >= 6 {
			h -= 6
		}
		sector := min(int(h), 5)
		f := h - float32(sector)
		up, down := mn+d*f, mx-d*f
		switch sector {
		case 0:
			r[i], g[i], b[i] = mx, up, mn
		case 1:
			r[i], g[i], b[i] = down, mx, mn
		case 2:
			r[i], g[i], b[i] = mn, mx, up
		case 3:
			r[i], g[i], b[i] = mn, down, mx
		case 4:
			r[i], g[i], b[i] = up, mn, mx
		default:
			r[i], g[i], b[i] = mx, mn, down
		}
	}
}
