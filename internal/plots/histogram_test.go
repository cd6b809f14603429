package plots

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

func TestHistogram(t *testing.T) {
	dir := outDir(t)
	r := rand.New(rand.NewPCG(1, 2))
	clean, noisy := make([]float64, 2000), make([]float64, 600)
	for i := range clean {
		clean[i] = 0.3 + 0.05*r.NormFloat64()
	}
	for i := range noisy {
		noisy[i] = 0.1 + 0.05*r.NormFloat64()
	}
	noisy[0] = math.NaN() // left out
	path := filepath.Join(dir, "histogram.png")
	if err := Histogram(path, "CLIP score", "cosine", 60,
		[]Series{{Name: "kept pairs", Y: clean}, {Name: "shuffled pairs", Y: noisy}}, Mark{Name: "threshold 0.2", X: 0.2}); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	if b := img.Bounds(); b.Dx() != CurvesWidth || b.Dy() != CurvesHeight {
		t.Errorf("size %v, want %dx%d", b, CurvesWidth, CurvesHeight)
	}
	// One series, no mark, all values equal: still a figure (the range is widened).
	if err := Histogram(filepath.Join(dir, "flat.png"), "flat", "x", 10, []Series{{Y: []float64{1, 1, 1}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		bins   int
		series []Series
		marks  []Mark
		want   string
	}{
		{"no series", 10, nil, nil, "no series"},
		{"no finite value", 10, []Series{{Y: []float64{math.NaN(), math.Inf(1)}}}, nil, "no finite"},
		{"zero bins", 0, []Series{{Y: []float64{1}}}, nil, "bins"},
		{"too many bins", MaxBins + 1, []Series{{Y: []float64{1}}}, nil, "bins"},
		{"non-finite mark", 10, []Series{{Y: []float64{1, 2}}}, []Mark{{Name: "t", X: math.NaN()}}, "mark"},
	} {
		err := Histogram(filepath.Join(dir, "bad.png"), "bad", "x", tc.bins, tc.series, tc.marks...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
