package tokenizer

import (
	"regexp/syntax"
	"strings"
	"sync"
	"unicode/utf8"
)

// This file reproduces ftfy's fix_encoding (ftfy 6.3.1): text that reads as mojibake by ftfy's
// heuristic (badnessRE) is encoded back to bytes with the single-byte encoding it was
// wrongly decoded with, and decoded again as UTF-8.

// singleByte is one of the single-byte encodings ftfy tries, as a table both ways.
type singleByte struct {
	name   string
	decode [256]rune
	encode map[rune]byte
}

// charmapEncodings are ftfy's CHARMAP_ENCODINGS in the order it tries them. A "sloppy" codec
// decodes the bytes its encoding leaves undefined as Latin-1 does, and byte 0x1A as U+FFFD
// (ftfy's stand-in for a byte lost to a replacement character).
var charmapEncodings = sync.OnceValue(func() []*singleByte {
	var out []*singleByte
	for _, name := range []string{
		"latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
		"sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257",
		"iso-8859-2", "macroman", "cp437",
	} {
		out = append(out, newSingleByte(name))
	}
	return out
})

// newSingleByte builds the tables of an encoding named as ftfy names them.
func newSingleByte(name string) *singleByte {
	base, sloppy := strings.CutPrefix(name, "sloppy-")
	upper := upperHalves[base]
	e := &singleByte{name: name, encode: make(map[rune]byte, 256)}
	for b := range 256 {
		r := rune(b)
		if b >= 0x80 {
			if c := upper[b-0x80]; c != utf8.RuneError || !sloppy {
				r = c
			}
		}
		e.decode[b] = r
	}
	if sloppy {
		e.decode[0x1A] = utf8.RuneError
	}
	for b := 255; b >= 0; b-- {
		if r := e.decode[b]; r != utf8.RuneError || sloppy && b == 0x1A {
			e.encode[r] = byte(b)
		}
	}
	return e
}

// possible is ftfy's possible_encoding: every character of s is ASCII other than 0x1A, or
// one that a byte 0x80-0xFF or 0x1A decodes to.
func (e *singleByte) possible(s string) bool {
	for _, r := range s {
		if r < 0x80 && r != 0x1A {
			continue
		}
		b, ok := e.encode[r]
		if !ok || b < 0x80 && b != 0x1A {
			return false
		}
	}
	return true
}

// encodeString encodes s, which possible accepted.
func (e *singleByte) encodeString(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0x80 && r != 0x1A {
			out = append(out, byte(r))
		} else {
			out = append(out, e.encode[r])
		}
	}
	return out
}

// fixEncoding is ftfy's fix_encoding: one step of repair at a time until nothing changes.
func fixEncoding(text string) string {
	for range maxFixPasses {
		fixed := fixEncodingStep(text)
		if fixed == text {
			break
		}
		text = fixed
	}
	return text
}

// fixEncodingStep is ftfy's _fix_encoding_one_step_and_explain.
func fixEncodingStep(text string) string {
	if isASCIIString(text) || !isBad(text) {
		return text
	}
	latin1Possible := false
	for _, e := range charmapEncodings() {
		if !e.possible(text) {
			continue
		}
		latin1Possible = latin1Possible || e.name == "latin-1"
		b := e.encodeString(text)
		if e.name != "macroman" && alteredUTF8.find(b) >= 0 {
			b = restoreByteA0(b)
		}
		if strings.HasPrefix(e.name, "sloppy-") {
			b = lossyUTF8.replaceAll(b, []byte("\uFFFD"))
		}
		if fixed, ok := decodeUTF8Variants(b); ok {
			return fixed
		}
	}
	if start, _ := utf8Detector().find(text, 0); start >= 0 {
		if fixed := decodeInconsistentUTF8(text); fixed != text {
			return fixed
		}
	}
	// ftfy then checks for "windows-1252" among the possible encodings, a name its list never
	// holds (it says "sloppy-windows-1252"), so whenever Latin-1 was possible it re-decodes the
	// Latin-1 bytes as strict Windows-1252.
	if latin1Possible {
		if fixed, ok := latin1AsWindows1252(text); ok && fixed != text {
			return fixed
		}
	}
	if strings.ContainsFunc(text, isC1) {
		return fixC1Controls(text)
	}
	return text
}

