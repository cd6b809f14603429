package imageproc

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"math/bits"
)

// decodeCost is what decoding one image will allocate for pixels, worked out from its header
// before any pixel is decoded: the decoder's own buffers (planes, a progressive JPEG's
// coefficients, an interlaced PNG's passes, a WebP's alpha plane) plus the opaque RGB copy
// Decode makes when it cannot convert in place. It is an upper bound on what one Decode
// holds at once, up to fixed costs (Huffman tables, a zlib window: tens of KiB).
type decodeCost struct {
	bytes  int64
	layout string // for messages: "16-bit RGB (rgba64), 8 bytes/pixel"
}

// mulSat multiplies non-negative a and b, saturating at the largest int64.
func mulSat(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(lo)
}

func addSat(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return 1<<63 - 1
}

// roundUp returns v rounded up to a multiple of m.
func roundUp(v, m int64) int64 { return (v + m - 1) / m * m }

// estimateCost returns the decode cost of an image of format f whose header (cfg) declares
// w×h pixels, b being the whole encoded image.
func estimateCost(f string, b []byte, cfg image.Config) decodeCost {
	w, h := int64(cfg.Width), int64(cfg.Height)
	px := mulSat(w, h)
	rgba := mulSat(px, 4) // the opaque RGB copy Decode makes for types it cannot convert in place
	switch f {
	case "png":
		return pngCost(b, cfg, w, h, px, rgba)
	case "jpeg":
		return jpegCost(b, cfg, w, h)
	case "gif":
		// The first frame (inside the logical screen) as one palette index per pixel.
		return decodeCost{addSat(px, rgba), "paletted, 5 bytes/pixel"}
	case "webp":
		// VP8 decodes into 4:2:0 YCbCr over whole 16×16 macroblocks.
		ycc := mulSat(mulSat(roundUp(w, 16), roundUp(h, 16)), 3) / 2
		switch cfg.ColorModel {
		case color.YCbCrModel: // returned as is
			return decodeCost{ycc, "lossy YCbCr 4:2:0, 1.5 bytes/pixel"}
		case color.NYCbCrAModel:
			// Plus an alpha plane, which a compressed ALPH chunk decodes through a whole
			// lossless NRGBA image (and its colour-indexing expansion), and the RGB copy.
			return decodeCost{addSat(addSat(ycc, mulSat(px, 1+8)), rgba), "lossy YCbCr 4:2:0 with alpha, up to 14.5 bytes/pixel"}
		case color.NRGBAModel:
			// VP8L: NRGBA pixels, and as much again while a colour-indexing transform
			// expands them; converted in place.
			return decodeCost{mulSat(px, 8), "lossless NRGBA, up to 8 bytes/pixel"}
		}
	case "bmp":
		switch cfg.ColorModel.(type) {
		case color.Palette:
			return decodeCost{addSat(px, rgba), "paletted, 5 bytes/pixel"}
		}
		if cfg.ColorModel == color.RGBAModel || cfg.ColorModel == color.NRGBAModel {
			return decodeCost{rgba, "8-bit RGB(A), 4 bytes/pixel"} // converted in place
		}
	}
	// Anything else: as much as the widest decoder output, 16-bit RGBA, plus a copy.
	return decodeCost{mulSat(px, 12), "unknown layout, assumed 12 bytes/pixel"}
}

