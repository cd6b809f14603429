package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTokenize feeds arbitrary bytes (invalid UTF-8 included) and context lengths, and checks
// the invariants every consumer relies on: no panic, ids in range, SOT first, EOT last
// before the zero padding, the context equal to a prefix of Encode, and the same ids from a
// warm cache as from a cold one.
func FuzzTokenize(f *testing.F) {
	var edge []string
	if data, err := os.ReadFile("testdata/edge_texts.json"); err == nil {
		if err := json.Unmarshal(data, &edge); err != nil {
			f.Fatal(err)
		}
	}
	for i, s := range edge {
		f.Add(s, uint8(i))
	}
	for _, s := range []string{"\xff\xfe", "a\xe2\x82b", "\xed\xa0\x80", "&#x\xff;", "Σ\xff", "'\xc5", "<|\xc5"} {
		f.Add(s, uint8(5))
	}
	warm := newTestTokenizer(f)
	f.Fuzz(func(t *testing.T, text string, n uint8) {
		ctxLen := 2 + int(n)
		cold := newTestTokenizer(t)
		ids := cold.Encode(text)
		for _, id := range ids {
			if id < 0 || id >= VocabSize {
				t.Fatalf("Encode(%+q): id %d out of range", text, id)
			}
		}
		if again := warm.Encode(text); !slices.Equal(again, ids) {
			t.Fatalf("Encode(%+q): cold %v, warm %v", text, ids, again)
		}
		ctx, err := warm.Tokenize(text, ctxLen)
		if err != nil {
			t.Fatal(err)
		}
		if len(ctx) != ctxLen || ctx[0] != SOT {
			t.Fatalf("Tokenize(%+q, %d) = %v: want SOT first", text, ctxLen, ctx)
		}
		k := min(len(ids), ctxLen-2)
		if !slices.Equal(ctx[1:1+k], ids[:k]) || ctx[1+k] != EOT {
			t.Fatalf("Tokenize(%+q, %d) = %v, Encode %v", text, ctxLen, ctx, ids)
		}
		for _, id := range ctx[2+k:] {
			if id != 0 {
				t.Fatalf("Tokenize(%+q, %d) = %v: non-zero padding", text, ctxLen, ctx)
			}
		}
		if s := warm.Decode(ids); !utf8.ValidString(s) {
			t.Fatalf("Decode(Encode(%+q)) = %+q: invalid UTF-8", text, s)
		}
	})
}

// FuzzTokenizeLines checks that any input gives one JSON array of the context length per
// line, or an error.
func FuzzTokenizeLines(f *testing.F) {
	f.Add([]byte("a photo of a dog.\nhello\r\n\n"))
	f.Add([]byte("\xff\n\r\r\n&amp;"))
	tok := newTestTokenizer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := tok.TokenizeLines(bytes.NewReader(in), &out, 4); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		want := bytes.Count(in, []byte("\n"))
		if len(in) > 0 && in[len(in)-1] != '\n' {
			want++
		}
		if out.Len() == 0 {
			lines = nil
		}
		if len(lines) != want {
			t.Fatalf("%d output lines for %d input lines", len(lines), want)
		}
		for _, l := range lines {
			var ids []int32
			if err := json.Unmarshal([]byte(l), &ids); err != nil || len(ids) != 4 || ids[0] != SOT {
				t.Fatalf("output line %q: %v", l, err)
			}
		}
	})
}
