package shard

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go/format"
)

// fuzzLimits keep a fuzzed file from asking for much memory.
var fuzzLimits = Limits{MaxValueBytes: 1 << 20, MaxRowBytes: 2 << 20, MaxRowGroupRows: 1 << 14,
	MaxRowGroupBytes: 8 << 20, MaxCaptions: 64, MaxFooterBytes: 1 << 20}

// FuzzReadShard reads arbitrary bytes as a shard file, every column, and describes it: any
// outcome but a panic or a hang is fine.
func FuzzReadShard(f *testing.F) {
	dir := f.TempDir()
	native, _ := writeShards(f, 1, 12, 4)
	valid, err := os.ReadFile(native[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(append([]byte("PAR1"), valid[len(valid)-8:]...))
	f.Add([]byte{})
	f.Add([]byte("PAR1PAR1"))
	damaged := append([]byte(nil), valid...)
	damaged[len(damaged)/3] ^= 0xff
	f.Add(damaged)
	hf := filepath.Join(dir, "hf.parquet")
	writeGeneric(f, hf, []hfRow{{Image: &hfImage{Bytes: []byte{1, 2, 3}}, Text: "a", Label: 1}, {Text: "b", Label: 2}})
	if b, err := os.ReadFile(hf); err == nil {
		f.Add(b)
	}
	i2d := filepath.Join(dir, "i2d.parquet")
	writeGeneric(f, i2d, []img2datasetRow{{Key: "k", Caption: "c", JPG: []byte{9}, Width: 1 << 40}})
	if b, err := os.ReadFile(i2d); err == nil {
		f.Add(b)
	}
	// Page headers declaring a 2 GiB body or 2^31-1 values: refused before parquet-go would
	// allocate from them (2.8 and 8 GiB before the page checks).
	_, jpg := shardBytes(f, native[0])
	for _, edit := range []func(*format.PageHeader){
		func(h *format.PageHeader) { h.CompressedPageSize = math.MaxInt32 },
		func(h *format.PageHeader) { h.UncompressedPageSize = math.MaxInt32 },
		func(h *format.PageHeader) {
			h.DataPageHeader.V.NumValues, h.DataPageHeaderV2.V.NumValues = math.MaxInt32, math.MaxInt32
		},
	} {
		f.Add(rewritePage(f, valid, jpg, edit))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// Go's fuzzer has no hang detection: a read that runs away crashes with all stacks.
		wd := time.AfterFunc(30*time.Second, func() {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic("WATCHDOG " + string(buf[:n]))
		})
		defer wd.Stop()
		opts := ReadOptions{Limits: fuzzLimits, Workers: 2}
		_ = Read(context.Background(), []string{path}, opts, func(Sample) error { return nil })
		opts.Shuffle, opts.Skip = true, 3
		_ = Read(context.Background(), []string{path}, opts, func(Sample) error { return nil })
		_, _ = DescribeFile(path, 3, fuzzLimits)
	})
}

// FuzzParseManifest parses arbitrary bytes as a manifest; a manifest it accepts must
// survive a write and read back.
func FuzzParseManifest(f *testing.F) {
	dir := f.TempDir()
	if err := WriteManifest(dir, testManifest()); err != nil {
		f.Fatal(err)
	}
	valid, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	f.Add(valid)
	f.Add([]byte(`{"schema_version":1,"splits":{"a":{"shards":[{"path":"a/0.parquet","rows":1,"captions":1,"bytes":1}],"images":1,"captions":1,"bytes":1}}}`))
	f.Add([]byte(`{"schema_version":1,"splits":{"a":null}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		d := t.TempDir()
		if err := WriteManifest(d, m); err != nil {
			t.Fatalf("accepted manifest does not write: %v", err)
		}
		if _, err := ReadManifest(d); err != nil {
			t.Fatalf("accepted manifest does not read back: %v", err)
		}
	})
}
