package report

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/plots"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

// explainRun is fakeRun with the sections of clipgo explain and of the evaluations'
// failures: zero-shot misclassified images, retrieval's worst queries, an explain directory
// with two similarity maps, neighbours and a 2-D map.
func explainRun(t *testing.T) string {
	t.Helper()
	dir := fakeRun(t, true)
	// Zero-shot failures, and retrieval's worst failures, added to fakeRun's details.
	zs := filepath.Join(dir, "eval", "zeroshot.json")
	res, det, err := evalfile.Read(zs)
	stagetest.Must(t, err)
	for c := range 3 {
		for k := range 2 {
			det.Failures = append(det.Failures, evalfile.Failure{Key: fmt.Sprintf("zs-%d-%d", c, k), Class: det.ClassNames[c],
				Predicted: det.ClassNames[c+1], Score: 0.2, PredictedScore: 0.3, Image: thumb(t, c)})
		}
	}
	stagetest.Must(t, evalfile.Write(zs, res, *det))
	rt := filepath.Join(dir, "eval", "retrieval.json")
	res, det, err = evalfile.Read(rt)
	stagetest.Must(t, err)
	worst := evalfile.Example{Direction: "text_to_image", Kind: evalfile.KindWorst, Query: "a lost caption", Rank: 37,
		Answer: thumb(t, 4), AnswerKey: "img-right"}
	for r := range 5 {
		worst.Results = append(worst.Results, evalfile.Hit{Key: fmt.Sprintf("img-%d", r), Image: thumb(t, r), Score: 0.5})
	}
	det.Examples = append(det.Examples, worst)
	stagetest.Must(t, evalfile.Write(rt, res, *det))

	ex := filepath.Join(dir, ExplainDir)
	stagetest.Must(t, os.Mkdir(ex, 0o755))
	base := image.NewRGBA(image.Rect(0, 0, 64, 64))
	idx := evalfile.Explanation{Model: "tiny", Checkpoint: filepath.Join(dir, "step-000300.safetensors"), Dataset: "synthetic:zeroshot", Method: "patch similarity"}
	for i := range 2 {
		pic, err := plots.Overlay(base, []float64{0, 1, 2, float64(i)}, 2)
		stagetest.Must(t, err)
		file := fmt.Sprintf("map-%02d.png", i)
		stagetest.Must(t, plots.WriteImage(filepath.Join(ex, file), pic))
		idx.Maps = append(idx.Maps, evalfile.SimilarMap{Key: fmt.Sprintf("scene-%d", i), Text: "red triangle", Class: "red triangle", File: file, Max: 0.3})
	}
	stagetest.Must(t, plots.Scatter(filepath.Join(ex, "embedding-map.png"), "map", "x", "y",
		[]plots.ScatterGroup{{Name: "a", X: []float64{0, 1}, Y: []float64{1, 0}}}))
	idx.Embedding = &evalfile.EmbedMap{File: "embedding-map.png", Method: "PCA", Explained: []float64{0.5, 0.2}, Images: 2, Texts: 2, ColourBy: "class"}
	idx.Neighbours = []evalfile.Example{{Direction: "image_to_text", Query: "scene-0", QueryImg: thumb(t, 1),
		Results: []evalfile.Hit{{Key: "scene-0", Text: "a red triangle", Score: 0.4, Correct: true}}}}
	stagetest.Must(t, evalfile.WriteExplanation(ex, idx))
	return dir
}

func TestReportExplainSections(t *testing.T) {
	dir := explainRun(t)
	path, err := Write(Options{RunDir: dir})
	stagetest.Must(t, err)
	p := parseReport(t, path)
	for _, want := range []string{
		"What the model looks at", "Where the text matches in the image", "“red triangle” over scene-0",
		"Nearest neighbours", "The embeddings in two dimensions", "axis 1 explains 50.0% of the variance",
		"Misclassified images, by class", "Worst failures, text → image", "right answer at rank 37",
		"this run's newest checkpoint (step 300)",
	} {
		if !strings.Contains(p.text, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// fakeRun's report has its own images; the new sections add 2 maps, the 2-D map, the
	// neighbour's query image, 6 failures and the worst query's 5 results and its answer.
	plain, err := Write(Options{RunDir: fakeRun(t, true), Out: filepath.Join(t.TempDir(), "plain")})
	stagetest.Must(t, err)
	if got, want := len(p.images)-len(parseReport(t, plain).images), 2+1+1+6+5+1; got != want {
		t.Errorf("the new sections add %d images, want %d", got, want)
	}
	wide := 0
	for _, img := range p.images {
		if img.Bounds().Dx() == 2*64+8 {
			wide++
		}
	}
	if wide != 2 {
		t.Errorf("%d similarity maps (image beside its map) in the page, want 2", wide)
	}
}

// TestReportExplainErrors: an index naming a picture outside its directory, or a missing
// one, is refused with the file named; no explain directory is no section.
func TestReportExplainErrors(t *testing.T) {
	dir := fakeRun(t, false)
	path, err := Write(Options{RunDir: dir})
	stagetest.Must(t, err)
	if strings.Contains(parseReport(t, path).text, "What the model looks at") {
		t.Error("a run without explain/ got the section")
	}
	ex := filepath.Join(dir, ExplainDir)
	stagetest.Must(t, os.Mkdir(ex, 0o755))
	for _, m := range []evalfile.SimilarMap{{File: "../../etc/passwd"}, {File: "missing.png"}} {
		stagetest.Must(t, evalfile.WriteExplanation(ex, evalfile.Explanation{Maps: []evalfile.SimilarMap{m}}))
		if _, err := Write(Options{RunDir: dir}); err == nil || !strings.Contains(err.Error(), "explain") {
			t.Errorf("picture %q: %v", m.File, err)
		}
	}
}