// latin1AsWindows1252 is text.encode("latin-1").decode("windows-1252"), strict: false where a
// byte is one Windows-1252 leaves undefined.
func latin1AsWindows1252(text string) (string, bool) {
	w := upperHalves["windows-1252"]
	var out strings.Builder
	for _, r := range text {
		if 0x80 <= r && r < 0x100 {
			if r = w[r-0x80]; r == utf8.RuneError {
				return "", false
			}
		}
		out.WriteRune(r)
	}
	return out.String(), true
}

// fixC1Controls is ftfy's fix_c1_controls: each C1 control character (U+0080-U+009F) is read as
// the sloppy-Windows-1252 character of the same byte.
func fixC1Controls(text string) string {
	if !strings.ContainsFunc(text, isC1) {
		return text
	}
	w := upperHalves["windows-1252"]
	return strings.Map(func(r rune) rune {
		if isC1(r) && w[r-0x80] != utf8.RuneError {
			return w[r-0x80]
		}
		return r
	}, text)
}

func isC1(r rune) bool { return 0x80 <= r && r <= 0x9F }

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decodeUTF8Variants decodes b as ftfy's "utf-8-variants" codec, strictly: UTF-8, plus Java's
// C0 80 for U+0000 and CESU-8's surrogate pairs for the supplementary planes. Anything else
// ill-formed (a lone surrogate included) fails, as Python's strict decoder does.
func decodeUTF8Variants(b []byte) (string, bool) {
	var out strings.Builder
	out.Grow(len(b))
	for i := 0; i < len(b); {
		switch {
		case b[i] == 0xC0 && i+1 < len(b) && b[i+1] == 0x80:
			out.WriteByte(0)
			i += 2
			continue
		case b[i] == 0xED && i+5 < len(b) && 0xA0 <= b[i+1] && b[i+1] <= 0xAF && isContinuation(b[i+2]) &&
			b[i+3] == 0xED && 0xB0 <= b[i+4] && b[i+4] <= 0xBF && isContinuation(b[i+5]):
			r := rune(b[i+1]&0x0F)<<16 + rune(b[i+2]&0x3F)<<10 + rune(b[i+4]&0x0F)<<6 + rune(b[i+5]&0x3F) + 0x10000
			out.WriteRune(r)
			i += 6
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return "", false
		}
		out.Write(b[i : i+size])
		i += size
	}
	return out.String(), true
}

func isContinuation(c byte) bool { return 0x80 <= c && c <= 0xBF }

// restoreByteA0 is ftfy's restore_byte_a0: UTF-8 sequences whose 0xA0 byte (a no-break space)
// some program turned into a plain space get it back. "\xc3 " (à before a space) is first
// restored unless what follows makes it a Portuguese "à" word or a plain "Ã".
func restoreByteA0(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == 0xC3 && i+1 < len(b) && b[i+1] == ' ' && !aGraveWordFollows(b[i+2:]) {
			out = append(out, 0xA0, ' ')
			i++
		}
	}
	return alteredUTF8.replaceFunc(out, func(m []byte) []byte {
		m = append([]byte(nil), m...)
		for j, c := range m {
			if c == ' ' {
				m[j] = 0xA0
			}
		}
		return m
	})
}

// aGraveWordFollows is the negative lookahead (?! |quele|quela|quilo|s ) of ftfy's
// A_GRAVE_WORD_RE.
func aGraveWordFollows(rest []byte) bool {
	for _, w := range []string{" ", "quele", "quela", "quilo", "s "} {
		if strings.HasPrefix(string(rest), w) {
			return true
		}
	}
	return false
}

