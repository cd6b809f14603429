package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// This file splits cleaned, lower-cased text into words as OpenAI's tokenizer does with
//
//	regex.findall(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
//	              text, flags=regex.IGNORECASE)
//
// by a hand-written scanner instead of a regular expression: the library's pre-tokenizers
// use GPT-2's pattern (words keep a leading space, digits group) and compile a regexp per
// word (~760 captions/s measured), and Go's regexp cannot express the pattern exactly
// (its `\s` is ASCII only and its case folding is not the `regex` module's).

// Character classes of the split pattern.
const (
	classOther  = iota // [^\s\p{L}\p{N}]: runs of punctuation, symbols, emoji, controls
	classLetter        // \p{L}: runs of letters
	classNumber        // \p{N}: one character per word
	classSpace         // \s: separates words, never part of one
	classNone          // matched by no alternative, dropped like a space (see classOf)
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		t[c] = classOf(rune(c))
	}
	return t
}()

// classOf classifies r for the split pattern. Checked against the `regex` module over every
// code point assigned in Unicode 15.0 (Go's tables): they agree except U+0345 COMBINING
// GREEK YPOGEGRAMMENI, which under IGNORECASE is in neither [\p{L}] nor [^\s\p{L}\p{N}] (its
// case partner ι is a letter), so findall skips it.
func classOf(r rune) uint8 {
	switch {
	case r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'):
		return classLetter
	case r < utf8.RuneSelf && '0' <= r && r <= '9':
		return classNumber
	case r == 0x345:
		return classNone
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case isRegexSpace(r):
		return classSpace
	}
	return classOther
}

// runeClass decodes the rune at the start of s and classifies it.
func runeClass(s []byte) (class uint8, size int) {
	if s[0] < utf8.RuneSelf {
		return asciiClass[s[0]], 1
	}
	r, size := utf8.DecodeRune(s)
	return classOf(r), size
}

// specials are the pattern's literal alternatives, in the pattern's order.
var specials = [...]string{sotText, eotText, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// matchSpecial returns the length of the literal alternative matching at the start of s, or
// 0. The pattern is case-insensitive and the text already lower case, so the only other
// spelling to accept is U+017F 'ſ' for 's' (simple case folding, as the `regex` module does:
// "'ſ" is a contraction and "<|ſtartoftext|>" a special-token match, then BPE-encoded).
func matchSpecial(s []byte) int {
	if s[0] != '<' && s[0] != '\'' {
		return 0
	}
	for _, lit := range specials {
		if n := matchFold(s, lit); n > 0 {
			return n
		}
	}
	return 0
}

func matchFold(s []byte, lit string) int {
	j := 0
	for k := 0; k < len(lit); k++ {
		switch {
		case j < len(s) && s[j] == lit[k]:
			j++
		case lit[k] == 's' && j+1 < len(s) && s[j] == 0xC5 && s[j+1] == 0xBF: // ſ
			j += 2
		default:
			return 0
		}
	}
	return j
}

// nextWord returns the next word of s at or after i as the span s[start:end], in the order
// findall yields them; start == len(s) when none is left. s must be valid UTF-8.
func nextWord(s []byte, i int) (start, end int) {
	for i < len(s) {
		if n := matchSpecial(s[i:]); n > 0 {
			return i, i + n
		}
		class, size := runeClass(s[i:])
		switch class {
		case classSpace, classNone:
			i += size
		case classNumber:
			return i, i + size
		default:
			end := i + size
			for end < len(s) {
				c, n := runeClass(s[end:])
				if c != class {
					break
				}
				end += n
			}
			return i, end
		}
	}
	return len(s), len(s)
}
