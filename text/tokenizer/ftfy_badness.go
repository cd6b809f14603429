package tokenizer

import (
	"regexp"
	"strings"
	"sync"
)

// isBad is ftfy's is_bad: the text holds a sequence that is far more likely mojibake than
// intended, by badness.py's rules over its character categories (ftfy_classes.go).
func isBad(text string) bool { return badnessRE().MatchString(text) }

// pyClassSpace and pyClassWord are the bodies of Python's \s and \w in str patterns (Unicode
// whitespace incl. U+001C-U+001F; letters, numbers and '_'), which Go's \s and \w (ASCII) are not.
const (
	pyClassSpace = `\t\n\x{b}\f\r\x{1c}-\x{1f} \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`
	pyClassWord  = `\p{L}\p{N}_`
)

// badnessRE is badness.py's BADNESS_RE, one alternative per line as ftfy writes them.
var badnessRE = sync.OnceValue(func() *regexp.Regexp {
	const (
		c1    = badC1
		bad   = badBad
		lowA  = badLowerAccented
		upA   = badUpperAccented
		box   = badBox
		start = badStartPunctuation
		end   = badEndPunctuation
		cur   = badCurrency
		num   = badNumeric
		law   = badLaw
		lowC  = badLowerCommon
		upC   = badUpperCommon
		kao   = badKaomoji
		com   = badCommon
	)
	c := func(bodies ...string) string { return "[" + strings.Join(bodies, "") + "]" }
	return regexp.MustCompile(strings.Join([]string{
		c(c1),
		c(bad, lowA, upA, box, start, end, cur, num, law) + c(bad),
		`[a-zA-Z]` + c(lowC, upC) + c(bad),
		c(bad) + c(lowA, upA, box, start, end, cur, num, law),
		c(lowA, lowC, box, end, cur, num) + c(upA),
		c(box, end, cur, num) + c(lowA),
		c(lowA, box, end) + c(cur),
		c(pyClassSpace) + c(upA) + c(cur),
		c(upA, box) + c(num, law),
		c(lowA, upA, box, cur, end) + c(start) + c(num),
		c(lowA, upA, cur, num, box, law) + c(end) + c(start),
		c(cur, num, box) + c(start),
		`[a-z]` + c(upA) + c(start, cur),
		c(box) + c(kao),
		c(lowA, upA, cur, num, start, end, law) + c(box),
		c(box) + c(end),
		c(lowA, upA) + c(start, end) + c(pyClassWord),
		`[Œœ][^A-Za-z]`,
		c(upA) + `°`,
		`[ÂÃÎÐ]` + c(`€œŠš¢£Ÿž\x{a0}\x{ad}®©°·»`, start, end, `–—´`),
		`×[²³]`,
		`[ØÙ]` + c(com, cur, bad, num, start, `ŸŠ®°µ»`) + `[ØÙ]` + c(com, cur, bad, num, start, `ŸŠ®°µ»`),
		`à[²µ¹¼½¾]`,
		`√[±∂†≠®™´≤≥¥µø]`,
		`≈[°¢]`,
		`‚Ä[ìîïòôúùû†°¢π]`,
		`‚[âó][àä°ê]`,
		`вЂ`,
		`[ВГРС]` + c(c1, bad, start, end, cur, `°µ`) + `[ВГРС]`,
		`ГўВЂВ.[A-Za-z ]`,
		`Ã[\x{a0}¡]`,
		`[a-z]` + c(pyClassSpace) + `?[ÃÂ] `,
		`^[ÃÂ] `,
		c(`a-z.,?!`, end) + `Â` + c(` `, start, end),
		`β€[™\x{a0}Ά\x{ad}®°]`,
		`[ΒΓΞΟ]` + c(c1, bad, start, end, cur, `°`) + `[ΒΓΞΟ]`,
		`ā€`,
	}, "|"))
})
