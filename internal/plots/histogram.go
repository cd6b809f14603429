package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// MaxBins is the most bins a Histogram takes.
const MaxBins = 1000

// Mark is a vertical line drawn across a Histogram at X, named in the legend (a threshold).
type Mark struct {
	Name string
	X    float64
}

// Histogram writes a PNG histogram of the series' values to path: every series is counted
// into the same bins equal-width bins spanning all finite values (non-finite ones are left
// out), drawn as outlined, lightly filled bars over one another, with each mark as a vertical
// dashed line. A legend lists the series (when more than one) and the marks.
func Histogram(path, title, xlabel string, bins int, series []Series, marks ...Mark) error {
	p, legend, err := histogramPlot(title, xlabel, bins, series, marks)
	return writeWithLegend(path, p, legend, err, CurvesWidth, CurvesHeight)
}

// histogramPlot builds a Histogram figure; only the series' Y values are counted.
func histogramPlot(title, xlabel string, bins int, series []Series, marks []Mark) (*plot.Plot, *plot.Legend, error) {
	switch {
	case len(series) == 0:
		return nil, nil, errors.New("no series")
	case len(series) > MaxSeries:
		return nil, nil, fmt.Errorf("%d series, limit %d", len(series), MaxSeries)
	case bins < 1 || bins > MaxBins:
		return nil, nil, fmt.Errorf("%d bins, want 1 to %d", bins, MaxBins)
	case len(marks) > MaxSeries:
		return nil, nil, fmt.Errorf("%d marks, limit %d", len(marks), MaxSeries)
	}
	lo, hi, total := math.Inf(1), math.Inf(-1), 0
	for _, s := range series {
		total += len(s.Y)
		if total > MaxPoints {
			return nil, nil, fmt.Errorf("more than %d values", MaxPoints)
		}
		for _, v := range s.Y {
			if finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if lo > hi {
		return nil, nil, errors.New("no finite values to count")
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	width := (hi - lo) / float64(bins)
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "count"
	p.Add(plotter.NewGrid())
	p.Title.TextStyle.Font.Size = vg.Points(15)
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.X.Tick.Marker = niceTicks{}
	p.Y.Tick.Marker = niceTicks{}
	legend := plot.NewLegend()
	legend.TextStyle.Font.Size = vg.Points(12)
	legend.Top, legend.Left = true, true
	legend.Padding = vg.Points(3)
	ymax, entries := 0.0, 0
	for i, s := range series {
		h := &plotter.Histogram{Bins: make([]plotter.HistogramBin, bins), Width: width}
		for b := range h.Bins {
			h.Bins[b].Min, h.Bins[b].Max = lo+float64(b)*width, lo+float64(b+1)*width
		}
		for _, v := range s.Y {
			if !finite(v) {
				continue
			}
			b := min(int((v-lo)/width), bins-1)
			h.Bins[b].Weight++
		}
		for _, b := range h.Bins {
			ymax = max(ymax, b.Weight)
		}
		c := s.Color
		if c == nil {
			c = Palette[i%len(Palette)]
		}
		r, g, bl, _ := c.RGBA()
		h.FillColor = color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 80}
		h.LineStyle = draw.LineStyle{Color: c, Width: vg.Points(1)}
		p.Add(h)
		if len(series) > 1 {
			legend.Add(s.Name, h)
			entries++
		}
	}
	for i, m := range marks {
		if !finite(m.X) {
			return nil, nil, fmt.Errorf("mark %q at %v", m.Name, m.X)
		}
		l, err := plotter.NewLine(plotter.XYs{{X: m.X, Y: 0}, {X: m.X, Y: math.Max(ymax, 1) * 1.05}})
		if err != nil {
			return nil, nil, err
		}
		l.Color = color.Black
		if i > 0 {
			l.Color = Palette[(len(series)+i)%len(Palette)]
		}
		l.Width = vg.Points(1.5)
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(l)
		legend.Add(m.Name, l)
		entries++
	}
	if entries == 0 {
		return p, nil, nil
	}
	return p, &legend, nil
}
