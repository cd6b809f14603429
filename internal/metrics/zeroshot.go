package metrics

import (
	"errors"
	"fmt"
	"math"
)

// ZeroShotClassifier builds CLIP's zero-shot classifier from raw text embeddings classEmb
// [C][T][D] (T prompt templates per class; T may differ between classes): per class, each
// template embedding is L2-normalised, the normalised embeddings are averaged and the mean is
// normalised again. It returns weights [D,C] flat (weights[d*C+c]) and D. Each step is
// rounded to float32 like the float32 tensors of CLIP_benchmark's zero_shot_classifier.
func ZeroShotClassifier(classEmb [][][]float32) (weights []float32, dim int, err error) {
	classes := len(classEmb)
	if classes == 0 {
		return nil, 0, errors.New("zero-shot classifier: no classes")
	}
	for c, tmpl := range classEmb {
		if len(tmpl) == 0 {
			return nil, 0, fmt.Errorf("zero-shot classifier: class %d has no template embeddings", c)
		}
		for t, e := range tmpl {
			if c == 0 && t == 0 {
				dim = len(e)
				if dim == 0 {
					return nil, 0, errors.New("zero-shot classifier: class 0 template 0: empty embedding")
				}
			}
			if len(e) != dim {
				return nil, 0, fmt.Errorf("zero-shot classifier: class %d template %d: dimension %d, want %d", c, t, len(e), dim)
			}
			if err := checkFinite(fmt.Sprintf("zero-shot classifier: class %d template %d", c, t), e, dim); err != nil {
				return nil, 0, err
			}
		}
	}
	weights = make([]float32, dim*classes)
	unit := make([]float32, dim)
	sum := make([]float64, dim)
	mean := make([]float32, dim)
	for c, tmpl := range classEmb {
		clear(sum)
		for _, e := range tmpl {
			normalizeInto(unit, e)
			for d, v := range unit {
				sum[d] += float64(v)
			}
		}
		var ss float64
		for d, s := range sum {
			mean[d] = float32(s / float64(len(tmpl)))
			ss += float64(mean[d]) * float64(mean[d])
		}
		norm := math.Sqrt(ss)
		if norm == 0 {
			return nil, 0, fmt.Errorf("zero-shot classifier: class %d: the mean of its normalised template embeddings is zero", c)
		}
		for d, v := range mean {
			weights[d*classes+c] = float32(float64(v) / norm)
		}
	}
	return weights, dim, nil
}

// ZeroShotLogits returns CLIP's zero-shot logits [N,C] = (100 · normalize(images)) @ weights
// for images [N,D] and the classifier weights [D,C] of ZeroShotClassifier. Image rows are
// L2-normalised here (a zero row gives zero logits, as in torch).
func ZeroShotLogits(images []float32, n, dim int, weights []float32, classes int) ([]float32, error) {
	switch {
	case n <= 0:
		return nil, fmt.Errorf("zero-shot logits: %d images, need at least one", n)
	case dim <= 0:
		return nil, fmt.Errorf("zero-shot logits: embedding dimension %d must be positive", dim)
	case classes <= 0:
		return nil, fmt.Errorf("zero-shot logits: %d classes, need at least one", classes)
	case len(images) != n*dim:
		return nil, fmt.Errorf("zero-shot logits: %d image values, want %d images × %d dims = %d", len(images), n, dim, n*dim)
	case len(weights) != dim*classes:
		return nil, fmt.Errorf("zero-shot logits: %d classifier weights, want %d dims × %d classes = %d", len(weights), dim, classes, dim*classes)
	}
	if err := checkFinite("zero-shot logits: images", images, dim); err != nil {
		return nil, err
	}
	if err := checkFinite("zero-shot logits: classifier weights", weights, classes); err != nil {
		return nil, err
	}
	// Transpose the classifier to [C,D] so each logit is one contiguous dot product.
	wt := make([]float32, classes*dim)
	for d := 0; d < dim; d++ {
		for c := 0; c < classes; c++ {
			wt[c*dim+d] = weights[d*classes+c]
		}
	}
	logits := make([]float32, n*classes)
	f := make([]float32, dim)
	for i := 0; i < n; i++ {
		normalizeInto(f, images[i*dim:(i+1)*dim])
		for d, v := range f {
			f[d] = 100 * v // 100. * image_features, in float32, before the product
		}
		for c := 0; c < classes; c++ {
			logits[i*classes+c] = dot(f, wt[c*dim:(c+1)*dim])
		}
	}
	return logits, nil
}

