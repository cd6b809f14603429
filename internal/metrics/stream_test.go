package metrics

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestClassCountsEqualClassify: fed in batches of any size, the streaming counts give
// Classify's metrics, confusion matrix and most-confused classes exactly, ties included.
func TestClassCountsEqualClassify(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, classes := range []int{1, 3, 5, 37} {
		n := 200
		logits := make([]float32, n*classes)
		for i := range logits {
			logits[i] = float32(rng.IntN(4)) // many ties
		}
		labels := make([]int, n)
		for i := range labels {
			labels[i] = rng.IntN(classes)
		}
		want, err := Classify(logits, labels, classes)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewClassCounts(classes)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; {
			b := min(1+rng.IntN(17), n-i)
			if err := a.Add(logits[i*classes:(i+b)*classes], labels[i:i+b]); err != nil {
				t.Fatal(err)
			}
			i += b
		}
		got, err := a.Result()
		if err != nil {
			t.Fatal(err)
		}
		if got.Acc1 != want.Acc1 || got.HasAcc5 != want.HasAcc5 || (want.HasAcc5 && got.Acc5 != want.Acc5) || got.MeanPerClassRecall != want.MeanPerClassRecall {
			t.Errorf("%d classes: streaming %+v, Classify %+v", classes, got.Metrics(), want.Metrics())
		}
		if conf := a.Confusion(); !reflect.DeepEqual(conf, want.Confusion) {
			t.Errorf("%d classes: confusion differs", classes)
		}
		for c, p := range a.MostConfused() {
			row, top := want.Confusion[c], -1
			for q, k := range row {
				if q != c && k > 0 && (top < 0 || k > row[top]) {
					top = q
				}
			}
			if p != top {
				t.Errorf("%d classes: class %d most confused with %d, the dense matrix says %d", classes, c, p, top)
			}
		}
		if top := a.TopConfusions(3); len(top) > 1 && top[0].Count < top[1].Count {
			t.Errorf("top confusions out of order: %v", top)
		}
	}
}

func TestClassCountsRefuseBadBatches(t *testing.T) {
	a, _ := NewClassCounts(3)
	for _, tc := range []struct {
		logits []float32
		labels []int
	}{
		{[]float32{1, 2}, []int{0}},
		{[]float32{1, 2, 3}, []int{3}},
		{[]float32{1, float32(math.NaN()), 3}, []int{0}},
	} {
		if err := a.Add(tc.logits, tc.labels); err == nil {
			t.Errorf("Add(%v, %v): no error", tc.logits, tc.labels)
		}
	}
	if a.Images() != 0 {
		t.Errorf("refused batches counted %d images", a.Images())
	}
	if _, err := a.Result(); err == nil {
		t.Error("Result of no images: no error")
	}
}
