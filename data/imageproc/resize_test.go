package imageproc

import (
	"encoding/json"
	"image"
	"image/color"
	"testing"
)

// halves is a w×h image, left half red and right half blue.
func halves(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func TestResizeModes(t *testing.T) {
	tests := []struct {
		name         string
		w, h, size   int
		mode         ResizeMode
		onlyIfBigger bool
		wantW, wantH int
	}{
		{"no", 200, 100, 64, ResizeNo, false, 200, 100},
		{"keep_ratio landscape", 200, 100, 64, ResizeKeepRatio, false, 128, 64},
		{"keep_ratio portrait", 100, 200, 64, ResizeKeepRatio, false, 64, 128},
		{"keep_ratio rounds half to even", 3, 2, 3, ResizeKeepRatio, false, 4, 3}, // 4.5 -> 4
		{"center_crop landscape", 200, 100, 64, ResizeCenterCrop, false, 64, 64},
		{"center_crop portrait", 100, 200, 64, ResizeCenterCrop, false, 64, 64},
		{"border landscape", 200, 100, 64, ResizeBorder, false, 64, 64},
		{"border portrait", 100, 200, 64, ResizeBorder, false, 64, 64},
		{"keep_ratio upscales", 50, 30, 64, ResizeKeepRatio, false, 107, 64},
		{"keep_ratio only if bigger", 50, 30, 64, ResizeKeepRatio, true, 50, 30},
		{"center_crop only if bigger skips crop", 50, 30, 64, ResizeCenterCrop, true, 50, 30},
		{"border only if bigger", 60, 30, 64, ResizeBorder, true, 60, 30},
		{"border only if bigger, big", 200, 100, 64, ResizeBorder, true, 64, 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Resizer{Size: tc.size, Mode: tc.mode, OnlyIfBigger: tc.onlyIfBigger}.Resize(halves(tc.w, tc.h))
			if err != nil {
				t.Fatal(err)
			}
			if b := out.Bounds(); b.Dx() != tc.wantW || b.Dy() != tc.wantH || b.Min != (image.Point{}) {
				t.Fatalf("bounds %v, want %dx%d at origin", b, tc.wantW, tc.wantH)
			}
			if m, ok := out.(*image.RGBA); !ok || !m.Opaque() {
				t.Errorf("result %T is not an opaque *image.RGBA", out)
			}
		})
	}
}

func TestResizeContent(t *testing.T) {
	src := halves(200, 100)
	// center_crop: 128x64, crop x 32..96 keeps the red|blue edge in the middle.
	out, err := Resizer{Size: 64, Mode: ResizeCenterCrop}.Resize(src)
	if err != nil {
		t.Fatal(err)
	}
	checkPixels(t, out, []px{{2, 32, 255, 0, 0}, {29, 10, 255, 0, 0}, {34, 10, 0, 0, 255}, {61, 60, 0, 0, 255}}, 2)
	// border: 64x32 image centred vertically (rows 16..48), padded with Border.
	for _, bg := range [][3]uint8{{0, 0, 0}, {255, 255, 255}} {
		out, err = Resizer{Size: 64, Mode: ResizeBorder, Border: bg}.Resize(src)
		if err != nil {
			t.Fatal(err)
		}
		checkPixels(t, out, []px{
			{0, 0, bg[0], bg[1], bg[2]}, {63, 15, bg[0], bg[1], bg[2]}, {5, 48, bg[0], bg[1], bg[2]}, {63, 63, bg[0], bg[1], bg[2]},
			{5, 16, 255, 0, 0}, {5, 47, 255, 0, 0}, {60, 30, 0, 0, 255},
		}, 2)
	}
}

func TestResizeErrors(t *testing.T) {
	if _, err := (Resizer{Size: 0, Mode: ResizeBorder}).Resize(halves(4, 4)); err == nil {
		t.Error("size 0 accepted")
	}
	if _, err := (Resizer{Size: 4, Mode: 9}).Resize(halves(4, 4)); err == nil {
		t.Error("mode 9 accepted")
	}
	if _, err := (Resizer{Size: 4, Mode: ResizeBorder}).Resize(image.NewRGBA(image.Rectangle{})); err == nil {
		t.Error("empty image accepted")
	}
}

func TestParseResizeMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ResizeMode
		ok   bool
	}{
		{"no", ResizeNo, true}, {"keep_ratio", ResizeKeepRatio, true}, {"center_crop", ResizeCenterCrop, true},
		{"border", ResizeBorder, true}, {"", 0, false}, {"Center_Crop", 0, false}, {"keep_ratio_largest", 0, false},
	} {
		got, err := ParseResizeMode(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseResizeMode(%q) = %v, %v", tc.in, got, err)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
	var cfg struct{ Mode ResizeMode }
	if err := json.Unmarshal([]byte(`{"Mode":"border"}`), &cfg); err != nil || cfg.Mode != ResizeBorder {
		t.Errorf("json: %v %v", cfg.Mode, err)
	}
	if err := json.Unmarshal([]byte(`{"Mode":"squash"}`), &cfg); err == nil {
		t.Error("json accepted an unknown mode")
	}
	if b, err := json.Marshal(cfg); err != nil || string(b) != `{"Mode":"border"}` {
		t.Errorf("marshal: %s %v", b, err)
	}
}

func TestEncodeJPEG(t *testing.T) {
	src := gradient(40, 30)
	def, err := EncodeJPEG(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	q95, _ := EncodeJPEG(src, 95)
	q30, _ := EncodeJPEG(src, 30)
	if string(def) != string(q95) || len(q30) >= len(q95) {
		t.Errorf("quality 0 should mean 95 (%d vs %d bytes), 30 should be smaller (%d)", len(def), len(q95), len(q30))
	}
	img, info, err := Decode(def, Limits{})
	if err != nil || info.Width != 40 || info.Height != 30 || info.Format != "jpeg" {
		t.Fatalf("round trip: %+v %v", info, err)
	}
	checkPixels(t, img, []px{{20, 15, src.Pix[src.PixOffset(20, 15)], src.Pix[src.PixOffset(20, 15)+1], src.Pix[src.PixOffset(20, 15)+2]}}, 8)
	for _, q := range []int{-1, 101} {
		if _, err := EncodeJPEG(src, q); err == nil {
			t.Errorf("quality %d accepted", q)
		}
	}
	// Translucent input is composited over white, not the encoder's black.
	transparent := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	b, err := EncodeJPEG(transparent, 90)
	if err != nil {
		t.Fatal(err)
	}
	img, _, _ = Decode(b, Limits{})
	checkPixels(t, img, []px{{4, 4, 255, 255, 255}}, 2)
}
