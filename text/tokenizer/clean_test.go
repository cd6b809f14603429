package tokenizer

import (
	"testing"
	"unicode"
)

// Expected values below were produced by Python 3.11 (bytes.decode, html.unescape,
// regex.sub, str.strip, str.lower).

func TestAppendValidUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"\xf0\x9f\x98\x80", "😀"},
		{"\xe2\x82", "\uFFFD"},                 // truncated: one maximal subpart
		{"a\xe2\x82b", "a\uFFFDb"},             //
		{"\xff\xff", "\uFFFD\uFFFD"},           // never valid bytes
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: ED allows only 80..9F next
		{"\xf0\x9f\x98", "\uFFFD"},
		{"\xc0\xaf", "\uFFFD\uFFFD"},                     // overlong
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"}, // above U+10FFFF
		{"\xe0\x80\x80", "\uFFFD\uFFFD\uFFFD"},
	}
	for _, tc := range tests {
		if got := string(appendValidUTF8(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendValidUTF8(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
}

func TestAppendUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no refs", "no refs"},
		{"&amp; &lt;b&gt; &quot;x&quot;", "& <b> \"x\""},
		{"&#x;", "&#x;"},
		{"&#;", "&#;"},
		{"&ampx", "&x"},
		{"&notit;", "¬it;"},
		{"&#65&#x42;C", "ABC"},
		{"&amp;lt;", "&lt;"}, // once; the tokenizer unescapes twice
		{"&a.b;", "&a.b;"},
		{"&#1;x", "x"},
		{"&#x80;", "€"},
		{"&#x81;", "\u0081"},
		{"&#0;", "\uFFFD"},
		{"&#99999999999;", "\uFFFD"},
		{"&#xD800;", "\uFFFD"},
		{"&#xFFFF;", ""},
		{"&#x10FFFF;", ""},
		{"&#x10FFFD;", "\U0010FFFD"},
		{"&&amp;&", "&&&"},
		{"&ThickSpace;", "\u205f\u200a"},
		{"&", "&"},
	}
	for _, tc := range tests {
		if got := string(appendUnescape(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendUnescape(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
}

func TestAppendWhitespaceClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"   ", ""},
		{"a  b", "a b"},
		{"\ta\n\r\v\fb ", "a b"},
		{"a\u00a0\u2003\u3000b\u0085c", "a b c"},
		{"a\u200bb", "a\u200bb"},         // zero-width space is not whitespace
		{"x\x1cy", "x\x1cy"},             // regex \s does not match U+001C ...
		{"\x1c a \x1f", "a"},             // ... but str.strip removes it
		{"a \x1d\x1e b", "a \x1d\x1e b"}, //
		{"b \u0345", "b \u0345"},         // ends in byte 0x85, which is no NEL here
	}
	for _, tc := range tests {
		if got := string(appendWhitespaceClean(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendWhitespaceClean(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
}

func TestAppendLower(t *testing.T) {
	tests := []struct{ in, want string }{
		{"A Photo OF", "a photo of"},
		{"ÅNGSTRÖM Zürich", "ångström zürich"},
		{"İstanbul", "i\u0307stanbul"},
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευς"},
		{"Σ", "σ"},
		{"aΣ", "aς"},
		{"ΣA", "σa"},
		{"ΑΣ'Β", "ασ'β"}, // the apostrophe is case-ignorable: a letter follows
		{"ΑΣ.", "ας."},
		{"ΑΣ\u0301", "ας\u0301"},
		{"ǅ K Ω ẞ", "ǆ k ω ß"},
	}
	for _, tc := range tests {
		if got := string(appendLower(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("appendLower(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
}

// TestRegexSpace pins the 25 characters of the `regex` module's \s (listed from Python).
func TestRegexSpace(t *testing.T) {
	want := []rune{0x9, 0xa, 0xb, 0xc, 0xd, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002,
		0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f,
		0x205f, 0x3000}
	var got []rune
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if isRegexSpace(r) {
			got = append(got, r)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("isRegexSpace holds for %d runes %U, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("space %d: %U, want %U", i, got[i], want[i])
		}
	}
}

func TestNextWord(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"it's a dog's life", []string{"it", "'s", "a", "dog", "'s", "life"}},
		{"they're we've i'm you'll he'd", []string{"they", "'re", "we", "'ve", "i", "'m", "you", "'ll", "he", "'d"}},
		{"2024", []string{"2", "0", "2", "4"}},
		{"...!!!??? a.b", []string{"...!!!???", "a", ".", "b"}},
		{"!'s", []string{"!'", "s"}},
		{"a<|endoftext|>b", []string{"a", "<|endoftext|>", "b"}},
		{"<|endoftext", []string{"<|", "endoftext"}},
		{"<|ſtartoftext|> 'ſ", []string{"<|ſtartoftext|>", "'ſ"}},
		{"a\u0345b", []string{"a", "b"}},
		{"日本語 mañana", []string{"日本語", "mañana"}},
		{"🐶🐱 x\x1cy", []string{"🐶🐱", "x", "\x1c", "y"}},
		{"½²", []string{"½", "²"}},
	}
	for _, tc := range tests {
		s := []byte(tc.in)
		var got []string
		for i := 0; i < len(s); {
			start, end := nextWord(s, i)
			if start == end {
				break
			}
			got = append(got, string(s[start:end]))
			i = end
		}
		if len(got) != len(tc.want) {
			t.Errorf("split %q = %q, want %q", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("split %q = %q, want %q", tc.in, got, tc.want)
				break
			}
		}
	}
}
