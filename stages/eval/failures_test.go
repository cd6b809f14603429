package eval

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/stages/evalfile"
)

// TestFailureKeeper keeps the most confidently wrong images of each class, and lists the
// classes of lowest recall first.
func TestFailureKeeper(t *testing.T) {
	const size, C = 4, 3
	names := []string{"a", "b", "c"}
	k := newFailureKeeper(size)
	images := make([]float32, 6*3*size*size)
	var keys []string
	var labels []int
	var logits []float32
	// Class 0: five images taken for class 1 by margins 1..5, one right; class 2: one wrong.
	for i := range 5 {
		keys, labels = append(keys, fmt.Sprint("zero-", i+1)), append(labels, 0)
		logits = append(logits, 10, float32(11+i), 0)
	}
	keys, labels, logits = append(keys, "two"), append(labels, 2), append(logits, 30, 0, 20)
	if err := k.add(images, keys, labels, logits, names); err != nil {
		t.Fatal(err)
	}
	right := []float32{50, 0, 0} // right images are not failures
	if err := k.add(images[:3*size*size], []string{"zero-right"}, []int{0}, right, names); err != nil {
		t.Fatal(err)
	}
	per := []evalfile.ClassScore{{Class: "a", Recall: 1.0 / 6}, {Class: "b"}, {Class: "c", Recall: 0}}
	got := k.list(per)
	var order []string
	for _, f := range got {
		order = append(order, f.Key)
		if !strings.HasPrefix(f.Image, "data:image/jpeg;base64,") || f.PredictedScore <= f.Score {
			t.Errorf("failure %+v", f)
		}
	}
	// Class c (recall 0) first, then a's three worst, worst first.
	if want := "two zero-5 zero-4 zero-3"; strings.Join(order, " ") != want {
		t.Errorf("failures %v, want %s", order, want)
	}
	if got[1].Class != "a" || got[1].Predicted != "b" || got[1].Score != 0.1 || got[1].PredictedScore != 0.15 {
		t.Errorf("failure %+v", got[1])
	}
}
