package prepare

import (
	"io"

	"github.com/clipgo/clipgo/text/tokenizer"
)

// Tokenize reads one text per line from r and writes one JSON array of CLIP token ids per
// line to w, each contextLength long (SOT, BPE ids, EOT, zero padding).
func Tokenize(r io.Reader, w io.Writer, contextLength int) error {
	tok, err := tokenizer.New()
	if err != nil {
		return err
	}
	return tok.TokenizeLines(r, w, contextLength)
}
