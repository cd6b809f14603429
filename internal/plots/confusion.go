package plots

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Layout of a confusion figure, in pixels.
const (
	confusionMargin = 300 // labels, title and colour bar around the cells
	colorBarWidth   = 110
	maxLabelRunes   = 28 // longer class names are cut with an ellipsis
	annotateUpTo    = 16 // counts are written in the cells up to this many classes
)

// ConfusionSize returns the size in pixels of the figure Confusion draws for n classes: cells
// of 14 to 40 pixels, large enough to read 48 class names.
func ConfusionSize(n int) (w, h int) {
	cell := min(max(1000/max(n, 1), 14), 40)
	side := confusionMargin + n*cell
	return side + colorBarWidth, side
}

// Confusion writes a confusion matrix heat map to path: counts[i][j] is the number of images
// of true class i predicted as class j. Rows are true classes (top to bottom), columns
// predicted classes (left to right). The colour of a cell is its row-normalised share, so the
// diagonal reads as each class's recall whatever the class sizes; a class with no images is
// drawn grey. The title gives the overall accuracy of the counts.
func Confusion(path string, counts [][]int, classes []string) error {
	n := len(classes)
	if n == 0 {
		return fmt.Errorf("confusion %s: no classes", path)
	}
	if n > MaxClasses {
		return fmt.Errorf("confusion %s: %d classes, limit %d", path, n, MaxClasses)
	}
	if len(counts) != n {
		return fmt.Errorf("confusion %s: %d rows for %d classes", path, len(counts), n)
	}
	share := make([][]float64, n) // [true][predicted], rows sum to 1
	var correct, total int
	for i, row := range counts {
		if len(row) != n {
			return fmt.Errorf("confusion %s: row %d (%s) has %d columns for %d classes", path, i, classes[i], len(row), n)
		}
		sum := 0
		for j, c := range row {
			if c < 0 {
				return fmt.Errorf("confusion %s: row %d column %d: negative count %d", path, i, j, c)
			}
			if sum > math.MaxInt-c {
				return fmt.Errorf("confusion %s: row %d: counts overflow", path, i)
			}
			sum += c
		}
		share[i] = make([]float64, n)
		for j, c := range row {
			if sum == 0 {
				share[i][j] = math.NaN()
			} else {
				share[i][j] = float64(c) / float64(sum)
			}
		}
		correct += row[i]
		total += sum
	}

	// Luminance maps run dark to light; reversed, 0 (nothing predicted here) is near white and
	// 1 (the whole row) dark blue.
	dark, err := moreland.NewLuminance([]color.Color{
		color.RGBA{8, 48, 107, 255},
		color.RGBA{247, 251, 255, 255},
	})
	if err != nil {
		return fmt.Errorf("confusion %s: %w", path, err)
	}
	cmap := palette.Reverse(dark)
	cmap.SetMin(0)
	cmap.SetMax(1)

	p := plot.New()
	p.Title.Text = "Confusion matrix: rows true class, columns predicted\ncolour = share of the row (row-normalised recall)"
	if total > 0 {
		p.Title.Text += fmt.Sprintf("; accuracy %.3f of %d", float64(correct)/float64(total), total)
	}
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	heat := plotter.NewHeatMap(grid(share), cmap.Palette(256))
	heat.Min, heat.Max = 0, 1
	heat.NaN = color.Gray{Y: 200}
	p.Add(heat)
	if n <= annotateUpTo {
		l, err := cellCounts(counts, share)
		if err != nil {
			return fmt.Errorf("confusion %s: %w", path, err)
		}
		p.Add(l)
	}

	xt := make([]plot.Tick, n)
	yt := make([]plot.Tick, n)
	for i, name := range classes {
		label := shorten(name)
		xt[i] = plot.Tick{Value: float64(i), Label: label}
		yt[i] = plot.Tick{Value: float64(n - 1 - i), Label: label}
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.X.Label.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	if n > 24 {
		p.X.Tick.Label.Font.Size = vg.Points(9)
		p.Y.Tick.Label.Font.Size = vg.Points(9)
	} else {
		p.X.Tick.Label.Font.Size = vg.Points(11)
		p.Y.Tick.Label.Font.Size = vg.Points(11)
	}

	w, h := ConfusionSize(n)
	c := newCanvas(w, h)
	dc := draw.New(c)
	barW := vg.Length(colorBarWidth) * vg.Inch / dpi
	p.Draw(draw.Crop(dc, 0, -barW-vg.Points(18), 0, 0))

	bar := plot.New()
	bar.HideX()
	bar.Y.Label.Text = "share of true class"
	bar.Y.Padding = 0
	bar.Add(&plotter.ColorBar{ColorMap: cmap, Vertical: true})
	full := dc.Max.Y - dc.Min.Y
	bar.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-barW, 0, full*0.3, -full*0.3))
	return writePNG(path, c)
}

// grid lays the [true][predicted] shares out for the heat map with true class 0 at the top:
// column c is predicted class c, plot row r is true class n-1-r.
type grid [][]float64

func (g grid) Dims() (c, r int)   { return len(g), len(g) }
func (g grid) Z(c, r int) float64 { return g[len(g)-1-r][c] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

// cellCounts writes each non-zero count in its cell, white on dark cells.
func cellCounts(counts [][]int, share [][]float64) (*plotter.Labels, error) {
	n := len(counts)
	var xys plotter.XYs
	var labels []string
	var dark []bool
	for i, row := range counts {
		for j, c := range row {
			if c == 0 {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(j), Y: float64(n - 1 - i)})
			labels = append(labels, strconv.Itoa(c))
			dark = append(dark, share[i][j] > 0.5)
		}
	}
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].YAlign = draw.YCenter
		if dark[i] {
			l.TextStyle[i].Color = color.White
		}
	}
	return l, nil
}

// shorten cuts a class name to maxLabelRunes runes.
func shorten(s string) string {
	r := []rune(s)
	if len(r) <= maxLabelRunes {
		return s
	}
	return string(r[:maxLabelRunes-1]) + "…"
}
