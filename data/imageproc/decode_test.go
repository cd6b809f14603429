package imageproc

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"testing"
)

type px struct {
	x, y    int
	r, g, b uint8
}

// checkPixels compares img's RGB at each point within tol.
func checkPixels(t *testing.T, img image.Image, want []px, tol int) {
	t.Helper()
	for _, p := range want {
		r, g, b, a := img.At(p.x, p.y).RGBA()
		if a != 0xffff {
			t.Errorf("(%d,%d): alpha %#x, want opaque", p.x, p.y, a)
		}
		got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
		exp := [3]int{int(p.r), int(p.g), int(p.b)}
		for c := range 3 {
			if d := got[c] - exp[c]; d > tol || d < -tol {
				t.Errorf("(%d,%d): RGB %v, want %v (±%d)", p.x, p.y, got, exp, tol)
				break
			}
		}
	}
}

func TestDecodeColourModels(t *testing.T) {
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.Pix = []uint8{0, 77}
	gray16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	gray16.Pix = []uint8{0xff, 0xff, 0x40, 0x40, 0x40, 0xff} // 255; 64 exactly; 64.74 rounds to 65
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.Pix = []uint8{200, 100, 0, 128, 1, 2, 3, 255}
	rgb48 := image.NewNRGBA64(image.Rect(0, 0, 1, 1)) // opaque: PNG stores 16-bit RGB, decodes as RGBA64
	rgb48.Pix = []uint8{0x64, 0x64, 0xc8, 0xc8, 0x01, 0x01, 0xff, 0xff}
	nrgba64 := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	nrgba64.Pix = []uint8{0x64, 0x64, 0, 0, 0, 0, 0x80, 0x00} // (100, 0, 0) at alpha 1/2
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{0, 0, 0, 0}})
	pal.Pix = []uint8{0, 1}
	flatGray := image.NewGray(image.Rect(0, 0, 16, 16))
	flatRGB := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range flatGray.Pix {
		flatGray.Pix[i] = 90
	}
	for i := 0; i < len(flatRGB.Pix); i += 4 {
		copy(flatRGB.Pix[i:], []uint8{200, 100, 50, 255})
	}
	bmpImg := image.NewRGBA(image.Rect(0, 0, 2, 2))
	copy(bmpImg.Pix, []uint8{1, 2, 3, 255, 250, 128, 0, 255, 9, 99, 199, 255, 0, 0, 0, 255})

	tests := []struct {
		name, format, model string
		data                []byte
		alpha               bool
		tol                 int
		want                []px
	}{
		{"png gray", "png", "gray", encodePNG(t, gray), false, 0, []px{{0, 0, 0, 0, 0}, {1, 0, 77, 77, 77}}},
		{"png gray16 rounds", "png", "gray16", encodePNG(t, gray16), false, 0, []px{{0, 0, 255, 255, 255}, {1, 0, 64, 64, 64}, {2, 0, 65, 65, 65}}},
		{"png nrgba over white", "png", "nrgba", encodePNG(t, nrgba), true, 0, []px{{0, 0, 227, 177, 127}, {1, 0, 1, 2, 3}}},
		{"png 16-bit rgb", "png", "rgba64", encodePNG(t, rgb48), false, 0, []px{{0, 0, 100, 200, 1}}},
		{"png 16-bit rgba over white", "png", "nrgba64", encodePNG(t, nrgba64), true, 0, []px{{0, 0, 177, 127, 127}}},
		{"png paletted transparent", "png", "paletted", encodePNG(t, pal), true, 0, []px{{0, 0, 10, 20, 30}, {1, 0, 255, 255, 255}}},
		{"gif first frame", "gif", "paletted", encodeGIF(t, pal), true, 0, []px{{0, 0, 10, 20, 30}, {1, 0, 255, 255, 255}}},
		{"jpeg gray", "jpeg", "gray", encodeJPEG(t, flatGray, 100), false, 1, []px{{0, 0, 90, 90, 90}, {15, 15, 90, 90, 90}}},
		{"jpeg ycbcr", "jpeg", "ycbcr", encodeJPEG(t, flatRGB, 100), false, 3, []px{{3, 3, 200, 100, 50}}},
		{"bmp 24-bit", "bmp", "rgba", encodeBMP(t, bmpImg), false, 0, []px{{0, 0, 1, 2, 3}, {1, 0, 250, 128, 0}, {0, 1, 9, 99, 199}}},
		{"webp lossless alpha", "webp", "nrgba", uniformWebP(3, 2, color.NRGBA{200, 100, 50, 128}), true, 0, []px{{2, 1, 227, 177, 152}}},
		{"webp lossless opaque", "webp", "nrgba", uniformWebP(1, 1, color.NRGBA{7, 8, 9, 255}), false, 0, []px{{0, 0, 7, 8, 9}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, info, err := Decode(tc.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != tc.format || info.Model != tc.model || info.Alpha != tc.alpha {
				t.Errorf("info %+v, want format %s model %s alpha %v", info, tc.format, tc.model, tc.alpha)
			}
			switch m := img.(type) {
			case *image.RGBA:
				if !m.Opaque() {
					t.Error("result is not opaque")
				}
			case *image.YCbCr:
				if tc.model != "ycbcr" {
					t.Errorf("%T for model %s", m, tc.model)
				}
			case *image.Gray:
				if tc.model != "gray" {
					t.Errorf("%T for model %s", m, tc.model)
				}
			default:
				t.Fatalf("result type %T, want *image.RGBA, *image.Gray or *image.YCbCr", img)
			}
			if b := img.Bounds(); b.Min != (image.Point{}) || b.Dx() != info.Width || b.Dy() != info.Height {
				t.Errorf("bounds %v, info %dx%d", b, info.Width, info.Height)
			}
			checkPixels(t, img, tc.want, tc.tol)
		})
	}
}

