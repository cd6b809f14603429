package imageproc

import (
	"image"
	"image/color"
)

// toRGB converts any decoded image into opaque 8-bit RGB at origin (0, 0), compositing
// translucent pixels over white. An *image.YCbCr at the origin is returned as is: it is opaque
// 8-bit already and the augmenters read it directly. model names the input's colour model;
// alpha reports whether some pixel was not opaque.
func toRGB(src image.Image) (img image.Image, model string, alpha bool) {
	r := src.Bounds()
	w, h := r.Dx(), r.Dy()
	if m, ok := src.(*image.YCbCr); ok && r.Min == (image.Point{}) {
		return m, "ycbcr", false
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	put := func(i int, cr, cg, cb uint8) {
		p := dst.Pix[i : i+4 : i+4]
		p[0], p[1], p[2], p[3] = cr, cg, cb, 0xff
	}
	switch m := src.(type) {
	case *image.YCbCr:
		model = "ycbcr"
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				yi, ci := m.YOffset(r.Min.X+x, r.Min.Y+y), m.COffset(r.Min.X+x, r.Min.Y+y)
				cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				put(dst.PixOffset(x, y), cr, cg, cb)
			}
		}
	case *image.Gray:
		model = "gray"
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):][:w]
			for x, v := range row {
				put(dst.PixOffset(x, y), v, v, v)
			}
		}
	case *image.Gray16:
		model = "gray16"
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):][: 2*w : 2*w]
			for x := 0; x < w; x++ {
				v16 := uint32(row[2*x])<<8 | uint32(row[2*x+1]) // big-endian
				v := uint8((v16*255 + 0x7fff) / 0xffff)         // rounded, as over16 does
				put(dst.PixOffset(x, y), v, v, v)
			}
		}
	case *image.RGBA, *image.NRGBA, *image.RGBA64, *image.NRGBA64, *image.CMYK:
		var ok bool
		if model, alpha, ok = convertInto(dst.Pix, src); !ok { // malformed: pixel by pixel
			model, alpha = "other", generic(src, dst)
		}
	case *image.NYCbCrA:
		model = "nycbcra"
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				px, py := r.Min.X+x, r.Min.Y+y
				yi, ci := m.YOffset(px, py), m.COffset(px, py)
				a := m.A[m.AOffset(px, py)]
				alpha = alpha || a != 0xff
				cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				put(dst.PixOffset(x, y), overWhite8(cr, a), overWhite8(cg, a), overWhite8(cb, a))
			}
		}
	case *image.Paletted:
		model = "paletted"
		var lut [256][3]uint8 // palette entries composited over white once
		for i := range lut {
			lut[i] = [3]uint8{0xff, 0xff, 0xff} // out-of-range indices read as background
		}
		opaque := [256]bool{}
		for i, c := range m.Palette {
			if i >= 256 {
				break
			}
			lut[i], opaque[i] = over16(c)
		}
		for i := len(m.Palette); i < 256; i++ {
			opaque[i] = true
		}
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):][:w]
			for x, v := range row {
				alpha = alpha || !opaque[v]
				c := lut[v]
				put(dst.PixOffset(x, y), c[0], c[1], c[2])
			}
		}
	default: // Alpha, anything else
		model, alpha = "other", generic(src, dst)
	}
	return dst, model, alpha
}

// generic converts src into dst pixel by pixel through the 16-bit premultiplied interface.
func generic(src image.Image, dst *image.RGBA) (alpha bool) {
	r := src.Bounds()
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			c, opaque := over16(src.At(r.Min.X+x, r.Min.Y+y))
			alpha = alpha || !opaque
			p := dst.Pix[dst.PixOffset(x, y):][:4:4]
			p[0], p[1], p[2], p[3] = c[0], c[1], c[2], 0xff
		}
	}
	return alpha
}

// toRGBOwned is toRGB for an image nobody else holds, as Decode's decoder output is: the
// types of 4 or 8 bytes per pixel (RGBA, NRGBA, CMYK, RGBA64, NRGBA64) are converted in place,
// into the front of their own pixel buffer, so that decoding them allocates no second image.
func toRGBOwned(src image.Image) (img image.Image, model string, alpha bool) {
	var pix []byte
	switch m := src.(type) {
	case *image.RGBA:
		pix = m.Pix
	case *image.NRGBA:
		pix = m.Pix
	case *image.CMYK:
		pix = m.Pix
	case *image.RGBA64:
		pix = m.Pix
	case *image.NRGBA64:
		pix = m.Pix
	default:
		return toRGB(src)
	}
	r := src.Bounds()
	w, h := r.Dx(), r.Dy()
	model, alpha, ok := convertInto(pix, src)
	if !ok {
		return toRGB(src)
	}
	n := 4 * w * h
	return &image.RGBA{Pix: pix[:n:n], Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}, model, alpha
}

