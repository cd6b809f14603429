package tokenizer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

func newTestTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dogIDs are OpenAI's ids of "a photo of a dog." (golden_tokens.jsonl).
var dogIDs = []int32{320, 1125, 539, 320, 1929, 269}

func TestTokenize(t *testing.T) {
	tok := newTestTokenizer(t)
	const text = "A photo of a dog."
	pad := func(ids []int32, n int) []int32 { return append(ids, make([]int32, n-len(ids))...) }
	tests := []struct {
		ctx  int
		want []int32
	}{
		{77, pad(append(append([]int32{SOT}, dogIDs...), EOT), 77)},
		{9, pad(append(append([]int32{SOT}, dogIDs...), EOT), 9)},
		{8, append(append([]int32{SOT}, dogIDs...), EOT)}, // exactly full
		{7, append(append([]int32{SOT}, dogIDs[:5]...), EOT)},
		{5, []int32{SOT, 320, 1125, 539, EOT}},
		{3, []int32{SOT, 320, EOT}},
		{2, []int32{SOT, EOT}},
	}
	for _, tc := range tests {
		got, err := tok.Tokenize(text, tc.ctx)
		if err != nil {
			t.Fatalf("Tokenize(ctx %d): %v", tc.ctx, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Tokenize(ctx %d) = %v, want %v", tc.ctx, got, tc.want)
		}
	}
	for _, ctx := range []int{-1, 0, 1, MaxContextLength + 1} {
		if _, err := tok.Tokenize(text, ctx); err == nil {
			t.Errorf("Tokenize(ctx %d): no error", ctx)
		}
	}
	if err := tok.TokenizeInto(make([]int32, 1), text); !errors.Is(err, errShortContext) {
		t.Errorf("TokenizeInto(len 1) = %v, want errShortContext", err)
	}
}

// TestTokenizeIntoOverwrites checks that every element of dst is written (a reused batch
// buffer holds the previous caption).
func TestTokenizeIntoOverwrites(t *testing.T) {
	tok := newTestTokenizer(t)
	dst := make([]int32, 12)
	for i := range dst {
		dst[i] = 777
	}
	if err := tok.TokenizeInto(dst, "a photo of a dog."); err != nil {
		t.Fatal(err)
	}
	want := []int32{SOT, 320, 1125, 539, 320, 1929, 269, EOT, 0, 0, 0, 0}
	if !slices.Equal(dst, want) {
		t.Errorf("got %v, want %v", dst, want)
	}
}

func TestTokenizeIntoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers at random")
	}
	tok := newTestTokenizer(t)
	dst := make([]int32, DefaultContextLength)
	// Text that ftfy leaves alone costs nothing; text it repairs (mojibake, HTML references,
	// ligatures, ...) allocates the repaired copy.
	texts := []string{"A black dog and a spotted dog are fighting", "Ελληνικά 日本語 café", "ΣΑΣ İ"}
	for _, s := range texts {
		if err := tok.TokenizeInto(dst, s); err != nil { // warm the cache and the pool
			t.Fatal(err)
		}
	}
	for _, s := range texts {
		allocs := testing.AllocsPerRun(100, func() {
			if err := tok.TokenizeInto(dst, s); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("TokenizeInto(%q): %.1f allocations per call, want 0", s, allocs)
		}
	}
}

func TestDecode(t *testing.T) {
	tok := newTestTokenizer(t)
	tests := []struct {
		ids  []int32
		want string
	}{
		{nil, ""},
		{dogIDs, "a photo of a dog . "},
		{[]int32{SOT, 320, EOT}, "<|startoftext|>a <|endoftext|>"},
		{[]int32{0, 0}, "!!"},
		{[]int32{-1, VocabSize, 320}, "a "},                             // unknown ids are skipped
		{tok.Encode("don't STOP"), "don 't stop "},                      //
		{tok.Encode("日本語のテキスト"), "日本語のテキスト "},                           // multi-byte characters split across tokens
		{tok.Encode("Ελληνικά")[:1], "\uFFFD"},                          // a cut character
		{tok.Encode("tabs\tand\nnewlines   x"), "tabs and newlines x "}, //
	}
	for _, tc := range tests {
		if got := tok.Decode(tc.ids); got != tc.want {
			t.Errorf("Decode(%v) = %q, want %q", tc.ids, got, tc.want)
		}
	}
}

