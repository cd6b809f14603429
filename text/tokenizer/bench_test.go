package tokenizer

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// builtinCaptions stand in for Flickr8k when ../shared is absent: captions of the same style
// and length (~12 words), written for this benchmark.
var builtinCaptions = []string{
	"A brown dog is running through the tall grass .",
	"Two children are playing on a swing set in a park .",
	"A man in a red jacket climbs a steep rock face .",
	"A woman with an umbrella walks down a rainy city street .",
	"A group of people stand on a beach watching the sunset .",
	"A little girl in a pink dress blows bubbles in the yard .",
	"A black and white dog catches a frisbee in mid-air .",
	"A cyclist rides along a dirt trail through the forest .",
	"Three young men are skateboarding near a concrete ramp .",
	"A boy jumps into a swimming pool on a sunny day .",
	"An older man sits on a bench reading a newspaper .",
	"Two dogs wrestle in the snow next to a wooden fence .",
}

// benchCaptions returns the Flickr8k training captions (captions.tsv, "image#n<TAB>caption")
// when the shared material is there, else builtinCaptions. Nothing of Flickr8k is stored.
func benchCaptions(b *testing.B) []string {
	dir := os.Getenv("CLIPGO_SHARED")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(testenv.RepoRoot(b)), "shared")
	}
	f, err := os.Open(filepath.Join(dir, "data", "flickr8k", "captions.tsv"))
	if err != nil {
		b.Logf("Flickr8k captions not found (%v): using %d built-in captions", err, len(builtinCaptions))
		return builtinCaptions
	}
	defer f.Close()
	var caps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if _, c, ok := strings.Cut(sc.Text(), "\t"); ok {
			caps = append(caps, c)
		}
	}
	if err := sc.Err(); err != nil || len(caps) == 0 {
		b.Fatalf("reading captions.tsv: %v (%d captions)", err, len(caps))
	}
	return caps
}

func reportCaptions(b *testing.B, caps []string) {
	n := 0
	for _, c := range caps {
		n += len(c)
	}
	b.SetBytes(int64(n / len(caps)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captions/s")
}

// BenchmarkTokenize measures TokenizeInto into a 77-id context over real captions, cycling
// through them with one shared tokenizer (its word cache warms up as in a training run).
// Run with -cpu 1 for the single-core figure.
func BenchmarkTokenize(b *testing.B) {
	caps := benchCaptions(b)
	tok := newTestTokenizer(b)
	dst := make([]int32, DefaultContextLength)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := tok.TokenizeInto(dst, caps[i%len(caps)]); err != nil {
			b.Fatal(err)
		}
	}
	reportCaptions(b, caps)
}

// BenchmarkTokenizeParallel is BenchmarkTokenize from GOMAXPROCS goroutines sharing one
// tokenizer, to show how the shared cache scales.
func BenchmarkTokenizeParallel(b *testing.B) {
	caps := benchCaptions(b)
	tok := newTestTokenizer(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]int32, DefaultContextLength)
		for i := 0; pb.Next(); i++ {
			if err := tok.TokenizeInto(dst, caps[i%len(caps)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportCaptions(b, caps)
}

// BenchmarkBPEWord measures one cache miss: the merge loop over a typical caption word.
func BenchmarkBPEWord(b *testing.B) {
	tok := newTestTokenizer(b)
	words := [][]byte{[]byte("climbing"), []byte("playhouse"), []byte("skateboarding"), []byte("a")}
	var dst []int32
	var s bpeScratch
	b.ReportAllocs()
	for i := range b.N {
		dst = tok.vocab.appendBPE(dst[:0], words[i%len(words)], &s)
	}
}