// TestToRGB covers the colour models no encoder in reach can produce (CMYK/YCCK JPEG,
// premultiplied 16-bit, YCbCr with alpha, offset bounds).
func TestToRGB(t *testing.T) {
	cmyk := image.NewCMYK(image.Rect(0, 0, 3, 1))
	cmyk.Pix = []uint8{0, 255, 255, 0, 0, 0, 0, 255, 0, 0, 0, 0} // red, black, white
	rgba64 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	rgba64.Pix = []uint8{0x80, 0x00, 0, 0, 0, 0, 0x80, 0x00} // half-opaque red, premultiplied
	rgba := image.NewRGBA(image.Rect(0, 0, 1, 1))
	rgba.Pix = []uint8{100, 0, 0, 128}
	nycc := image.NewNYCbCrA(image.Rect(0, 0, 3, 1), image.YCbCrSubsampleRatio444)
	copy(nycc.Cb, []uint8{128, 128, 128})
	copy(nycc.Cr, []uint8{128, 128, 128})
	nycc.A = []uint8{255, 0, 128}
	offset := image.NewGray(image.Rect(5, 7, 7, 8))
	offset.Pix = []uint8{11, 22}
	ycc := image.NewYCbCr(image.Rect(0, 0, 2, 2), image.YCbCrSubsampleRatio420)

	tests := []struct {
		name, model string
		in          image.Image
		alpha       bool
		want        []px
	}{
		{"cmyk", "cmyk", cmyk, false, []px{{0, 0, 255, 0, 0}, {1, 0, 0, 0, 0}, {2, 0, 255, 255, 255}}},
		{"rgba64 premultiplied", "rgba64", rgba64, true, []px{{0, 0, 255, 127, 127}}},
		{"rgba premultiplied", "rgba", rgba, true, []px{{0, 0, 227, 127, 127}}},
		{"nycbcra", "nycbcra", nycc, true, []px{{0, 0, 0, 0, 0}, {1, 0, 255, 255, 255}, {2, 0, 127, 127, 127}}},
		{"offset bounds", "gray", offset, false, []px{{0, 0, 11, 11, 11}, {1, 0, 22, 22, 22}}},
		{"ycbcr kept", "ycbcr", ycc, false, []px{{0, 0, 0, 135, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, model, alpha := toRGB(tc.in)
			if model != tc.model || alpha != tc.alpha {
				t.Errorf("model %s alpha %v, want %s %v", model, alpha, tc.model, tc.alpha)
			}
			if out.Bounds().Min != (image.Point{}) || out.Bounds().Size() != tc.in.Bounds().Size() {
				t.Errorf("bounds %v from %v", out.Bounds(), tc.in.Bounds())
			}
			checkPixels(t, out, tc.want, 0)
		})
	}
	if out, _, _ := toRGB(ycc); out != image.Image(ycc) {
		t.Error("an *image.YCbCr at the origin should be returned as is")
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := encodePNG(t, gradient(64, 64))
	jpg := encodeJPEG(t, gradient(64, 64), 90)
	tiny := Limits{MaxPixels: 1000}
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want error
	}{
		{"nil", nil, Limits{}, ErrEmpty},
		{"gif 0x0 screen", []byte("GIF89a\x00\x00\x00\x00\x00\x00\x00;"), Limits{}, ErrEmpty},
		{"bytes over limit", valid, Limits{MaxBytes: 100}, ErrTooLarge},
		{"png 100000x100000 header", pngHeaderOnly(100000, 100000), Limits{}, ErrTooLarge},
		{"png 100000x100000 with huge side limit", pngHeaderOnly(100000, 100000), Limits{MaxSide: 1 << 20}, ErrTooLarge},
		{"bmp 100000x100000 header", bmpHeaderOnly(100000, 100000, 24), Limits{}, ErrTooLarge},
		{"webp 16384x16384", uniformWebP(16384, 16384, color.NRGBA{}), Limits{}, ErrTooLarge},
		{"pixels over limit", valid, tiny, ErrTooLarge},
		{"side over limit", valid, Limits{MaxSide: 63}, ErrTooLarge},
		{"png truncated", valid[:len(valid)/2], Limits{}, ErrCorrupt},
		{"png header only", pngHeaderOnly(4, 4), Limits{}, ErrCorrupt},
		{"png bad crc", append(pngHeaderOnly(4, 4)[:29], 0, 0, 0, 0), Limits{}, ErrCorrupt},
		{"jpeg truncated", jpg[:len(jpg)/2], Limits{}, ErrCorrupt},
		{"jpeg soi only", []byte{0xff, 0xd8}, Limits{}, ErrCorrupt},
		{"webp truncated", uniformWebP(3, 2, color.NRGBA{})[:30], Limits{}, ErrCorrupt},
		{"bmp 16-bit", bmpHeaderOnly(2, 2, 16), Limits{}, ErrUnsupported},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), Limits{}, ErrUnsupported},
		{"text", []byte("hello, world"), Limits{}, ErrUnsupported},
		{"html", []byte("  <html><body>404</body></html>"), Limits{}, ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, _, err := Decode(tc.data, tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if img != nil {
				t.Error("image returned with an error")
			}
			for _, other := range []error{ErrEmpty, ErrTooLarge, ErrUnsupported, ErrCorrupt} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("err %v also matches %v", err, other)
				}
			}
		})
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		nil: "", ErrEmpty: "empty", ErrTooLarge: "too_large", ErrUnsupported: "unsupported",
		ErrCorrupt: "corrupt", errors.New("x"): "other",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

