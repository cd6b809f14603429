// Package tokenizer is the CLIP tokenizer: OpenAI's byte-level BPE (clip/simple_tokenizer.py)
// over its embedded vocabulary, giving the reference's ids for the same text: all 3,027
// texts of golden_tokens.jsonl and the edge cases of testdata/edge_tokens.jsonl.
//
// The pipeline is OpenAI's: ftfy.fix_text (reproduced in ftfy.go: mojibake repaired, curly
// quotes straightened, ligatures and full-width forms undone, ...), HTML-unescape twice,
// collapse whitespace, lower-case (Python semantics), split with CLIP's pattern, map bytes to
// symbols, merge pairs by rank with "</w>" on the last symbol of a word, frame with SOT and
// EOT, truncate keeping EOT last, pad with zeros. Where it cannot match:
//   - letters, digits and case come from Go's Unicode 15.0 tables; characters assigned
//     later are punctuation here;
//   - invalid UTF-8, impossible in a Python str, is read as U+FFFD.
//
// It is built on github.com/sugarme/tokenizer's BPE model (vocabulary, reverse vocabulary,
// merge table, byte-to-unicode map). The parts of that library that are wrong or slow for
// CLIP are replaced, each where it would be used and with the measured reason: text
// clean-up (clean.go), word splitting (pretokenize.go), the merge loop and "</w>" (bpe.go),
// the word cache (cache.go), and framing with SOT/EOT, truncation and padding (below; the
// library's post-processor and left padding panic).
package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"
)

const (
	// SOT is the id of <|startoftext|>, the first id of every context.
	SOT = 49406
	// EOT is the id of <|endoftext|>, the last non-padding id of every context.
	EOT = 49407
	// VocabSize is the number of ids: every id is in [0, VocabSize).
	VocabSize = 49408
	// DefaultContextLength is the context length of OpenAI's CLIP models.
	DefaultContextLength = 77
	// MaxContextLength bounds the context length Tokenize and TokenizeLines accept, so a
	// bad flag cannot ask for gigabytes.
	MaxContextLength = 1 << 16
	// MaxTextBytes bounds what Tokenize and TokenizeInto read of a text: a longer one (a
	// corrupt caption can be megabytes) is cut to its first MaxTextBytes bytes, so that the
	// clean-up and BPE scratch (~20 bytes per byte of a word) stay bounded. The context is
	// the same unless a word spans the cut before the context is full.
	MaxTextBytes = 1 << 20
)

// Tokenizer turns text into CLIP token ids. It is safe for concurrent use by many
// goroutines; make one with NewTokenizer and share it.
type Tokenizer struct {
	vocab   *vocabulary
	cache   *wordCache
	scratch sync.Pool // *scratch
}

// scratch holds one call's working buffers, reused through the pool so that tokenizing a
// caption allocates nothing once warm.
type scratch struct {
	a, b []byte     // text being cleaned, swapped between steps
	bpe  bpeScratch // BPE working arrays of one word
	ids  []int32    // ids of the text
}

// maxPooledBytes bounds the scratch memory kept for reuse: one huge text should not pin its
// buffers for the life of the process.
const maxPooledBytes = 256 << 10

// bytes returns the memory held by the scratch buffers.
func (sc *scratch) bytes() int {
	b := &sc.bpe
	return cap(sc.a) + cap(sc.b) + 4*(cap(sc.ids)+cap(b.sym)+cap(b.prev)+cap(b.next)) + 8*cap(b.heap)
}

func (t *Tokenizer) getScratch() *scratch { return t.scratch.Get().(*scratch) }

func (t *Tokenizer) putScratch(sc *scratch) {
	if sc.bytes() <= maxPooledBytes {
		t.scratch.Put(sc)
	}
}

// loadShared parses the embedded vocabulary once per process; it is read-only after.
var loadShared = sync.OnceValues(loadVocabulary)

// NewTokenizer returns a tokenizer over the embedded CLIP vocabulary, with its own word
// cache.
func New() (*Tokenizer, error) {
	v, err := loadShared()
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{vocab: v, cache: newWordCache()}
	t.scratch.New = func() any { return new(scratch) }
	return t, nil
}

// Encode returns the BPE ids of text, without SOT and EOT, as OpenAI's
// SimpleTokenizer.encode does. Any bytes are accepted: invalid UTF-8 is read as U+FFFD.
func (t *Tokenizer) Encode(text string) []int32 {
	sc := t.getScratch()
	defer t.putScratch(sc)
	sc.ids = t.appendIDs(sc, sc.ids[:0], text, -1)
	return append([]int32(nil), sc.ids...)
}

