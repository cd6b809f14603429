//go:build purego

package imageproc

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
)

// Without cgo (the purego build) JPEGs are decoded by the standard library. Its chroma
// upsampling (pixel replication) and IDCT differ from libjpeg-turbo's, so pixels differ from
// PIL's by up to tens of levels on photographs (see jpeg_libjpeg.go); the cgo build is the
// one that matches the reference stack.

// jpegConfig reads a JPEG's header with image/jpeg.
func jpegConfig(b []byte) (image.Config, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return cfg, classify("jpeg", "header", err)
	}
	return cfg, nil
}

// decodeJPEG decodes a JPEG whose header passed the limits into opaque 8-bit RGB.
func decodeJPEG(b []byte, cfg image.Config, _ int64) (image.Image, string, error) {
	raw, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, "", classify("jpeg", "data", err)
	}
	r := raw.Bounds()
	if r.Dx() != cfg.Width || r.Dy() != cfg.Height {
		return nil, "", fmt.Errorf("%w: jpeg decoded %dx%d from a %dx%d header", ErrCorrupt, r.Dx(), r.Dy(), cfg.Width, cfg.Height)
	}
	if cfg.ColorModel == color.GrayModel {
		if g, ok := raw.(*image.Gray); ok {
			return g, "gray", nil
		}
	}
	img, model, _ := toRGBOwned(raw)
	return img, model, nil
}

// jpegCost follows image/jpeg (the purego build's decoder): each component is decoded into a plane of whole 8×8 blocks
// over whole MCUs; a progressive image also keeps 64 int32 coefficients per block; an RGB,
// CMYK or YCCK image is then converted into a 4-byte-per-pixel image (converted to RGB in
// place); a greyscale or YCbCr one is returned as is.
func jpegCost(b []byte, cfg image.Config, w, h int64) decodeCost {
	fr, ok := scanJPEG(b)
	n, rgb := 1, false
	switch cfg.ColorModel {
	case color.YCbCrModel:
		n = 3
	case color.RGBAModel: // DecodeConfig's word for an RGB JPEG
		n, rgb = 3, true
	case color.CMYKModel:
		n = 4
	}
	if !ok || len(fr.comps) != n {
		// Markers this scan cannot follow (the decoder judged the header valid): assume
		// the worst the decoder allows, every component at full resolution, progressive.
		fr = jpegFrame{progressive: true}
		for range n {
			fr.comps = append(fr.comps, jpegComp{h: 1, v: 1})
		}
		w, h = roundUp(w, 32), roundUp(h, 32) // room for any MCU padding
	}
	if n == 1 {
		fr.comps[0].h, fr.comps[0].v = 1, 1 // one component is non-interleaved
	}
	h0, v0 := max(fr.comps[0].h, 1), max(fr.comps[0].v, 1)
	mxx, myy := (w+8*h0-1)/(8*h0), (h+8*v0-1)/(8*v0)
	var blocks int64
	for _, c := range fr.comps {
		blocks = addSat(blocks, mulSat(mulSat(mxx, myy), c.h*c.v))
	}
	total := mulSat(blocks, 64) // the planes
	kind := map[int]string{1: "grey", 3: "YCbCr", 4: "CMYK/YCCK"}[n]
	if fr.progressive {
		total = addSat(total, mulSat(blocks, 64*4))
		kind = "progressive " + kind
	}
	px := mulSat(w, h)
	switch {
	case n == 4:
		total = addSat(total, mulSat(px, 4)) // CMYK, converted in place
	case rgb || !fr.jfif && ((fr.adobe && fr.transform == 0) || (fr.comps[0].id == 'R' && fr.comps[1].id == 'G' && fr.comps[2].id == 'B')):
		total = addSat(total, mulSat(px, 4)) // RGB, as is
		kind = "RGB"
	}
	return decodeCost{total, fmt.Sprintf("%s, %.3g bytes/pixel", kind, float64(total)/float64(max(px, 1)))}
}