// FuzzDecode checks that Decode never panics, returns exactly one sentinel on failure, and on
// success an opaque RGB image within the limits.
func FuzzDecode(f *testing.F) {
	for _, b := range seedImages(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-1])
	}
	f.Add(pngHeaderOnly(100000, 100000))
	f.Add(bmpHeaderOnly(100000, 100000, 24))
	f.Add(uniformWebP(16384, 16384, color.NRGBA{1, 2, 3, 4}))
	f.Add([]byte("GIF89a\xff\xff\xff\xff\x00\x00\x00;"))
	f.Add([]byte{})
	lim := Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 18, MaxSide: 4096}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, info, err := Decode(b, lim)
		if err != nil {
			if img != nil {
				t.Fatal("image with error")
			}
			n := 0
			for _, s := range []error{ErrEmpty, ErrTooLarge, ErrUnsupported, ErrCorrupt} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %q wraps %d sentinels", err, n)
			}
			return
		}
		bd := img.Bounds()
		if bd.Min != (image.Point{}) || bd.Dx() != info.Width || bd.Dy() != info.Height || bd.Empty() {
			t.Fatalf("bounds %v, info %+v", bd, info)
		}
		if int64(bd.Dx())*int64(bd.Dy()) > lim.MaxPixels {
			t.Fatalf("%v exceeds the pixel limit", bd)
		}
		switch m := img.(type) {
		case *image.RGBA:
			if !m.Opaque() {
				t.Fatal("not opaque")
			}
		case *image.YCbCr, *image.Gray:
		default:
			t.Fatalf("type %T", img)
		}
		// The decoded image must feed the transforms without failing.
		dst := make([]float32, 3*8*8)
		if err := EvalTransform(dst, img, 8); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSeedsDecode(t *testing.T) {
	for name, b := range seedImages(t) {
		if _, _, err := Decode(b, Limits{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, _, err := Decode(bytes.Clone(b[:len(b)/2]), Limits{}); err == nil && name != "webp-lossless" {
			t.Errorf("%s truncated to half decoded without error", name)
		}
	}
}
