package loader

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/clipgo/clipgo/data/imageproc"
)

// BenchmarkLoader64 measures training throughput at 64 px: batches of 128 from shards of
// pre-resized 64×64 JPEGs, 2 decode workers, flip and colour jitter on, batches released as a
// training loop would. One op is one batch; samples/s is the figure to compare with the
// trainer's step rate, stall_ms/batch how long the consumer waited.
func BenchmarkLoader64(b *testing.B) {
	const n = 2048
	files := writeShards(b, testRecords(b, n, 64, false), 2, 256)
	cfg := Config{
		Files: files, Mode: Train, BatchSize: 128, ImageSize: 64, ContextLen: 77,
		Tokenize: byteTokenize, Seed: 1, DecodeWorkers: 2,
		Augment: imageproc.Augment{Flip: true, Jitter: imageproc.Jitter{Prob: 0.8, Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}},
	}
	l, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var stall time.Duration
	got := 0
	for epoch := 0; got < b.N; epoch++ {
		e := l.Epoch(context.Background(), epoch, 0)
		for got < b.N {
			batch, err := e.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			batch.Release()
			got++
		}
		stall += e.Stats().Stall
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(got*cfg.BatchSize)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(stall.Milliseconds())/float64(got), "stall_ms/batch")
}
