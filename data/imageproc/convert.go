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
	case *image.RGBA: // premultiplied: over white is c + (255 - a)
		model = "rgba"
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):][: 4*w : 4*w]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				a := p[3]
				alpha = alpha || a != 0xff
				put(dst.PixOffset(x, y), overWhitePremul8(p[0], a), overWhitePremul8(p[1], a), overWhitePremul8(p[2], a))
			}
		}
	case *image.NRGBA:
		model = "nrgba"
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):][: 4*w : 4*w]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				a := p[3]
				alpha = alpha || a != 0xff
				put(dst.PixOffset(x, y), overWhite8(p[0], a), overWhite8(p[1], a), overWhite8(p[2], a))
			}
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
	case *image.CMYK:
		model = "cmyk"
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):][: 4*w : 4*w]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				cr, cg, cb := color.CMYKToRGB(p[0], p[1], p[2], p[3])
				put(dst.PixOffset(x, y), cr, cg, cb)
			}
		}
	default: // RGBA64, NRGBA64, Alpha, anything else: through the 16-bit premultiplied interface
		switch src.(type) {
		case *image.RGBA64:
			model = "rgba64"
		case *image.NRGBA64:
			model = "nrgba64"
		default:
			model = "other"
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c, opaque := over16(src.At(r.Min.X+x, r.Min.Y+y))
				alpha = alpha || !opaque
				put(dst.PixOffset(x, y), c[0], c[1], c[2])
			}
		}
	}
	return dst, model, alpha
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
	bg := 0xffff - a
	conv := func(v uint32) uint8 { return uint8((min(v+bg, 0xffff)*255 + 0x7fff) / 0xffff) }
	return [3]uint8{conv(r), conv(g), conv(b)}, a == 0xffff
}
