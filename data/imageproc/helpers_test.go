package imageproc

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"golang.org/x/image/bmp"
)

// Test images are generated here, never committed.

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeGIF(t testing.TB, img *image.Paletted) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeBMP(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bmp.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bitWriter writes VP8L's least-significant-bit-first bit stream.
type bitWriter struct {
	buf   []byte
	nbits uint
}

func (w *bitWriter) write(v uint32, n uint) {
	for i := uint(0); i < n; i++ {
		if w.nbits%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		w.buf[len(w.buf)-1] |= byte((v>>i)&1) << (w.nbits % 8)
		w.nbits++
	}
}

// uniformWebP builds a lossless (VP8L) WebP of w×h pixels all of colour c: five one-symbol
// prefix codes make every pixel cost zero bits. x/image has no WebP encoder.
func uniformWebP(w, h int, c color.NRGBA) []byte {
	var bw bitWriter
	bw.write(0x2f, 8)
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(1, 1) // alpha is used
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	for _, sym := range []uint8{c.G, c.R, c.B, c.A, 0} {
		bw.write(1, 1) // simple code
		bw.write(0, 1) // one symbol
		bw.write(1, 1) // 8-bit symbol
		bw.write(uint32(sym), 8)
	}
	chunk := bw.buf
	if len(chunk)%2 == 1 {
		chunk = append(chunk, 0)
	}
	var out []byte
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(4+8+len(chunk)))
	out = append(out, "WEBPVP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(bw.buf)))
	return append(out, chunk...)
}

// pngHeaderOnly is a PNG signature and a valid IHDR declaring w×h RGB, with no pixel data.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit, truecolour, deflate, adaptive, no interlace
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, uint32(len(ihdr)))
	typed := append([]byte("IHDR"), ihdr...)
	out = append(out, typed...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(typed))
}

// bmpHeaderOnly is a BMP file and info header declaring w×h pixels of bpp bits, with no pixels.
func bmpHeaderOnly(w, h int32, bpp uint16) []byte {
	out := []byte("BM")
	out = binary.LittleEndian.AppendUint32(out, 54)
	out = binary.LittleEndian.AppendUint32(out, 0)
	out = binary.LittleEndian.AppendUint32(out, 54)
	out = binary.LittleEndian.AppendUint32(out, 40)
	out = binary.LittleEndian.AppendUint32(out, uint32(w))
	out = binary.LittleEndian.AppendUint32(out, uint32(h))
	out = binary.LittleEndian.AppendUint16(out, 1)
	out = binary.LittleEndian.AppendUint16(out, bpp)
	return append(out, make([]byte, 24)...)
}

// gradient is a w×h RGBA test pattern with distinct values along both axes.
func gradient(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / max(w-1, 1)), uint8(y * 255 / max(h-1, 1)), uint8((x + y) % 256), 255})
		}
	}
	return img
}

// seedImages returns tiny valid images of every supported kind, named.
func seedImages(t testing.TB) map[string][]byte {
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	gray16 := image.NewGray16(image.Rect(0, 0, 3, 2))
	nrgba := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	nrgba64 := image.NewNRGBA64(image.Rect(0, 0, 3, 2))
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{0, 0, 0, 0}})
	for i := range gray.Pix {
		gray.Pix[i] = uint8(40 * i)
		gray16.Pix[i] = uint8(40 * i)
		nrgba.Pix[i] = uint8(20 * i)
		nrgba64.Pix[i] = uint8(10 * i)
	}
	pal.Pix[0] = 1
	ycc := image.NewYCbCr(image.Rect(0, 0, 16, 16), image.YCbCrSubsampleRatio420)
	return map[string][]byte{
		"jpeg-rgb":      encodeJPEG(t, gradient(16, 8), 90),
		"jpeg-gray":     encodeJPEG(t, gray, 90),
		"jpeg-ycc":      encodeJPEG(t, ycc, 90),
		"png-gray":      encodePNG(t, gray),
		"png-gray16":    encodePNG(t, gray16),
		"png-nrgba":     encodePNG(t, nrgba),
		"png-nrgba64":   encodePNG(t, nrgba64),
		"png-paletted":  encodePNG(t, pal),
		"gif":           encodeGIF(t, pal),
		"bmp":           encodeBMP(t, gradient(5, 3)),
		"webp-lossless": uniformWebP(3, 2, color.NRGBA{200, 100, 50, 255}),
	}
}
