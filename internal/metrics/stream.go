package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ClassCounts accumulates a zero-shot classification batch by batch, so that scoring N images
// against C classes holds one batch's logits, not the [N,C] logits, and counts, not the C×C
// confusion matrix: per class its images and correct predictions, and the (true, predicted)
// pairs that occurred off the diagonal (at most one per image). Its metrics equal Classify's
// over the same rows, to the last bit.
type ClassCounts struct {
	classes      int
	n            int
	hits1, hits5 int
	count        []int            // images per true class
	correct      []int            // of them predicted as their class
	off          map[[2]int32]int // (true, predicted) -> images, true != predicted
}

// NewClassCounts returns empty counts for classes classes.
func NewClassCounts(classes int) (*ClassCounts, error) {
	if classes <= 0 || classes > math.MaxInt32 {
		return nil, fmt.Errorf("classify: %d classes, need at least one", classes)
	}
	return &ClassCounts{classes: classes, count: make([]int, classes), correct: make([]int, classes), off: map[[2]int32]int{}}, nil
}

// Add scores one batch: logits [n,C] (row-major) against labels [n] in [0,C), as Classify
// does (argmax with the lowest index on ties; a label's rank counts equal scores of lower
// indices ahead of it). A batch that fails a check adds nothing.
func (a *ClassCounts) Add(logits []float32, labels []int) error {
	C, n := a.classes, len(labels)
	if len(logits) != n*C {
		return fmt.Errorf("classify: %d logits, want %d images × %d classes = %d", len(logits), n, C, n*C)
	}
	for i, y := range labels {
		if y < 0 || y >= C {
			return fmt.Errorf("classify: image %d: label %d outside [0,%d)", a.n+i, y, C)
		}
	}
	if err := checkFinite("classify: logits", logits, C); err != nil {
		return err
	}
	for i, y := range labels {
		row := logits[i*C : (i+1)*C]
		p := argmax(row)
		a.count[y]++
		if p == y {
			a.correct[y]++
		} else {
			a.off[[2]int32{int32(y), int32(p)}]++
		}
		r := rank(row, y)
		if r == 1 {
			a.hits1++
		}
		if r <= 5 {
			a.hits5++
		}
	}
	a.n += n
	return nil
}

// Images returns the number of images added.
func (a *ClassCounts) Images() int { return a.n }

// Result returns the metrics as Classify computes them; Confusion and Predictions are nil
// (see Confusion, Count, Correct and TopConfusions).
func (a *ClassCounts) Result() (Classification, error) {
	if a.n == 0 {
		return Classification{}, errors.New("classify: no labelled images")
	}
	res := Classification{Acc5: math.NaN(), HasAcc5: a.classes >= 5}
	res.Acc1 = float64(a.hits1) / float64(a.n)
	if res.HasAcc5 {
		res.Acc5 = float64(a.hits5) / float64(a.n)
	}
	var sum float64
	present := 0
	for c, total := range a.count {
		if total > 0 {
			sum += float64(a.correct[c]) / float64(total)
			present++
		}
	}
	res.MeanPerClassRecall = sum / float64(present)
	return res, nil
}

// Count returns the images of true class c; Correct those of them predicted as c.
func (a *ClassCounts) Count(c int) int { return a.count[c] }

// Correct returns the images of true class c predicted as c.
func (a *ClassCounts) Correct(c int) int { return a.correct[c] }

// Confusion returns the dense [true][predicted] matrix: C×C ints, so only for small C.
func (a *ClassCounts) Confusion() [][]int {
	m := make([][]int, a.classes)
	for c := range m {
		m[c] = make([]int, a.classes)
		m[c][c] = a.correct[c]
	}
	for k, v := range a.off {
		m[k[0]][k[1]] = v
	}
	return m
}

// MostConfused returns, for every true class, the class its images are most often wrongly
// predicted as (the lowest index among equals), -1 where none is.
func (a *ClassCounts) MostConfused() []int {
	top := make([]int, a.classes)
	best := make([]int, a.classes)
	for c := range top {
		top[c] = -1
	}
	for k, v := range a.off {
		t, p := int(k[0]), int(k[1])
		if v > best[t] || (v == best[t] && p < top[t]) {
			best[t], top[t] = v, p
		}
	}
	return top
}

// Pair is one off-diagonal cell of the confusion matrix.
type Pair struct {
	True, Predicted, Count int
}

// TopConfusions returns the k largest off-diagonal cells, largest first (then by true and
// predicted class).
func (a *ClassCounts) TopConfusions(k int) []Pair {
	all := make([]Pair, 0, len(a.off))
	for key, v := range a.off {
		all = append(all, Pair{int(key[0]), int(key[1]), v})
	}
	slices.SortFunc(all, func(x, y Pair) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.True, y.True), cmp.Compare(x.Predicted, y.Predicted))
	})
	return all[:min(max(k, 0), len(all))]
}

// OffDiagonal returns the number of distinct off-diagonal cells that are not zero.
func (a *ClassCounts) OffDiagonal() int { return len(a.off) }
