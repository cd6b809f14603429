package tokenizer

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestTokenizeLines(t *testing.T) {
	tok := newTestTokenizer(t)
	in := "a photo of a dog.\r\nhello world!\n\nA photo of a dog."
	want := "[49406,320,1125,539,320,1929,269,49407]\n" +
		"[49406,3306,1002,256,49407,0,0,0]\n" +
		"[49406,49407,0,0,0,0,0,0]\n" +
		"[49406,320,1125,539,320,1929,269,49407]\n"
	var out bytes.Buffer
	if err := tok.TokenizeLines(strings.NewReader(in), &out, 8); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestTokenizeLinesErrors(t *testing.T) {
	tok := newTestTokenizer(t)
	full := strings.Repeat("a ", MaxLineBytes/2) // exactly MaxLineBytes: accepted
	tests := []struct {
		name, in string
		ctx      int
		w        *failWriter
		wantErr  string // "" for success
	}{
		{"full line", "x\n" + full + "\r\ny\n", 77, nil, ""},
		{"long line", "x\n" + full + "b\ny\n", 77, nil, "line 2: longer than"},
		{"long last line", "x\ny\n" + strings.Repeat("b", MaxLineBytes+10), 77, nil, "line 3: longer than"},
		{"short context", "x\n", 1, nil, "context length 1"},
		{"huge context", "x\n", MaxContextLength + 1, nil, "context length"},
		{"write error", "x\n", 77, &failWriter{}, "write"},
	}
	for _, tc := range tests {
		var w interface{ Write([]byte) (int, error) } = new(bytes.Buffer)
		if tc.w != nil {
			w = tc.w
		}
		err := tok.TokenizeLines(strings.NewReader(tc.in), w, tc.ctx)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}

type failWriter struct{}

func (*failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
