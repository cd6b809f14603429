package report

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clipgo/clipgo/stages/evalfile"
)

// ExplainDir is the directory of a run that clipgo explain --out writes and the report shows.
const ExplainDir = "explain"

// MaxMaps is the most similarity maps the report shows.
const MaxMaps = 32

// explainView is the report's section of pictures that explain the model.
type explainView struct {
	Dir, Dataset, Model, Checkpoint, CheckpointNote, Method, Note string
	Maps                                                          []mapView
	Neighbours                                                    []exampleGroup
	Embedding                                                     *figure
	EmbeddingNote                                                 string
}

type mapView struct {
	Key, Text, Class, Range, Score string
	Src                            template.URL
}

// explainSection reads dir's explain index and its pictures; nil when dir has none. An index
// that does not parse, or names a picture that is missing or not a PNG, is an error naming it.
func explainSection(dir, runDir string) (*explainView, error) {
	ex, err := evalfile.ReadExplanation(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	v := &explainView{Dir: dir, Dataset: ex.Dataset, Model: ex.Model, Checkpoint: ex.Checkpoint,
		CheckpointNote: checkpointNote(ex.Checkpoint, runDir), Method: ex.Method, Note: ex.Note}
	for _, m := range ex.Maps[:min(len(ex.Maps), MaxMaps)] {
		fig, err := pngFigure(m.Text, filepath.Join(dir, m.File))
		if err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		v.Maps = append(v.Maps, mapView{Key: m.Key, Text: m.Text, Class: m.Class, Src: fig.Src,
			Range: fmt.Sprintf("%.3f to %.3f", m.Min, m.Max), Score: strconv.FormatFloat(m.Score, 'f', 3, 64)})
	}
	v.Neighbours = exampleGroups(ex.Neighbours)
	if e := ex.Embedding; e != nil {
		path := filepath.Join(dir, e.File)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		fig, err := pngFigure("2-D map of the embeddings", path)
		if err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		v.Embedding = &fig
		var axes []string
		for i, share := range e.Explained {
			axes = append(axes, fmt.Sprintf("axis %d explains %.1f%% of the variance", i+1, 100*share))
		}
		colour := "colour: image or caption"
		if e.ColourBy == "class" {
			colour = "colour: the image's class"
		}
		v.EmbeddingNote = fmt.Sprintf("%s of %d image and %d caption embeddings (circles: images; triangles: their first captions; %s); %s.",
			e.Method, e.Images, e.Texts, colour, strings.Join(axes, ", "))
	}
	return v, nil
}