// bytePattern is an alternation of sequences of byte classes, matched leftmost-first the way
// Python's re matches bytes patterns made only of classes. Go's regexp cannot: it matches
// UTF-8 text, not arbitrary bytes.
type bytePattern [][]*[256]bool

// compileBytePattern turns alternatives written as class lists ("\xc2-\xdf|\x1a" is two
// classes: a range and a byte) into a bytePattern. Each alternative is a slice of classes;
// a class is a string of bytes and ranges b-b.
func compileBytePattern(alternatives ...[]string) bytePattern {
	p := make(bytePattern, len(alternatives))
	for i, alt := range alternatives {
		for _, class := range alt {
			set := new([256]bool)
			for j := 0; j < len(class); j++ {
				lo, hi := class[j], class[j]
				if j+2 < len(class) && class[j+1] == '-' {
					hi = class[j+2]
					j += 2
				}
				for c := int(lo); c <= int(hi); c++ {
					set[c] = true
				}
			}
			p[i] = append(p[i], set)
		}
	}
	return p
}

// matchAt returns the length of the first alternative matching at b[0:], or 0.
func (p bytePattern) matchAt(b []byte) int {
next:
	for _, alt := range p {
		if len(alt) > len(b) {
			continue
		}
		for j, set := range alt {
			if !set[b[j]] {
				continue next
			}
		}
		return len(alt)
	}
	return 0
}

// find returns the index of the leftmost match in b, or -1.
func (p bytePattern) find(b []byte) int {
	for i := range b {
		if p.matchAt(b[i:]) > 0 {
			return i
		}
	}
	return -1
}

// replaceFunc replaces every non-overlapping match, left to right, by f(match).
func (p bytePattern) replaceFunc(b []byte, f func([]byte) []byte) []byte {
	if p.find(b) < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if n := p.matchAt(b[i:]); n > 0 {
			out = append(out, f(b[i:i+n])...)
			i += n
			continue
		}
		out = append(out, b[i])
		i++
	}
	return out
}

func (p bytePattern) replaceAll(b, with []byte) []byte {
	return p.replaceFunc(b, func([]byte) []byte { return with })
}

// alteredUTF8 is ftfy's ALTERED_UTF8_RE: UTF-8 sequences that would be valid but for a 0xA0
// byte turned into a space, for the lead bytes where that is likely.
var alteredUTF8 = compileBytePattern(
	[]string{"\xc2\xc3\xc5\xce\xd0\xd9", " "},
	[]string{"\xe2\xe3", " ", "\x80-\x84\x86-\x9f\xa1-\xbf"},
	[]string{"\xe0-\xe3", "\x80-\x84\x86-\x9f\xa1-\xbf", " "},
	[]string{"\xf0", " ", "\x80-\xbf", "\x80-\xbf"},
	[]string{"\xf0", "\x80-\xbf", " ", "\x80-\xbf"},
	[]string{"\xf0", "\x80-\xbf", "\x80-\xbf", " "},
)

// lossyUTF8 is ftfy's LOSSY_UTF8_RE: UTF-8 (and CESU-8) sequences that lost continuation bytes
// to 0x1A (a byte that became U+FFFD) or, once per sequence, to '?'. They decode to U+FFFD.
var lossyUTF8 = compileBytePattern(
	[]string{"\xc2-\xdf", "\x1a"},
	[]string{"\xc2-\xc3", "?"},
	[]string{"\xed", "\xa0-\xaf", "\x1a?", "\xed", "\xb0-\xbf", "\x1a?\x80-\xbf"},
	[]string{"\xed", "\xa0-\xaf", "\x1a?\x80-\xbf", "\xed", "\xb0-\xbf", "\x1a?"},
	[]string{"\xe0-\xef", "\x1a?", "\x1a\x80-\xbf"},
	[]string{"\xe0-\xef", "\x1a\x80-\xbf", "\x1a?"},
	[]string{"\xf0-\xf4", "\x1a?", "\x1a\x80-\xbf", "\x1a\x80-\xbf"},
	[]string{"\xf0-\xf4", "\x1a\x80-\xbf", "\x1a?", "\x1a\x80-\xbf"},
	[]string{"\xf0-\xf4", "\x1a\x80-\xbf", "\x1a\x80-\xbf", "\x1a?"},
	[]string{"\x1a"},
)

