package explain

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// testModelConfig is a tiny ViT at the synthetic images' 32 px, with a 4×4 patch grid.
func testModelConfig() fusion.Config {
	return fusion.Config{EmbedDim: 16,
		Vision: vision.Config{ImageSize: 32, PatchSize: 8, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4},
		Text:   text.Config{ContextLength: 16, VocabSize: 49408, Width: 16, Layers: 1, Heads: 2, MLPRatio: 4}}
}

func testDataset(t *testing.T) string {
	t.Helper()
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "synthetic"))
	cfg.Source, cfg.ValFraction = "synthetic", 0.5
	cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = 20, 24
	stagetest.Prepare(t, cfg)
	return cfg.Out
}

func decodePNG(t *testing.T, path string) image.Image {
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

// TestRunWritesPictures runs explain over a labelled synthetic split: maps, neighbours both
// ways and the 2-D map, coloured by class, all indexed and readable.
func TestRunWritesPictures(t *testing.T) {
	ckpt, data := stagetest.Checkpoint(t, testModelConfig(), 5), testDataset(t)
	out := filepath.Join(t.TempDir(), "explain")
	ex, err := Run(context.Background(), Options{Checkpoint: ckpt, Data: data, Out: out, Maps: 3, Neighbours: 2,
		Points: 16, Queries: []string{"a red square"}, Log: stagetest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	got, err := evalfile.ReadExplanation(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dataset != "synthetic:zeroshot" || got.Checkpoint != ckpt || len(got.Maps) != 3 || got.Method != methodText(Occlusion) {
		t.Fatalf("index %+v", got)
	}
	for _, m := range got.Maps {
		if m.Class == "" || m.Text != m.Class || !(m.Min <= m.Max) || m.Min < -1-1e-6 || m.Max > 1+1e-6 {
			t.Errorf("map %+v: want the class name as text and cosine similarities", m)
		}
		img := decodePNG(t, filepath.Join(out, m.File))
		if b := img.Bounds(); b.Dx() != 2*DisplaySide+8 || b.Dy() != DisplaySide {
			t.Errorf("%s is %v, want the image and its map side by side", m.File, b)
		}
	}
	dirs := map[string]int{}
	for _, n := range got.Neighbours {
		dirs[n.Direction]++
		if len(n.Results) != neighbourTop {
			t.Errorf("query %q: %d results", n.Query, len(n.Results))
		}
		for i, h := range n.Results {
			if i > 0 && h.Score > n.Results[i-1].Score {
				t.Errorf("query %q: results not best first", n.Query)
			}
			if n.Direction == "text_to_image" && !strings.HasPrefix(h.Image, "data:image/jpeg;base64,") {
				t.Errorf("query %q: hit %s has no thumbnail", n.Query, h.Key)
			}
		}
	}
	if dirs["image_to_text"] != 2 || dirs["text_to_image"] != 3 {
		t.Errorf("neighbour queries by direction %v, want 2 image→text and 2+1 text→image", dirs)
	}
	e := got.Embedding
	if e == nil || e.ColourBy != "class" || e.Images != 16 || e.Texts != 16 || len(e.Explained) != 2 || e.Explained[0] < e.Explained[1] {
		t.Fatalf("2-D map %+v", e)
	}
	if b := decodePNG(t, filepath.Join(out, e.File)).Bounds(); b.Dx() < 400 {
		t.Errorf("2-D map is %v", b)
	}
	if len(ex.Maps) != 3 {
		t.Errorf("Run returned %d maps", len(ex.Maps))
	}
}

// TestMapOneImage maps a text over one image file, by occlusion on a ViT and a ResNet, by
// patch tokens on the ViT alone.
func TestMapOneImage(t *testing.T) {
	data := testDataset(t)
	recs := stagetest.ReadAll(t, data, "zeroshot")
	imgPath := filepath.Join(t.TempDir(), "scene.jpg")
	stagetest.Must(t, os.WriteFile(imgPath, recs[0].JPG, 0o644))
	out := filepath.Join(t.TempDir(), "map.png")
	ckpt := stagetest.Checkpoint(t, testModelConfig(), 5)
	r, err := Map(context.Background(), MapOptions{Checkpoint: ckpt, Image: imgPath, Text: "a red triangle", Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if r.Grid != 4 || len(r.Values) != 16 {
		t.Errorf("grid %d with %d values, want 4×4", r.Grid, len(r.Values))
	}
	decodePNG(t, out)
	for _, bad := range []MapOptions{
		{Checkpoint: ckpt, Text: "x", Out: out},
		{Checkpoint: ckpt, Image: imgPath, Out: out},
		{Checkpoint: ckpt, Image: filepath.Join(t.TempDir(), "missing.jpg"), Text: "x", Out: out},
	} {
		if _, err := Map(context.Background(), bad); err == nil {
			t.Errorf("Map(%+v) passed", bad)
		}
	}
	// Patch tokens on the ViT: one value per patch.
	if r, err := Map(context.Background(), MapOptions{Checkpoint: ckpt, Image: imgPath, Text: "x", Out: out, Method: PatchTokens}); err != nil || len(r.Values) != 16 {
		t.Errorf("patch-token map: %d values, %v", len(r.Values), err)
	}
	if _, err := Map(context.Background(), MapOptions{Checkpoint: ckpt, Image: imgPath, Text: "x", Out: out, Method: "gradcam"}); err == nil {
		t.Error("an unknown method passed")
	}
	if testing.Short() {
		t.Log("the ResNet cases are left to the full run (-short: 65 ResNet passes are slow under -race)")
		return
	}
	rn := fusion.Config{EmbedDim: 16,
		Vision: vision.Config{Type: vision.TypeResNet, ImageSize: 64, StageLayers: vision.StageLayers{1, 1, 1, 1}, Width: 8, Heads: 2},
		Text:   testModelConfig().Text}
	rnCkpt := stagetest.Checkpoint(t, rn, 1)
	if r, err := Map(context.Background(), MapOptions{Checkpoint: rnCkpt, Image: imgPath, Text: "x", Out: out}); err != nil || r.Grid != occlusionGrid {
		t.Errorf("a ResNet's occlusion map: grid %d, %v", r.Grid, err)
	}
	_, err = Map(context.Background(), MapOptions{Checkpoint: rnCkpt, Image: imgPath, Text: "x", Out: out, Method: PatchTokens})
	if err == nil || !strings.Contains(err.Error(), "ViT") {
		t.Errorf("a ResNet's patch-token map: %v, want a refusal naming the ViT", err)
	}
}
