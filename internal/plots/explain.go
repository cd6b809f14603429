package plots

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/clipgo/clipgo/internal/atomicfile"
)

// Limits of the explain pictures.
const (
	// MaxOverlaySide is the largest side of an Overlay's image.
	MaxOverlaySide = 2048
	// MaxGrid is the largest side of an Overlay's map.
	MaxGrid = 256
	// overlayGap is the white gap between an Overlay's two panels, in pixels.
	overlayGap = 8
	// overlayAlpha is how much of the map's colour covers the image.
	overlayAlpha = 0.6
)

// Overlay returns the picture of a similarity map over an image: the square image base on the
// left and, on the right, the same image under the map's colours (values scaled from their
// minimum, dark blue, to their maximum, yellow, through the viridis colour map), bilinearly
// upsampled from the grid×grid values (row-major, top row first) to the image's pixels, with
// the cell of the largest value outlined in white. A constant map is drawn at its low end.
func Overlay(base image.Image, values []float64, grid int) (*image.RGBA, error) {
	b := base.Bounds()
	side := b.Dx()
	switch {
	case side < 1 || side != b.Dy() || side > MaxOverlaySide:
		return nil, fmt.Errorf("overlay: image %dx%d, want a square of at most %d pixels", b.Dx(), b.Dy(), MaxOverlaySide)
	case grid < 1 || grid > MaxGrid || len(values) != grid*grid:
		return nil, fmt.Errorf("overlay: %d values for a %d×%d grid (at most %d)", len(values), grid, grid, MaxGrid)
	}
	lo, hi, peak := math.Inf(1), math.Inf(-1), 0
	for i, v := range values {
		if !finite(v) {
			return nil, fmt.Errorf("overlay: value %d is %v", i, v)
		}
		lo = min(lo, v)
		if v > hi {
			hi, peak = v, i
		}
	}
	span := hi - lo
	if span == 0 {
		span = 1
	}
	at := func(gx, gy int) float64 {
		gx, gy = min(max(gx, 0), grid-1), min(max(gy, 0), grid-1)
		return (values[gy*grid+gx] - lo) / span
	}
	out := image.NewRGBA(image.Rect(0, 0, 2*side+overlayGap, side))
	for i := range out.Pix {
		out.Pix[i] = 255
	}
	cell := float64(side) / float64(grid)
	for y := range side {
		for x := range side {
			r, g, bl, _ := base.At(b.Min.X+x, b.Min.Y+y).RGBA()
			px := [3]float64{float64(r >> 8), float64(g >> 8), float64(bl >> 8)}
			out.SetRGBA(x, y, color.RGBA{uint8(px[0]), uint8(px[1]), uint8(px[2]), 255})
			// Bilinear between the centres of the four nearest cells.
			fx, fy := (float64(x)+0.5)/cell-0.5, (float64(y)+0.5)/cell-0.5
			x0, y0 := int(math.Floor(fx)), int(math.Floor(fy))
			tx, ty := fx-float64(x0), fy-float64(y0)
			v := (1-ty)*((1-tx)*at(x0, y0)+tx*at(x0+1, y0)) + ty*((1-tx)*at(x0, y0+1)+tx*at(x0+1, y0+1))
			c := viridis(v)
			var mixed [3]uint8
			for k := range 3 {
				mixed[k] = uint8(math.Round((1-overlayAlpha)*px[k] + overlayAlpha*float64(c[k])))
			}
			out.SetRGBA(side+overlayGap+x, y, color.RGBA{mixed[0], mixed[1], mixed[2], 255})
		}
	}
	// The peak cell's outline, two pixels wide where the cell allows.
	x0, y0 := int(float64(peak%grid)*cell), int(float64(peak/grid)*cell)
	x1, y1 := int(float64(peak%grid+1)*cell)-1, int(float64(peak/grid+1)*cell)-1
	w := 1
	if cell >= 8 {
		w = 2
	}
	white := color.RGBA{255, 255, 255, 255}
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			if x-x0 < w || x1-x < w || y-y0 < w || y1-y < w {
				out.SetRGBA(side+overlayGap+x, y, white)
			}
		}
	}
	return out, nil
}