// decodeInconsistentUTF8 is ftfy's decode_inconsistent_utf8: runs of characters that look like
// UTF-8 read as a single-byte encoding, inside text that is otherwise fine, are fixed one by one
// when they are shorter than the whole text and look bad on their own.
func decodeInconsistentUTF8(text string) string {
	d := utf8Detector()
	total := utf8.RuneCountInString(text)
	var out strings.Builder
	last := 0
	for i := 0; i < len(text); {
		start, end := d.find(text, i)
		if start < 0 {
			break
		}
		sub := text[start:end]
		out.WriteString(text[last:start])
		if utf8.RuneCountInString(sub) < total && isBad(sub) {
			out.WriteString(fixEncoding(sub))
		} else {
			out.WriteString(sub)
		}
		last, i = end, end
	}
	out.WriteString(text[last:])
	return out.String()
}

// runeSet is a set of runes given as a regexp class body.
type runeSet []rune // sorted lo, hi pairs, as regexp/syntax gives them

func newRuneSet(body string) runeSet {
	re, err := syntax.Parse("["+body+"]", syntax.Perl)
	if err != nil || re.Op != syntax.OpCharClass {
		panic("tokenizer: bad character class " + body) // a bug in the generated tables
	}
	return runeSet(re.Rune)
}

func (c runeSet) has(r rune) bool {
	for i := 0; i+1 < len(c); i += 2 {
		if c[i] <= r && r <= c[i+1] {
			return true
		}
	}
	return false
}

// utf8Clues holds ftfy's UTF8_DETECTOR_RE as classes:
//
//	(?<! [strict]) ( [first2][cont] | [first3][cont]{2} | [first4][cont]{3} )+
//
// matched by hand, since Go's regexp has no lookbehind.
type utf8Clues struct {
	first  [3]runeSet // lead characters of 2-, 3- and 4-byte sequences
	cont   runeSet
	strict runeSet
}

// find returns the byte span of the leftmost match in text at or after from, or -1, -1.
func (d *utf8Clues) find(text string, from int) (start, end int) {
	for i := from; i < len(text); {
		if before, _ := utf8.DecodeLastRuneInString(text[:i]); i == 0 || !d.strict.has(before) {
			if n := d.sequences(text[i:]); n > 0 {
				return i, i + n
			}
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	return -1, -1
}

// sequences returns the length of the longest run of UTF-8-like sequences at the start of s,
// each the first alternative that matches, as Python's greedy (...)+ does.
func (d *utf8Clues) sequences(s string) int {
	n := 0
	for {
		m := d.sequence(s[n:])
		if m == 0 {
			return n
		}
		n += m
	}
}

// sequence returns the length of one lead character and its continuations at the start of s.
func (d *utf8Clues) sequence(s string) int {
	lead, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return 0
	}
next:
	for k, first := range d.first {
		if !first.has(lead) {
			continue
		}
		n := size
		for range k + 1 {
			r, size := utf8.DecodeRuneInString(s[n:])
			if size == 0 || !d.cont.has(r) {
				continue next
			}
			n += size
		}
		return n
	}
	return 0
}

var utf8Detector = sync.OnceValue(func() *utf8Clues {
	return &utf8Clues{
		first:  [3]runeSet{newRuneSet(clueUtf8FirstOf2), newRuneSet(clueUtf8FirstOf3), newRuneSet(clueUtf8FirstOf4)},
		cont:   newRuneSet(clueUtf8Continuation),
		strict: newRuneSet(clueUtf8ContinuationStrict),
	}
})