// Classification holds zero-shot classification results over N labelled images.
type Classification struct {
	Acc1 float64 // fraction of images whose top-scoring class is the label
	// Acc5 is the fraction whose label is among the 5 top-scoring classes; NaN and HasAcc5
	// false with fewer than 5 classes (CLIP_benchmark reports NaN there).
	Acc5    float64
	HasAcc5 bool
	// MeanPerClassRecall is balanced accuracy (sklearn balanced_accuracy_score): the mean,
	// over the classes present in the labels, of the fraction of that class's images
	// predicted as it. Classes absent from the labels are left out of the mean.
	MeanPerClassRecall float64
	Confusion          [][]int // [true class][predicted class] image counts, C×C
	Predictions        []int   // [N] predicted class (argmax, lowest index on ties)
}

// Classify scores logits [N,C] (row-major) against labels [N] in [0,C).
func Classify(logits []float32, labels []int, classes int) (Classification, error) {
	n := len(labels)
	switch {
	case classes <= 0:
		return Classification{}, fmt.Errorf("classify: %d classes, need at least one", classes)
	case n == 0:
		return Classification{}, errors.New("classify: no labelled images")
	case len(logits) != n*classes:
		return Classification{}, fmt.Errorf("classify: %d logits, want %d images × %d classes = %d", len(logits), n, classes, n*classes)
	}
	for i, y := range labels {
		if y < 0 || y >= classes {
			return Classification{}, fmt.Errorf("classify: image %d: label %d outside [0,%d)", i, y, classes)
		}
	}
	if err := checkFinite("classify: logits", logits, classes); err != nil {
		return Classification{}, err
	}
	res := Classification{
		Acc5:        math.NaN(),
		HasAcc5:     classes >= 5,
		Confusion:   make([][]int, classes),
		Predictions: make([]int, n),
	}
	for c := range res.Confusion {
		res.Confusion[c] = make([]int, classes)
	}
	hits1, hits5 := 0, 0
	for i, y := range labels {
		row := logits[i*classes : (i+1)*classes]
		res.Predictions[i] = argmax(row)
		res.Confusion[y][res.Predictions[i]]++
		r := rank(row, y)
		if r == 1 {
			hits1++
		}
		if r <= 5 {
			hits5++
		}
	}
	// accuracy() in CLIP_benchmark divides a count by n in float64: exact count/n.
	res.Acc1 = float64(hits1) / float64(n)
	if res.HasAcc5 {
		res.Acc5 = float64(hits5) / float64(n)
	}
	var sum float64
	present := 0
	for c, row := range res.Confusion {
		total := 0
		for _, k := range row {
			total += k
		}
		if total > 0 {
			sum += float64(row[c]) / float64(total)
			present++
		}
	}
	res.MeanPerClassRecall = sum / float64(present) // present ≥ 1 since n ≥ 1
	return res, nil
}

// Metrics returns the results under CLIP_benchmark's names: acc1, acc5 (only with ≥ 5
// classes), mean_per_class_recall.
func (r Classification) Metrics() map[string]float64 {
	m := map[string]float64{"acc1": r.Acc1, "mean_per_class_recall": r.MeanPerClassRecall}
	if r.HasAcc5 {
		m["acc5"] = r.Acc5
	}
	return m
}

// argmax returns the index of the largest value of row, the lowest such index on ties.
func argmax(row []float32) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
}

// rank returns the 1-based position of entry j when row is sorted by descending value,
// equal values by ascending index.
func rank(row []float32, j int) int {
	r := 1
	s := row[j]
	for k, v := range row {
		if v > s || (v == s && k < j) {
			r++
		}
	}
	return r
}
