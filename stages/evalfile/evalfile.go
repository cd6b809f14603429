// Package evalfile is the file format of an evaluation's outcome: CLIP_benchmark's result JSON
// and the details written beside it, which eval writes and report reads.
package evalfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
)

// The tasks of a result, CLIP_benchmark's names.
const (
	TaskZeroShot  = "zeroshot_classification"
	TaskRetrieval = "zeroshot_retrieval"
)

// Result is CLIP_benchmark's result file: {"dataset","model","pretrained","task","metrics"},
// so that tools reading CLIP_benchmark results read clipgo's. Task is TaskZeroShot or
// TaskRetrieval.
type Result struct {
	Dataset    string             `json:"dataset"`
	Model      string             `json:"model"`
	Pretrained string             `json:"pretrained"`
	Task       string             `json:"task"`
	Metrics    map[string]float64 `json:"metrics"`
}

// Details is what an evaluation writes beside its result (DetailsPath): the tables and
// examples people read in the report, which CLIP_benchmark's format has no place for.
//
// A zero-shot evaluation of up to MaxConfusionClasses classes writes its whole confusion
// matrix; past that, the matrix (C² counts) gives way to the TopConfusions, its largest
// off-diagonal cells, so that the file stays small whatever the number of classes.
type Details struct {
	ClassNames    []string     `json:"classnames,omitempty"`
	PerClass      []ClassScore `json:"per_class,omitempty"`
	Confusion     [][]int      `json:"confusion_matrix,omitempty"` // [true class][predicted class] counts
	TopConfusions []Confusion  `json:"top_confusions,omitempty"`   // without Confusion: its largest off-diagonal cells, largest first
	Note          string       `json:"note,omitempty"`             // what was left out, and why
	Examples      []Example    `json:"examples,omitempty"`
	Failures      []Failure    `json:"failures,omitempty"` // zero-shot: misclassified images, worst first within each class
	Images        int          `json:"images"`
	Texts         int          `json:"texts,omitempty"`
}

// Bounds of the zero-shot details.
const (
	// MaxConfusionClasses is the most classes whose whole confusion matrix goes in the details.
	MaxConfusionClasses = 256
	// MaxTopConfusions is the most off-diagonal cells listed in place of a larger matrix.
	MaxTopConfusions = 1000
)

// Confusion is one off-diagonal cell of a confusion matrix: Count images of class True were
// predicted as class Predicted.
type Confusion struct {
	True      string `json:"true"`
	Predicted string `json:"predicted"`
	Count     int    `json:"count"`
}

// ClassScore is one row of the per-class table of a zero-shot evaluation.
type ClassScore struct {
	Class  string  `json:"class"`
	Count  int     `json:"count"`  // images of this class
	Recall float64 `json:"recall"` // share of them predicted as this class
	Top    string  `json:"most_confused_with,omitempty"`
}

// Failure is a misclassified image of a zero-shot evaluation: the classes of lowest recall
// get up to MaxFailuresPerClass each, those the model got most wrong (largest margin of the
// predicted class's score over the true class's) first.
type Failure struct {
	Key            string  `json:"key"`
	Class          string  `json:"class"`
	Predicted      string  `json:"predicted"`
	Score          float64 `json:"score"`           // cosine similarity with the true class's weight
	PredictedScore float64 `json:"predicted_score"` // with the predicted class's
	Image          string  `json:"image,omitempty"` // data URI: the image as the model saw it
}

// Bounds of the zero-shot failures.
const (
	MaxFailuresPerClass = 3
	MaxFailureClasses   = 16
)

// Example is one query of a retrieval evaluation with its top results, the right
// answers marked; images are data URIs (small JPEGs) so a report stays one self-contained file.
// Kind is "" for queries spread evenly over the split, KindWorst for the queries whose first
// right answer ranks lowest: then Rank is that rank, and Answer (text→image: the right image)
// or AnswerText (image→text: a right caption) shows what the model should have found.
type Example struct {
	Direction  string `json:"direction"` // "text_to_image" or "image_to_text"
	Kind       string `json:"kind,omitempty"`
	Query      string `json:"query"` // the caption, or the image's key
	QueryImg   string `json:"query_image,omitempty"`
	Results    []Hit  `json:"results"`
	Rank       int    `json:"rank,omitempty"`
	Answer     string `json:"answer_image,omitempty"`
	AnswerKey  string `json:"answer_key,omitempty"`
	AnswerText string `json:"answer_text,omitempty"`
}

// KindWorst marks the retrieval examples that are the evaluation's worst failures.
const KindWorst = "worst"

// Hit is one ranked result.
type Hit struct {
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

// ConfusionPath returns where the confusion-matrix picture of the zero-shot result at path
// goes: x.json -> x.confusion.png.
func ConfusionPath(path string) string {
	return strings.TrimSuffix(path, ".json") + ".confusion.png"
}

// Write writes the result and its details atomically.
func Write(path string, res Result, det Details) error {
	for _, f := range []struct {
		path string
		v    any
	}{{path, res}, {DetailsPath(path), det}} {
		raw, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(f.path, append(raw, '\n')); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

// MaxBytes bounds a result or details file that Read reads: they are outside input, read
// whole into memory. Zero-shot details stay far below it (see Details.TopConfusions).
const MaxBytes = 64 << 20

// Read reads a result and, when present, its details. Each must be a regular file of at
// most MaxBytes (a named pipe is refused by name, not waited on); its errors name the file.
func Read(path string) (Result, *Details, error) {
	var res Result
	raw, err := fileinput.ReadFile(path, MaxBytes)
	if err != nil {
		return res, nil, err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, nil, fmt.Errorf("%s: %w", path, err)
	}
	dpath := DetailsPath(path)
	raw, err = fileinput.ReadFile(dpath, MaxBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil, nil
	}
	if err != nil {
		return res, nil, err
	}
	var det Details
	if err := json.Unmarshal(raw, &det); err != nil {
		return res, nil, fmt.Errorf("%s: %w", dpath, err)
	}
	return res, &det, nil
}
