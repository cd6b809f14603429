package plots

import (
	"image"
	"image/color"
	"math"
	"path/filepath"
	"testing"
)

// TestOverlay: the left panel is the image, the right one is coloured by the map (yellow at
// the top, dark at the bottom) with the best cell outlined in white.
func TestOverlay(t *testing.T) {
	base := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for i := range base.Pix {
		base.Pix[i] = 128
	}
	// A 2×2 map: best cell top right, worst bottom left.
	pic, err := Overlay(base, []float64{0.5, 1, 0, 0.5}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if b := pic.Bounds(); b.Dx() != 2*40+overlayGap || b.Dy() != 40 {
		t.Fatalf("overlay %v", b)
	}
	if c := pic.RGBAAt(5, 5); c != (color.RGBA{128, 128, 128, 255}) {
		t.Errorf("left panel %v, want the image", c)
	}
	right := func(x, y int) color.RGBA { return pic.RGBAAt(40+overlayGap+x, y) }
	if c := right(39, 0); c != (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("best cell's corner %v, want the white outline", c)
	}
	top, bottom := right(30, 10), right(10, 30)
	if !(top.R > bottom.R && top.G > bottom.G) {
		t.Errorf("best cell %v is not brighter than the worst %v", top, bottom)
	}
	for _, bad := range []struct {
		img  image.Image
		v    []float64
		grid int
	}{
		{image.NewRGBA(image.Rect(0, 0, 40, 30)), []float64{1}, 1},
		{base, []float64{1, 2, 3}, 2},
		{base, []float64{math.NaN()}, 1},
		{base, nil, 0},
	} {
		if _, err := Overlay(bad.img, bad.v, bad.grid); err == nil {
			t.Errorf("Overlay(%v, %v, %d) passed", bad.img.Bounds(), bad.v, bad.grid)
		}
	}
}

func TestScatter(t *testing.T) {
	path := filepath.Join(outDir(t), "scatter.png")
	groups := []ScatterGroup{{Name: "images", X: []float64{0, 1, 2}, Y: []float64{2, 1, math.NaN()}},
		{Name: "captions", X: []float64{1}, Y: []float64{1}, Glyph: GlyphTriangle}}
	if err := Scatter(path, "map", "x", "y", groups); err != nil {
		t.Fatal(err)
	}
	if b := decode(t, path).Bounds(); b.Dx() != ScatterWidth || b.Dy() != ScatterHeight {
		t.Errorf("scatter %v", b)
	}
	if err := Scatter(path, "map", "x", "y", []ScatterGroup{{Name: "bad", X: []float64{1}}}); err == nil {
		t.Error("a group of 1 x and 0 y drawn")
	}
	if got := Colors(20); len(got) != 20 || got[len(Palette)] == got[len(Palette)+1] {
		t.Errorf("Colors(20) = %v", got)
	}
}
