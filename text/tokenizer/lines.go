package tokenizer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxLineBytes bounds one input line of TokenizeLines (a caption is ~100 bytes).
const MaxLineBytes = 1 << 20

// TokenizeLines reads one text per line from r (a trailing "\r" is dropped) and writes, for
// each, its context of contextLength ids as one JSON array per line, e.g.
// [49406,320,1929,49407,0,...]. A line longer than MaxLineBytes is an error naming its line
// number; nothing is written for it or after it.
func (t *Tokenizer) TokenizeLines(r io.Reader, w io.Writer, contextLength int) error {
	if contextLength < 2 || contextLength > MaxContextLength {
		return fmt.Errorf("context length %d: want 2 to %d", contextLength, MaxContextLength)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes+2) // room for the "\r\n" of a full line
	bw := bufio.NewWriter(w)
	ctx := make([]int32, contextLength)
	var out []byte
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) > MaxLineBytes {
			return fmt.Errorf("line %d: longer than %d bytes", line, MaxLineBytes)
		}
		if err := t.TokenizeInto(ctx, sc.Text()); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out[:0], '[')
		for i, id := range ctx {
			if i > 0 {
				out = append(out, ',')
			}
			out = strconv.AppendInt(out, int64(id), 10)
		}
		out = append(out, ']', '\n')
		if _, err := bw.Write(out); err != nil {
			return fmt.Errorf("line %d: write: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d: longer than %d bytes", line+1, MaxLineBytes)
		}
		return fmt.Errorf("line %d: read: %w", line+1, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
