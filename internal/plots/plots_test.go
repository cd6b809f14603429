package plots

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// outDir is a fresh directory, or $PLOTS_KEEP to look at the figures after the test.
func outDir(t *testing.T) string {
	if d := os.Getenv("PLOTS_KEEP"); d != "" {
		return d
	}
	return t.TempDir()
}

func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func ramp(n int, f func(x float64) float64) (xs, ys []float64) {
	for i := range n {
		x := float64(i * 10)
		xs, ys = append(xs, x), append(ys, f(x))
	}
	return xs, ys
}

func TestCurves(t *testing.T) {
	dir := outDir(t)
	lx, ly := ramp(60, func(x float64) float64 { return 4.5*math.Exp(-x/150) + 0.3 })
	vx, vy := ramp(6, func(x float64) float64 { return 3*math.Exp(-x/20) + 0.8 })
	ly[7] = math.NaN() // a skipped step
	for _, tc := range []struct {
		name string
		log  bool
		s    []Series
	}{
		{"one", false, []Series{{Name: "loss", X: lx, Y: ly}}},
		{"two", false, []Series{{Name: "train", X: lx, Y: ly}, {Name: "validation", X: vx, Y: vy}}},
		{"log", true, []Series{{Name: "train", X: lx, Y: ly}, {Name: "validation", X: vx, Y: vy}}},
		{"log-nonpositive", true, []Series{{Name: "train", X: []float64{0, 1, 2}, Y: []float64{0, 1, 0.5}}}},
		{"empty-series-beside-full", false, []Series{{Name: "none"}, {Name: "loss", X: lx, Y: ly}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "curves-"+tc.name+".png")
			f := Curves
			if tc.log {
				f = LogCurves
			}
			if err := f(path, "loss "+tc.name, "step", "loss", tc.s...); err != nil {
				t.Fatal(err)
			}
			img := decode(t, path)
			b := img.Bounds()
			if b.Dx() != CurvesWidth || b.Dy() != CurvesHeight {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), CurvesWidth, CurvesHeight)
			}
			checkMargin(t, img)
		})
	}
}

// checkMargin fails when anything is drawn within a few pixels of the image's edge: a title,
// tick label or point cut off by it.
func checkMargin(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	const edge = 4
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if x >= b.Min.X+edge && x < b.Max.X-edge && y >= b.Min.Y+edge && y < b.Max.Y-edge {
				continue
			}
			if r, g, bl, _ := img.At(x, y).RGBA(); r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				t.Errorf("pixel (%d,%d) at the edge is drawn on: something is cut off", x, y)
				return
			}
		}
	}
}

// TestCurvesLegendOutside: the legend sits right of the data area, level with its top, inside
// the figure, and takes no part of the data area.
func TestCurvesLegendOutside(t *testing.T) {
	lx, ly := ramp(60, func(x float64) float64 { return 4.5*math.Exp(-x/150) + 0.3 })
	vx, vy := ramp(6, func(x float64) float64 { return 0.1 + x/100 })
	for _, logY := range []bool{false, true} {
		p, legend, err := curvesPlot("t", "step", "y", logY, []Series{{Name: "train", X: lx, Y: ly}, {Name: "a long validation name", X: vx, Y: vy}})
		if err != nil {
			t.Fatal(err)
		}
		if legend == nil {
			t.Fatal("no legend for two series")
		}
		c := draw.New(newCanvas(CurvesWidth, CurvesHeight))
		plotArea, legendArea := curvesLayout(p, legend, c)
		data := p.DataCanvas(plotArea).Rectangle
		lr := legend.Rectangle(legendArea)
		if lr.Min.X < data.Max.X {
			t.Errorf("log=%v: legend %v reaches into the data area %v", logY, lr, data)
		}
		if lr.Min.X < c.Min.X || lr.Max.X > c.Max.X || lr.Min.Y < c.Min.Y || lr.Max.Y > c.Max.Y {
			t.Errorf("log=%v: legend %v outside the figure %v", logY, lr, c.Rectangle)
		}
		if legendArea.Max.Y != data.Max.Y {
			t.Errorf("log=%v: legend column starts at %v, the data area at %v", logY, legendArea.Max.Y, data.Max.Y)
		}
		if w := data.Size().X; w < vg.Length(CurvesWidth)*vg.Inch/dpi/2 {
			t.Errorf("log=%v: the legend leaves the data only %v of the width", logY, w)
		}
	}
	p, legend, err := curvesPlot("t", "step", "y", false, []Series{{Name: "only", X: lx, Y: ly}})
	if err != nil || legend != nil {
		t.Errorf("one series: legend %v, err %v; want none", legend, err)
	}
	if _, area := curvesLayout(p, nil, draw.New(newCanvas(CurvesWidth, CurvesHeight))); area.Size().X != 0 {
		t.Error("one series: room kept for a legend")
	}
}

