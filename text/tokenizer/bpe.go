package tokenizer

import (
	"github.com/sugarme/tokenizer/model/bpe"
)

// noMerge is the rank of a pair the vocabulary has no merge for.
const noMerge = -1

// firstMergedID is the id of the token made by the merge of rank 0; merge r makes
// firstMergedID+r (checked when the vocabulary is loaded).
const firstMergedID = 2 * 256

// pairRank returns the merge rank of the adjacent symbols (a, b), looked up in the library
// model's merge table, or noMerge.
func (v *vocabulary) pairRank(a, b int32) int32 {
	pv, ok := v.merges[bpe.Pair{C1: int(a), C2: int(b)}]
	if !ok {
		return noMerge
	}
	return int32(pv.Rank)
}

// bpeScratch holds the working arrays of one word, reused from word to word: the symbols as
// a doubly linked list over their first byte positions (a merged-away symbol is -1) and a
// min-heap of candidate merges.
type bpeScratch struct {
	sym, prev, next []int32
	heap            []uint64 // rank<<32 | position: pops lowest rank, then leftmost
}

// appendBPE appends the ids of one pre-tokenized word (its UTF-8 bytes, at least one) to dst.
//
// The merge loop is ours, not the library's, for two measured reasons:
//   - bpe.BPE.MergeWord never applies the end-of-word suffix (its "last rune" test compares
//     a counter before incrementing it), so no word ever gets "</w>" and CLIP ids are wrong
//     (TestLibraryEndOfWord);
//   - bpe.Word.MergeAll orders equal-rank merges by a zero timestamp, so when one pair occurs
//     overlapping ("aaaaaa") it may merge a later occurrence first where OpenAI merges left
//     to right, and gets other ids (TestLibraryMergeAllOrder).
//
// OpenAI's loop takes the lowest-ranked adjacent pair and merges all its occurrences left to
// right, then repeats: quadratic in the word length (a 100 kB word without spaces took
// 0.5 s as a scan per rank). Popping (rank, position) from a heap performs the same merges
// in the same order in O(n log n), because in CLIP's merge list every merge ranks after the
// merges that made its two halves (checked at load): a merge never creates a pair ranked
// below the one being applied, so all occurrences of a rank are still taken left to right
// before any higher rank.
func (v *vocabulary) appendBPE(dst []int32, word []byte, s *bpeScratch) []int32 {
	n := len(word)
	s.sym, s.prev, s.next, s.heap = s.sym[:0], s.prev[:0], s.next[:0], s.heap[:0]
	for i, c := range word {
		id := v.byteID[c]
		if i == n-1 {
			id = v.byteEndID[c]
		}
		s.sym = append(s.sym, id)
		s.prev = append(s.prev, int32(i-1))
		s.next = append(s.next, int32(i+1))
	}
	sym, prev, next := s.sym, s.prev, s.next
	next[n-1] = -1
	for i := 0; i+1 < n; i++ {
		s.push(v.pairRank(sym[i], sym[i+1]), int32(i))
	}
	for len(s.heap) > 0 {
		rank, i := s.pop()
		j := next[i]
		if sym[i] < 0 || j < 0 || sym[i] != v.left[rank] || sym[j] != v.right[rank] {
			continue // stale: a neighbour merged since this pair was queued
		}
		sym[i], sym[j] = firstMergedID+rank, -1
		next[i] = next[j]
		if k := next[i]; k >= 0 {
			prev[k] = i
			s.push(v.pairRank(sym[i], sym[k]), i)
		}
		if p := prev[i]; p >= 0 {
			s.push(v.pairRank(sym[p], sym[i]), p)
		}
	}
	for i := int32(0); i >= 0; i = next[i] {
		dst = append(dst, sym[i])
	}
	return dst
}

// push queues the merge of the pair starting at position pos, unless there is none.
func (s *bpeScratch) push(rank, pos int32) {
	if rank == noMerge {
		return
	}
	h := append(s.heap, uint64(rank)<<32|uint64(pos))
	for c := len(h) - 1; c > 0; {
		p := (c - 1) / 2
		if h[p] <= h[c] {
			break
		}
		h[p], h[c] = h[c], h[p]
		c = p
	}
	s.heap = h
}

// pop removes and returns the lowest-ranked, then leftmost, queued merge.
func (s *bpeScratch) pop() (rank, pos int32) {
	h := s.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for p := 0; ; {
		c := 2*p + 1
		if c >= len(h) {
			break
		}
		if c+1 < len(h) && h[c+1] < h[c] {
			c++
		}
		if h[p] <= h[c] {
			break
		}
		h[p], h[c] = h[c], h[p]
		p = c
	}
	s.heap = h
	return int32(top >> 32), int32(uint32(top))
}
