package prepare

import "hash/maphash"

// keySet remembers the image keys a run has written, to drop later duplicates. It is the one
// structure of prepare that must grow with the data, so it keeps 16 bytes per key (two
// independent 64-bit hashes) rather than the key itself (a map of strings: about 40 bytes per
// key, 120 MiB for CC3M's 3 million). Two distinct keys collide with probability about
// N²/2¹²⁹, below 10⁻²⁰ for a billion keys.
type keySet struct {
	seeds [2]maphash.Seed
	seen  map[[2]uint64]struct{}
}

func newKeySet() *keySet {
	return &keySet{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, seen: make(map[[2]uint64]struct{})}
}

// add records key and reports whether it was new.
func (s *keySet) add(key string) bool {
	h := [2]uint64{maphash.String(s.seeds[0], key), maphash.String(s.seeds[1], key)}
	if _, dup := s.seen[h]; dup {
		return false
	}
	s.seen[h] = struct{}{}
	return true
}
