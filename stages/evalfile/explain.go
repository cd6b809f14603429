package evalfile

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"path/filepath"
	"strings"

	xdraw "golang.org/x/image/draw"

	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
)

// ExplainName is the index of an explain directory (clipgo explain --data): the pictures
// beside it and what they show, which report reads from a run's explain/ directory.
const ExplainName = "explain.json"

// Explanation is what clipgo explain writes about a model on a split: similarity maps of
// image–text pairs, nearest neighbours both ways and a 2-D map of the embeddings. Pictures
// are PNG files in the same directory, named by their base name.
type Explanation struct {
	Model      string       `json:"model"`
	Checkpoint string       `json:"checkpoint"`
	Dataset    string       `json:"dataset"`
	Method     string       `json:"method"` // how the similarity maps are computed, in words
	Maps       []SimilarMap `json:"maps,omitempty"`
	Neighbours []Example    `json:"neighbours,omitempty"` // as retrieval's examples
	Embedding  *EmbedMap    `json:"embedding_map,omitempty"`
	Note       string       `json:"note,omitempty"`
}

// SimilarMap is one image's patch-level similarity map for one text.
type SimilarMap struct {
	Key   string  `json:"key"`
	Text  string  `json:"text"`
	Class string  `json:"class,omitempty"` // the image's class, labelled sets only
	File  string  `json:"file"`            // PNG: the image, then the map over it
	Min   float64 `json:"min"`             // the map's range of values (see Explanation.Method)
	Max   float64 `json:"max"`
	Score float64 `json:"score"` // the pooled image embedding's cosine similarity with the text
}

// EmbedMap is the 2-D map of image and text embeddings.
type EmbedMap struct {
	File      string    `json:"file"`
	Method    string    `json:"method"`              // "PCA"
	Explained []float64 `json:"explained,omitempty"` // share of the variance each axis explains
	Images    int       `json:"images"`
	Texts     int       `json:"texts"`
	ColourBy  string    `json:"colour_by"` // "class" or "modality"
}

// WriteExplanation writes ex as dir's ExplainName atomically.
func WriteExplanation(dir string, ex Explanation) error {
	raw, err := json.MarshalIndent(ex, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, ExplainName)
	if err := atomicfile.WriteFile(path, append(raw, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadExplanation reads dir's ExplainName (at most MaxBytes, a regular file). Every picture
// it names must be a plain base name (no directory part), so that a reader opens files in dir
// alone; an index naming others is refused.
func ReadExplanation(dir string) (Explanation, error) {
	var ex Explanation
	path := filepath.Join(dir, ExplainName)
	raw, err := fileinput.ReadFile(path, MaxBytes)
	if err != nil {
		return ex, err
	}
	if err := json.Unmarshal(raw, &ex); err != nil {
		return ex, fmt.Errorf("%s: %w", path, err)
	}
	files := make([]string, 0, len(ex.Maps)+1)
	for _, m := range ex.Maps {
		files = append(files, m.File)
	}
	if ex.Embedding != nil {
		files = append(files, ex.Embedding.File)
	}
	for _, f := range files {
		if !PlainName(f) {
			return ex, fmt.Errorf("%s: picture %q is not a file name in its directory", path, f)
		}
	}
	return ex, nil
}

// PlainName reports whether name is a file's base name: not empty, no separator, not . or ..
func PlainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) && !strings.ContainsRune(name, 0)
}

// ThumbSide is the largest side of the thumbnails ImageURI makes.
const ThumbSide = 96

// ImageURI returns img as a data:image/jpeg URI, scaled down (never up) so that its longest
// side is at most ThumbSide: small enough to inline many in a self-contained report.
func ImageURI(img image.Image) (string, error) {
	b := img.Bounds()
	if b.Empty() {
		return "", errors.New("thumbnail of an empty image")
	}
	if long := max(b.Dx(), b.Dy()); long > ThumbSide {
		dst := image.NewRGBA(image.Rect(0, 0, max(1, b.Dx()*ThumbSide/long), max(1, b.Dy()*ThumbSide/long)))
		xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, b, xdraw.Src, nil)
		img = dst
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return "", err
	}
	return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
