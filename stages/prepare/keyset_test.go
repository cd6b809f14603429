package prepare

import (
	"fmt"
	"slices"
	"testing"
)

func TestKeySetFindsDuplicatesAcrossBatches(t *testing.T) {
	s := newKeySet()
	const n = 3*keySetBatch + 123
	for i := range n {
		if !s.add(fmt.Sprint("k", i)) {
			t.Fatalf("key %d reported as a duplicate on first sight", i)
		}
		if i%7 == 0 && s.add(fmt.Sprint("k", i/2)) {
			t.Fatalf("key %d (seen) reported as new after %d keys", i/2, i+1)
		}
	}
	for i := range n {
		if s.add(fmt.Sprint("k", i)) {
			t.Fatalf("key %d reported as new the second time", i)
		}
	}
	if !slices.IsSorted(s.sorted) || len(s.sorted)+len(s.recent) != n {
		t.Errorf("%d sorted + %d recent hashes for %d keys (sorted: %v)", len(s.sorted), len(s.recent), n, slices.IsSorted(s.sorted))
	}
}