// TestLogCurvesAxis: a log-scaled Y axis with at least three labelled ticks inside the data.
func TestLogCurvesAxis(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{{0.78, 4.2}, {1.2, 5}, {0.3, 5}, {1e-4, 9}, {2e-9, 3e3}, {0.5, 0.6}} {
		xs := []float64{0, 1, 2}
		ys := []float64{tc.hi, math.Sqrt(tc.lo * tc.hi), tc.lo}
		p, _, err := curvesPlot("t", "x", "loss", true, []Series{{Name: "a", X: xs, Y: ys}})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.Y.Scale.(plot.LogScale); !ok {
			t.Errorf("%v: Y scale %T, want plot.LogScale", tc, p.Y.Scale)
		}
		var labels []string
		for _, tk := range p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max) {
			if tk.Value < p.Y.Min*(1-1e-9) || tk.Value > p.Y.Max*(1+1e-9) {
				t.Errorf("%v: tick %v outside [%v, %v]", tc, tk.Value, p.Y.Min, p.Y.Max)
			}
			if tk.Label != "" {
				labels = append(labels, tk.Label)
				if v, err := strconv.ParseFloat(tk.Label, 64); err != nil || math.Abs(v-tk.Value) > 1e-9*tk.Value {
					t.Errorf("%v: tick %v labelled %q", tc, tk.Value, tk.Label)
				}
			}
		}
		if len(labels) < 3 || len(labels) > 12 {
			t.Errorf("%v: labels %v, want 3 to 12", tc, labels)
		}
	}
	got := labelsOf(logTicks{}.Ticks(0.78, 4.2))
	if want := []string{"0.8", "0.9", "1", "1.5", "2", "2.5", "3", "4"}; !slices.Equal(got, want) {
		t.Errorf("log ticks 0.78..4.2: %v, want %v", got, want)
	}
	if got := labelsOf(niceTicks{}.Ticks(10, 300)); !slices.Equal(got, []string{"50", "100", "150", "200", "250", "300"}) {
		t.Errorf("linear ticks 10..300: %v", got)
	}
	if got := labelsOf(niceTicks{}.Ticks(-0.3, 0.3)); !slices.Contains(got, "0") || slices.Contains(got, "-0") {
		t.Errorf("linear ticks -0.3..0.3: %v, want a plain 0", got)
	}
}

func labelsOf(ticks []plot.Tick) []string {
	var l []string
	for _, t := range ticks {
		if t.Label != "" {
			l = append(l, t.Label)
		}
	}
	return l
}

// TestCurvesColor: a series given a colour is drawn in it, whatever its position.
func TestCurvesColor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.png")
	want := color.RGBA{204, 121, 167, 255}
	lx, ly := ramp(60, func(x float64) float64 { return x })
	if err := Curves(path, "t", "x", "y", Series{Name: "a", X: lx, Y: ly, Color: want}); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	n, first := 0, 0
	for y := range CurvesHeight {
		for x := range CurvesWidth {
			switch color.RGBAModel.Convert(img.At(x, y)) {
			case want:
				n++
			case Palette[0]:
				first++
			}
		}
	}
	if n < 100 || first > 0 {
		t.Errorf("%d pixels of the series' colour, %d of the palette's first; want a line of the former only", n, first)
	}
}

func TestCurvesErrors(t *testing.T) {
	dir := t.TempDir()
	many := make([]Series, MaxSeries+1)
	for i := range many {
		many[i] = Series{Name: fmt.Sprint(i), X: []float64{0}, Y: []float64{1}}
	}
	for _, tc := range []struct {
		name, want string
		log        bool
		s          []Series
	}{
		{"none", "no series", false, nil},
		{"mismatch", `"a" has 2 x and 1 y`, false, []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}},
		{"all-nan", "no finite points", false, []Series{{Name: "a", X: []float64{1}, Y: []float64{math.NaN()}}}},
		{"log-zero", "no finite points", true, []Series{{Name: "a", X: []float64{1}, Y: []float64{0}}}},
		{"too-many", "limit", false, many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".png")
			f := Curves
			if tc.log {
				f = LogCurves
			}
			err := f(path, "t", "x", "y", tc.s...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, path, tc.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("a failed plot left %s behind", path)
			}
		})
	}
	if err := Curves(filepath.Join(dir, "no-such-dir", "x.png"), "t", "x", "y", Series{X: []float64{0}, Y: []float64{1}}); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

// confusionCase builds an n-class matrix where class i is mostly right and otherwise taken for
// class i+1; class n-1 has no images when empty is set.
func confusionCase(n int, empty bool) ([][]int, []string) {
	counts := make([][]int, n)
	names := make([]string, n)
	colours := []string{"red", "green", "blue", "yellow", "purple", "orange", "white", "black"}
	shapes := []string{"circle", "square", "triangle", "star", "cross", "ring"}
	for i := range n {
		counts[i] = make([]int, n)
		counts[i][i] = 10 + i%7
		counts[i][(i+1)%n] = 5 - i%5
		names[i] = colours[i%len(colours)] + " " + shapes[(i/len(colours))%len(shapes)]
	}
	if empty {
		counts[n-1] = make([]int, n)
	}
	return counts, names
}

