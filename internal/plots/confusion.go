package plots

import (
	"fmt"
	"image/color"
	"math"
	"slices"
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
	minConfusionW   = 720 // room for the title however few the classes
	maxLabelRunes   = 28  // longer class names are cut with an ellipsis
	annotateUpTo    = 16  // counts are written in the cells up to this many classes
)

// ConfusionSize returns the size in pixels of the figure Confusion draws with rows true
// classes and cols predicted classes (see ConfusionShape): cells of 14 to 40 pixels, large
// enough to read 48 class names.
func ConfusionSize(rows, cols int) (w, h int) {
	n := max(rows, cols, 1)
	cell := min(max(1000/n, 14), 40)
	return max(confusionMargin+cols*cell+colorBarWidth, minConfusionW), confusionMargin + rows*cell
}

// ConfusionShape returns the classes a confusion figure of counts shows: as rows the classes
// with images, as columns those and the classes without images that some image was taken
// for. A class with no images would be a row of nothing; one that nothing was predicted as
// either would add only an empty column.
func ConfusionShape(counts [][]int) (rows, cols []int) {
	predicted := make([]bool, len(counts))
	for i, row := range counts {
		empty := true
		for j, c := range row {
			if c != 0 {
				empty = false
				if j < len(predicted) {
					predicted[j] = true
				}
			}
		}
		if !empty {
			rows = append(rows, i)
		}
	}
	for i := range counts {
		if predicted[i] || slices.Contains(rows, i) {
			cols = append(cols, i)
		}
	}
	return rows, cols
}

// Confusion writes a confusion matrix heat map to path: counts[i][j] is the number of images
// of true class i predicted as class j. Rows are true classes (top to bottom), columns
// predicted classes (left to right); classes with no images are left out (ConfusionShape)
// and counted under the matrix. The colour of a cell is its row-normalised share, so the
// diagonal reads as each class's recall whatever the class sizes. The title gives the
// overall accuracy of the counts.
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
	rowSum := make([]int, n)
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
		if total > math.MaxInt-sum {
			return fmt.Errorf("confusion %s: counts overflow", path)
		}
		rowSum[i] = sum
		correct += row[i]
		total += sum
	}
	if total == 0 {
		return fmt.Errorf("confusion %s: no images in any class", path)
	}
	rows, cols := ConfusionShape(counts)
	share := make([][]float64, len(rows)) // [shown row][shown column], rows sum to at most 1
	shown := make([][]int, len(rows))
	for r, i := range rows {
		share[r] = make([]float64, len(cols))
		shown[r] = make([]int, len(cols))
		for c, j := range cols {
			shown[r][c] = counts[i][j]
			share[r][c] = float64(counts[i][j]) / float64(rowSum[i])
		}
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
	p.Title.Text = fmt.Sprintf("Confusion matrix: accuracy %.3f (%d of %d images)", float64(correct)/float64(total), correct, total)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "predicted class"
	if dropped := n - len(rows); dropped > 0 {
		p.X.Label.Text += fmt.Sprintf("   (%d of %d classes have no images: not shown as rows)", dropped, n)
	}
	p.Y.Label.Text = "true class"
	heat := plotter.NewHeatMap(grid(share), cmap.Palette(256))
	heat.Min, heat.Max = 0, 1
	p.Add(heat)
	if max(len(rows), len(cols)) <= annotateUpTo {
		l, err := cellCounts(shown, share)
		if err != nil {
			return fmt.Errorf("confusion %s: %w", path, err)
		}
		p.Add(l)
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = confusionTicks(classes, rows, cols)
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Min, p.X.Max = -0.5, float64(len(cols))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(rows))-0.5
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.X.Label.TextStyle.Font.Size = vg.Points(12)
	p.Y.Label.TextStyle.Font.Size = vg.Points(13)
	if max(len(rows), len(cols)) > 24 {
		p.X.Tick.Label.Font.Size = vg.Points(9)
		p.Y.Tick.Label.Font.Size = vg.Points(9)
	} else {
		p.X.Tick.Label.Font.Size = vg.Points(11)
		p.Y.Tick.Label.Font.Size = vg.Points(11)
	}

	w, h := ConfusionSize(len(rows), len(cols))
	c := newCanvas(w, h)
	pad := vg.Length(margin) * vg.Inch / dpi
	dc := draw.Crop(draw.New(c), pad, -pad, pad, -pad)
	barW := vg.Length(colorBarWidth) * vg.Inch / dpi
	p.Draw(draw.Crop(dc, 0, -barW-vg.Points(18), 0, 0))

	bar := plot.New()
	bar.HideX()
	bar.Y.Label.Text = "share of the true class's images"
	bar.Y.Padding = 0
	bar.Add(&plotter.ColorBar{ColorMap: cmap, Vertical: true})
	full := dc.Max.Y - dc.Min.Y
	bar.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-barW, 0, full*0.3, -full*0.3))
	return writePNG(path, c)
}

// confusionTicks label the shown columns (left to right) and rows (top to bottom) with their
// class names.
func confusionTicks(classes []string, rows, cols []int) (x, y plot.ConstantTicks) {
	for c, j := range cols {
		x = append(x, plot.Tick{Value: float64(c), Label: shorten(classes[j])})
	}
	for r, i := range rows {
		y = append(y, plot.Tick{Value: float64(len(rows) - 1 - r), Label: shorten(classes[i])})
	}
	return x, y
}

// grid lays the [row][column] shares out for the heat map with the first row at the top:
// plot row r is shown row len(g)-1-r.
type grid [][]float64

func (g grid) Dims() (c, r int)   { return len(g[0]), len(g) }
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
