package stages

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// EvalResult is CLIP_benchmark's result file: {"dataset","model","pretrained","task","metrics"},
// so that tools reading CLIP_benchmark results read clipgo's. Task is
// "zeroshot_classification" or "zeroshot_retrieval".
type EvalResult struct {
	Dataset    string             `json:"dataset"`
	Model      string             `json:"model"`
	Pretrained string             `json:"pretrained"`
	Task       string             `json:"task"`
	Metrics    map[string]float64 `json:"metrics"`
}

// EvalDetails is what an evaluation writes beside its result (DetailsPath): the tables and
// examples people read in the report, which CLIP_benchmark's format has no place for.
type EvalDetails struct {
	ClassNames []string           `json:"classnames,omitempty"`
	PerClass   []ClassScore       `json:"per_class,omitempty"`
	Confusion  [][]int            `json:"confusion_matrix,omitempty"` // [true class][predicted class] counts
	Examples   []RetrievalExample `json:"examples,omitempty"`
	Images     int                `json:"images"`
	Texts      int                `json:"texts,omitempty"`
}

// ClassScore is one row of the per-class table of a zero-shot evaluation.
type ClassScore struct {
	Class  string  `json:"class"`
	Count  int     `json:"count"`  // images of this class
	Recall float64 `json:"recall"` // share of them predicted as this class
	Top    string  `json:"most_confused_with,omitempty"`
}

// RetrievalExample is one query of a retrieval evaluation with its top results, the right
// answers marked; images are data URIs (small JPEGs) so a report stays one self-contained file.
type RetrievalExample struct {
	Direction string         `json:"direction"` // "text_to_image" or "image_to_text"
	Query     string         `json:"query"`     // the caption, or the image's key
	QueryImg  string         `json:"query_image,omitempty"`
	Results   []RetrievalHit `json:"results"`
}

// RetrievalHit is one ranked result.
type RetrievalHit struct {
	Key     string  `json:"key"`
	Text    string  `json:"text,omitempty"`  // for image→text
	Image   string  `json:"image,omitempty"` // data URI, for text→image
	Score   float64 `json:"score"`
	Correct bool    `json:"correct"`
}

// DetailsPath returns where the details of the result at path go: x.json -> x.details.json.
func DetailsPath(path string) string {
	return strings.TrimSuffix(path, ".json") + ".details.json"
}

// WriteEval writes the result and its details atomically.
func WriteEval(path string, res EvalResult, det EvalDetails) error {
	for _, f := range []struct {
		path string
		v    any
	}{{path, res}, {DetailsPath(path), det}} {
		raw, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(f.path, append(raw, '\n')); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

// ReadEval reads a result and, when present, its details.
func ReadEval(path string) (EvalResult, *EvalDetails, error) {
	var res EvalResult
	raw, err := os.ReadFile(path)
	if err != nil {
		return res, nil, err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, nil, fmt.Errorf("%s: %w", path, err)
	}
	raw, err = os.ReadFile(DetailsPath(path))
	if err != nil {
		return res, nil, nil
	}
	var det EvalDetails
	if err := json.Unmarshal(raw, &det); err != nil {
		return res, nil, fmt.Errorf("%s: %w", DetailsPath(path), err)
	}
	return res, &det, nil
}
