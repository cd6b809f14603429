package imageproc

import (
	"fmt"
	"image"
	"math"
	"sync"
)

// This file is open_clip's evaluation transform exactly as the reference stack computes it
// on a PIL image: torchvision's Resize(size, BICUBIC) of the shortest side, which calls PIL's
// Image.resize, then CenterCrop(size), ToTensor and Normalize. PIL resizes 8-bit images in
// fixed point and rounds to 8 bits after each of its two passes; the training resampler
// (resample.go) works in float32 and differs from it by a level here and there, which is
// harmless for augmentation but not for embeddings meant to equal open_clip's. Only the
// output pixels inside the crop are computed: each PIL output pixel depends on its own
// filter window alone, so this equals resizing the whole image and cropping.

// pilPrecisionBits is PIL's PRECISION_BITS for 8-bit resampling (Resample.c: 32 - 8 - 2).
const pilPrecisionBits = 32 - 8 - 2

// pilBicubic is PIL's bicubic_filter (Keys, a = -0.5), support 2. The explicit conversions
// keep Go from fusing a multiply and an add, which would round differently from PIL's C.
func pilBicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 { // ((a + 2) x - (a + 3)) x x + 1
		t := float64((a+2)*x) - (a + 3)
		return float64(float64(t*x)*x) + 1
	}
	if x < 2 { // (((x - 5) x + 8) x - 4) a
		t := float64((x-5)*x) + 8
		return (float64(t*x) - 4) * a
	}
	return 0
}

// pilCoeffs holds PIL's fixed-point filter of one axis (Resample.c precompute_coeffs then
// normalize_coeffs_8bpc): output i reads source pixels start[i] .. start[i]+count[i]-1 with
// weights k[i*taps:][:count[i]].
type pilCoeffs struct {
	start, count []int
	k            []int32
	taps         int
}

// compute fills c for resizing inSize source pixels to outSize (the whole axis, PIL's default
// box). It follows PIL's arithmetic step by step, double precision and C's truncating casts
// included, so that the weights are the same integers.
func (c *pilCoeffs) compute(inSize, outSize int) {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := 2 * filterscale
	c.taps = int(math.Ceil(support))*2 + 1
	c.start = grow(c.start, outSize)
	c.count = grow(c.count, outSize)
	c.k = grow(c.k, outSize*c.taps)
	w := make([]float64, c.taps)
	ss := 1 / filterscale
	for xx := range outSize {
		center := float64(xx) + 0.5
		center = float64(center * scale) // in0 + (xx + 0.5) * scale, in0 = 0
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		var ww float64
		for x := 0; x < xmax; x++ {
			v := pilBicubic(float64(float64(x+xmin)-center+0.5) * ss)
			w[x] = v
			ww += v
		}
		k := c.k[xx*c.taps : (xx+1)*c.taps]
		for x := range k {
			k[x] = 0
		}
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<pilPrecisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<pilPrecisionBits))
			}
		}
		c.start[xx], c.count[xx] = xmin, max(xmax, 0)
	}
}

// pilClip8 is PIL's clip8: the fixed-point sum shifted down (an arithmetic shift, which
// floors) and clamped to 0..255.
func pilClip8(v int32) uint8 {
	v >>= pilPrecisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// evalScratch holds the buffers of one EvalTransform; pooled so that steady-state calls
// allocate nothing.
type evalScratch struct {
	cx, cy pilCoeffs
	tmp    []uint8 // horizontally resized rows, 3 bytes per pixel, size pixels wide
	out    []uint8 // the size×size crop, 3 bytes per pixel
}

var evalPool = sync.Pool{New: func() any { return new(evalScratch) }}

// pixels8 is an 8-bit image to read: pixel (x, y) channel c is pix[y*stride+x*bpp+off[c]].
type pixels8 struct {
	pix         []uint8
	stride, bpp int
	off         [3]int
}

// eightBit returns img's pixels as pixels8: *image.RGBA (opaque, as Decode returns) and
// *image.Gray are read in place, anything else through its opaque RGB conversion.
func eightBit(img image.Image) pixels8 {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.RGBA:
		if m.Opaque() {
			o := m.PixOffset(b.Min.X, b.Min.Y)
			return pixels8{m.Pix[o:], m.Stride, 4, [3]int{0, 1, 2}}
		}
	case *image.Gray:
		o := m.PixOffset(b.Min.X, b.Min.Y)
		return pixels8{m.Pix[o:], m.Stride, 1, [3]int{0, 0, 0}}
	}
	rgb, _, _ := toRGB(img)
	if m, ok := rgb.(*image.RGBA); ok {
		return pixels8{m.Pix, m.Stride, 4, [3]int{0, 1, 2}}
	}
	// toRGB keeps an *image.YCbCr at the origin as is; convert it here.
	m := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	y := rgb.(*image.YCbCr)
	for py := 0; py < b.Dy(); py++ {
		for px := 0; px < b.Dx(); px++ {
			yi, ci := y.YOffset(px, py), y.COffset(px, py)
			r, g, bb := yccToRGB(y.Y[yi], y.Cb[ci], y.Cr[ci])
			p := m.Pix[m.PixOffset(px, py):][:4:4]
			p[0], p[1], p[2], p[3] = r, g, bb, 0xff
		}
	}
	return pixels8{m.Pix, m.Stride, 4, [3]int{0, 1, 2}}
}

