package tokenizer

import (
	"slices"
	"testing"

	"github.com/sugarme/tokenizer/model/bpe"
	"github.com/sugarme/tokenizer/pretokenizer"
)

// These tests pin the sugarme/tokenizer v0.3.0 behaviour that made us write our own pieces
// (see bpe.go); if one starts failing after a library upgrade, the library piece may be
// usable again.

// libraryMerge runs the library's merge loop (bpe.Word.MergeAll) over the symbols our
// appendBPE starts from, "</w>" included.
func libraryMerge(v *vocabulary, word string) []int32 {
	w := bpe.NewWord()
	for i := 0; i < len(word); i++ {
		id := v.byteID[word[i]]
		if i == len(word)-1 {
			id = v.byteEndID[word[i]]
		}
		w.Add(int(id), 1)
	}
	w.MergeAll(v.merges)
	var ids []int32
	for _, c := range w.GetChars() {
		ids = append(ids, int32(c))
	}
	return ids
}

func TestLibraryMergeAllOrder(t *testing.T) {
	tok := newTestTokenizer(t)
	tests := []struct {
		word      string
		want      []int32 // OpenAI's ids (testdata/reference.py)
		libAgrees bool    // whether bpe.Word.MergeAll gives them too
	}{
		{"dog", []int32{1929}, true},
		{"wooooow", []int32{1867, 574, 2250}, true},
		{"aaaaa", []int32{31095}, true},
		// one pair repeated and overlapping: the library merges in heap order, not left to right
		{"aaaaaa", []int32{44413}, false},
		{"mmmmmm", []int32{43740}, false},
		{"........", []int32{14720}, false},
		{"!!!!!!!!", []int32{21622}, false},
	}
	for _, tc := range tests {
		ours := tok.vocab.appendBPE(nil, []byte(tc.word), new(bpeScratch))
		if !slices.Equal(ours, tc.want) {
			t.Errorf("appendBPE(%q) = %v, want %v", tc.word, ours, tc.want)
		}
		lib := libraryMerge(tok.vocab, tc.word)
		if slices.Equal(lib, tc.want) != tc.libAgrees {
			t.Errorf("library MergeAll(%q) = %v, OpenAI %v: agreement %v, expected %v",
				tc.word, lib, tc.want, !tc.libAgrees, tc.libAgrees)
		}
	}
}

// TestLibraryEndOfWord shows that the library model never applies its end-of-word suffix:
// "dog" comes out as the mid-word token "dog" instead of "dog</w>" (1929).
func TestLibraryEndOfWord(t *testing.T) {
	tok := newTestTokenizer(t)
	// MergeWord, not Tokenize: Tokenize also dereferences the cache we disabled (a nil
	// *bpe.Cache) and panics.
	toks := tok.vocab.model.WordToTokens(*tok.vocab.model.MergeWord("dog"))
	if len(toks) != 1 || toks[0].Value != "dog" {
		t.Errorf("library Tokenize(dog) = %+v, expected the suffix-less token", toks)
	}
	if ids := tok.Encode("dog"); !slices.Equal(ids, []int32{1929}) {
		t.Errorf("Encode(dog) = %v, want [1929]", ids)
	}
}

// TestByteMap checks that the library's byte-to-unicode map, which we use, is OpenAI's
// bytes_to_unicode: a bijection onto 256 characters, printable bytes mapped to themselves,
// the others to U+0100 onwards in byte order.
func TestByteMap(t *testing.T) {
	seen := map[string]bool{}
	next := rune(0x100)
	for b := 0; b < 256; b++ {
		ch := pretokenizer.BytesChar[byte(b)]
		if seen[ch] {
			t.Fatalf("byte %#x maps to %q, already used", b, ch)
		}
		seen[ch] = true
		want := rune(b)
		if !('!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b && b <= 0xFF) {
			want = next
			next++
		}
		if ch != string(want) {
			t.Errorf("byte %#x maps to %q, want %q", b, ch, string(want))
		}
	}
	for _, tc := range []struct {
		b    byte
		want string
	}{{' ', "Ġ"}, {'\n', "Ċ"}, {0, "Ā"}, {0xAD, "Ń"}, {'a', "a"}} {
		if got := pretokenizer.BytesChar[tc.b]; got != tc.want {
			t.Errorf("byte %#x maps to %q, want %q", tc.b, got, tc.want)
		}
	}
}
