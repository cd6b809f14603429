package shard

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWriterRotation(t *testing.T) {
	recs := testRecords("w-", 250)
	tests := []struct {
		name       string
		opts       WriterOptions
		wantShards int
	}{
		{"by rows", WriterOptions{RowGroupRows: 16, ShardRows: 100, ShardBytes: -1}, 3},
		{"by bytes", WriterOptions{RowGroupRows: 10, ShardRows: -1, ShardBytes: 20_000}, 0}, // counted below
		{"one shard", WriterOptions{RowGroupRows: 64}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := NewWriter(dir, "train", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			shards, err := w.Close()
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantShards > 0 && len(shards) != tc.wantShards {
				t.Fatalf("%d shards, want %d", len(shards), tc.wantShards)
			}
			if tc.opts.ShardBytes > 0 {
				if len(shards) < 2 {
					t.Fatalf("%d shards of at most ~%d bytes for %d rows", len(shards), tc.opts.ShardBytes, len(recs))
				}
				for _, s := range shards[:len(shards)-1] {
					if s.Bytes < tc.opts.ShardBytes*9/10 || s.Bytes > tc.opts.ShardBytes+10_000 {
						t.Fatalf("shard %s has %d bytes, rotation at %d", s.Path, s.Bytes, tc.opts.ShardBytes)
					}
				}
			}
			split := NewSplit(shards)
			if split.Images != int64(len(recs)) {
				t.Fatalf("shards hold %d rows, wrote %d", split.Images, len(recs))
			}
			m := &Manifest{SchemaVersion: SchemaVersion, Source: "test", Splits: map[string]*Split{"train": split}}
			files, err := m.Files(dir, "train")
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range files {
				st, err := os.Stat(f)
				if err != nil || st.Size() != shards[i].Bytes {
					t.Fatalf("shard %s: stat %v, size %d, want %d", f, err, st.Size(), shards[i].Bytes)
				}
				if want := filepath.Join(dir, "train", "train-0000"+string(rune('0'+i))+".parquet"); f != want {
					t.Fatalf("shard path %s, want %s", f, want)
				}
			}
			got := readAll(t, files, ReadOptions{})
			for i, s := range got {
				if !reflect.DeepEqual(s.Record, recs[i]) {
					t.Fatalf("row %d differs after rotation", i)
				}
			}
			leftovers, _ := filepath.Glob(filepath.Join(dir, "train", ".*"))
			if len(leftovers) != 0 {
				t.Fatalf("temporary files left: %v", leftovers)
			}
		})
	}
}

func TestWriterAbortLeavesNoPartialShard(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, "val", WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testRecords("a-", 10) {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Abort()
	entries, _ := os.ReadDir(filepath.Join(dir, "val"))
	if len(entries) != 0 {
		t.Fatalf("abort left %d files", len(entries))
	}
	if _, err := NewWriter(dir, "../x", WriterOptions{}); err == nil {
		t.Fatal("split name ../x accepted")
	}
}

func testManifest() *Manifest {
	return &Manifest{
		SchemaVersion: SchemaVersion, Source: "synthetic", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ImageSize: 64, ResizeMode: "center_crop",
		Splits: map[string]*Split{
			"train": NewSplit([]ShardInfo{{Path: "train/train-00000.parquet", Rows: 10, Captions: 30, Bytes: 1000}}),
			"val":   NewSplit([]ShardInfo{{Path: "val/val-00000.parquet", Rows: 2, Captions: 2, Bytes: 200}}),
		},
		ClassNames: []string{"circle", "square"},
		Rejects:    map[string]int64{"decode": 3},
		Extra:      map[string]any{"held_out": []any{"red circle"}},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := testManifest()
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("manifest round trip:\n got %+v\nwant %+v", got, m)
	}
}

func TestManifestStrict(t *testing.T) {
	dir := t.TempDir()
	if err := WriteManifest(dir, testManifest()); err != nil {
		t.Fatal(err)
	}
	valid, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	tests := []struct {
		name string
		json []byte
		want string
	}{
		{"future version", bytes.Replace(valid, []byte(`"schema_version": 1`), []byte(`"schema_version": 2`), 1), "schema version 2 is not supported"},
		{"no version", []byte(`{"source":"x"}`), "no schema_version"},
		{"unknown field", bytes.Replace(valid, []byte(`"source"`), []byte(`"sauce": 1, "source"`), 1), "unknown field"},
		{"escaping path", bytes.Replace(valid, []byte(`val/val-00000`), []byte(`../val-00000`), 1), "clean relative path"},
		{"wrong totals", bytes.Replace(valid, []byte(`"images": 2`), []byte(`"images": 3`), 1), "differ from its shards"},
		{"trailing", append(append([]byte(nil), valid...), []byte(`{}`)...), "after top-level value"},
		{"not json", []byte("schema_version: 1"), "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.json, valid) {
				t.Fatal("test input equals the valid manifest")
			}
			_, err := ParseManifest(tc.json)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, "train", WriterOptions{RowGroupRows: 8, ShardRows: 20})
	if err != nil {
		t.Fatal(err)
	}
	recs := testRecords("d-", 30)
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	shards, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := testManifest()
	m.Splits = map[string]*Split{"train": NewSplit(shards)}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	info, err := Describe(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if info.Manifest == nil || len(info.Files) != 2 || info.Rows != 30 || info.RowGroups != 3+2 {
		t.Fatalf("info: manifest %v, %d files, %d rows, %d row groups", info.Manifest != nil, len(info.Files), info.Rows, info.RowGroups)
	}
	s := info.Files[0].Samples[1]
	if s["key"] != `"d-000001"` || s["captions.list.element"] != `["d- caption 0 of image 1", "d- caption 1 of image 1"]` {
		t.Fatalf("sample row 1: %v", s)
	}
	if !strings.HasPrefix(s["jpg"], "<") || !strings.Contains(s["jpg"], " bytes sha256:") {
		t.Fatalf("jpg shown as %q, want size and hash", s["jpg"])
	}
	var text strings.Builder
	if err := info.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"30 rows", "split train", "original_width", "row 1:", "schema v1"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("text lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := Describe(filepath.Join(dir, "missing"), 1); err == nil {
		t.Fatal("describe of a missing path succeeded")
	}
}
