package text

import (
	"math"

	"github.com/sugarme/tokenizer/model/bpe"
)

// noMerge is the rank of a pair the vocabulary has no merge for.
const noMerge = math.MaxInt32

// pairRank returns the merge rank of the adjacent symbols (a, b), looked up in the library
// model's merge table, or noMerge.
func (v *vocabulary) pairRank(a, b int32) int32 {
	pv, ok := v.merges[bpe.Pair{C1: int(a), C2: int(b)}]
	if !ok {
		return noMerge
	}
	return int32(pv.Rank)
}

// appendBPE appends the ids of one pre-tokenized word (its UTF-8 bytes, at least one) to dst.
// sym and rank are scratch slices, returned grown for reuse.
//
// The merge loop is ours, not the library's, for two measured reasons:
//   - bpe.BPE.MergeWord never applies the end-of-word suffix (its "last rune" test compares
//     a counter before incrementing it), so no word ever gets "</w>" and CLIP ids are wrong;
//   - bpe.Word.MergeAll orders equal-rank merges by a zero timestamp, so when one pair occurs
//     overlapping ("...." -> pairs at 0, 1, 2) it may merge the middle one first, where OpenAI
//     merges left to right (see TestLibraryMergeAllOrder); it also seeds a new math/rand
//     source on every call.
//
// This is OpenAI's algorithm exactly: repeatedly take the lowest-ranked adjacent pair and
// merge all its non-overlapping occurrences from left to right. Pair ranks are kept in an
// array and recomputed only beside merged symbols, so a word of n bytes costs O(n) map
// lookups plus O(n) work per pass.
func (v *vocabulary) appendBPE(dst []int32, word []byte, sym, rank []int32) ([]int32, []int32, []int32) {
	n := len(word)
	sym = sym[:0]
	for _, c := range word[:n-1] {
		sym = append(sym, v.byteID[c])
	}
	sym = append(sym, v.byteEndID[word[n-1]])
	rank = rank[:0]
	for i := 0; i+1 < n; i++ {
		rank = append(rank, v.pairRank(sym[i], sym[i+1]))
	}
	for len(sym) > 1 {
		best := int32(noMerge)
		for _, r := range rank {
			best = min(best, r)
		}
		if best == noMerge {
			break
		}
		merged := int32(2*256) + best // verified when the vocabulary is loaded
		w := 0
		for i := 0; i < len(sym); w++ {
			if i+1 < len(sym) && rank[i] == best {
				sym[w] = merged
				i += 2
				continue
			}
			sym[w] = sym[i]
			if i+1 < len(sym) {
				rank[w] = rank[i] // still right unless a neighbour merged; fixed below
			}
			i++
		}
		sym, rank = sym[:w], rank[:w-1]
		for j, s := range sym {
			if s != merged {
				continue
			}
			if j > 0 {
				rank[j-1] = v.pairRank(sym[j-1], s)
			}
			if j+1 < len(sym) {
				rank[j] = v.pairRank(s, sym[j+1])
			}
		}
	}
	return append(dst, sym...), sym, rank
}