// TestEncodeLongWord checks that a very long word (no spaces) is encoded in reasonable time
// and that TokenizeInto, which stops early, agrees with Encode on its prefix.
func TestEncodeLongWord(t *testing.T) {
	tok := newTestTokenizer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 20000)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	ids := tok.Encode(string(b))
	if len(ids) < 1000 {
		t.Fatalf("%d ids for 20,000 random letters", len(ids))
	}
	ctx, err := tok.Tokenize(string(b), DefaultContextLength)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ctx[1:DefaultContextLength-1], ids[:DefaultContextLength-2]) || ctx[DefaultContextLength-1] != EOT {
		t.Errorf("Tokenize disagrees with Encode on a long word")
	}
	if tok.cache.len() != 0 {
		t.Errorf("a %d-byte word was cached", len(b))
	}
}

func TestWordCacheBounded(t *testing.T) {
	c := newWordCache()
	for i := range 3 * MaxCachedWords {
		c.put([]byte(fmt.Sprint("w", i)), []int32{int32(i)})
	}
	if n := c.len(); n > MaxCachedWords || n == 0 {
		t.Errorf("cache holds %d words, bound %d", n, MaxCachedWords)
	}
	ids, ok := c.get([]byte(fmt.Sprint("w", 3*MaxCachedWords-1)))
	if !ok || !slices.Equal(ids, []int32{3*MaxCachedWords - 1}) {
		t.Errorf("last word: %v %v", ids, ok)
	}
	c.put(make([]byte, MaxCachedWordBytes+1), []int32{1})
	if _, ok := c.get(make([]byte, MaxCachedWordBytes+1)); ok {
		t.Errorf("a word longer than MaxCachedWordBytes was cached")
	}
}

// TestConcurrent tokenizes the same texts from many goroutines through one tokenizer (with a
// cold cache, so that lookups and inserts race) and compares with a sequential run. Run it
// with -race.
func TestConcurrent(t *testing.T) {
	texts := []string{"a photo of a dog.", "A child in a pink dress is climbing up a set of stairs .",
		"Ελληνικά λέξεις", "&amp; &lt;b&gt;", "ooooooooooo hahahahaha", "日本語のテキスト 🐶"}
	ref := newTestTokenizer(t)
	want := make([][]int32, len(texts))
	for i, s := range texts {
		want[i] = ref.Encode(s)
	}
	tok := newTestTokenizer(t)
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(texts))
	for g := range 8 {
		wg.Go(func() {
			dst := make([]int32, DefaultContextLength)
			for k := range 50 * len(texts) {
				i := (k + g) % len(texts)
				if got := tok.Encode(texts[i]); !slices.Equal(got, want[i]) {
					errs <- fmt.Sprintf("goroutine %d Encode(%q) = %v, want %v", g, texts[i], got, want[i])
					return
				}
				if err := tok.TokenizeInto(dst, texts[i]); err != nil || !slices.Equal(dst[1:1+len(want[i])], want[i]) {
					errs <- fmt.Sprintf("goroutine %d TokenizeInto(%q) = %v, %v", g, texts[i], dst, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestTokenizeLongText checks that a text past MaxTextBytes gives the context of its start,
// and that a 64 MiB word (a corrupt caption) costs the scratch of MaxTextBytes, not ~20
// bytes per byte of the word.
func TestTokenizeLongText(t *testing.T) {
	tok := newTestTokenizer(t)
	words := strings.Repeat("a photo of a dog. ", MaxTextBytes/10)
	tests := []struct {
		name, text string
		same       string // a text with the same context
	}{
		{"many words", words, words[:1000]},
		{"caption then a 64 MiB word", "a photo of a dog. " + strings.Repeat("x", 64<<20), "a photo of a dog. " + strings.Repeat("x", 1000)},
		{"invalid UTF-8 at the cut", strings.Repeat("é", MaxTextBytes), strings.Repeat("é", 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := tok.Tokenize(tc.text, DefaultContextLength)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
				t.Errorf("tokenizing %d bytes allocated %d MiB", len(tc.text), alloc>>20)
			}
			want, err := tok.Tokenize(tc.same, DefaultContextLength)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("context\n%v\nwant\n%v", got, want)
			}
		})
	}
}
