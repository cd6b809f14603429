package tests

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/stages/prepare"
)

// BenchmarkInputPipeline64 measures what training will see: 64 px batches of 128 from
// prepared synthetic shards through the whole input pipeline — shard read, JPEG decode,
// RandomResizedCrop, flip, colour jitter, CLIP normalisation, real CLIP tokenization with
// context 77 — with 2 decode workers. One op is one batch; samples/s is the figure to read.
func BenchmarkInputPipeline64(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "demo")
	cfg := prepare.Config{Source: "synthetic", Out: dir, ImageSize: 64, ResizeMode: "center_crop",
		Quality: 95, Workers: 2, RowGroupRows: 256, ShardRows: 1000}
	cfg.Synthetic.N = 4096
	if _, err := prepare.Run(context.Background(), cfg, quiet, io.Discard); err != nil {
		b.Fatal(err)
	}
	files, tok := splitFiles(b, dir, "train"), newTokenizer(b)
	const batch = 128
	l, err := loader.New(loader.Config{Files: files, Mode: loader.Train, BatchSize: batch, ImageSize: 64, ContextLen: 77,
		Tokenize: tok.TokenizeInto, Seed: 1, DecodeWorkers: 2, TokenizeWorkers: 1,
		Augment: imageproc.Augment{Flip: true, Jitter: imageproc.Jitter{Prob: 0.8, Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	epoch := 0
	ep := l.Epoch(ctx, epoch, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt, err := ep.Next()
		if errors.Is(err, io.EOF) {
			ep.Close()
			epoch++
			ep = l.Epoch(ctx, epoch, 0)
			bt, err = ep.Next()
		}
		if err != nil {
			b.Fatal(err)
		}
		bt.Release()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
	ep.Close()
	_ = os.RemoveAll(dir)
}
