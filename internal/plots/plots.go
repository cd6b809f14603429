// Package plots draws the PNG figures of a run report: training curves and confusion matrices.
// It knows nothing about CLIP; it takes numbers and names and writes image files.
package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
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
	CurvesWidth, CurvesHeight = 840, 380
	// margin is the white border kept round every figure, so that no title, tick label or
	// point at the edge of the data is cut by the image's edge.
	margin = 10
)

// Series is one line of a Curves figure: the points (X[i], Y[i]). Points with a non-finite
// coordinate (a skipped step's NaN loss) are left out, and so are points at or below zero on
// a log scale. Color is the line's colour; nil takes the figure's i-th colour of Palette, so
// a caller that shows one metric in several figures gives it a colour of its own to keep it
// recognisable from one figure to the next.
type Series struct {
	Name  string
	X, Y  []float64
	Color color.Color
}

// Palette is the colour set of the curves: well separated and colour-blind safe (after Okabe
// and Ito), without their yellow, which is too faint on white.
var Palette = []color.RGBA{
	{0, 114, 178, 255},   // blue
	{213, 94, 0, 255},    // vermillion
	{0, 158, 115, 255},   // bluish green
	{204, 121, 167, 255}, // reddish purple
	{230, 159, 0, 255},   // orange
	{86, 180, 233, 255},  // sky blue
	{0, 0, 0, 255},       // black
}

// Curves writes a PNG line plot of the series to path, with a legend right of the data area
// (never over the curves) when there is more than one series. Series with few points get a
// marker on each point, so that a validation curve of six evaluations reads as six
// measurements, not as a smooth line.
func Curves(path string, title, xlabel, ylabel string, series ...Series) error {
	return curves(path, title, xlabel, ylabel, false, series)
}

// LogCurves is Curves with a logarithmic Y axis, for losses that fall over orders of
// magnitude; its ticks are labelled so that the values can be read off (see logTicks).
func LogCurves(path string, title, xlabel, ylabel string, series ...Series) error {
	return curves(path, title, xlabel, ylabel, true, series)
}

func curves(path, title, xlabel, ylabel string, logY bool, series []Series) error {
	p, legend, err := curvesPlot(title, xlabel, ylabel, logY, series)
	return writeWithLegend(path, p, legend, err, CurvesWidth, CurvesHeight)
}

// writeWithLegend draws p, and its legend (if any) in a column right of the data area, on a
// width × height canvas and writes it to path as PNG; err is the error of building p.
func writeWithLegend(path string, p *plot.Plot, legend *plot.Legend, err error, width, height int) error {
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	c := newCanvas(width, height)
	plotArea, legendArea := curvesLayout(p, legend, draw.New(c))
	p.Draw(plotArea)
	if legend != nil {
		legend.Draw(legendArea)
	}
	return writePNG(path, c)
}

// curvesPlot builds the plot of a Curves figure and, for more than one series, its legend,
// which curvesLayout places beside the plot rather than in it.
func curvesPlot(title, xlabel, ylabel string, logY bool, series []Series) (*plot.Plot, *plot.Legend, error) {
	if len(series) == 0 {
		return nil, nil, errors.New("no series")
	}
	if len(series) > MaxSeries {
		return nil, nil, fmt.Errorf("%d series, limit %d", len(series), MaxSeries)
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.X.Tick.Marker = niceTicks{}
	p.Y.Tick.Marker = niceTicks{}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	legend := plot.NewLegend()
	legend.TextStyle.Font.Size = vg.Points(12)
	legend.Top, legend.Left = true, true
	legend.Padding = vg.Points(3)
	total, drawn := 0, 0
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, nil, fmt.Errorf("series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		total += len(s.X)
		if total > MaxPoints {
			return nil, nil, fmt.Errorf("more than %d points", MaxPoints)
		}
		xys := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			x, y := s.X[j], s.Y[j]
			if !finite(x) || !finite(y) || (logY && y <= 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: x, Y: y})
			ymin, ymax = min(ymin, y), max(ymax, y)
		}
		if len(xys) == 0 {
			continue
		}
		drawn++
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, nil, fmt.Errorf("series %q: %w", s.Name, err)
		}
		c := s.Color
		if c == nil {
			c = Palette[i%len(Palette)]
		}
		line.Color = c
		line.Width = vg.Points(1.5)
		points.Color = c
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(2.5)
		if len(xys) <= 40 {
			p.Add(line, points)
			legend.Add(s.Name, line, points)
		} else {
			p.Add(line)
			legend.Add(s.Name, line)
		}
	}
	if drawn == 0 {
		return nil, nil, errors.New("no finite points to draw")
	}
	if ymin == ymax { // a flat line: give the axis a range to put ticks in
		if logY {
			p.Y.Min, p.Y.Max = ymin/2, ymax*2
		} else {
			d := max(math.Abs(ymin)/10, 1e-9)
			p.Y.Min, p.Y.Max = ymin-d, ymax+d
		}
	}
	if len(series) == 1 {
		return p, nil, nil
	}
	return p, &legend, nil
}

