package tokenizer

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// referenceBPE is OpenAI's merge loop written plainly: find the lowest-ranked adjacent pair,
// merge all its occurrences left to right, repeat.
func referenceBPE(v *vocabulary, word []byte) []int32 {
	sym := make([]int32, len(word))
	for i, c := range word {
		sym[i] = v.byteID[c]
	}
	sym[len(sym)-1] = v.byteEndID[word[len(word)-1]]
	for len(sym) > 1 {
		best := int32(-1)
		for i := 0; i+1 < len(sym); i++ {
			if r := v.pairRank(sym[i], sym[i+1]); r != noMerge && (best < 0 || r < best) {
				best = r
			}
		}
		if best < 0 {
			break
		}
		var out []int32
		for i := 0; i < len(sym); i++ {
			if i+1 < len(sym) && sym[i] == v.left[best] && sym[i+1] == v.right[best] {
				out = append(out, firstMergedID+best)
				i++
			} else {
				out = append(out, sym[i])
			}
		}
		sym = out
	}
	return sym
}

// TestBPEMatchesReferenceLoop compares the heap-ordered merge loop with OpenAI's plain loop
// on random words over small alphabets (many repeated and overlapping pairs), random bytes,
// and caption words.
func TestBPEMatchesReferenceLoop(t *testing.T) {
	tok := newTestTokenizer(t)
	rng := rand.New(rand.NewPCG(7, 11))
	alphabets := []string{"a", "ab", "aeo", "lo", "ha", ".!-", "abcdefghijklmnopqrstuvwxyz", "\xe6\x97\xa5\xe6\x9c\xac"}
	var words [][]byte
	for _, w := range []string{"a", "dog", "climbing", "playhouse", "skateboarding", "mid-air", "magnificently"} {
		words = append(words, []byte(w))
	}
	for range 3000 {
		alpha := alphabets[rng.IntN(len(alphabets))]
		w := make([]byte, 1+rng.IntN(40))
		for i := range w {
			w[i] = alpha[rng.IntN(len(alpha))]
		}
		words = append(words, w)
	}
	for range 300 {
		w := make([]byte, 1+rng.IntN(20))
		for i := range w {
			w[i] = byte(rng.IntN(256))
		}
		words = append(words, w)
	}
	var s bpeScratch
	for _, w := range words {
		got := tok.vocab.appendBPE(nil, w, &s)
		if want := referenceBPE(tok.vocab, w); !slices.Equal(got, want) {
			t.Errorf("appendBPE(%q) = %v, reference loop %v", w, got, want)
		}
	}
}