// pngCost: image/png decodes into one image of the colour type's Go model. A grey or
// truecolour image with a tRNS chunk (which DecodeConfig does not read) decodes with alpha
// instead, so grey costs the larger of the two. An interlaced image also holds its passes
// (together as large as the image) while they are merged. Rows: two of them, filtered.
func pngCost(b []byte, cfg image.Config, w, h, px, rgba int64) decodeCost {
	var per int64 // bytes per pixel of the decoder's image
	copyRGB := false
	var layout string
	switch cfg.ColorModel {
	case color.GrayModel: // Gray, or NRGBA with tRNS
		per, copyRGB, layout = 1, true, "8-bit grey"
	case color.Gray16Model: // Gray16, or NRGBA64 with tRNS
		per, copyRGB, layout = 2, true, "16-bit grey"
	case color.RGBAModel, color.NRGBAModel:
		per, layout = 4, "8-bit RGB(A)"
	case color.RGBA64Model, color.NRGBA64Model:
		per, layout = 8, "16-bit RGB(A)"
	default:
		if _, ok := cfg.ColorModel.(color.Palette); ok {
			per, copyRGB, layout = 1, true, "paletted"
		} else {
			per, copyRGB, layout = 8, true, "unknown PNG layout"
		}
	}
	img := mulSat(px, per)
	// An interlaced image: the signature, the IHDR length and type, then width, height,
	// depth, colour type, compression, filter and interlace method, at byte 28.
	interlaced := len(b) <= 28 || b[28] != 0
	if interlaced {
		img = mulSat(img, 2)
		layout += ", interlaced"
	}
	total := addSat(img, mulSat(2, addSat(mulSat(w, 8), 1)))
	if copyRGB {
		total = addSat(total, rgba)
		if cfg.ColorModel == color.GrayModel || cfg.ColorModel == color.Gray16Model {
			// With tRNS the decoder makes (N)RGBA(64) instead and converts in place.
			alt := mulSat(px, 4*per)
			if interlaced {
				alt = mulSat(alt, 2)
			}
			total = max(total, addSat(alt, mulSat(2, addSat(mulSat(w, 8), 1))))
		}
	}
	return decodeCost{total, fmt.Sprintf("%s, %.3g bytes/pixel", layout, float64(total)/float64(max(px, 1)))}
}

// jpegFrame is what jpegCost needs from a JPEG's markers.
type jpegFrame struct {
	progressive bool
	multiScan   bool // some scan codes fewer components than the frame has
	comps       []jpegComp
	jfif, adobe bool
	transform   byte // of the Adobe APP14 segment
}

type jpegComp struct {
	id   byte
	h, v int64
}

// scanJPEG walks a JPEG's marker segments as image/jpeg does, to the end of the image (an
// APP14 segment between the scans of a progressive image still decides its colour
// conversion), and collects the frame header and the APP0/APP14 facts. Entropy-coded data
// is skipped to the next 0xFF. ok is false when it finds no frame header.
func scanJPEG(b []byte) (fr jpegFrame, ok bool) {
	if len(b) < 2 || b[0] != 0xff || b[1] != 0xd8 {
		return fr, false
	}
	i := 2
	for i+1 < len(b) {
		if b[i] != 0xff { // scan data, or extraneous bytes the decoder skips too
			j := bytes.IndexByte(b[i:], 0xff)
			if j < 0 {
				break
			}
			i += j
			continue
		}
		marker := b[i+1]
		i += 2
		for marker == 0xff && i < len(b) { // fill bytes
			marker = b[i]
			i++
		}
		switch {
		case marker == 0x00, 0xd0 <= marker && marker <= 0xd7: // stuffed byte, RST: no length
			continue
		case marker == 0xd9: // EOI
			return fr, len(fr.comps) > 0
		}
		if i+2 > len(b) {
			break
		}
		n := int(b[i])<<8 | int(b[i+1]) - 2
		i += 2
		if n < 0 || i+n > len(b) {
			break
		}
		seg := b[i : i+n]
		i += n
		switch marker {
		case 0xc0, 0xc1, 0xc2: // SOF0, SOF1, SOF2
			if len(fr.comps) > 0 || len(seg) < 6 {
				return fr, false
			}
			nc := int(seg[5])
			if len(seg) < 6+3*nc || nc == 0 {
				return fr, false
			}
			fr.progressive = marker == 0xc2
			for c := range nc {
				hv := seg[6+3*c+1]
				fr.comps = append(fr.comps, jpegComp{id: seg[6+3*c], h: int64(hv >> 4), v: int64(hv & 0x0f)})
			}
		case 0xda: // SOS
			if len(seg) > 0 && int(seg[0]) < len(fr.comps) {
				fr.multiScan = true
			}
		case 0xe0: // APP0
			if len(seg) >= 5 && string(seg[:5]) == "JFIF\x00" {
				fr.jfif = true
			}
		case 0xee: // APP14
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				fr.adobe, fr.transform = true, seg[11]
			}
		}
	}
	return fr, len(fr.comps) > 0
}
