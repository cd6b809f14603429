package loader

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// captionOf decodes row r of a batch's byteTokenize tokens.
func captionOf(b Batch, r int) string {
	toks := b.Tokens[r*b.ContextLen+1:]
	var sb strings.Builder
	for _, id := range toks[:slices.Index(toks, eot)] {
		sb.WriteByte(byte(id))
	}
	return sb.String()
}

// TestCaptionsPerImage: with 3 captions per image a training batch of 6 rows holds 2 records,
// each as 3 consecutive rows under its key, with distinct captions of its own when it has 3
// (each caption as often as the others when fewer), one caption row per image row, each view
// augmented on its own; the batches do not depend on the worker count; 1 draws as before.
func TestCaptionsPerImage(t *testing.T) {
	recs := testRecords(t, 24, 32, true)
	files := writeShards(t, recs, 2, 5)
	cfg := baseConfig(files, Train)
	cfg.BatchSize, cfg.CaptionsPerImage = 6, 3
	bs, _ := readAll(t, cfg, 1, 0)
	if len(bs) != 12 {
		t.Fatalf("%d batches of 2 records from 24, want 12", len(bs))
	}
	imgLen := 3 * cfg.ImageSize * cfg.ImageSize
	for _, b := range bs {
		if b.Size != 6 || len(b.Keys) != 6 || len(b.Labels) != 6 || b.Captions() != 6 || len(b.Images) != 6*imgLen {
			t.Fatalf("batch: %d rows, %d keys, %d labels, %d captions", b.Size, len(b.Keys), len(b.Labels), b.Captions())
		}
		for g := range 2 {
			key := b.Keys[3*g]
			var n int
			fmt.Sscanf(key, "k%05d", &n)
			var caps []string
			for r := 3 * g; r < 3*g+3; r++ {
				if b.Keys[r] != key || b.TextImage[r] != int32(r) || b.Labels[r] != int32(n%5) {
					t.Fatalf("row %d: key %s, text image %d, label %d; want %s, %d, %d", r, b.Keys[r], b.TextImage[r], b.Labels[r], key, r, n%5)
				}
				c := captionOf(b, r)
				if !strings.HasPrefix(c, fmt.Sprintf("image %d ", n)) {
					t.Fatalf("row %d of %s has caption %q", r, key, c)
				}
				caps = append(caps, c)
			}
			slices.Sort(caps)
			distinct := len(slices.Compact(slices.Clone(caps)))
			if have := len(recs[n].Captions); distinct != have {
				t.Errorf("%s (%d captions): rows have %d distinct captions %q", key, have, distinct, caps)
			}
			if slices.Equal(b.Images[3*g*imgLen:(3*g+1)*imgLen], b.Images[(3*g+1)*imgLen:(3*g+2)*imgLen]) {
				t.Errorf("%s: two views are the same image (augmentation drawn once)", key)
			}
		}
	}
	cfg.DecodeWorkers = 1
	if again, _ := readAll(t, cfg, 1, 0); digest(again) != digest(bs) {
		t.Error("1 decode worker made other batches than 2")
	}
	one := baseConfig(files, Train)
	withOne := one
	withOne.CaptionsPerImage = 1
	a, _ := readAll(t, one, 0, 0)
	b, _ := readAll(t, withOne, 0, 0)
	if digest(a) != digest(b) {
		t.Error("captions_per_image 1 drew other batches than the default")
	}
	bad := baseConfig(files, Train)
	bad.CaptionsPerImage = 3 // batch 8
	if _, err := New(bad); err == nil {
		t.Error("a batch of 8 rows took 3 captions per image")
	}
}

// TestDropWords checks caption word dropout: p 0 keeps the caption, kept words keep their
// order, at least one word survives, and the share dropped is about p.
func TestDropWords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	caption := "a dog runs on the grass near a red ball"
	words := strings.Fields(caption)
	if got := dropWords([]string{caption}, 0, rng); got[0] != caption {
		t.Errorf("p 0: %q", got[0])
	}
	var kept, total int
	for range 2000 {
		got := strings.Fields(dropWords([]string{caption}, 0.3, rng)[0])
		if len(got) == 0 {
			t.Fatal("every word dropped")
		}
		i := 0
		for _, w := range got { // a subsequence of the caption's words
			for i < len(words) && words[i] != w {
				i++
			}
			if i == len(words) {
				t.Fatalf("%q is not the caption's words in order", got)
			}
			i++
		}
		kept += len(got)
		total += len(words)
	}
	if share := 1 - float64(kept)/float64(total); share < 0.27 || share > 0.33 {
		t.Errorf("dropped %.3f of the words at p 0.3", share)
	}
	for range 100 {
		if got := dropWords([]string{caption}, 0.999, rng)[0]; len(strings.Fields(got)) != 1 {
			t.Fatalf("p 0.999: %q, want one word", got)
		}
	}
	if got := dropWords([]string{""}, 0.5, rng)[0]; got != "" {
		t.Errorf("empty caption became %q", got)
	}
}

// TestWordDropoutLoader: the loader applies word dropout to training captions only, and
// deterministically.
func TestWordDropoutLoader(t *testing.T) {
	recs := testRecords(t, 16, 16, false)
	files := writeShards(t, recs, 1, 4)
	cfg := baseConfig(files, Train)
	cfg.WordDropout = 0.5
	a, _ := readAll(t, cfg, 0, 0)
	b, _ := readAll(t, cfg, 0, 0)
	if digest(a) != digest(b) {
		t.Error("word dropout is not deterministic")
	}
	shorter := 0
	for _, batch := range a {
		for r := range batch.Size {
			if len(strings.Fields(captionOf(batch, r))) < 4 { // "image N caption M" has 4
				shorter++
			}
		}
	}
	if shorter == 0 {
		t.Error("no training caption lost a word at p 0.5")
	}
	ev := baseConfig(files, Eval)
	ev.WordDropout = 0.5
	e, _ := readAll(t, ev, 0, 0)
	for _, batch := range e {
		for r := range batch.Captions() {
			if len(strings.Fields(captionOf(batch, r))) != 4 {
				t.Fatalf("eval caption %q lost words", captionOf(batch, r))
			}
		}
	}
}
