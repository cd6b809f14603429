// Package plots draws the PNG figures of a run report: training curves and confusion matrices.
// It knows nothing about CLIP; it takes numbers and names and writes image files.
package plots

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/clipgo/clipgo/internal/atomicfile"
)

// Size limits: a figure is drawn in memory before it is written, so the inputs are bounded.
const (
	// MaxPoints is the most points one Curves figure takes over all its series.
	MaxPoints = 1 << 20
	// MaxSeries is the most series one Curves figure takes.
	MaxSeries = 16
	// MaxClasses is the most classes a confusion matrix takes.
	MaxClasses = 256
)

// Pixel sizes of the figures (96 dots per inch).
const (
	dpi = 96
	// CurvesWidth and CurvesHeight are the size in pixels of a Curves figure.
	CurvesWidth, CurvesHeight = 760, 380
)

// Series is one line of a Curves figure: the points (X[i], Y[i]). Points with a non-finite
// coordinate (a skipped step's NaN loss) are left out, and so are points at or below zero on
// a log scale.
type Series struct {
	Name string
	X, Y []float64
}

// Curves writes a PNG line plot of the series to path, with a legend when there is more than
// one series. Series with few points get a marker on each point, so that a validation curve
// of six evaluations reads as six measurements, not as a smooth line.
func Curves(path string, title, xlabel, ylabel string, series ...Series) error {
	return curves(path, title, xlabel, ylabel, false, series)
}

// LogCurves is Curves with a logarithmic Y axis, for losses that fall over orders of magnitude.
func LogCurves(path string, title, xlabel, ylabel string, series ...Series) error {
	return curves(path, title, xlabel, ylabel, true, series)
}

func curves(path, title, xlabel, ylabel string, logY bool, series []Series) error {
	if len(series) == 0 {
		return fmt.Errorf("plot %s: no series", path)
	}
	if len(series) > MaxSeries {
		return fmt.Errorf("plot %s: %d series, limit %d", path, len(series), MaxSeries)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(12)
	p.X.Tick.Marker = plainTicks{}
	p.Y.Tick.Marker = plainTicks{}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	total, drawn := 0, 0
	var all plotter.XYs
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot %s: series %q has %d x and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		total += len(s.X)
		if total > MaxPoints {
			return fmt.Errorf("plot %s: more than %d points", path, MaxPoints)
		}
		xys := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			x, y := s.X[j], s.Y[j]
			if !finite(x) || !finite(y) || (logY && y <= 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: x, Y: y})
		}
		if len(xys) == 0 {
			continue
		}
		drawn++
		all = append(all, xys...)
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("plot %s: series %q: %w", path, s.Name, err)
		}
		c := seriesColor(i)
		line.Color = c
		line.Width = vg.Points(1.5)
		points.Color = c
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(2.5)
		if len(xys) <= 40 {
			p.Add(line, points)
			if len(series) > 1 {
				p.Legend.Add(s.Name, line, points)
			}
		} else {
			p.Add(line)
			if len(series) > 1 {
				p.Legend.Add(s.Name, line)
			}
		}
	}
	if drawn == 0 {
		return fmt.Errorf("plot %s: no finite points to draw", path)
	}
	p.Legend.Top = !endsHigh(p, all)
	c := newCanvas(CurvesWidth, CurvesHeight)
	p.Draw(draw.New(c))
	return writePNG(path, c)
}

// endsHigh says whether the curves end in the upper half of the plot, where the legend
// (drawn in the right-hand corner) would cover them; a falling loss ends low, a rising
// accuracy high.
func endsHigh(p *plot.Plot, xys plotter.XYs) bool {
	xmin, xmax, ymin, ymax := plotter.XYRange(xys)
	if xmax == xmin || ymax == ymin {
		return false
	}
	norm := func(y float64) float64 { return p.Y.Scale.Normalize(ymin, ymax, y) }
	high, n := 0, 0
	for _, xy := range xys {
		if xy.X >= xmin+0.75*(xmax-xmin) { // the right quarter, under the legend
			n++
			if norm(xy.Y) > 0.5 {
				high++
			}
		}
	}
	return 2*high > n
}

// seriesColor gives well separated colours (a colour-blind safe set after Okabe and Ito).
func seriesColor(i int) color.Color {
	set := []color.RGBA{
		{0, 114, 178, 255},   // blue
		{213, 94, 0, 255},    // vermillion
		{0, 158, 115, 255},   // bluish green
		{204, 121, 167, 255}, // reddish purple
		{230, 159, 0, 255},   // orange
		{86, 180, 233, 255},  // sky blue
		{0, 0, 0, 255},       // black
		{240, 228, 66, 255},  // yellow
	}
	return set[i%len(set)]
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// newCanvas returns a white image canvas of w×h pixels.
func newCanvas(w, h int) *vgimg.Canvas {
	return vgimg.NewWith(
		vgimg.UseWH(vg.Length(w)*vg.Inch/dpi, vg.Length(h)*vg.Inch/dpi),
		vgimg.UseDPI(dpi),
		vgimg.UseBackgroundColor(color.White),
	)
}

// writePNG encodes the canvas into path through a temporary file, so that a reader never sees
// half a picture.
func writePNG(path string, c *vgimg.Canvas) error {
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Abort()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// plainTicks are gonum's default ticks labelled in the shortest form ("250", not "250.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'g', 6, 64)
		}
	}
	return ticks
}

// logTicks mark every multiple 1..9 of each power of ten in range and label 1, 2 and 5 of
// them (all of them when the range is under a decade and a half), so that a loss falling from
// 5 to 0.3 gets readable marks rather than a single "1".
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi >= lo) {
		return nil
	}
	labelAll := hi/lo < 30
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)) && len(ticks) < 200; e++ {
		base := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if labelAll || m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', 6, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
