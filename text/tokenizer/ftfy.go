package tokenizer

import (
	"html"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

// This file and ftfy_encoding.go reproduce ftfy.fix_text (ftfy 6.3.1, its default
// TextFixerConfig), the first step of basic_clean in OpenAI's and open_clip's tokenizers:
// mojibake repaired, HTML entities decoded (unless the text looks like HTML), ligatures split,
// full- and half-width forms narrowed, curly quotes straightened, line breaks unified, terminal
// escapes and control characters dropped, NFC. ftfy is not packaged for Debian and no Go
// library does this, so it is written here from ftfy's published source; the tests compare it
// with outputs of ftfy itself (testdata/ftfy_cases.jsonl).
//
// Go strings cannot hold the lone surrogates a Python str can, but none can arise here: the
// input is valid UTF-8, Python's html.unescape maps surrogate references to U+FFFD, and ftfy's
// utf-8-variants decoder refuses lone surrogates. So ftfy's fix_surrogates is the identity.

const (
	// maxDecodeLength is ftfy's max_decode_length: a segment (a line) longer than this many
	// code points is fixed in pieces, which bounds the cost of one fix.
	maxDecodeLength = 1_000_000
	// maxFixPasses bounds the fixed-point loops ftfy runs without a bound (fix_and_explain and
	// fix_encoding repeat until nothing changes); no real text needs more than a few passes.
	maxFixPasses = 16
)

// needsFixText reports whether fixText could change s (valid UTF-8): false when no fixer of
// ftfy's has anything to do, which is what plain captions look like, so they skip it without
// allocating. It errs towards true ('&' always counts).
func needsFixText(s []byte) bool {
	ascii := true
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c == '&' || c == '\r' || c == 0x1b || dropControl(rune(c)) < 0 {
				return true
			}
			i++
			continue
		}
		ascii = false
		r, size := utf8.DecodeRune(s[i:])
		if isC1(r) || isLigature(r) || narrowWidth(r) != r || uncurlQuote(r) != r ||
			r == 0x2028 || r == 0x2029 || dropControl(r) < 0 {
			return true
		}
		i += size
	}
	return !ascii && (badnessRE().Match(s) || !norm.NFC.IsNormal(s))
}

// fixText is ftfy.fix_text(text): the text is fixed line by line ("\n" ends a segment and
// stays in it), and entities are left alone from the first line holding a '<' on, as ftfy's
// unescape_html="auto" does (it switches the option off for the rest of the text).
func fixText(text string) string {
	var out strings.Builder
	out.Grow(len(text))
	unescape := true
	for pos := 0; pos < len(text); {
		end := len(text)
		if i := strings.IndexByte(text[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		end = pos + runePrefixLen(text[pos:end], maxDecodeLength)
		segment := text[pos:end]
		if unescape && strings.IndexByte(segment, '<') >= 0 {
			unescape = false
		}
		out.WriteString(fixSegment(segment, unescape))
		pos = end
	}
	return out.String()
}

// runePrefixLen returns the byte length of the first n code points of s (all of s if shorter).
func runePrefixLen(s string, n int) int {
	if len(s) <= n {
		return len(s)
	}
	count := 0
	for i := range s {
		if count == n {
			return i
		}
		count++
	}
	return len(s)
}

// fixSegment is ftfy's fix_and_explain on one segment: every fixer in ftfy's order, repeated
// until a pass changes nothing.
func fixSegment(text string, unescape bool) string {
	for range maxFixPasses {
		orig := text
		if unescape {
			text = unescapeEntities(text)
		}
		text = fixEncoding(text)
		text = fixC1Controls(text)
		text = ligatures.Replace(text)
		text = strings.Map(narrowWidth, text)
		text = strings.Map(uncurlQuote, text)
		text = lineBreaks.Replace(text)
		text = removeTerminalEscapes(text)
		text = strings.Map(dropControl, text)
		text = norm.NFC.String(text)
		if text == orig {
			break
		}
	}
	return text
}

// ligatures is ftfy's fix_latin_ligatures: Latin typographic ligatures and the legacy
// digraphs, split (æ, œ and the like stay: they are letters of their languages).
var ligatures = strings.NewReplacer(
	"Ĳ", "IJ", "ĳ", "ij", "ŉ", "ʼn",
	"Ǳ", "DZ", "ǲ", "Dz", "ǳ", "dz", "Ǆ", "DŽ", "ǅ", "Dž", "ǆ", "dž",
	"Ǉ", "LJ", "ǈ", "Lj", "ǉ", "lj", "Ǌ", "NJ", "ǋ", "Nj", "ǌ", "nj",
	"ﬀ", "ff", "ﬁ", "fi", "ﬂ", "fl", "ﬃ", "ffi", "ﬄ", "ffl", "ﬅ", "ſt", "ﬆ", "st",
)

// isLigature reports whether ligatures replaces r.
func isLigature(r rune) bool {
	return r == 'Ĳ' || r == 'ĳ' || r == 'ŉ' || 0x1C4 <= r && r <= 0x1CC || 0x1F1 <= r && r <= 0x1F3 ||
		0xFB00 <= r && r <= 0xFB06
}

// lineBreaks is ftfy's fix_line_breaks: CRLF, CR, LINE SEPARATOR, PARAGRAPH SEPARATOR and NEXT
// LINE all become "\n".
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u2028", "\n", "\u2029", "\n", "\u0085", "\n")

// narrowWidth is ftfy's fix_character_width for one rune: U+3000 IDEOGRAPHIC SPACE becomes a
// space, and a Halfwidth and Fullwidth Forms character (U+FF01-U+FFEF) its NFKC form when that
// is a single rune (all of them are).
func narrowWidth(r rune) rune {
	switch {
	case r == 0x3000:
		return ' '
	case 0xFF01 <= r && r < 0xFFF0:
		if n, ok := widthMap()[r]; ok {
			return n
		}
	}
	return r
}

var widthMap = sync.OnceValue(func() map[rune]rune {
	m := make(map[rune]rune)
	for r := rune(0xFF01); r < 0xFFF0; r++ {
		s := string(r)
		if n := norm.NFKC.String(s); n != s && utf8.RuneCountInString(n) == 1 {
			m[r], _ = utf8.DecodeRuneInString(n)
		}
	}
	return m
})

// uncurlQuote is ftfy's uncurl_quotes for one rune: U+02BC and U+2018-U+201B become an
// apostrophe, U+201C-U+201F a straight double quote.
func uncurlQuote(r rune) rune {
	switch {
	case r == 0x02BC || 0x2018 <= r && r <= 0x201B:
		return '\''
	case 0x201C <= r && r <= 0x201F:
		return '"'
	}
	return r
}

// dropControl is ftfy's remove_control_chars for one rune (-1 drops it): C0 controls other
// than tab, line feed, form feed and carriage return, DEL, the deprecated format characters
// U+206A-U+206F, the byte-order mark and the interlinear annotation characters.
func dropControl(r rune) rune {
	switch {
	case r <= 0x08, r == 0x0B, 0x0E <= r && r <= 0x1F, r == 0x7F,
		0x206A <= r && r <= 0x206F, r == 0xFEFF, 0xFFF9 <= r && r <= 0xFFFC:
		return -1
	}
	return r
}

// removeTerminalEscapes is ftfy's remove_terminal_escapes: ANSI sequences ESC '[' (digits or
// ';')* letter are dropped. Python's \d is any decimal digit, not only ASCII.
func removeTerminalEscapes(s string) string {
	if strings.IndexByte(s, 0x1b) < 0 {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); {
		if n := ansiEscapeLen(s[i:]); n > 0 {
			i += n
			continue
		}
		out.WriteByte(s[i])
		i++
	}
	return out.String()
}

// ansiEscapeLen returns the length of the ANSI escape at the start of s, or 0.
func ansiEscapeLen(s string) int {
	if !strings.HasPrefix(s, "\x1b[") {
		return 0
	}
	for i := 2; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == ';' || isDecimal(r):
			i += size
		case 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
			return i + size
		default:
			return 0
		}
	}
	return 0
}

