package evalfile

import (
	"encoding/base64"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExplanationRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := Explanation{Model: "tiny", Dataset: "synthetic:zeroshot", Method: "m",
		Maps:      []SimilarMap{{Key: "k", Text: "red triangle", File: "map-00.png", Min: -0.1, Max: 0.4}},
		Embedding: &EmbedMap{File: "embedding-map.png", Method: "PCA", Explained: []float64{0.3, 0.1}, Images: 4, Texts: 4, ColourBy: "class"}}
	if err := WriteExplanation(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExplanation(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Maps[0] != want.Maps[0] || got.Embedding.File != want.Embedding.File || got.Dataset != want.Dataset {
		t.Errorf("read %+v, wrote %+v", got, want)
	}
	for _, bad := range []string{"../x.png", "/etc/passwd", "a/b.png", `a\b.png`, "..", ""} {
		if err := WriteExplanation(dir, Explanation{Maps: []SimilarMap{{File: bad}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadExplanation(dir); err == nil {
			t.Errorf("an index naming picture %q was read", bad)
		}
	}
	if _, err := ReadExplanation(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("a directory without an index: %v, want not-exist", err)
	}
}

func TestImageURI(t *testing.T) {
	for _, size := range [][2]int{{32, 32}, {400, 100}} {
		uri, err := ImageURI(image.NewRGBA(image.Rect(0, 0, size[0], size[1])))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(uri, "data:image/jpeg;base64,"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := jpeg.DecodeConfig(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if max(cfg.Width, cfg.Height) != min(ThumbSide, max(size[0], size[1])) {
			t.Errorf("%v: thumbnail %dx%d", size, cfg.Width, cfg.Height)
		}
	}
	if _, err := ImageURI(image.NewRGBA(image.Rectangle{})); err == nil {
		t.Error("an empty image got a thumbnail")
	}
}

// FuzzReadExplanation: any index bytes are read or refused, and a read index names pictures
// inside its directory only.
func FuzzReadExplanation(f *testing.F) {
	f.Add([]byte(`{"maps":[{"file":"map-00.png","min":0,"max":1}],"embedding_map":{"file":"e.png"}}`))
	f.Add([]byte(`{"maps":[{"file":"../x"}]}`))
	f.Add([]byte(`{"neighbours":[{"direction":"text_to_image","results":[{"key":"k"}]}]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ExplainName), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		ex, err := ReadExplanation(dir)
		if err != nil {
			return
		}
		for _, m := range ex.Maps {
			if !PlainName(m.File) {
				t.Errorf("picture %q read", m.File)
			}
		}
	})
}
