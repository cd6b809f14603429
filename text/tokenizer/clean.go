package tokenizer

import (
	"html"
	"unicode"
	"unicode/utf8"
)

// This file reproduces the text clean-up of OpenAI's simple_tokenizer.py on bytes:
//
//	whitespace_clean(basic_clean(text)).lower()
//	basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
//	whitespace_clean(t) = regex.sub(r'\s+', ' ', t).strip()
//
// ftfy.fix_text is ftfy.go's fixText, applied first (Tokenizer.clean).
//
// The pieces are written here rather than taken from the library because its normalizers
// (sugarme/tokenizer/normalizer) offer NFx, lowercase and strip with Go semantics, and Go's
// semantics differ from Python's in exactly the places listed on each function below.

// appendValidUTF8 appends s to dst with every ill-formed sequence replaced by U+FFFD, one per
// maximal subpart as Python's bytes.decode('utf-8', 'replace') does ("\xe2\x82" is one
// U+FFFD, where ranging over a Go string yields two).
func appendValidUTF8(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if _, size := utf8.DecodeRune(s[i:]); size > 1 {
			dst = append(dst, s[i:i+size]...)
			i += size
			continue
		}
		dst = utf8.AppendRune(dst, utf8.RuneError)
		i += maximalSubpart(s[i:])
	}
	return dst
}

// maximalSubpart returns the length of the ill-formed sequence at the start of s: the lead
// byte plus the continuation bytes that are still valid for it (Unicode 3.9, table 3-7).
func maximalSubpart(s []byte) int {
	lo, hi, need := byte(0x80), byte(0xBF), 0
	switch c := s[0]; {
	case 0xC2 <= c && c <= 0xDF:
		need = 1
	case c == 0xE0:
		lo, need = 0xA0, 2
	case c == 0xED:
		hi, need = 0x9F, 2
	case 0xE1 <= c && c <= 0xEF:
		need = 2
	case c == 0xF0:
		lo, need = 0x90, 3
	case c == 0xF4:
		hi, need = 0x8F, 3
	case 0xF1 <= c && c <= 0xF3:
		need = 3
	}
	n := 1
	for ; n <= need && n < len(s); n++ {
		if s[n] < lo || s[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}

// appendUnescape appends s to dst with HTML character references replaced as Python's
// html.unescape does. Named references go through Go's html.UnescapeString, which resolves
// them the same way (longest legacy prefix without ';' included); numeric ones are ours
// because Go differs: it keeps code points Python drops (&#1; &#x7f; &#xfdd0; ...), wraps
// around on very long numbers where Python gives U+FFFD, and turns "&#x;" into U+FFFD where
// Python leaves it alone.
func appendUnescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		if s[i] != '&' {
			dst = append(dst, s[i])
			i++
			continue
		}
		if r, n, ok := numericRef(s[i+1:]); ok {
			if r >= 0 {
				dst = utf8.AppendRune(dst, r)
			}
			i += 1 + n
			continue
		}
		if n := refNameLen(s[i+1:]); n > 0 {
			dst = append(dst, html.UnescapeString(string(s[i:i+1+n]))...)
			i += 1 + n
			continue
		}
		dst = append(dst, '&')
		i++
	}
	return dst
}

// numericRef parses "#123;" or "#x1F;" (the ';' optional) at the start of s, as the pattern
// `#[0-9]+;?|#[xX][0-9a-fA-F]+;?` of Python's html module. It returns the rune to write, or
// -1 for a code point Python replaces by nothing, and the bytes consumed.
func numericRef(s []byte) (r rune, n int, ok bool) {
	if len(s) < 2 || s[0] != '#' {
		return 0, 0, false
	}
	base, i := 10, 1
	if s[1] == 'x' || s[1] == 'X' {
		base, i = 16, 2
	}
	start := i
	num := 0
	for ; i < len(s); i++ {
		d := digitVal(s[i])
		if d >= base {
			break
		}
		num = min(num*base+d, utf8.MaxRune+1) // saturate: anything larger is U+FFFD anyway
	}
	if i == start {
		return 0, 0, false
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	return charRef(num), i, true
}

func digitVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return 99
}

// cp1252 maps the references &#x80; to &#x9f; as Python's html._invalid_charrefs does.
var cp1252 = [32]rune{
	0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
}