// EvalResizeCrop is torchvision's Resize(size, BICUBIC) of the shortest side followed by
// CenterCrop(size) on a PIL image, as open_clip's eval transform applies them: it returns the
// size×size crop as 8-bit RGB, 3 bytes per pixel, row-major, equal to what PIL computes.
// The long side becomes int(size·long/short), as torchvision truncates it; the crop's top-left
// corner is round((new - size)/2) with Python's round-half-to-even. An image whose shortest
// side already is size is only cropped. dst is reused when it has room.
func EvalResizeCrop(dst []uint8, img image.Image, size int) ([]uint8, error) {
	if size <= 0 {
		return nil, fmt.Errorf("imageproc: eval size %d must be positive", size)
	}
	if img == nil || img.Bounds().Empty() {
		return nil, fmt.Errorf("imageproc: eval transform input: %w", ErrEmpty)
	}
	s := evalPool.Get().(*evalScratch)
	defer evalPool.Put(s)
	dst = grow(dst, 3*size*size)
	evalResizeCrop(dst, eightBit(img), img.Bounds().Dx(), img.Bounds().Dy(), size, s)
	return dst, nil
}

func evalResizeCrop(dst []uint8, src pixels8, w, h, size int, s *evalScratch) {
	nw, nh := size, size
	if w <= h {
		nh = int(float64(size) * float64(h) / float64(w))
	} else {
		nw = int(float64(size) * float64(w) / float64(h))
	}
	if min(w, h) == size { // torchvision returns the image unresized
		nw, nh = w, h
	}
	top := int(math.RoundToEven(float64(nh-size) / 2))
	left := int(math.RoundToEven(float64(nw-size) / 2))
	needH, needV := nw != w, nh != h

	// Source rows the vertical pass reads (or, without one, the crop's rows).
	y0, y1 := top, top+size
	if needV {
		s.cy.compute(h, nh)
		y0 = s.cy.start[top]
		y1 = y0
		for i := top; i < top+size; i++ {
			y1 = max(y1, s.cy.start[i]+s.cy.count[i])
		}
	}
	rows := y1 - y0
	s.tmp = grow(s.tmp, 3*rows*size)
	if needH {
		s.cx.compute(w, nw)
		cx := &s.cx
		for r := 0; r < rows; r++ {
			row := src.pix[(y0+r)*src.stride:]
			out := s.tmp[3*r*size : 3*(r+1)*size]
			for j := 0; j < size; j++ {
				xx := left + j
				k := cx.k[xx*cx.taps:][:cx.count[xx]]
				p := row[cx.start[xx]*src.bpp:]
				var s0, s1, s2 int32 = 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1), 1 << (pilPrecisionBits - 1)
				for x, kx := range k {
					q := p[x*src.bpp:]
					s0 += int32(q[src.off[0]]) * kx
					s1 += int32(q[src.off[1]]) * kx
					s2 += int32(q[src.off[2]]) * kx
				}
				out[3*j], out[3*j+1], out[3*j+2] = pilClip8(s0), pilClip8(s1), pilClip8(s2)
			}
		}
	} else {
		for r := 0; r < rows; r++ {
			row := src.pix[(y0+r)*src.stride:]
			out := s.tmp[3*r*size : 3*(r+1)*size]
			for j := 0; j < size; j++ {
				p := row[(left+j)*src.bpp:]
				out[3*j], out[3*j+1], out[3*j+2] = p[src.off[0]], p[src.off[1]], p[src.off[2]]
			}
		}
	}
	if !needV {
		copy(dst, s.tmp[:3*size*size])
		return
	}
	cy := &s.cy
	for i := 0; i < size; i++ {
		yy := top + i
		k := cy.k[yy*cy.taps:][:cy.count[yy]]
		r0 := cy.start[yy] - y0
		out := dst[3*i*size : 3*(i+1)*size]
		for j := range out {
			acc := int32(1 << (pilPrecisionBits - 1))
			for y, ky := range k {
				acc += int32(s.tmp[3*(r0+y)*size+j]) * ky
			}
			out[j] = pilClip8(acc)
		}
	}
}

// EvalTransform is open_clip's evaluation transform (image_transform with is_train=False,
// resize_mode "shortest"): EvalResizeCrop, then ToTensor (v/255) and Normalize with the
// OpenAI mean and std, written into dst as float32 CHW ([3][size][size]). The arithmetic is
// PIL's and torch's float32 (a division by 255, then (x - mean) / std), so an image decoded
// as PIL decodes it gives open_clip's tensor. It is deterministic.
func EvalTransform(dst []float32, img image.Image, size int) error {
	if size <= 0 {
		return fmt.Errorf("imageproc: eval size %d must be positive", size)
	}
	if err := checkShape(dst, img, size); err != nil {
		return err
	}
	s := evalPool.Get().(*evalScratch)
	defer evalPool.Put(s)
	s.out = grow(s.out, 3*size*size)
	b := img.Bounds()
	evalResizeCrop(s.out, eightBit(img), b.Dx(), b.Dy(), size, s)
	plane := size * size
	for c := 0; c < 3; c++ {
		m, sd := CLIPMean[c], CLIPStd[c]
		p := dst[c*plane : (c+1)*plane]
		for i := range p {
			v := float32(s.out[3*i+c]) / 255
			p[i] = (v - m) / sd
		}
	}
	return nil
}