// Tokenize returns the context of text: SOT, the ids, EOT, then zeros up to contextLength.
// A longer text is cut to contextLength with EOT kept last (OpenAI's tokenize with
// truncate=True). contextLength must be in [2, MaxContextLength].
func (t *Tokenizer) Tokenize(text string, contextLength int) ([]int32, error) {
	if contextLength < 2 || contextLength > MaxContextLength {
		return nil, fmt.Errorf("context length %d: want 2 to %d", contextLength, MaxContextLength)
	}
	dst := make([]int32, contextLength)
	return dst, t.TokenizeInto(dst, text)
}

// errShortContext is returned for a context that cannot hold SOT and EOT.
var errShortContext = errors.New("context shorter than 2 (SOT and EOT)")

// TokenizeInto writes the context of text into dst, whose length is the context length, as
// Tokenize does. It allocates nothing once the tokenizer is warm, and stops encoding as soon
// as the context is full.
func (t *Tokenizer) TokenizeInto(dst []int32, text string) error {
	if len(dst) < 2 {
		return fmt.Errorf("context length %d: %w", len(dst), errShortContext)
	}
	sc := t.getScratch()
	defer t.putScratch(sc)
	room := len(dst) - 2
	sc.ids = t.appendIDs(sc, sc.ids[:0], text[:min(len(text), MaxTextBytes)], room)
	n := copy(dst[1:1+room], sc.ids)
	dst[0] = SOT
	dst[1+n] = EOT
	clear(dst[2+n:])
	return nil
}

// Decode returns the text of ids as OpenAI's SimpleTokenizer.decode does: token bytes joined,
// read as UTF-8 with U+FFFD for ill-formed bytes, and every "</w>" turned into a space (so a
// decoded word ends with a space). SOT and EOT decode to their names, padding zeros to "!";
// ids outside [0, VocabSize) are skipped, where the reference raises KeyError.
func (t *Tokenizer) Decode(ids []int32) string {
	var raw []byte
	for _, id := range ids {
		if 0 <= id && id < VocabSize {
			raw = append(raw, t.vocab.decode[id]...)
		}
	}
	if !utf8.Valid(raw) {
		raw = appendValidUTF8(nil, raw)
	}
	return string(bytes.ReplaceAll(raw, []byte(endOfWord), []byte(" ")))
}

// appendIDs appends the ids of text to dst; with limit >= 0 it stops once dst holds at least
// limit ids (the rest would be truncated away).
func (t *Tokenizer) appendIDs(sc *scratch, dst []int32, text string, limit int) []int32 {
	s := sc.clean(text)
	for i := 0; i < len(s) && (limit < 0 || len(dst) < limit); {
		start, end := nextWord(s, i)
		if start == end {
			break
		}
		dst = t.appendWord(sc, dst, s[start:end])
		i = end
	}
	return dst
}

// appendWord appends the ids of one word, from the cache when it is there.
func (t *Tokenizer) appendWord(sc *scratch, dst []int32, word []byte) []int32 {
	switch string(word) {
	case sotText:
		return append(dst, SOT)
	case eotText:
		return append(dst, EOT)
	}
	if ids, ok := t.cache.get(word); ok {
		return append(dst, ids...)
	}
	n := len(dst)
	dst = t.vocab.appendBPE(dst, word, &sc.bpe)
	t.cache.put(word, dst[n:])
	return dst
}

// clean returns text after OpenAI's clean-up (see clean.go): valid UTF-8, ftfy.fix_text, HTML references
// unescaped twice, whitespace collapsed and stripped, lower-cased. The result lives in the
// scratch buffers until the next call.
func (sc *scratch) clean(text string) []byte {
	a, b := sc.a[:0], sc.b[:0]
	if utf8.ValidString(text) {
		a = append(a, text...)
	} else {
		a = appendValidUTF8(a, []byte(text))
	}
	if needsFixText(a) {
		a, b = append(b[:0], fixText(string(a))...), a
	}
	for range 2 {
		if bytes.IndexByte(a, '&') < 0 {
			break
		}
		a, b = appendUnescape(b[:0], a), a
	}
	a, b = appendWhitespaceClean(b[:0], a), a
	if isASCII(a) {
		for i, c := range a {
			if 'A' <= c && c <= 'Z' {
				a[i] = c + 'a' - 'A'
			}
		}
	} else {
		a, b = appendLower(b[:0], a), a
	}
	sc.a, sc.b = a, b
	return a
}

func isASCII(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
