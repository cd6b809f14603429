package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"strings"

	"github.com/sugarme/tokenizer/model"
	"github.com/sugarme/tokenizer/model/bpe"
	"github.com/sugarme/tokenizer/pretokenizer"
)

// vocabGz is OpenAI's CLIP BPE merge list (MIT, see LICENSE-CLIP-VOCAB): a "#version" line
// followed by one merge "left right" per line, most frequent first.
//
//go:embed bpe_simple_vocab_16e6.txt.gz
var vocabGz []byte

const (
	// numMerges is how many merges of the file CLIP uses: 49,152 - 256 - 2 (OpenAI keeps
	// lines 1 to 48,894 and ignores the rest of the file).
	numMerges = VocabSize - 2*256 - 2
	// endOfWord marks the last symbol of a word in the vocabulary ("dog</w>").
	endOfWord = "</w>"
	sotText   = "<|startoftext|>"
	eotText   = "<|endoftext|>"
)

// byteOrder returns the 256 byte values in the order of OpenAI's bytes_to_unicode values,
// which is the order of the first 256 vocabulary entries: the printable ranges '!'..'~',
// '¡'..'¬', '®'..'ÿ' first, then the remaining bytes ascending.
func byteOrder() [256]byte {
	var order [256]byte
	printable := func(b int) bool {
		return '!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b && b <= 0xFF
	}
	n := 0
	for pass := 0; pass < 2; pass++ {
		for b := 0; b < 256; b++ {
			if printable(b) == (pass == 0) {
				order[n] = byte(b)
				n++
			}
		}
	}
	return order
}

// vocabulary is the CLIP vocabulary in the form of the sugarme/tokenizer BPE model, plus the
// dense tables the hot path needs.
type vocabulary struct {
	model     *bpe.BPE   // library model: vocab, reverse vocab, merge ranks
	merges    bpe.Merges // pair of ids -> (rank, merged id); the model's own map
	left      []int32    // rank -> left id of the pair it merges
	right     []int32    // rank -> right id of the pair it merges
	byteID    [256]int32 // id of a byte's symbol inside a word
	byteEndID [256]int32 // id of a byte's symbol ending a word ("x</w>")
	decode    [][]byte   // id -> the UTF-8 bytes it stands for, "</w>" kept literally
}