func TestConfusion(t *testing.T) {
	dir := outDir(t)
	for _, tc := range []struct {
		name  string
		n     int
		empty bool
	}{
		{"one", 1, false},
		{"five", 5, true},
		{"ten", 10, false},
		{"fortyeight", 48, false},
		{"hundred", 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counts, names := confusionCase(tc.n, tc.empty)
			if tc.n == 5 {
				names[0] = "a class name far longer than any label should be drawn"
			}
			path := filepath.Join(dir, "confusion-"+tc.name+".png")
			if err := Confusion(path, counts, names); err != nil {
				t.Fatal(err)
			}
			rows, cols := ConfusionShape(counts)
			if wantRows := tc.n - b2i(tc.empty); len(rows) != wantRows || len(cols) != tc.n {
				t.Errorf("%d rows and %d columns, want %d and %d", len(rows), len(cols), wantRows, tc.n)
			}
			w, h := ConfusionSize(len(rows), len(cols))
			img := decode(t, path)
			b := img.Bounds()
			if b.Dx() != w || b.Dy() != h {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
			}
			checkMargin(t, img)
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestConfusionDropsEmptyClasses: a class with no images is no row; it stays a column only
// when some image was taken for it.
func TestConfusionDropsEmptyClasses(t *testing.T) {
	names := []string{"cat", "dog", "ghost", "unicorn", "fox"}
	counts := [][]int{
		{5, 1, 0, 2, 0}, // a cat taken for a unicorn, which has no images
		{0, 4, 0, 0, 1},
		{0, 0, 0, 0, 0}, // ghost: no images, never predicted
		{0, 0, 0, 0, 0}, // unicorn: no images, predicted once
		{1, 0, 0, 0, 3},
	}
	rows, cols := ConfusionShape(counts)
	if !slices.Equal(rows, []int{0, 1, 4}) || !slices.Equal(cols, []int{0, 1, 3, 4}) {
		t.Errorf("rows %v, columns %v; want [0 1 4] and [0 1 3 4]", rows, cols)
	}
	x, y := confusionTicks(names, rows, cols)
	if got := labelsOf(y); !slices.Equal(got, []string{"cat", "dog", "fox"}) {
		t.Errorf("row labels %v", got)
	}
	if got := labelsOf(x); !slices.Equal(got, []string{"cat", "dog", "unicorn", "fox"}) {
		t.Errorf("column labels %v", got)
	}
	// the top row of the picture is the first shown class
	if y[0].Value != float64(len(rows)-1) {
		t.Errorf("first row at %v, want the top (%d)", y[0].Value, len(rows)-1)
	}
	path := filepath.Join(t.TempDir(), "c.png")
	if err := Confusion(path, counts, names); err != nil {
		t.Fatal(err)
	}
	w, h := ConfusionSize(3, 4)
	if b := decode(t, path).Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	if err := Confusion(path, [][]int{{0, 0}, {0, 0}}, []string{"a", "b"}); err == nil || !strings.Contains(err.Error(), "no images") {
		t.Errorf("an empty matrix: %v", err)
	}
}

func TestConfusionErrors(t *testing.T) {
	dir := t.TempDir()
	big := make([]string, MaxClasses+1)
	for _, tc := range []struct {
		name, want string
		counts     [][]int
		classes    []string
	}{
		{"no-classes", "no classes", nil, nil},
		{"too-many", "limit", make([][]int, len(big)), big},
		{"rows", "1 rows for 2 classes", [][]int{{1, 0}}, []string{"a", "b"}},
		{"ragged", "row 1 (b) has 1 columns", [][]int{{1, 0}, {1}}, []string{"a", "b"}},
		{"negative", "row 0 column 1: negative", [][]int{{1, -1}, {0, 1}}, []string{"a", "b"}},
		{"overflow", "overflow", [][]int{{math.MaxInt, 1}, {0, 1}}, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".png")
			err := Confusion(path, tc.counts, tc.classes)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and saying %q", err, path, tc.want)
			}
		})
	}
}

func TestConfusionSize(t *testing.T) {
	for _, n := range []int{1, 5, 25, 48, 71, 256} {
		w, h := ConfusionSize(n, n)
		cell := (h - confusionMargin) / n
		if cell < 14 || cell > 40 || w != max(h+colorBarWidth, minConfusionW) {
			t.Errorf("n=%d: %dx%d, cell %d", n, w, h, cell)
		}
	}
}

func BenchmarkConfusion48(b *testing.B) {
	counts, names := confusionCase(48, false)
	path := filepath.Join(b.TempDir(), "c.png")
	for b.Loop() {
		if err := Confusion(path, counts, names); err != nil {
			b.Fatal(err)
		}
	}
}
