package shard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReadShard reads one shard of 2,048 rows with 4 KiB random "images" (the size of
// a 64 px JPEG) in row groups of 256, all columns and then the text-only projection. Bytes
// per op are the file's size, so MB/s is file bytes read per second.
func BenchmarkReadShard(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]Record, 2048)
	for i := range recs {
		img := make([]byte, 4096)
		for j := range img {
			img[j] = byte(rng.Uint32())
		}
		caps := []string{fmt.Sprintf("a photo of object %d on a table", i), fmt.Sprintf("object %d, seen from above", i)}
		recs[i] = Record{Key: fmt.Sprintf("%09d", i), Caption: caps[0], Captions: caps, JPG: img,
			Width: 64, Height: 64, OriginalWidth: 640, OriginalHeight: 480, SHA256: fmt.Sprintf("%064x", i)}
	}
	path := filepath.Join(b.TempDir(), "bench.parquet")
	if _, err := WriteFile(path, recs, DefaultRowGroupRows); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		columns []string
		workers int
	}{
		{"all/workers=1", nil, 1},
		{"all/workers=2", nil, 2},
		{"text/workers=1", TextColumns, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(st.Size())
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				err := Read(context.Background(), []string{path}, ReadOptions{Columns: bc.columns, Workers: bc.workers},
					func(Sample) error { n++; return nil })
				if err != nil || n != len(recs) {
					b.Fatalf("read %d rows: %v", n, err)
				}
			}
			b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkWriteShard writes 1,024 rows with 4 KiB images through a Writer.
func BenchmarkWriteShard(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := make([]Record, 1024)
	var bytes int64
	for i := range recs {
		img := make([]byte, 4096)
		for j := range img {
			img[j] = byte(rng.Uint32())
		}
		recs[i] = Record{Key: fmt.Sprintf("%09d", i), Caption: "a photo of a thing", JPG: img, Width: 64, Height: 64}
		bytes += int64(len(img))
	}
	b.SetBytes(bytes)
	for b.Loop() {
		w, err := NewWriter(b.TempDir(), "train", WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