// loadVocabulary builds the CLIP vocabulary exactly as OpenAI's SimpleTokenizer does: the 256
// byte symbols, the same with "</w>", one entry per merge, then the two special tokens.
//
// The byte-to-unicode map is the library's pretokenizer.BytesChar (identical to GPT-2's and
// CLIP's bytes_to_unicode), the merge ranks come from the library's bpe.CreateMerges, and the
// model (vocab and reverse vocab) from its bpe.BpeBuilder. We assemble the vocab ourselves
// because the library has no reader for OpenAI's single-file merge list.
func loadVocabulary() (*vocabulary, error) {
	zr, err := gzip.NewReader(bytes.NewReader(vocabGz))
	if err != nil {
		return nil, fmt.Errorf("clip vocab: %w", err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	merges := make([]string, 0, numMerges)
	for line := 0; sc.Scan() && len(merges) < numMerges; line++ {
		if line == 0 {
			continue // "#version: 0.2"
		}
		merges = append(merges, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("clip vocab: %w", err)
	}
	if len(merges) != numMerges {
		return nil, fmt.Errorf("clip vocab: %d merges, want %d", len(merges), numMerges)
	}

	tokens := make([]string, 0, VocabSize)
	order := byteOrder()
	for _, b := range order {
		tokens = append(tokens, pretokenizer.BytesChar[b])
	}
	for _, b := range order {
		tokens = append(tokens, pretokenizer.BytesChar[b]+endOfWord)
	}
	for i, m := range merges {
		left, right, ok := strings.Cut(m, " ")
		if !ok || strings.Contains(right, " ") {
			return nil, fmt.Errorf("clip vocab: merge %d %q: want two symbols", i+1, m)
		}
		tokens = append(tokens, left+right)
	}
	tokens = append(tokens, sotText, eotText)

	vocab := make(model.Vocab, len(tokens))
	for id, tok := range tokens {
		vocab[tok] = id
	}
	if len(vocab) != VocabSize {
		return nil, fmt.Errorf("clip vocab: %d distinct tokens, want %d", len(vocab), VocabSize)
	}
	ranks, err := bpe.CreateMerges(vocab, merges)
	if err != nil {
		return nil, fmt.Errorf("clip vocab: %w", err)
	}
	// CreateMerges silently skips a merge whose halves are not in the vocab and then numbers
	// the rest densely, which would shift every later rank: check that nothing was skipped
	// and that merge r produces token 512+r, as in OpenAI's vocabulary.
	if len(*ranks) != numMerges {
		return nil, fmt.Errorf("clip vocab: %d merge ranks, want %d", len(*ranks), numMerges)
	}
	left, right := make([]int32, numMerges), make([]int32, numMerges)
	for pair, pv := range *ranks {
		if pv.Rank < 0 || pv.Rank >= numMerges || pv.NewId != firstMergedID+pv.Rank {
			return nil, fmt.Errorf("clip vocab: merge rank %d makes id %d, want %d", pv.Rank, pv.NewId, firstMergedID+pv.Rank)
		}
		left[pv.Rank], right[pv.Rank] = int32(pair.C1), int32(pair.C2)
	}
	// appendBPE relies on every merge ranking after the merges that made its halves.
	for r := range numMerges {
		for _, half := range [2]int32{left[r], right[r]} {
			if half >= firstMergedID && int(half-firstMergedID) >= r {
				return nil, fmt.Errorf("clip vocab: merge %d uses token %d made by a later merge", r, half)
			}
		}
	}

	b := bpe.NewBpeBuilder()
	b.VocabAndMerges(vocab, *ranks)
	b.CacheCapacity(0)           // we keep our own cache of whole words (see cache.go)
	b.EndOfWordSuffix(endOfWord) // CLIP's setting, though the library never applies it (bpe.go)
	m, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("clip vocab: %w", err)
	}
	if m.GetVocabSize() != VocabSize {
		return nil, fmt.Errorf("clip vocab: model has %d tokens, want %d", m.GetVocabSize(), VocabSize)
	}

	v := &vocabulary{model: m, merges: *m.Merges, left: left, right: right, decode: make([][]byte, VocabSize)}
	for i := 0; i < 256; i++ {
		ch := pretokenizer.BytesChar[byte(i)]
		id, _ := m.TokenToId(ch)
		end, _ := m.TokenToId(ch + endOfWord)
		v.byteID[i], v.byteEndID[i] = int32(id), int32(end)
	}
	for id := 0; id < VocabSize; id++ {
		tok, ok := m.IdToToken(id)
		if !ok {
			return nil, fmt.Errorf("clip vocab: no token for id %d", id)
		}
		if id == SOT || id == EOT {
			v.decode[id] = []byte(tok)
			continue
		}
		sym, end := strings.CutSuffix(tok, endOfWord)
		raw := make([]byte, 0, len(sym)+len(endOfWord))
		for _, r := range sym {
			c, ok := pretokenizer.CharBytes[string(r)]
			if !ok {
				return nil, fmt.Errorf("clip vocab: token %d %q: %q is not a byte symbol", id, tok, r)
			}
			raw = append(raw, c)
		}
		if end {
			raw = append(raw, endOfWord...)
		}
		v.decode[id] = raw
	}
	if sot, _ := m.TokenToId(sotText); sot != SOT {
		return nil, fmt.Errorf("clip vocab: %s has id %d, want %d", sotText, sot, SOT)
	}
	if eot, _ := m.TokenToId(eotText); eot != EOT {
		return nil, fmt.Errorf("clip vocab: %s has id %d, want %d", eotText, eot, EOT)
	}
	return v, nil
}
