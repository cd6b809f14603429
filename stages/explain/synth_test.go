package explain

import (
	"os"
	"testing"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/synth"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

// hitRate maps n one-object synthetic scenes (scene(opts, i) for i = 0, 1, ..., two-object
// ones passed over) with their class name ("red triangle") and returns the share whose best
// cell's centre lies inside the named shape's bounding box, and the share chance gives (the
// mean share of cell centres inside the box).
func hitRate(t *testing.T, enc *fusion.Encoder, method string, n int, scene func(synth.Options, int) synth.Sample) (hit, chance float64) {
	t.Helper()
	vc := enc.Config().Vision
	size := vc.ImageSize
	in := make([]float32, 0, n*enc.ImageLen())
	texts := make([]string, n)
	samples := make([]synth.Sample, n)
	for i, j := 0, 0; i < n; j++ {
		s := scene(synth.Options{Seed: 11, Size: size}, j)
		if len(s.Objects) != 1 {
			continue
		}
		x := make([]float32, enc.ImageLen())
		stagetest.Must(t, imageproc.EvalTransform(x, s.Image, size))
		in = append(in, x...)
		texts[i], samples[i] = s.Objects[0].Pair.String(), s
		i++
	}
	res, err := mapsOf(enc, method, in, texts)
	if err != nil {
		t.Fatal(err)
	}
	hits, cells, inside := 0, 0, 0
	for i, r := range res {
		o, cell := samples[i].Objects[0], float64(size)/float64(r.Grid)
		in := func(gx, gy int) bool {
			cx, cy := (float64(gx)+0.5)*cell, (float64(gy)+0.5)*cell
			return cx >= o.X-o.R && cx <= o.X+o.R && cy >= o.Y-o.R && cy <= o.Y+o.R
		}
		if in(r.Peak()) {
			hits++
		}
		for gy := range r.Grid {
			for gx := range r.Grid {
				cells++
				if in(gx, gy) {
					inside++
				}
			}
		}
	}
	return float64(hits) / float64(n), float64(inside) / float64(cells)
}

// TestMapFindsNamedShape is the similarity maps' known-answer test: on synthetic scenes of
// one shape, the best cell of the map of the scene's class name must lie inside the named
// shape's box in at least 70% of the scenes, and an untrained model of the same size must
// not manage it. It needs a trained model: CLIPGO_EXPLAIN_CHECKPOINT names one, as
// `make explain-check` does with the run of `make demo`. It also logs the held-out scenes'
// rate (colour × shape pairs never seen in training, the demo's zero-shot split) and the
// patch-token maps' rates, for the record.
func TestMapFindsNamedShape(t *testing.T) {
	ckpt := os.Getenv("CLIPGO_EXPLAIN_CHECKPOINT")
	if ckpt == "" {
		t.Skip("needs a trained checkpoint: CLIPGO_EXPLAIN_CHECKPOINT (make explain-check, after make demo)")
	}
	model, err := evalmodel.Open(ckpt, 65, false)
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	m, err := fusion.New(model.Config, 2, 1) // the same model, untrained
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	random, err := fusion.NewEncoderFrom(model.Config, m.Params(), 65)
	if err != nil {
		t.Fatal(err)
	}
	defer random.Close()
	const n = 100
	hit, chance := hitRate(t, model.Enc, Occlusion, n, synth.Scene)
	randomHit, _ := hitRate(t, random, Occlusion, n, synth.Scene)
	heldOut, _ := hitRate(t, model.Enc, Occlusion, n, synth.ZeroShot)
	t.Logf("occlusion maps: best cell inside the named shape in %.2f of %d scenes (held-out pairs %.2f); untrained model %.2f; chance %.2f",
		hit, n, heldOut, randomHit, chance)
	if vc := model.Config.Vision; vc.Type == "" {
		tokens, _ := hitRate(t, model.Enc, PatchTokens, n, synth.Scene)
		randomTokens, _ := hitRate(t, random, PatchTokens, n, synth.Scene)
		t.Logf("patch-token maps: %.2f; untrained model %.2f", tokens, randomTokens)
	}
	if hit < 0.7 || randomHit > 0.5 {
		t.Errorf("the named shape lights up in %.2f of the scenes (want ≥ 0.7), an untrained model's in %.2f (want ≤ 0.5)", hit, randomHit)
	}
}
