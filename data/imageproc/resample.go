package imageproc

import (
	"image"
	"math"
	"sync"
)

// This file holds the training-time resampler. imaging's Resize would need the crop copied
// out as an *image.NRGBA, resized into another NRGBA (rounding to 8 bits between its two
// passes) and then converted to float32: three full-image passes and two allocations per call.
// Here the crop is resampled straight from the decoded *image.YCbCr (or RGBA) into the float32
// CHW tensor, with weights computed once per call and buffers reused through a sync.Pool.

// cubic is the Keys cubic convolution kernel with a = -0.5, the "bicubic" of PIL and hence of
// torchvision's PIL path, which open_clip's transforms use. Its support is [-2, 2].
func cubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// axis holds the separable filter weights of one output axis. Output i reads source pixels
// start[i] .. start[i]+count[i]-1 with weights w[i*taps:][:count[i]]; lo..hi is the union of
// the source ranges read.
type axis struct {
	start, count []int
	w            []float32
	taps, lo, hi int
}

// compute fills a for n outputs whose pixel i is centred on source coordinate
// origin + (i+0.5)*scale (source pixel p covers [p, p+1)), reading only source pixels in
// [bound0, bound1). As in PIL, a downscale widens the kernel by scale so that it
// antialiases, and weights that fall outside the bounds are dropped and the rest renormalised.
func (a *axis) compute(n, bound0, bound1 int, origin, scale float64) {
	fs := max(scale, 1)
	support := 2 * fs
	a.taps = 2*int(math.Ceil(support)) + 1
	a.start = grow(a.start, n)
	a.count = grow(a.count, n)
	a.w = grow(a.w, n*a.taps)
	a.lo, a.hi = bound1, bound0
	for i := 0; i < n; i++ {
		center := origin + (float64(i)+0.5)*scale
		x0 := max(int(math.Floor(center-support+0.5)), bound0)
		x1 := min(int(math.Floor(center+support+0.5)), bound1)
		x1 = min(x1, x0+a.taps)
		w := a.w[i*a.taps : (i+1)*a.taps]
		var sum float64
		for x := x0; x < x1; x++ {
			k := cubic((float64(x) - center + 0.5) / fs)
			w[x-x0] = float32(k)
			sum += k
		}
		if x1 <= x0 || sum == 0 { // degenerate: take the nearest pixel
			x0 = min(max(int(math.Floor(center)), bound0), bound1-1)
			x1, w[0], sum = x0+1, 1, 1
		}
		for k := range x1 - x0 {
			w[k] = float32(float64(w[k]) / sum)
		}
		a.start[i], a.count[i] = x0, x1-x0
		a.lo, a.hi = min(a.lo, x0), max(a.hi, x1)
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// scratch holds every buffer one resample needs; pooled so that steady-state calls allocate
// nothing. Pixels are kept planar (R, G, B planes) so that both passes are plain dot products
// and row updates over contiguous float32 slices.
type scratch struct {
	ax, ay axis
	src    []float32 // source region, 3 planes of (ay.hi-ay.lo) × (ax.hi-ax.lo), values in [0, 255]
	tmp    []float32 // horizontally resampled rows, 3 planes of (ay.hi-ay.lo) × outW, in [0, 1]
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// window maps an output grid onto the source: output pixel (i, j) is centred on source
// (X0 + (j+0.5)*SX, Y0 + (i+0.5)*SY), reading only source pixels inside Bounds (coordinates
// relative to the image's Bounds().Min).
type window struct {
	Bounds image.Rectangle
	X0, Y0 float64
	SX, SY float64
}

// resampleCHW writes the size×size bicubic resample of img through win into dst as float32
// CHW ([3][size][size]) in [0, 1], mirrored left-right when flip is set. len(dst) must be
// 3*size*size.
func resampleCHW(dst []float32, img image.Image, win window, size int, flip bool) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)

	s.ax.compute(size, win.Bounds.Min.X, win.Bounds.Max.X, win.X0, win.SX)
	s.ay.compute(size, win.Bounds.Min.Y, win.Bounds.Max.Y, win.Y0, win.SY)
	rw, rh := s.ax.hi-s.ax.lo, s.ay.hi-s.ay.lo
	s.src = grow(s.src, 3*rw*rh)
	loadRGB(s.src, img, image.Rect(s.ax.lo, s.ay.lo, s.ax.hi, s.ay.hi))

	// Horizontal pass: every needed source row -> size columns, scaled to [0, 1] and clipped
	// as PIL clips its 8-bit intermediate (so overshoot at sharp edges does not ring on into
	// the vertical pass). Flipping here costs nothing.
	ax := &s.ax
	for j := range ax.w {
		ax.w[j] *= 1.0 / 255
	}
	s.tmp = grow(s.tmp, 3*rh*size)
	for r := 0; r < 3*rh; r++ { // the three planes are stacked: 3*rh rows in all
		src := s.src[r*rw : (r+1)*rw]
		out := s.tmp[r*size : (r+1)*size]
		for j := 0; j < size; j++ {
			w := ax.w[j*ax.taps : j*ax.taps+ax.count[j]]
			p := src[ax.start[j]-ax.lo:]
			p = p[:len(w)]
			var sum float32
			for k, wk := range w {
				sum += wk * p[k]
			}
			o := j
			if flip {
				o = size - 1 - j
			}
			out[o] = clamp01(sum)
		}
	}

	// Vertical pass: each output row is a weighted sum of whole intermediate rows.
	ay := &s.ay
	for c := 0; c < 3; c++ {
		tmp := s.tmp[c*rh*size : (c+1)*rh*size]
		for i := 0; i < size; i++ {
			d := dst[(c*size+i)*size : (c*size+i+1)*size]
			w := ay.w[i*ay.taps : i*ay.taps+ay.count[i]]
			r0 := ay.start[i] - ay.lo
			axpy0(d, w[0], tmp[r0*size:(r0+1)*size])
			for k := 1; k < len(w); k++ {
				axpy(d, w[k], tmp[(r0+k)*size:(r0+k+1)*size])
			}
			for x, v := range d {
				d[x] = clamp01(v)
			}
		}
	}
}

// axpy0 sets d = a*x.
func axpy0(d []float32, a float32, x []float32) {
	x = x[:len(d)]
	for i := range d {
		d[i] = a * x[i]
	}
}

// axpy adds a*x to d.
func axpy(d []float32, a float32, x []float32) {
	x = x[:len(d)]
	for i := range d {
		d[i] += a * x[i]
	}
}

// clamp01 clips to [0, 1]; comparisons rather than min/max, which must also order NaNs and
// signed zeros and cost several times more here.
func clamp01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// loadRGB writes the pixels of r (relative to img.Bounds().Min) into dst as three planes
// (R, G, B) of r.Dx()×r.Dy() float32 in [0, 255], compositing translucent pixels over white.
// It reads the common decoder outputs directly instead of through the per-pixel color.Color
// interface.
func loadRGB(dst []float32, img image.Image, r image.Rectangle) {
	b := img.Bounds()
	w, n := r.Dx(), r.Dx()*r.Dy()
	R, G, B := dst[:n], dst[n:2*n], dst[2*n:3*n]
	i := 0
	switch m := img.(type) {
	case *image.YCbCr:
		if b.Min.X < 0 || b.Min.Y < 0 {
			break // the shift arithmetic below assumes non-negative coordinates
		}
		xs, ys := chromaShifts(m.SubsampleRatio)
		for y := r.Min.Y + b.Min.Y; y < r.Max.Y+b.Min.Y; y++ {
			yrow := m.Y[(y-b.Min.Y)*m.YStride+r.Min.X:][:w]
			coff := (y>>ys - b.Min.Y>>ys) * m.CStride
			cbRow, crRow := m.Cb[coff:], m.Cr[coff:]
			x0 := r.Min.X + b.Min.X
			for k, yy := range yrow {
				c := (x0+k)>>xs - b.Min.X>>xs
				cr, cg, cb := yccToRGB(yy, cbRow[c], crRow[c])
				R[i], G[i], B[i] = float32(cr), float32(cg), float32(cb)
				i++
			}
		}
		return
	case *image.RGBA:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := m.Pix[y*m.Stride+4*r.Min.X:][: 4*w : 4*w]
			for k := 0; k < len(row); k += 4 {
				p := row[k : k+4 : k+4]
				bg := float32(255 - p[3])
				R[i], G[i], B[i] = float32(p[0])+bg, float32(p[1])+bg, float32(p[2])+bg
				i++
			}
		}
		return
	case *image.NRGBA:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := m.Pix[y*m.Stride+4*r.Min.X:][: 4*w : 4*w]
			for k := 0; k < len(row); k += 4 {
				p := row[k : k+4 : k+4]
				a := float32(p[3]) * (1.0 / 255)
				bg := 255 * (1 - a)
				R[i], G[i], B[i] = float32(p[0])*a+bg, float32(p[1])*a+bg, float32(p[2])*a+bg
				i++
			}
		}
		return
	case *image.Gray:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for _, v := range m.Pix[y*m.Stride+r.Min.X:][:w] {
				f := float32(v)
				R[i], G[i], B[i] = f, f, f
				i++
			}
		}
		return
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c, _ := over16(img.At(b.Min.X+x, b.Min.Y+y))
			R[i], G[i], B[i] = float32(c[0]), float32(c[1]), float32(c[2])
			i++
		}
	}
}

// chromaShifts returns log2 of the horizontal and vertical chroma subsampling factors.
func chromaShifts(r image.YCbCrSubsampleRatio) (xs, ys int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return 1, 0
	case image.YCbCrSubsampleRatio420:
		return 1, 1
	case image.YCbCrSubsampleRatio440:
		return 0, 1
	case image.YCbCrSubsampleRatio411:
		return 2, 0
	case image.YCbCrSubsampleRatio410:
		return 2, 1
	}
	return 0, 0
}

// yccToRGB is JFIF's YCbCr -> RGB in the same 16.16 fixed point as color.YCbCrToRGB (so both
// paths agree bit for bit), written out here because that function is too large to inline
// and the call dominated the per-pixel cost.
func yccToRGB(y, cb, cr uint8) (r, g, b uint8) {
	yy := int32(y) * 0x10101
	cb1, cr1 := int32(cb)-128, int32(cr)-128
	return clamp8((yy + 91881*cr1) >> 16), clamp8((yy - 22554*cb1 - 46802*cr1) >> 16), clamp8((yy + 116130*cb1) >> 16)
}

func clamp8(v int32) uint8 {
	return uint8(min(max(v, 0), 255))
}
