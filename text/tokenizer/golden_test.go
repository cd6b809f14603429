package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// goldenLine is one line of golden_tokens.jsonl: a text and what OpenAI's tokenizer gives.
type goldenLine struct {
	Text      string  `json:"text"`
	IDs       []int32 `json:"ids"`
	Context77 []int32 `json:"context77"`
	Context16 []int32 `json:"context16"` // testdata/edge_tokens.jsonl
}

func readGolden(t *testing.T, path string) []goldenLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []goldenLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var g goldenLine
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("%s line %d: %v", path, n, err)
		}
		lines = append(lines, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// TestGolden checks every text of OpenAI's reference output: Encode must give exactly its
// ids and Tokenize(text, 77) exactly its context.
func TestGolden(t *testing.T) {
	lines := readGolden(t, testenv.SharedFile(t, "data/clip/golden_tokens.jsonl"))
	tok := newTestTokenizer(t)
	matched := 0
	for i, g := range lines {
		ids := tok.Encode(g.Text)
		ctx, err := tok.Tokenize(g.Text, DefaultContextLength)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		okIDs, okCtx := slices.Equal(ids, g.IDs), slices.Equal(ctx, g.Context77)
		if okIDs && okCtx {
			matched++
			continue
		}
		if !okIDs {
			t.Errorf("line %d Encode(%q)\n got %v\nwant %v", i+1, g.Text, ids, g.IDs)
		}
		if !okCtx {
			t.Errorf("line %d Tokenize(%q, 77)\n got %v\nwant %v", i+1, g.Text, ctx, g.Context77)
		}
	}
	t.Logf("golden: %d of %d texts match OpenAI's ids and 77-token contexts", matched, len(lines))
	if len(lines) != 3027 {
		t.Errorf("golden file has %d texts, want 3027", len(lines))
	}
}

// TestEdgeCases checks texts chosen to hit every place where Go's and Python's semantics
// differ (case mapping, whitespace classes, HTML references, IGNORECASE folding, equal-rank
// merges, truncation), against testdata/reference.py run with Python's `regex` module.
func TestEdgeCases(t *testing.T) {
	lines := readGolden(t, "testdata/edge_tokens.jsonl")
	tok := newTestTokenizer(t)
	for i, g := range lines {
		if ids := tok.Encode(g.Text); !slices.Equal(ids, g.IDs) {
			t.Errorf("line %d Encode(%+q)\n got %v\nwant %v", i+1, g.Text, ids, g.IDs)
		}
		ctx, err := tok.Tokenize(g.Text, 16)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !slices.Equal(ctx, g.Context16) {
			t.Errorf("line %d Tokenize(%+q, 16)\n got %v\nwant %v", i+1, g.Text, ctx, g.Context16)
		}
	}
	if len(lines) < 80 {
		t.Errorf("only %d edge cases", len(lines))
	}
}