// convertInto writes src, one of the types of 4 or 8 bytes per pixel, into dst as opaque
// RGBA with stride 4·width, compositing translucent pixels over white. dst may be src's own
// Pix: each destination pixel lies at or before its source pixel, and is written after that
// pixel is read. ok is false, and nothing written, for another type or a malformed src.
func convertInto(dst []byte, src image.Image) (model string, alpha, ok bool) {
	r := src.Bounds()
	w, h := r.Dx(), r.Dy()
	var pix []byte
	var stride, bpp int
	switch m := src.(type) {
	case *image.RGBA:
		pix, stride, bpp, model = m.Pix, m.Stride, 4, "rgba"
	case *image.NRGBA:
		pix, stride, bpp, model = m.Pix, m.Stride, 4, "nrgba"
	case *image.CMYK:
		pix, stride, bpp, model = m.Pix, m.Stride, 4, "cmyk"
	case *image.RGBA64:
		pix, stride, bpp, model = m.Pix, m.Stride, 8, "rgba64"
	case *image.NRGBA64:
		pix, stride, bpp, model = m.Pix, m.Stride, 8, "nrgba64"
	default:
		return "", false, false
	}
	if w <= 0 || h <= 0 || stride < bpp*w || len(pix) < (h-1)*stride+bpp*w || len(dst) < 4*w*h {
		return "", false, false
	}
	for y := 0; y < h; y++ {
		row := pix[y*stride:][: bpp*w : bpp*w]
		out := dst[4*w*y:][: 4*w : 4*w]
		switch model {
		case "rgba": // premultiplied: over white is c + (255 - a)
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				cr, cg, cb, a := p[0], p[1], p[2], p[3]
				alpha = alpha || a != 0xff
				q := out[4*x : 4*x+4 : 4*x+4]
				q[0], q[1], q[2], q[3] = overWhitePremul8(cr, a), overWhitePremul8(cg, a), overWhitePremul8(cb, a), 0xff
			}
		case "nrgba":
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				cr, cg, cb, a := p[0], p[1], p[2], p[3]
				alpha = alpha || a != 0xff
				q := out[4*x : 4*x+4 : 4*x+4]
				q[0], q[1], q[2], q[3] = overWhite8(cr, a), overWhite8(cg, a), overWhite8(cb, a), 0xff
			}
		case "cmyk":
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				cr, cg, cb := color.CMYKToRGB(p[0], p[1], p[2], p[3])
				q := out[4*x : 4*x+4 : 4*x+4]
				q[0], q[1], q[2], q[3] = cr, cg, cb, 0xff
			}
		case "rgba64", "nrgba64": // big-endian 16-bit channels
			premul := model == "rgba64"
			for x := 0; x < w; x++ {
				p := row[8*x : 8*x+8 : 8*x+8]
				cr := uint32(p[0])<<8 | uint32(p[1])
				cg := uint32(p[2])<<8 | uint32(p[3])
				cb := uint32(p[4])<<8 | uint32(p[5])
				a := uint32(p[6])<<8 | uint32(p[7])
				if !premul { // as color.NRGBA64.RGBA does
					cr, cg, cb = cr*a/0xffff, cg*a/0xffff, cb*a/0xffff
				}
				alpha = alpha || a != 0xffff
				q := out[4*x : 4*x+4 : 4*x+4]
				q[0], q[1], q[2], q[3] = over16Premul(cr, a), over16Premul(cg, a), over16Premul(cb, a), 0xff
			}
		}
	}
	return model, alpha, true
}

// over16Premul composites a premultiplied 16-bit channel value v of opacity a over white
// and rounds to 8 bits, as over16 does.
func over16Premul(v, a uint32) uint8 {
	return uint8((min(v+0xffff-a, 0xffff)*255 + 0x7fff) / 0xffff)
}

// overWhite8 composites a non-premultiplied 8-bit channel value c of opacity a over white.
func overWhite8(c, a uint8) uint8 {
	return uint8((uint32(c)*uint32(a) + 255*uint32(255-a) + 127) / 255)
}

// overWhitePremul8 composites a premultiplied 8-bit channel value c of opacity a over white.
func overWhitePremul8(c, a uint8) uint8 {
	v := uint32(c) + uint32(255-a)
	return uint8(min(v, 255)) // min guards against invalid premultiplied input (c > a)
}

// over16 composites any colour over white and rounds to 8 bits.
func over16(c color.Color) (rgb [3]uint8, opaque bool) {
	r, g, b, a := c.RGBA() // premultiplied, 16-bit
	return [3]uint8{over16Premul(r, a), over16Premul(g, a), over16Premul(b, a)}, a == 0xffff
}

// cmykToRGBPIL converts, in place, the CMYK pixels libjpeg delivers for a 4-component JPEG
// (Adobe's inverted polarity, which PIL assumes for every CMYK JPEG: rawmode "CMYK;I") into
// opaque RGBA, with the integer formula of PIL's convert("RGB") (Pillow
// src/libImaging/Convert.c cmyk2rgb: with k the inverted K, each channel is
// k - k·c/255, the product rounded by MULDIV255).
func cmykToRGBPIL(pix []byte) {
	for i := 0; i+3 < len(pix); i += 4 {
		p := pix[i : i+4 : i+4]
		nk := int32(p[3]) // 255 - (255 - K)
		for c := 0; c < 3; c++ {
			t := (255-int32(p[c]))*nk + 128
			p[c] = clamp8(nk - ((t>>8)+t)>>8)
		}
		p[3] = 0xff
	}
}
