// Package tests runs clipgo's stages end to end on small data: prepare → shards → the input
// pipeline → batches, and the clipgo binary itself.
package tests

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/stages/prepare"
	"github.com/clipgo/clipgo/text/tokenizer"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// prepareSynthetic writes a small synthetic dataset and returns its directory.
func prepareSynthetic(t *testing.T, n int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "demo")
	cfg := prepare.Config{Source: "synthetic", Out: out, ImageSize: 32, ResizeMode: "center_crop",
		Quality: 95, Workers: 2, ValFraction: 0.1, RowGroupRows: 32, ShardRows: 100}
	cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = n, 30
	if _, err := prepare.Run(context.Background(), cfg, quiet, io.Discard); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return out
}

// splitFiles returns the shard files of a prepared dataset's split.
func splitFiles(t testing.TB, dir, split string) []string {
	t.Helper()
	m, err := shard.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := m.Files(dir, split)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// newTokenizer returns the CLIP tokenizer.
func newTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.New()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type epochResult struct {
	images  [][]float32
	tokens  [][]int32
	keys    []string
	skipped int64
}

// runEpoch reads one epoch of split through the loader and keeps copies of every batch.
func runEpoch(t *testing.T, files []string, mode loader.Mode, workers, batch int, tok *tokenizer.Tokenizer) epochResult {
	t.Helper()
	l, err := loader.New(loader.Config{Files: files, Mode: mode, BatchSize: batch, ImageSize: 32, ContextLen: 32,
		Tokenize: tok.TokenizeInto, Seed: 7, ReadWorkers: workers, DecodeWorkers: workers, TokenizeWorkers: workers})
	if err != nil {
		t.Fatal(err)
	}
	ep := l.Epoch(context.Background(), 0, 0)
	defer ep.Close()
	var r epochResult
	for {
		b, err := ep.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("workers %d: %v", workers, err)
		}
		checkBatch(t, b, batch, mode)
		r.images = append(r.images, slices.Clone(b.Images))
		r.tokens = append(r.tokens, slices.Clone(b.Tokens))
		r.keys = append(r.keys, b.Keys...)
		b.Release()
	}
	for _, n := range ep.Stats().Skipped {
		r.skipped += n
	}
	return r
}

func checkBatch(t *testing.T, b *loader.Batch, batch int, mode loader.Mode) {
	t.Helper()
	if mode == loader.Train && b.Size != batch {
		t.Fatalf("training batch of %d, want exactly %d", b.Size, batch)
	}
	if len(b.Images) != b.Size*3*32*32 || len(b.Tokens) != b.Captions()*32 || len(b.Keys) != b.Size {
		t.Fatalf("batch shapes: images %d tokens %d keys %d for B=%d", len(b.Images), len(b.Tokens), len(b.Keys), b.Size)
	}
	// CLIP-normalised pixels of [0,1] inputs lie within about [-1.8, 2.2].
	for _, v := range b.Images {
		if v < -1.9 || v > 2.2 || v != v {
			t.Fatalf("pixel value %v outside the normalised range", v)
		}
	}
	for row := 0; row < b.Captions(); row++ {
		ids := b.Tokens[row*32 : (row+1)*32]
		if ids[0] != tokenizer.SOT {
			t.Fatalf("token row %d does not start with SOT: %v", row, ids)
		}
		if !slices.Contains(ids, tokenizer.EOT) {
			t.Fatalf("token row %d has no EOT: %v", row, ids)
		}
	}
}

func TestPrepareThenLoadBatches(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := prepareSynthetic(t, 400)
	m, err := shard.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	train, tok := splitFiles(t, dir, "train"), newTokenizer(t)
	nTrain := int(m.Splits["train"].Images)

	one := runEpoch(t, train, loader.Train, 1, 32, tok)
	for _, w := range []int{2, 4} {
		other := runEpoch(t, train, loader.Train, w, 32, tok)
		if !slices.Equal(one.keys, other.keys) {
			t.Fatalf("workers 1 and %d give different sample order", w)
		}
		for i := range one.images {
			if !slices.Equal(one.images[i], other.images[i]) || !slices.Equal(one.tokens[i], other.tokens[i]) {
				t.Fatalf("batch %d differs between 1 and %d workers", i, w)
			}
		}
	}
	if want := nTrain / 32 * 32; len(one.keys) != want || one.skipped != 0 {
		t.Fatalf("training epoch gave %d samples (%d skipped), want %d (drop-last of %d)", len(one.keys), one.skipped, want, nTrain)
	}
	sorted := slices.Clone(one.keys)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(one.keys) {
		t.Fatal("a sample appears twice in one epoch")
	}
	if slices.IsSorted(one.keys) {
		t.Error("training order is not shuffled")
	}

	val, err := m.Files(dir, "val")
	if err != nil {
		t.Fatal(err)
	}
	ev := runEpoch(t, val, loader.Eval, 2, 32, tok)
	if len(ev.keys) != int(m.Splits["val"].Images) || !slices.IsSorted(ev.keys) {
		t.Fatalf("eval epoch: %d keys (want all %d, in file order)", len(ev.keys), m.Splits["val"].Images)
	}
}
