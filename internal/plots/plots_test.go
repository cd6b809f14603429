package plots

import (
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
			b := decode(t, path).Bounds()
			if b.Dx() != CurvesWidth || b.Dy() != CurvesHeight {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), CurvesWidth, CurvesHeight)
			}
		})
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
			w, h := ConfusionSize(tc.n)
			b := decode(t, path).Bounds()
			if b.Dx() != w || b.Dy() != h {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
			}
		})
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
		w, h := ConfusionSize(n)
		cell := (h - confusionMargin) / n
		if cell < 14 || cell > 40 || w != h+colorBarWidth {
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
