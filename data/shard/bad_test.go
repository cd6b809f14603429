package shard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type textOnlyRow struct {
	Key     string `parquet:"key"`
	Caption string `parquet:"caption"`
}

type intImageRow struct {
	Key     string `parquet:"key"`
	Caption string `parquet:"caption"`
	JPG     int32  `parquet:"jpg"`
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeShards(t, 1, 40, 8)
	valid, err := os.ReadFile(good[0])
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := append([]byte(nil), valid...)
	for i := 200; i < len(corrupt)/2; i += 97 { // damage pages, keep the footer
		corrupt[i] ^= 0x5a
	}
	textOnly := filepath.Join(dir, "textonly.parquet")
	writeGeneric(t, textOnly, []textOnlyRow{{"a", "b"}})
	intImage := filepath.Join(dir, "intimage.parquet")
	writeGeneric(t, intImage, []intImageRow{{"a", "b", 3}})

	tests := []struct {
		name    string
		path    string
		columns []string
		limits  Limits
		want    string // in the error; the error must also name the file
	}{
		{"zero bytes", write("empty.parquet", nil), nil, Limits{}, "too short"},
		{"not parquet", write("text.parquet", []byte("key,caption\na,b\nc,d\n")), nil, Limits{}, "no PAR1 magic"},
		{"truncated", write("trunc.parquet", valid[:len(valid)*2/3]), nil, Limits{}, "no PAR1 magic"},
		{"footer only", write("footer.parquet", append([]byte("PAR1"), valid[len(valid)-8:]...)), nil, Limits{}, "footer of"},
		{"damaged pages", write("damaged.parquet", corrupt), nil, Limits{}, "row group"},
		{"missing jpg", textOnly, []string{ColKey, ColJPG}, Limits{}, "no jpg column"},
		{"jpg of wrong type", intImage, nil, Limits{}, `column "jpg" (jpg) is INT32`},
		{"image over the limit", good[0], nil, Limits{MaxValueBytes: 50}, "exceeds the limit of 50"},
		{"row group over the row limit", good[0], nil, Limits{MaxRowGroupRows: 4}, "8 rows exceed the limit of 4"},
		{"too many captions", good[0], nil, Limits{MaxCaptions: 2}, "more than 2 captions"},
		{"row over the byte limit", good[0], nil, Limits{MaxRowBytes: 300}, "bytes exceeds the limit of 300"},
		{"row group over the byte limit", good[0], nil, Limits{MaxRowGroupBytes: 1000}, "in the projected columns exceed the limit of 1000"},
		{"footer over the limit", good[0], nil, Limits{MaxFooterBytes: 100}, "exceeds the limit of 100"},
		{"missing file", filepath.Join(dir, "nope.parquet"), nil, Limits{}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Read(context.Background(), []string{tc.path}, ReadOptions{Columns: tc.columns, Limits: tc.limits},
				func(Sample) error { return nil })
			if err == nil {
				t.Fatal("read succeeded")
			}
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one naming %s and containing %q", err, tc.path, tc.want)
			}
		})
	}
}

func TestLimitErrorNamesRow(t *testing.T) {
	files, recs := writeShards(t, 1, 20, 8)
	big := 0
	for i, r := range recs {
		if len(r.JPG) > len(recs[big].JPG) {
			big = i
		}
	}
	lim := Limits{MaxValueBytes: int64(len(recs[big].JPG) - 1)}
	err := Read(context.Background(), files, ReadOptions{Limits: lim}, func(Sample) error { return nil })
	if err == nil {
		t.Fatal("read succeeded")
	}
	// The largest image is the first value over the limit only if no earlier one is as big;
	// the error must in any case name a row group and row.
	if !strings.Contains(err.Error(), "row group") || !strings.Contains(err.Error(), " row ") {
		t.Fatalf("error %q does not name the row group and row", err)
	}
}

func TestFileDeletedWhileReading(t *testing.T) {
	files, _ := writeShards(t, 2, 80, 8) // 10 row groups per file: more than the read-ahead
	n := 0
	err := Read(context.Background(), files, ReadOptions{Workers: 1}, func(Sample) error {
		if n == 0 {
			if err := os.Remove(files[1]); err != nil {
				t.Fatal(err)
			}
		}
		n++
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), files[1]) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want a not-exist error naming %s", err, files[1])
	}
	if n != 80 {
		t.Fatalf("emitted %d samples before the error, want the 80 of the first file", n)
	}
}

func TestEmitErrorAndCancel(t *testing.T) {
	files, _ := writeShards(t, 2, 50, 8)
	stop := errors.New("stop")
	n := 0
	err := Read(context.Background(), files, ReadOptions{Workers: 3}, func(Sample) error {
		if n++; n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("err %v after %d samples, want stop after 10", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = Read(ctx, files, ReadOptions{Workers: 3}, func(Sample) error {
		if n++; n == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestJPGHasNoStatistics(t *testing.T) {
	files, _ := writeShards(t, 1, 40, 8)
	f, err := openParquet(files[0], DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jpg := lookupColumn(f.pf.Root(), ColJPG).Index()
	key := lookupColumn(f.pf.Root(), ColKey).Index()
	for i, rg := range f.pf.Metadata().RowGroups {
		if s := rg.Columns[jpg].MetaData.Statistics; len(s.MinValue)+len(s.MaxValue)+len(s.Min)+len(s.Max) != 0 {
			t.Fatalf("row group %d: jpg has statistics %+v", i, s)
		}
		if s := rg.Columns[key].MetaData.Statistics; len(s.MinValue) == 0 {
			t.Fatalf("row group %d: key has no statistics (the check above cannot fail)", i)
		}
		if c := rg.Columns[jpg].MetaData.Codec.String(); c != "UNCOMPRESSED" {
			t.Fatalf("jpg compressed with %s", c)
		}
	}
	ci, _, err := f.pf.ReadPageIndex() // one column index per (row group, leaf column)
	if err != nil {
		t.Fatal(err)
	}
	leaves := len(f.pf.Schema().Columns())
	bounds := func(i int) (n int) {
		for _, m := range ci[i].MinValues {
			n += len(m)
		}
		return n
	}
	for rg := range f.pf.Metadata().RowGroups {
		if n := bounds(rg*leaves + jpg); n != 0 {
			t.Fatalf("row group %d: jpg page index holds %d bytes of bounds", rg, n)
		}
		if bounds(rg*leaves+key) == 0 {
			t.Fatalf("row group %d: key page index has no bounds (the check above cannot fail)", rg)
		}
	}
}
