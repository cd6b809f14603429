// Package readable formats values for messages people read, including messages that end up
// inside JSON (rejects.jsonl, logs), where a double quote comes out escaped as \".
package readable

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quote quotes s for a message: in single quotes when it is printable and holds no single
// quote or backslash ('a photo of the number: "{}".'), so that a double quote in s, or JSON
// around the message, adds no backslashes; otherwise as Go's %q does, which shows control
// characters, invalid UTF-8 and quotes unambiguously.
func Quote(s string) string {
	if !utf8.ValidString(s) || strings.ContainsAny(s, `'\`) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return strconv.Quote(s)
	}
	return "'" + s + "'"
}