// curvesLayout splits canvas c (less a margin) into the area of the plot and, right of it,
// the legend's column, as wide as its longest entry. The legend's entries start level with
// the top of the data area.
func curvesLayout(p *plot.Plot, legend *plot.Legend, c draw.Canvas) (plotArea, legendArea draw.Canvas) {
	pad := vg.Length(margin) * vg.Inch / dpi
	c = draw.Crop(c, pad, -pad, pad, -pad)
	if legend == nil {
		return c, draw.Canvas{}
	}
	w := legend.Rectangle(c).Size().X
	gap := vg.Points(10)
	plotArea = draw.Crop(c, 0, -(w + gap), 0, 0)
	data := p.DataCanvas(plotArea)
	legendArea = c
	legendArea.Min = vg.Point{X: c.Max.X - w, Y: data.Min.Y}
	legendArea.Max.Y = data.Max.Y
	return plotArea, legendArea
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

// niceTicks label a linear axis every 1, 2, 2.5 or 5 times a power of ten, the step that gives
// at most seven labels, with unlabelled ticks between them, in the shortest form
// ("250", not "250.00"). gonum's DefaultTicks picks steps such as 120 (labels at 40, 160, 280)
// that are hard to read values off.
type niceTicks struct{}

func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !finite(lo) || !finite(hi) || !(hi > lo) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / 7
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	minor := step / 5
	if step == 2*mag {
		minor = step / 4
	}
	var ticks []plot.Tick
	for k := math.Ceil(lo / minor); k*minor <= hi*(1+1e-12)+1e-300 && len(ticks) < 200; k++ {
		v := k * minor
		t := plot.Tick{Value: v}
		if q := v / step; math.Abs(q-math.Round(q)) < 1e-6 {
			v = math.Round(q) * step
			t.Value = v
			if math.Abs(v) < step*1e-9 {
				v = 0
			}
			t.Label = strconv.FormatFloat(v, 'g', 6, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// logTicks mark the multiples 1..9 of each power of ten in range and label the densest of a
// few sets of them whose labels neither crowd (none closer than 6% of the axis, at most
// eight) nor run out: 1, 1.5, 2, 2.5, 3, 4, 5 ... over a narrow range, 1..9 over about a
// decade, 1, 2, 3, 5, 7 or 1, 2, 5 over a few, the powers of ten alone over many (one in two
// or more of them past eight decades). A range too narrow for three of them (within a factor
// of about two, near linear) gets linear labels (niceTicks). A loss falling from 4.2 to 0.78
// gets 0.8, 0.9, 1, 1.5, 2, 2.5, 3 and 4, not a lone "1".
type logTicks struct{}

// logLabelSets are the mantissas logTicks may label, densest first.
var logLabelSets = [][]float64{
	{1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9},
	{1, 2, 3, 4, 5, 6, 7, 8, 9},
	{1, 2, 3, 5, 7},
	{1, 2, 5},
	{1},
}

const maxLogLabels = 8

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi >= lo) || math.IsInf(hi, 0) {
		return nil
	}
	e0, e1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	in := func(v float64) bool { return v >= lo*(1-1e-9) && v <= hi*(1+1e-9) }
	span := math.Log10(hi / lo)
	values := func(set []float64) []float64 {
		var vs []float64
		for e := e0; e <= e1; e++ {
			for _, m := range set {
				if v := m * math.Pow(10, e); in(v) {
					vs = append(vs, v)
				}
			}
		}
		return vs
	}
	var labels []float64
	for _, set := range logLabelSets {
		vs := values(set)
		crowded := len(vs) > maxLogLabels
		for i := 1; i < len(vs) && !crowded; i++ {
			crowded = math.Log10(vs[i]/vs[i-1]) < 0.06*span
		}
		if !crowded {
			labels = vs
			break
		}
	}
	switch {
	case labels == nil: // even the powers of ten crowd: one in every so many
		all := values([]float64{1})
		every := (len(all) + maxLogLabels - 1) / maxLogLabels
		for _, v := range all {
			if e := int(math.Round(math.Log10(v))); (e%every+every)%every == 0 {
				labels = append(labels, v)
			}
		}
	case len(labels) < 3:
		return niceTicks{}.Ticks(lo, hi)
	}
	marks := values([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9})
	if len(marks) > 60 {
		marks = values([]float64{1})
	}
	var ticks []plot.Tick
	for _, v := range mergeSorted(marks, labels) {
		t := plot.Tick{Value: v}
		if slices.Contains(labels, v) {
			t.Label = strconv.FormatFloat(v, 'g', 6, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// mergeSorted returns the sorted union of two sorted lists.
func mergeSorted(a, b []float64) []float64 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