// viridisStops samples matplotlib's viridis colour map at 0, 0.25, 0.5, 0.75 and 1: dark to
// light and readable by people with any common colour-vision deficiency.
var viridisStops = [5][3]float64{{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}

// viridis returns the colour of v in [0,1], linearly between the stops.
func viridis(v float64) [3]uint8 {
	v = min(max(v, 0), 1) * float64(len(viridisStops)-1)
	i := min(int(v), len(viridisStops)-2)
	t := v - float64(i)
	var c [3]uint8
	for k := range 3 {
		c[k] = uint8(math.Round((1-t)*viridisStops[i][k] + t*viridisStops[i+1][k]))
	}
	return c
}

// WriteImage writes img to path as a PNG, through a temporary file.
func WriteImage(path string, img image.Image) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("picture %s: %w", path, err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Abort()
		return fmt.Errorf("picture %s: %w", path, err)
	}
	return f.Commit()
}

// Glyph is the marker of a Scatter group.
type Glyph int

// The glyphs.
const (
	GlyphCircle Glyph = iota
	GlyphTriangle
)

// ScatterGroup is one group of points of a Scatter figure, in one colour and glyph.
type ScatterGroup struct {
	Name  string
	X, Y  []float64
	Color color.Color // nil: the figure's i-th colour of Palette
	Glyph Glyph
}

// ScatterWidth and ScatterHeight are the size in pixels of a Scatter figure.
const ScatterWidth, ScatterHeight = 840, 600

// Scatter writes a PNG scatter plot of the groups to path, with a legend right of the data
// area. Points with a non-finite coordinate are left out.
func Scatter(path, title, xlabel, ylabel string, groups []ScatterGroup) error {
	p, legend, err := scatterPlot(title, xlabel, ylabel, groups)
	return writeWithLegend(path, p, legend, err, ScatterWidth, ScatterHeight)
}

func scatterPlot(title, xlabel, ylabel string, groups []ScatterGroup) (*plot.Plot, *plot.Legend, error) {
	if len(groups) == 0 {
		return nil, nil, errors.New("no groups")
	}
	if len(groups) > 2*MaxSeries {
		return nil, nil, fmt.Errorf("%d groups, limit %d", len(groups), 2*MaxSeries)
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Marker, p.Y.Tick.Marker = niceTicks{}, niceTicks{}
	p.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.TextStyle.Font.Size = vg.Points(11)
	legend.Top, legend.Left = true, true
	total, drawn := 0, 0
	for i, g := range groups {
		if len(g.X) != len(g.Y) {
			return nil, nil, fmt.Errorf("group %q has %d x and %d y values", g.Name, len(g.X), len(g.Y))
		}
		if total += len(g.X); total > MaxPoints {
			return nil, nil, fmt.Errorf("more than %d points", MaxPoints)
		}
		xys := make(plotter.XYs, 0, len(g.X))
		for j := range g.X {
			if finite(g.X[j]) && finite(g.Y[j]) {
				xys = append(xys, plotter.XY{X: g.X[j], Y: g.Y[j]})
			}
		}
		if len(xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, nil, fmt.Errorf("group %q: %w", g.Name, err)
		}
		c := g.Color
		if c == nil {
			c = Palette[i%len(Palette)]
		}
		s.Color = c
		s.Radius = vg.Points(3)
		s.Shape = draw.CircleGlyph{}
		if g.Glyph == GlyphTriangle {
			s.Shape = draw.TriangleGlyph{}
			s.Radius = vg.Points(3.5)
		}
		p.Add(s)
		legend.Add(g.Name, s)
		drawn++
	}
	if drawn == 0 {
		return nil, nil, errors.New("no finite points to draw")
	}
	return p, &legend, nil
}

// Colors returns n distinct colours: Palette's, then hues evenly spaced round the colour
// wheel at a fixed saturation and lightness, for groups past the palette's size.
func Colors(n int) []color.Color {
	out := make([]color.Color, 0, max(n, 0))
	for i := range max(n, 0) {
		if i < len(Palette) {
			out = append(out, Palette[i])
			continue
		}
		h := float64(i-len(Palette)) / float64(n-len(Palette)) * 6
		x := 1 - math.Abs(math.Mod(h, 2)-1)
		var r, g, b float64
		switch int(h) {
		case 0:
			r, g = 1, x
		case 1:
			r, g = x, 1
		case 2:
			g, b = 1, x
		case 3:
			g, b = x, 1
		case 4:
			r, b = x, 1
		default:
			r, b = 1, x
		}
		const lo, hi = 40, 200 // keep every hue dark enough to read on white
		out = append(out, color.RGBA{uint8(lo + r*(hi-lo)), uint8(lo + g*(hi-lo)), uint8(lo + b*(hi-lo)), 255})
	}
	return out
}
