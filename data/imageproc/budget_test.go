package imageproc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// pngChunk appends one PNG chunk.
func pngChunk(out []byte, typ string, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	typed := append([]byte(typ), data...)
	out = append(out, typed...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(typed))
}

// pngStart is a PNG signature and IHDR declaring w×h pixels of the given bit depth, colour
// type and interlace method, followed by an IDAT chunk that holds a zlib stream of the first
// few rows (all zero) and then ends: a decoder that trusts the header allocates the whole
// image, then fails. A few hundred bytes stand for a 7000×7000 image.
func pngStart(t testing.TB, w, h uint32, depth, colourType, interlace byte) []byte {
	t.Helper()
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, depth, colourType, 0, 0, interlace)
	out := pngChunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	if colourType == 3 {
		out = pngChunk(out, "PLTE", []byte{0, 0, 0, 255, 255, 255})
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 4*(1+int(w)*8))) // four rows' worth of zero bytes, not flushed whole
	zw.Flush()
	return pngChunk(out, "IDAT", z.Bytes())
}

// allocated returns the bytes fn allocates on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// jpegWithSize patches the frame header of a JPEG to declare w×h (and, if sof is not 0, that
// frame type): a cheap stand-in for a big JPEG, whose scan data then runs out.
func jpegWithSize(t testing.TB, b []byte, w, h int, sof byte) []byte {
	t.Helper()
	b = bytes.Clone(b)
	for i := 2; i+9 < len(b); {
		if b[i] != 0xff {
			t.Fatalf("jpegWithSize: lost in the markers at byte %d", i)
		}
		m := b[i+1]
		n := int(b[i+2])<<8 | int(b[i+3])
		if m == 0xc0 || m == 0xc1 || m == 0xc2 {
			if sof != 0 {
				b[i+1] = sof
			}
			binary.BigEndian.PutUint16(b[i+5:], uint16(h))
			binary.BigEndian.PutUint16(b[i+7:], uint16(w))
			return b
		}
		i += 2 + n
	}
	t.Fatal("jpegWithSize: no frame header")
	return nil
}

// TestDecodeRejectsCostlyHeaders: images within the pixel limit whose declared depth and
// layout would take more than Limits.MaxDecodeBytes are refused before decoding, allocating
// nothing; those within it still reach the decoder.
func TestDecodeRejectsCostlyHeaders(t *testing.T) {
	ycc := encodeJPEG(t, gradient(64, 48), 90)                             // 4:2:0 YCbCr
	grayJPEG := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 64, 48)), 90) // one component
	tests := []struct {
		name    string
		data    []byte
		tooBig  bool
		message string
	}{
		{"png 7000x7000 16-bit RGB", pngStart(t, 7000, 7000, 16, 2, 0), true, "7000x7000 16-bit RGB(A), 8 bytes/pixel: decoding needs 373.9 MiB, beyond the limit of 200.0 MiB"},
		{"png 7000x7000 16-bit RGBA", pngStart(t, 7000, 7000, 16, 6, 0), true, "16-bit RGB(A)"},
		{"png 7000x7000 16-bit grey", pngStart(t, 7000, 7000, 16, 0, 0), true, "16-bit grey"},
		{"png 7000x7000 8-bit grey", pngStart(t, 7000, 7000, 8, 0, 0), true, "8-bit grey"},
		{"png 7000x7000 8-bit paletted", pngStart(t, 7000, 7000, 8, 3, 0), true, "paletted"},
		{"png 6000x6000 8-bit paletted", pngStart(t, 6000, 6000, 8, 3, 0), false, ""},
		{"png 7000x7000 8-bit RGB", pngStart(t, 7000, 7000, 8, 2, 0), false, ""},
		{"png 6000x6000 8-bit grey", pngStart(t, 6000, 6000, 8, 0, 0), false, ""},
		{"png 6000x6000 8-bit RGB interlaced", pngStart(t, 6000, 6000, 8, 2, 1), true, "interlaced"},
		{"png 4000x4000 8-bit RGB interlaced", pngStart(t, 4000, 4000, 8, 2, 1), false, ""},
		{"jpeg 7000x7000 progressive 4:2:0", jpegWithSize(t, ycc, 7000, 7000, 0xc2), true, "progressive YCbCr"},
		{"jpeg 7000x7000 baseline 4:2:0", jpegWithSize(t, ycc, 7000, 7000, 0), false, ""},
		{"jpeg 7000x7000 baseline grey", jpegWithSize(t, grayJPEG, 7000, 7000, 0), false, ""},
		{"jpeg 6000x6000 baseline grey", jpegWithSize(t, grayJPEG, 6000, 6000, 0), false, ""},
		{"gif 7000x7000 screen", []byte("GIF89a\x58\x1b\x58\x1b\x00\x00\x00;"), true, "paletted"},
		{"webp lossless 7000x7000", uniformWebP(7000, 7000, color.NRGBA{1, 2, 3, 255}), true, "lossless NRGBA"},
		{"webp lossless 5000x5000", uniformWebP(5000, 5000, color.NRGBA{1, 2, 3, 255}), false, ""},
		{"bmp 7000x7000 24-bit", bmpHeaderOnly(7000, 7000, 24), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.tooBig { // within the budget: not decoded here, that would take ~200 MB
				f := formats[slices.IndexFunc(formats, func(f format) bool { return f.magic(tc.data) })]
				cfg, err := f.config(tc.data)
				if err != nil {
					t.Fatal(err)
				}
				if c := estimateCost(f.name, tc.data, cfg); c.bytes > DefaultLimits.MaxDecodeBytes {
					t.Fatalf("estimate %d (%s) is over the default bound", c.bytes, c.layout)
				}
				return
			}
			var err error
			alloc := allocated(func() { _, _, err = Decode(tc.data, Limits{}) })
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), "limit of 200.0 MiB") {
				t.Errorf("message %q, want it to contain %q and the limit", err, tc.message)
			}
			if alloc > 1<<20 {
				t.Errorf("Decode allocated %d bytes before refusing", alloc)
			}
		})
	}
	// The bound is a setting: a lower one refuses a 16-bit image an 8-bit one of the same size
	// passes, by bytes per pixel and not by pixel count.
	lim := Limits{MaxDecodeBytes: 3 << 19}
	rgb48 := image.NewRGBA64(image.Rect(0, 0, 512, 512))
	rgb24 := image.NewRGBA(image.Rect(0, 0, 512, 512))
	if _, _, err := Decode(encodePNG(t, rgb48), lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("512x512 16-bit RGB under a 1.5 MiB bound: %v", err)
	}
	if _, _, err := Decode(encodePNG(t, rgb24), lim); err != nil {
		t.Errorf("512x512 8-bit RGB under a 1.5 MiB bound: %v", err)
	}
}

