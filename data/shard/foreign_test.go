package shard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// img2datasetRow mirrors img2dataset's parquet output as pyarrow writes it: int64 sizes,
// optional strings, extra columns we do not read, no captions list and no label.
type img2datasetRow struct {
	Key            string  `parquet:"key"`
	Caption        string  `parquet:"caption,optional"`
	URL            string  `parquet:"url,optional"`
	JPG            []byte  `parquet:"jpg"`
	Width          int64   `parquet:"width,optional"`
	Height         int64   `parquet:"height,optional"`
	OriginalWidth  int64   `parquet:"original_width,optional"`
	OriginalHeight int64   `parquet:"original_height,optional"`
	Status         string  `parquet:"status,snappy"`
	ErrorMessage   *string `parquet:"error_message,optional"`
	Exif           *string `parquet:"exif,optional"`
	SHA256         string  `parquet:"sha256,optional"`
}

// hfImage and hfRow mirror a Hugging Face `datasets` export: an image struct of bytes and
// path, a `text` caption and an int64 class label.
type hfImage struct {
	Bytes []byte  `parquet:"bytes,optional"`
	Path  *string `parquet:"path,optional"`
}

type hfRow struct {
	Image *hfImage `parquet:"image,optional"`
	Text  string   `parquet:"text,dict,snappy"`
	Label int64    `parquet:"label"`
}

func writeGeneric[T any](t testing.TB, path string, rows []T, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f, opts...)
	for i := 0; i < len(rows); i += 7 { // several row groups
		if _, err := w.Write(rows[i:min(i+7, len(rows))]); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReadImg2dataset(t *testing.T) {
	want := testRecords("i2d-", 20)
	rows := make([]img2datasetRow, len(want))
	for i, r := range want {
		rows[i] = img2datasetRow{Key: r.Key, Caption: r.Caption, URL: r.URL, JPG: r.JPG,
			Width: int64(r.Width), Height: int64(r.Height), OriginalWidth: int64(r.OriginalWidth),
			OriginalHeight: int64(r.OriginalHeight), Status: "success", SHA256: r.SHA256}
	}
	path := filepath.Join(t.TempDir(), "00000.parquet")
	writeGeneric(t, path, rows, parquet.DataPageVersion(1))
	got := readAll(t, []string{path}, ReadOptions{})
	for i, s := range got {
		w := want[i]
		w.Captions, w.Label = []string{w.Caption}, nil // no captions column: [caption]
		s.Captions = s.AllCaptions()
		if !reflect.DeepEqual(s.Record, w) {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, s.Record, w)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
}

func TestReadHuggingFace(t *testing.T) {
	want := testRecords("hf-", 30)
	rows := make([]hfRow, len(want))
	for i, r := range want {
		p := fmt.Sprintf("img%d.jpg", i)
		rows[i] = hfRow{Image: &hfImage{Bytes: r.JPG, Path: &p}, Text: r.Caption, Label: int64(i % 5)}
	}
	path := filepath.Join(t.TempDir(), "train-00000-of-00001.parquet")
	writeGeneric(t, path, rows, parquet.Compression(&parquet.Snappy), parquet.DataPageVersion(2))

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	detected := DetectMapping(pf.Schema())
	f.Close()
	wantMapping := Mapping{Caption: "text", Image: "image", ImageBytesField: "bytes", Label: "label"}
	if detected != wantMapping {
		t.Fatalf("DetectMapping = %+v, want %+v", detected, wantMapping)
	}

	for _, m := range []*Mapping{nil, &wantMapping} {
		got := readAll(t, []string{path}, ReadOptions{Mapping: m, Columns: []string{ColKey, ColCaption, ColCaptions, ColJPG, ColLabel}})
		if len(got) != len(want) {
			t.Fatalf("read %d rows, want %d", len(got), len(want))
		}
		for i, s := range got {
			l := int32(i % 5)
			w := Record{Key: fmt.Sprintf("%s/%d", filepath.Base(path), i), Caption: want[i].Caption,
				Captions: nil, JPG: want[i].JPG, Label: &l}
			if !reflect.DeepEqual(s.Record, w) {
				t.Fatalf("row %d:\n got %+v\nwant %+v", i, s.Record, w)
			}
		}
	}
}

func TestMappingErrors(t *testing.T) {
	rows := []hfRow{{Image: &hfImage{Bytes: []byte{1}}, Text: "a", Label: 1}}
	path := filepath.Join(t.TempDir(), "hf.parquet")
	writeGeneric(t, path, rows)
	tests := []struct {
		name    string
		mapping Mapping
		columns []string
		want    string
	}{
		{"missing caption column", Mapping{Caption: "txt", Image: "image", ImageBytesField: "bytes"}, nil, `missing column "txt"`},
		{"image is a group", Mapping{Caption: "text", Image: "image"}, []string{ColJPG}, "is a group"},
		{"caption is an int", Mapping{Caption: "label", Image: "image", ImageBytesField: "bytes"}, nil, `column "label" (caption) is INT64`},
		{"captions not a list", Mapping{Caption: "text", Captions: "text"}, []string{ColCaptions}, `column "text" (captions) is not a list`},
		{"label read as int32", Mapping{Caption: "text", Label: "label"}, []string{ColCaption, ColLabel}, ""},
		{"unknown column", Mapping{}, []string{"pixels"}, `unknown column "pixels"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.mapping
			err := Read(context.Background(), []string{path}, ReadOptions{Mapping: &m, Columns: tc.columns}, func(Sample) error { return nil })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
}