// charRef is Python's html._replace_charref for a numeric reference: -1 means "no text".
func charRef(num int) rune {
	switch {
	case num == 0:
		return utf8.RuneError
	case 0x80 <= num && num <= 0x9F:
		return cp1252[num-0x80]
	case 0xD800 <= num && num <= 0xDFFF || num > utf8.MaxRune:
		return utf8.RuneError
	case 0x01 <= num && num <= 0x08, num == 0x0B, 0x0E <= num && num <= 0x1F, num == 0x7F,
		0xFDD0 <= num && num <= 0xFDEF, num&0xFFFE == 0xFFFE:
		return -1
	}
	return rune(num)
}

// refNameLen returns the length of the reference name at the start of s as Python's html
// module delimits it, `[^\t\n\f <&#;]{1,32};?` (32 characters, not bytes), or 0.
func refNameLen(s []byte) int {
	i := 0
	for chars := 0; i < len(s) && chars < 32 && !refNameStop(s[i]); chars++ {
		_, size := utf8.DecodeRune(s[i:])
		i += size
	}
	if i > 0 && i < len(s) && s[i] == ';' {
		i++
	}
	return i
}

func refNameStop(c byte) bool {
	switch c {
	case '\t', '\n', '\f', ' ', '<', '&', '#', ';':
		return true
	}
	return false
}

// isRegexSpace reports whether r is `\s` for the Python `regex` module that OpenAI's tokenizer
// imports as `re`: the Unicode White_Space characters, which is exactly unicode.IsSpace.
// (Go's regexp `\s` is ASCII only.)
func isRegexSpace(r rune) bool { return unicode.IsSpace(r) }

// isPySpace reports whether r is whitespace for Python's str.strip and str.isspace: the
// White_Space characters plus U+001C..U+001F (bidirectional class B or S), which the `regex`
// module's `\s` does not match. So "a\x1cb" keeps its U+001C as a symbol, but a leading or
// trailing one is stripped.
func isPySpace(r rune) bool { return isRegexSpace(r) || 0x1C <= r && r <= 0x1F }

func isASCIISpace(c byte) bool { return c < utf8.RuneSelf && isPySpace(rune(c)) }

// appendWhitespaceClean appends s with every run of `\s` replaced by one space and Python
// whitespace stripped from both ends (basic_clean's strip is implied by this one). s must be
// valid UTF-8.
func appendWhitespaceClean(dst, s []byte) []byte {
	start := len(dst)
	inSpace := false
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		}
		if isRegexSpace(r) {
			if !inSpace {
				dst = append(dst, ' ')
			}
			inSpace = true
		} else {
			dst = append(dst, s[i:i+size]...)
			inSpace = false
		}
		i += size
	}
	// After the collapse the only Python whitespace left is ' ' and U+001C..U+001F, all
	// ASCII; a byte >= 0x80 is part of a longer character (the 0x85 ending U+0345 is no NEL).
	out := dst[start:]
	lo, hi := 0, len(out)
	for lo < hi && isASCIISpace(out[lo]) {
		lo++
	}
	for hi > lo && isASCIISpace(out[hi-1]) {
		hi--
	}
	n := copy(out, out[lo:hi])
	return dst[:start+n]
}

// appendLower appends s lower-cased as Python's str.lower does. Go's unicode.ToLower agrees
// with it rune by rune except for two full-case mappings (checked over every code point):
// U+0130 'İ' becomes "i\u0307", and U+03A3 'Σ' becomes final 'ς' at the end of a word.
// s must be valid UTF-8.
func appendLower(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch r {
		case 0x130:
			dst = append(dst, "i\u0307"...)
		case 0x3A3:
			if finalSigma(s[:i], s[i+size:]) {
				dst = utf8.AppendRune(dst, 0x3C2)
			} else {
				dst = utf8.AppendRune(dst, 0x3C3)
			}
		default:
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += size
	}
	return dst
}

// finalSigma reports whether a capital sigma between before and after is in Unicode's
// Final_Sigma context, as Python's str.lower decides it: a cased letter before it and none
// after it, skipping case-ignorable characters on both sides.
func finalSigma(before, after []byte) bool {
	r := utf8.RuneError
	for len(before) > 0 {
		var size int
		r, size = utf8.DecodeLastRune(before)
		before = before[:len(before)-size]
		if !caseIgnorable(r) {
			break
		}
		r = utf8.RuneError
	}
	if r == utf8.RuneError || !cased(r) {
		return false
	}
	for len(after) > 0 {
		r, size := utf8.DecodeRune(after)
		after = after[size:]
		if !caseIgnorable(r) {
			return !cased(r)
		}
	}
	return true
}

// cased is Unicode's derived property Cased.
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// caseIgnorable is Unicode's derived property Case_Ignorable: the general categories Mn, Me,
// Cf, Lm, Sk and the word-break classes MidLetter, MidNumLet and Single_Quote.
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
