package shard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// testRecords makes n records with distinct keys, 1–3 captions and pseudo-random image
// bytes of a few hundred bytes; every third record has a label.
func testRecords(prefix string, n int) []Record {
	rng := rand.New(rand.NewPCG(uint64(len(prefix)), uint64(n)))
	recs := make([]Record, n)
	for i := range recs {
		img := make([]byte, 100+rng.IntN(400))
		for j := range img {
			img[j] = byte(rng.Uint32())
		}
		sum := sha256.Sum256(img)
		caps := make([]string, 1+i%3)
		for j := range caps {
			caps[j] = fmt.Sprintf("%s caption %d of image %d", prefix, j, i)
		}
		r := Record{
			Key: fmt.Sprintf("%s%06d", prefix, i), Caption: caps[0], Captions: caps, JPG: img,
			Width: 64, Height: 48, OriginalWidth: int32(100 + i), OriginalHeight: int32(80 + i),
			SHA256: hex.EncodeToString(sum[:]), URL: fmt.Sprintf("https://example.com/%d.jpg", i),
		}
		if i%3 == 0 {
			l := int32(i % 10)
			r.Label = &l
		}
		recs[i] = r
	}
	return recs
}

// writeShards writes nFiles shard files of rowsPerFile rows (row groups of rg rows) into a
// temporary directory and returns their paths and all records in file order.
func writeShards(t testing.TB, nFiles, rowsPerFile, rg int) ([]string, []Record) {
	t.Helper()
	dir := t.TempDir()
	var files []string
	var all []Record
	for f := range nFiles {
		recs := testRecords(fmt.Sprintf("f%d-", f), rowsPerFile)
		path := filepath.Join(dir, fmt.Sprintf("part-%05d.parquet", f))
		if _, err := WriteFile(path, recs, rg); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
		all = append(all, recs...)
	}
	return files, all
}

func readAll(t testing.TB, files []string, opts ReadOptions) []Sample {
	t.Helper()
	var out []Sample
	err := Read(context.Background(), files, opts, func(s Sample) error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(ss []Sample) []string {
	k := make([]string, len(ss))
	for i, s := range ss {
		k[i] = s.Key
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	files, want := writeShards(t, 3, 100, 16)
	got := readAll(t, files, ReadOptions{Workers: 3})
	if len(got) != len(want) {
		t.Fatalf("read %d records, wrote %d", len(got), len(want))
	}
	for i, s := range got {
		if !reflect.DeepEqual(s.Record, want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, s.Record, want[i])
		}
		f, row := i/100, i%100
		wantPos := Position{File: files[f], FileNum: f, RowGroup: row / 16, Row: row % 16, FileRow: int64(row), Index: int64(i)}
		if s.Pos != wantPos {
			t.Fatalf("record %d position %+v, want %+v", i, s.Pos, wantPos)
		}
	}
}

func TestProjection(t *testing.T) {
	files, want := writeShards(t, 1, 40, 16)
	tests := []struct {
		name    string
		columns []string
		project func(Record) Record
	}{
		{"text", TextColumns, func(r Record) Record {
			return Record{Key: r.Key, Caption: r.Caption, Captions: r.Captions}
		}},
		{"image", []string{ColKey, ColJPG}, func(r Record) Record { return Record{Key: r.Key, JPG: r.JPG} }},
		{"label", []string{ColLabel}, func(r Record) Record { return Record{Label: r.Label} }},
		{"captions only", []string{ColCaptions}, func(r Record) Record {
			return Record{Caption: r.Caption, Captions: r.Captions}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, files, ReadOptions{Columns: tc.columns})
			for i, s := range got {
				if w := tc.project(want[i]); !reflect.DeepEqual(s.Record, w) {
					t.Fatalf("row %d: got %+v, want %+v", i, s.Record, w)
				}
			}
		})
	}
}

func TestShuffleDeterministicAcrossWorkers(t *testing.T) {
	files, all := writeShards(t, 4, 90, 16)
	base := ReadOptions{Shuffle: true, Seed: 7, Epoch: 3, ShuffleBuffer: 50, Columns: []string{ColKey}}
	var ref []string
	for _, w := range []int{1, 2, 4} {
		opts := base
		opts.Workers = w
		got := keys(readAll(t, files, opts))
		if ref == nil {
			ref = got
			continue
		}
		if !slices.Equal(got, ref) {
			t.Fatalf("workers=%d order differs from workers=1", w)
		}
	}
	plain := make([]string, len(all))
	for i, r := range all {
		plain[i] = r.Key
	}
	if slices.Equal(ref, plain) {
		t.Fatal("shuffled order equals file order")
	}
	sorted := slices.Clone(ref)
	slices.Sort(sorted)
	if !slices.Equal(sorted, plain) { // keys were written in sorted order
		t.Fatal("shuffled epoch is not a permutation of the data")
	}
	other := base
	other.Epoch = 4
	if slices.Equal(keys(readAll(t, files, other)), ref) {
		t.Fatal("epochs 3 and 4 gave the same order")
	}
}

func TestRankSplitDisjointCovering(t *testing.T) {
	files, all := writeShards(t, 3, 70, 16) // 5 row groups per file, 15 in all
	for _, shuffle := range []bool{false, true} {
		for _, world := range []int{1, 2, 3, 4, 16} {
			seen := map[string]int{}
			for rank := range world {
				opts := ReadOptions{Shuffle: shuffle, Seed: 1, Rank: rank, World: world, Columns: []string{ColKey}}
				for _, s := range readAll(t, files, opts) {
					seen[s.Key]++
				}
			}
			if len(seen) != len(all) {
				t.Fatalf("shuffle=%v world=%d: ranks cover %d of %d rows", shuffle, world, len(seen), len(all))
			}
			for k, n := range seen {
				if n != 1 {
					t.Fatalf("shuffle=%v world=%d: key %s read by %d ranks", shuffle, world, k, n)
				}
			}
		}
	}
}

func TestSkipResumesExactly(t *testing.T) {
	files, _ := writeShards(t, 3, 50, 8)
	for _, shuffle := range []bool{false, true} {
		base := ReadOptions{Shuffle: shuffle, Seed: 11, Epoch: 2, ShuffleBuffer: 20, World: 2, Rank: 1, Workers: 2}
		full := readAll(t, files, base)
		for _, skip := range []int64{0, 1, 7, 8, 33, int64(len(full)) - 1, int64(len(full)), int64(len(full)) + 5} {
			opts := base
			opts.Skip = skip
			got := readAll(t, files, opts)
			want := full[min(int(skip), len(full)):]
			if len(got) != len(want) {
				t.Fatalf("shuffle=%v skip=%d: %d samples, want %d", shuffle, skip, len(got), len(want))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Fatalf("shuffle=%v skip=%d sample %d: got %s@%d, want %s@%d", shuffle, skip, i,
						got[i].Key, got[i].Pos.Index, want[i].Key, want[i].Pos.Index)
				}
			}
		}
	}
}
