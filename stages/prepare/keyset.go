package prepare

import (
	"hash/maphash"
	"maps"
	"slices"
)

// keySet remembers the image keys a run has written, to drop later duplicates. It is the one
// structure of prepare that must grow with the data, so it keeps a 64-bit hash per key in a
// sorted slice (8 bytes per key, 10 with the slice's spare capacity), with the newest keys in a
// small map merged into the slice in batches. A map of the keys themselves (51 bytes per key)
// or of two 64-bit hashes (35) left prepare's peak RSS 14-15% higher at 200,000 pairs than at
// 10,000; with this set, 2% (scripts/scale.sh). Two distinct keys share a hash with probability
// about N²/2⁶⁵ (2·10⁻⁷ for CC3M's 3 million keys); the second is then rejected as a
// duplicate_key, named in rejects.jsonl.
type keySet struct {
	seed   maphash.Seed
	sorted []uint64
	recent map[uint64]struct{}
}

// keySetBatch is the smallest number of new keys merged into the sorted slice at once; a batch
// is at least a 16th of the slice, so merging costs O(1) amortised per key.
const keySetBatch = 4096

func newKeySet() *keySet {
	return &keySet{seed: maphash.MakeSeed(), recent: make(map[uint64]struct{})}
}

// add records key and reports whether it was new.
func (s *keySet) add(key string) bool {
	h := maphash.String(s.seed, key)
	if _, dup := s.recent[h]; dup {
		return false
	}
	if _, dup := slices.BinarySearch(s.sorted, h); dup {
		return false
	}
	s.recent[h] = struct{}{}
	if len(s.recent) >= max(keySetBatch, len(s.sorted)/16) {
		s.flush()
	}
	return true
}

// flush merges the recent hashes into the sorted slice, in place from the back.
func (s *keySet) flush() {
	batch := slices.Sorted(maps.Keys(s.recent))
	clear(s.recent)
	i, j := len(s.sorted)-1, len(batch)-1
	s.sorted = slices.Grow(s.sorted, len(batch))[:len(s.sorted)+len(batch)]
	for k := len(s.sorted) - 1; j >= 0; k-- {
		if i >= 0 && s.sorted[i] > batch[j] {
			s.sorted[k] = s.sorted[i]
			i--
		} else {
			s.sorted[k] = batch[j]
			j--
		}
	}
}