// adam7PNG encodes img as an interlaced 8-bit RGB PNG (image/png writes no interlaced ones).
func adam7PNG(t testing.TB, img *image.RGBA) []byte {
	t.Helper()
	b := img.Bounds()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(b.Dx()))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(b.Dy()))
	ihdr = append(ihdr, 8, 2, 0, 0, 1)
	out := pngChunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	for _, p := range [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
		for y := p[1]; y < b.Dy(); y += p[3] {
			if p[0] >= b.Dx() {
				break
			}
			row := []byte{0}
			for x := p[0]; x < b.Dx(); x += p[2] {
				c := img.RGBAAt(x, y)
				row = append(row, c.R, c.G, c.B)
			}
			zw.Write(row)
		}
	}
	zw.Close()
	out = pngChunk(out, "IDAT", z.Bytes())
	return pngChunk(out, "IEND", nil)
}

// goTestdata reads a file of the Go distribution's image test data.
func goTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "src", "image", "testdata", name))
	if err != nil {
		testenv.Missing(t, "the Go distribution's image test data: "+err.Error())
	}
	return b
}

// TestDecodeCostBoundsAllocation decodes images of every layout the estimate distinguishes
// and checks that what Decode allocates stays within the estimate (up to the decoders' fixed
// costs), and that the estimate is not so loose that it refuses images that would fit.
func TestDecodeCostBoundsAllocation(t *testing.T) {
	const fixed = 256 << 10 // Huffman tables, a zlib window, decoder state
	w, h := 640, 480
	rgba := gradient(w, h)
	nrgba := image.NewNRGBA(rgba.Rect)
	gray := image.NewGray(rgba.Rect)
	gray16 := image.NewGray16(rgba.Rect)
	rgba64 := image.NewRGBA64(rgba.Rect)
	nrgba64 := image.NewNRGBA64(rgba.Rect)
	pal := image.NewPaletted(rgba.Rect, color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{0, 0, 0, 0}, color.RGBA{200, 0, 0, 255}})
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := rgba.RGBAAt(x, y)
			a := uint8(x)
			nrgba.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, a})
			gray.SetGray(x, y, color.Gray{c.R})
			gray16.SetGray16(x, y, color.Gray16{uint16(c.R) * 257})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, 0xffff})
			nrgba64.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R) * 257, uint16(c.G) * 257, 1, uint16(a) * 257})
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	type sample struct {
		name string
		data []byte
		ok   bool // decodes; else it fails part-way (a patched header), having allocated
	}
	samples := []sample{
		{"png rgb", encodePNG(t, rgba), true},
		{"png rgba", encodePNG(t, nrgba), true},
		{"png grey", encodePNG(t, gray), true},
		{"png grey16", encodePNG(t, gray16), true},
		{"png rgb48", encodePNG(t, rgba64), true},
		{"png rgba64", encodePNG(t, nrgba64), true},
		{"png paletted", encodePNG(t, pal), true},
		{"png interlaced", adam7PNG(t, rgba), true},
		{"jpeg 4:2:0", encodeJPEG(t, rgba, 90), true},
		{"jpeg grey", encodeJPEG(t, gray, 90), true},
		{"gif", encodeGIF(t, pal), true},
		{"bmp", encodeBMP(t, rgba), true},
		{"webp lossless", uniformWebP(w, h, color.NRGBA{9, 8, 7, 100}), true},
	}
	for _, name := range []string{"video-001.progressive.jpeg", "video-001.cmyk.jpeg", "video-001.rgb.jpeg",
		"video-001.q50.410.progressive.jpeg", "video-001.q50.444.progressive.jpeg", "video-001.q50.422.jpeg",
		"video-005.gray.q50.progressive.jpeg"} {
		b := goTestdata(t, name)
		samples = append(samples, sample{name, b, true},
			// Declared 16 times larger each way: the decoder allocates for that, then runs out.
			sample{name + " x16", jpegWithSize(t, b, 16*150, 16*103, 0), false})
	}
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			format := ""
			for _, f := range formats {
				if f.magic(s.data) {
					format = f.name
				}
			}
			var cfg image.Config
			for _, f := range formats {
				if f.name == format {
					var err error
					if cfg, err = f.config(s.data); err != nil {
						t.Fatal(err)
					}
				}
			}
			cost := estimateCost(format, s.data, cfg)
			var err error
			var img image.Image
			alloc := allocated(func() { img, _, err = Decode(s.data, Limits{MaxDecodeBytes: 1 << 40}) })
			if s.ok != (err == nil) {
				t.Fatalf("Decode: %v", err)
			}
			t.Logf("%dx%d %s: estimate %d, allocated %d (%.2f)", cfg.Width, cfg.Height, cost.layout, cost.bytes, alloc, float64(cost.bytes)/float64(alloc))
			if int64(alloc) > cost.bytes+fixed {
				t.Errorf("Decode allocated %d bytes, above the estimate %d (+%d)", alloc, cost.bytes, fixed)
			}
			// Lossless WebP is estimated for a colour-indexing transform, which doubles
			// its pixels while it runs; the uniform test image has none.
			if slack := map[bool]float64{false: 1.5, true: 2.05}[strings.Contains(s.name, "webp lossless")]; s.ok && float64(cost.bytes) > slack*float64(alloc)+fixed {
				t.Errorf("estimate %d is more than %g times the %d bytes allocated", cost.bytes, slack, alloc)
			}
			if img != nil {
				if err := checkOpaque(img); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func checkOpaque(img image.Image) error {
	switch m := img.(type) {
	case *image.RGBA:
		if !m.Opaque() || m.Stride != 4*m.Rect.Dx() || len(m.Pix) != 4*m.Rect.Dx()*m.Rect.Dy() {
			return fmt.Errorf("RGBA result: opaque %v, stride %d, %d bytes for %v", m.Opaque(), m.Stride, len(m.Pix), m.Rect)
		}
	case *image.YCbCr, *image.Gray:
	default:
		return fmt.Errorf("result type %T", img)
	}
	return nil
}

// TestInPlaceMatchesCopy: converting decoder output in place gives exactly the pixels the
// copying conversion gives, for every type converted in place, translucent pixels included.
func TestInPlaceMatchesCopy(t *testing.T) {
	r := image.Rect(0, 0, 37, 11)
	mk := func(fill func(i int) byte, bpp int) []byte {
		b := make([]byte, bpp*r.Dx()*r.Dy())
		for i := range b {
			b[i] = fill(i)
		}
		return b
	}
	noise := func(i int) byte { return byte(i*131 + i*i*7 + 3) }
	premul8 := func(p []byte) []byte { // valid premultiplied: c <= a
		for i := 0; i < len(p); i += 4 {
			for c := 0; c < 3; c++ {
				p[i+c] = byte(int(p[i+c]) * int(p[i+3]) / 255)
			}
		}
		return p
	}
	premul16 := func(p []byte) []byte {
		for i := 0; i < len(p); i += 8 {
			a := int(p[i+6])<<8 | int(p[i+7])
			for c := 0; c < 3; c++ {
				v := (int(p[i+2*c])<<8 | int(p[i+2*c+1])) * a / 0xffff
				p[i+2*c], p[i+2*c+1] = byte(v>>8), byte(v)
			}
		}
		return p
	}
	imgs := map[string]func() image.Image{
		"rgba":    func() image.Image { return &image.RGBA{Pix: premul8(mk(noise, 4)), Stride: 4 * r.Dx(), Rect: r} },
		"nrgba":   func() image.Image { return &image.NRGBA{Pix: mk(noise, 4), Stride: 4 * r.Dx(), Rect: r} },
		"cmyk":    func() image.Image { return &image.CMYK{Pix: mk(noise, 4), Stride: 4 * r.Dx(), Rect: r} },
		"rgba64":  func() image.Image { return &image.RGBA64{Pix: premul16(mk(noise, 8)), Stride: 8 * r.Dx(), Rect: r} },
		"nrgba64": func() image.Image { return &image.NRGBA64{Pix: mk(noise, 8), Stride: 8 * r.Dx(), Rect: r} },
	}
	for name, make := range imgs {
		t.Run(name, func(t *testing.T) {
			src := make()
			// The reference: colour by colour through the colour model, as before.
			want := image.NewRGBA(r)
			wantAlpha := generic(src, want)
			got, model, alpha := toRGBOwned(make())
			if model != name || alpha != wantAlpha {
				t.Errorf("model %q alpha %v, want %q %v", model, alpha, name, wantAlpha)
			}
			if name == "cmyk" { // CMYK's RGBA() rounds differently from CMYKToRGB
				for y := 0; y < r.Dy(); y++ {
					for x := 0; x < r.Dx(); x++ {
						c := src.(*image.CMYK).CMYKAt(x, y)
						cr, cg, cb := color.CMYKToRGB(c.C, c.M, c.Y, c.K)
						want.SetRGBA(x, y, color.RGBA{cr, cg, cb, 255})
					}
				}
			}
			g := got.(*image.RGBA)
			if !bytes.Equal(g.Pix, want.Pix) {
				t.Fatalf("in-place conversion differs from the reference")
			}
			copied, _, _ := toRGB(src)
			if !bytes.Equal(copied.(*image.RGBA).Pix, want.Pix) {
				t.Fatalf("copying conversion differs from the reference")
			}
		})
	}
}

func TestScanJPEG(t *testing.T) {
	ycc := encodeJPEG(t, gradient(40, 24), 90)
	fr, ok := scanJPEG(ycc)
	if !ok || fr.progressive || len(fr.comps) != 3 || fr.comps[0].h != 2 || fr.comps[0].v != 2 || fr.comps[1].h != 1 {
		t.Fatalf("4:2:0 baseline: %+v %v", fr, ok)
	}
	if fr, ok := scanJPEG(jpegWithSize(t, ycc, 40, 24, 0xc2)); !ok || !fr.progressive {
		t.Errorf("SOF2 not seen as progressive: %+v", fr)
	}
	for _, b := range [][]byte{nil, {0xff}, {0xff, 0xd8}, {0xff, 0xd8, 0xff, 0xc0, 0x00}, {0xff, 0xd8, 0xff, 0xc0, 0xff, 0xff}, ycc[:20]} {
		if _, ok := scanJPEG(b); ok {
			t.Errorf("scanJPEG(% x) found a frame", b)
		}
	}
}

// FuzzEstimate: the estimate of any header Decode reaches is positive and never panics.
func FuzzEstimate(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fm := range formats {
			if !fm.magic(b) {
				continue
			}
			cfg, err := fm.config(b)
			if err != nil || cfg.Width <= 0 || cfg.Height <= 0 {
				return
			}
			if c := estimateCost(fm.name, b, cfg); c.bytes < int64(cfg.Width)*int64(cfg.Height) {
				t.Fatalf("%s %dx%d: estimate %d below one byte per pixel", fm.name, cfg.Width, cfg.Height, c.bytes)
			}
		}
	})
}