// unescapeEntities is ftfy's unescape_html: references of the form &#?[0-9A-Za-z]{1,24}; are
// decoded when they are HTML5 entities (or their upper-cased forms, e.g. &NTILDE; for Ñ, when
// that is not an entity of its own) or numeric references Python's html.unescape decodes
// completely; anything else stays as it is.
func unescapeEntities(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); {
		n := entityLen(s[i:])
		if n == 0 {
			out.WriteByte(s[i])
			i++
			continue
		}
		out.WriteString(decodeEntity(s[i : i+n]))
		i += n
	}
	return out.String()
}

// entityLen returns the length of the match of &#?[0-9A-Za-z]{1,24}; at the start of s, or 0.
func entityLen(s string) int {
	if len(s) < 3 || s[0] != '&' {
		return 0
	}
	start := 1
	if s[1] == '#' {
		start = 2
	}
	i := start
	for i < len(s) && i-start < 25 && isASCIIAlnum(s[i]) {
		i++
	}
	if i == start || i-start > 24 || i == len(s) || s[i] != ';' {
		return 0
	}
	return i + 1
}

// decodeEntity is ftfy's _unescape_fixup for one matched reference.
func decodeEntity(ref string) string {
	if strings.HasPrefix(ref, "&#") {
		if v := string(appendUnescape(nil, []byte(ref))); !strings.Contains(v, ";") {
			return v
		}
		return ref
	}
	if v, ok := htmlEntity(ref); ok {
		return v
	}
	return ref
}

// htmlEntity looks ref ("&name;") up in ftfy's HTML_ENTITIES: the HTML5 named references
// ending in ';', plus, for each all-lower-case one, its upper-cased name (decoding to the
// upper-cased text) where Python's html.unescape leaves that name alone.
func htmlEntity(ref string) (string, bool) {
	if v, ok := exactEntity(ref); ok {
		return v, true
	}
	lower := strings.ToLower(ref)
	if lower == ref || strings.ToUpper(lower) != ref {
		return "", false
	}
	v, ok := exactEntity(lower)
	if !ok || string(appendUnescape(nil, []byte(ref))) != ref {
		return "", false
	}
	// Python's str.upper is the full case mapping (ß is SS, ﬀ is FF). A Caser holds state, so
	// each call makes its own: the tokenizer runs on many goroutines, and this path is rare.
	return cases.Upper(language.Und).String(v), true
}

// exactEntity decodes ref when "name;" itself is an HTML5 entity. Go's html.UnescapeString
// also resolves a prefix without ';' (&ampx; is "&x;"); such a result keeps the ref's ';', which
// no entity's text but &semi;'s ends with.
func exactEntity(ref string) (string, bool) {
	v := html.UnescapeString(ref)
	if v == ref || strings.HasSuffix(v, ";") && ref != "&semi;" {
		return "", false
	}
	return v, true
}

func isASCIIAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isDecimal is Python's \d in a str pattern: a decimal digit of any script.
func isDecimal(r rune) bool { return unicode.Is(unicode.Nd, r) }
