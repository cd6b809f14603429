package shard

// Interoperability with Apache Arrow. Real foreign Parquet files are written by pyarrow
// (Arrow C++); arrow/go's pqarrow writer produces the same layout: an ARROW:schema footer
// entry, LIST and nested struct encodings, dictionary pages (with a fallback to plain once
// the dictionary is full), data page v1 or v2, snappy or zstd, and int64 sizes. These tests
// read such files with Read, and read our own shards back with pqarrow.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	pq "github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
)

// arrowLayout is one way pyarrow may lay out a file.
type arrowLayout struct {
	name        string
	codec       compress.Compression
	pageVersion pq.DataPageVersion
	dictLimit   int64 // dictionary page size limit; small values force the fallback to plain
}

var arrowLayouts = []arrowLayout{
	{"snappy/v1/dict", compress.Codecs.Snappy, pq.DataPageV1, 1 << 20},
	{"zstd/v1/dict", compress.Codecs.Zstd, pq.DataPageV1, 1 << 20},
	{"snappy/v2/dict", compress.Codecs.Snappy, pq.DataPageV2, 1 << 20},
	{"zstd/v2/dict-fallback", compress.Codecs.Zstd, pq.DataPageV2, 512},
}

// arrowRowGroupRows is the row group length of the files written here; with 20 rows written
// as two records of 13 and 7 rows the files hold row groups of 5, 5, 3, 5 and 2 rows.
const arrowRowGroupRows = 5

// props returns pqarrow's writer properties for the layout: dictionary encoding on (as in
// pyarrow), small pages so that a chunk holds several, short row groups.
func (l arrowLayout) props() *pq.WriterProperties {
	return pq.NewWriterProperties(
		pq.WithCompression(l.codec),
		pq.WithDataPageVersion(l.pageVersion),
		pq.WithDictionaryDefault(true),
		pq.WithDictionaryPageSizeLimit(l.dictLimit),
		pq.WithDataPageSize(1024),
		pq.WithBatchSize(2), // the dictionary limit is checked between batches
		pq.WithMaxRowGroupLength(arrowRowGroupRows),
		pq.WithCreatedBy("parquet-cpp-arrow version 15.0.2"),
	)
}

// writeArrow writes the records (all of schema sc) to path with pqarrow, storing the Arrow
// schema in the footer as pyarrow does, and checks that the file has the layout asked for:
// the codec on every chunk and dictionary pages on the string columns.
func writeArrow(t *testing.T, path string, sc *arrow.Schema, recs []arrow.Record, l arrowLayout) {
	t.Helper()
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(sc, &buf, l.props(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := fw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	rdr, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	md := rdr.MetaData()
	if md.KeyValueMetadata().FindValue("ARROW:schema") == nil {
		t.Error("no ARROW:schema in the footer")
	}
	if rdr.NumRowGroups() < 3 {
		t.Errorf("%d row groups, want several", rdr.NumRowGroups())
	}
	// The page types and encodings come from the page headers: Arrow's footer encoding
	// stats call every data page DATA_PAGE, v2 ones included.
	pageType := "DATA_PAGE"
	if l.pageVersion == pq.DataPageV2 {
		pageType = "DATA_PAGE_V2"
	}
	var dictPages, fallbacks int
	for g := range rdr.NumRowGroups() {
		rg := md.RowGroup(g)
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != l.codec {
				t.Errorf("row group %d column %s: codec %s, want %s", g, cc.PathInSchema(), cc.Compression(), l.codec)
			}
			pages, err := rdr.RowGroup(g).GetColumnPageReader(c)
			if err != nil {
				t.Fatal(err)
			}
			var dict, dictData, plainData bool
			for pages.Next() {
				pg := pages.Page()
				switch typ, enc := pg.Type().String(), pg.Encoding().String(); {
				case typ == "DICTIONARY_PAGE":
					dict = true
				case typ != pageType:
					t.Errorf("row group %d column %s: %s page, want %s", g, cc.PathInSchema(), typ, pageType)
				case enc == "RLE_DICTIONARY":
					dictData = true
				case enc == "PLAIN":
					plainData = true
				}
			}
			if err := pages.Err(); err != nil {
				t.Fatal(err)
			}
			if dict && dictData {
				dictPages++
			}
			if dictData && plainData {
				fallbacks++
			}
		}
	}
	if dictPages == 0 {
		t.Error("no dictionary-encoded pages written")
	}
	if l.dictLimit < 1<<20 && fallbacks == 0 {
		t.Errorf("dictionary limit of %d bytes: no chunk fell back to plain pages", l.dictLimit)
	}
}

// i2dRow is one row of an img2dataset output file; a nil Caption is a null.
type i2dRow struct {
	Record
	Caption *string
}

// img2datasetArrow builds img2dataset's pyarrow schema and rows from records: int64 sizes,
// nullable strings, status and error_message columns we do not read. Every fourth row has a
// null caption, and every row a status of "success" with a null error_message.
func img2datasetArrow(mem memory.Allocator, want []i2dRow) (*arrow.Schema, []arrow.Record) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "caption", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "jpg", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "width", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "height", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "original_width", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "original_height", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "sha256", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "error_message", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	return sc, buildRecords(mem, sc, len(want), func(b *array.RecordBuilder, i int) {
		r := want[i]
		b.Field(0).(*array.StringBuilder).Append(r.Key)
		if r.Caption != nil {
			b.Field(1).(*array.StringBuilder).Append(*r.Caption)
		} else {
			b.Field(1).AppendNull()
		}
		b.Field(2).(*array.StringBuilder).Append(r.URL)
		b.Field(3).(*array.BinaryBuilder).Append(r.JPG)
		b.Field(4).(*array.Int64Builder).Append(int64(r.Width))
		b.Field(5).(*array.Int64Builder).Append(int64(r.Height))
		b.Field(6).(*array.Int64Builder).Append(int64(r.OriginalWidth))
		b.Field(7).(*array.Int64Builder).Append(int64(r.OriginalHeight))
		b.Field(8).(*array.StringBuilder).Append(r.SHA256)
		b.Field(9).(*array.StringBuilder).Append("success")
		b.Field(10).AppendNull()
	})
}

// buildRecords appends n rows with row to two records (13 rows, then the rest), as a
// writer that receives its rows in batches would.
func buildRecords(mem memory.Allocator, sc *arrow.Schema, n int, row func(*array.RecordBuilder, int)) []arrow.Record {
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	var recs []arrow.Record
	for i := range n {
		row(b, i)
		if i == 12 || i == n-1 {
			recs = append(recs, b.NewRecord())
		}
	}
	return recs
}

func releaseAll(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

func TestReadArrowImg2dataset(t *testing.T) {
	for _, l := range arrowLayouts {
		t.Run(l.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			recs := testRecords("i2d-", 20)
			want := make([]i2dRow, len(recs))
			for i, r := range recs {
				want[i] = i2dRow{Record: r}
				if i%4 != 1 {
					want[i].Caption = &recs[i].Caption
				}
			}
			sc, batches := img2datasetArrow(mem, want)
			defer releaseAll(batches)
			path := filepath.Join(t.TempDir(), "00000.parquet")
			writeArrow(t, path, sc, batches, l)

			f, err := openParquet(path, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			got := DetectMapping(f.pf.Schema())
			f.Close()
			if wantMap := (Mapping{Key: ColKey, Caption: ColCaption, Image: ColJPG}); got != wantMap {
				t.Errorf("DetectMapping = %s, want %s", got, wantMap)
			}

			ss := readAll(t, []string{path}, ReadOptions{})
			if len(ss) != len(want) {
				t.Fatalf("read %d samples, want %d", len(ss), len(want))
			}
			for i, s := range ss {
				w := want[i]
				caption := ""
				var captions []string
				if w.Caption != nil {
					caption, captions = *w.Caption, []string{*w.Caption}
				}
				if s.Key != w.Key || s.Caption != caption || !slices.Equal(s.AllCaptions(), captions) ||
					!bytes.Equal(s.JPG, w.JPG) || s.URL != w.URL || s.SHA256 != w.SHA256 ||
					s.Width != w.Width || s.Height != w.Height ||
					s.OriginalWidth != w.OriginalWidth || s.OriginalHeight != w.OriginalHeight ||
					s.Label != nil || s.Captions != nil {
					t.Fatalf("row %d: got %+v\nwant %+v (caption %q)", i, s.Record, w.Record, caption)
				}
				if s.Pos.FileRow != int64(i) {
					t.Errorf("row %d: position %+v", i, s.Pos)
				}
			}

			text := readAll(t, []string{path}, ReadOptions{Columns: TextColumns})
			for i, s := range text {
				if s.Key != want[i].Key || s.JPG != nil {
					t.Fatalf("text projection row %d: key %q, %d image bytes", i, s.Key, len(s.JPG))
				}
			}
		})
	}
}

// hfRowWant is one row of a Hugging Face style file.
type hfRowWant struct {
	image []byte
	path  *string // nil: a null path (an image given as bytes only)
	text  string
	label int64
}

func TestReadArrowHuggingFace(t *testing.T) {
	imageType := arrow.StructOf(
		arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
		arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
	)
	for _, text := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString} {
		for _, l := range arrowLayouts {
			t.Run(fmt.Sprintf("%s/%s", text, l.name), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				recs := testRecords("hf-", 20)
				want := make([]hfRowWant, len(recs))
				for i, r := range recs {
					want[i] = hfRowWant{image: r.JPG, text: r.Caption, label: int64(i % 7)}
					if i%3 != 2 {
						p := fmt.Sprintf("train/%05d.jpg", i)
						want[i].path = &p
					}
				}
				sc := arrow.NewSchema([]arrow.Field{
					{Name: "image", Type: imageType, Nullable: true},
					{Name: "text", Type: text, Nullable: true},
					{Name: "label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
				}, nil)
				batches := buildRecords(mem, sc, len(want), func(b *array.RecordBuilder, i int) {
					w := want[i]
					img := b.Field(0).(*array.StructBuilder)
					img.Append(true)
					img.FieldBuilder(0).(*array.BinaryBuilder).Append(w.image)
					if w.path != nil {
						img.FieldBuilder(1).(*array.StringBuilder).Append(*w.path)
					} else {
						img.FieldBuilder(1).AppendNull()
					}
					switch tb := b.Field(1).(type) {
					case *array.StringBuilder:
						tb.Append(w.text)
					case *array.LargeStringBuilder:
						tb.Append(w.text)
					default:
						t.Fatalf("text builder %T", tb)
					}
					b.Field(2).(*array.Int64Builder).Append(w.label)
				})
				defer releaseAll(batches)
				dir := t.TempDir()
				path := filepath.Join(dir, "train-00000-of-00001.parquet")
				writeArrow(t, path, sc, batches, l)

				f, err := openParquet(path, DefaultLimits)
				if err != nil {
					t.Fatal(err)
				}
				got := DetectMapping(f.pf.Schema())
				f.Close()
				wantMap := Mapping{Caption: "text", Image: "image", ImageBytesField: "bytes", Label: ColLabel}
				if got != wantMap {
					t.Errorf("DetectMapping = %s, want %s", got, wantMap)
				}

				ss := readAll(t, []string{path}, ReadOptions{})
				if len(ss) != len(want) {
					t.Fatalf("read %d samples, want %d", len(ss), len(want))
				}
				for i, s := range ss {
					w := want[i]
					key := fmt.Sprintf("train-00000-of-00001.parquet/%d", i)
					if s.Key != key || s.Caption != w.text || !slices.Equal(s.AllCaptions(), []string{w.text}) ||
						!bytes.Equal(s.JPG, w.image) || s.Label == nil || int64(*s.Label) != w.label {
						t.Fatalf("row %d: got key %q caption %q label %v, %d image bytes; want key %q caption %q label %d, %d bytes",
							i, s.Key, s.Caption, s.Label, len(s.JPG), key, w.text, w.label, len(w.image))
					}
				}
			})
		}
	}
}

// TestArrowReadsShards writes shards with Writer and reads them back with pqarrow, as a
// tool handed our shards (an embedding exporter, pyarrow, DuckDB) would.
func TestArrowReadsShards(t *testing.T) {
	recs := testRecords("out-", 23)
	recs[4].URL = ""                            // optional url: "" is written as a null
	recs[5].Captions, recs[5].Caption = nil, "" // no caption at all: an empty captions list
	dir := t.TempDir()
	w, err := NewWriter(dir, "train", WriterOptions{RowGroupRows: 4, ShardRows: 12})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("%d shards, want 2", len(infos))
	}

	wantFields := []struct {
		name     string
		typ      arrow.DataType
		nullable bool
	}{
		{ColKey, arrow.BinaryTypes.String, false},
		{ColCaption, arrow.BinaryTypes.String, false},
		{ColCaptions, arrow.ListOf(arrow.BinaryTypes.String), false},
		{ColJPG, arrow.BinaryTypes.Binary, false},
		{ColWidth, arrow.PrimitiveTypes.Int32, false},
		{ColHeight, arrow.PrimitiveTypes.Int32, false},
		{ColOriginalWidth, arrow.PrimitiveTypes.Int32, false},
		{ColOriginalHeight, arrow.PrimitiveTypes.Int32, false},
		{ColSHA256, arrow.BinaryTypes.String, false},
		{ColLabel, arrow.PrimitiveTypes.Int32, true},
		{ColURL, arrow.BinaryTypes.String, true},
	}

	next := 0 // index in recs of the next row to check
	for _, info := range infos {
		t.Run(info.Path, func(t *testing.T) {
			// Not a checked allocator: arrow/go v15's DELTA_BINARY_PACKED decoder
			// (deltaBitPackDecoder.initBlock) never frees its 64-byte block buffers, which
			// parquet-go's int32 columns use, so AssertSize(t, 0) fails inside Arrow.
			mem := memory.NewGoAllocator()
			pf, err := file.OpenParquetFile(filepath.Join(dir, filepath.FromSlash(info.Path)), false)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 3}, mem)
			if err != nil {
				t.Fatal(err)
			}
			if pf.NumRowGroups() != int((info.Rows+3)/4) {
				t.Errorf("%d row groups, want %d", pf.NumRowGroups(), (info.Rows+3)/4)
			}

			sc, err := fr.Schema()
			if err != nil {
				t.Fatal(err)
			}
			if sc.NumFields() != len(wantFields) {
				t.Fatalf("schema has %d fields, want %d:\n%s", sc.NumFields(), len(wantFields), sc)
			}
			for i, wf := range wantFields {
				f := sc.Field(i)
				if f.Name != wf.name || !sameType(f.Type, wf.typ) || f.Nullable != wf.nullable {
					t.Errorf("field %d: %s %s nullable=%v, want %s %s nullable=%v", i, f.Name, f.Type, f.Nullable, wf.name, wf.typ, wf.nullable)
				}
			}

			tbl, err := fr.ReadTable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tbl.NumRows() != info.Rows || tbl.NumCols() != int64(len(wantFields)) {
				t.Errorf("table of %d rows × %d columns, want %d × %d", tbl.NumRows(), tbl.NumCols(), info.Rows, len(wantFields))
			}
			tbl.Release()

			rr, err := fr.GetRecordReader(context.Background(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rr.Release()
			var rows int64
			for rr.Next() {
				rec := rr.Record()
				for i := range int(rec.NumRows()) {
					if next >= len(recs) {
						t.Fatalf("more rows than written")
					}
					checkArrowRow(t, rec, i, recs[next])
					next++
				}
				rows += rec.NumRows()
			}
			// arrow/go v15 defect (DESIGN.md): at a normal end the record reader's Err reports
			// io.EOF instead of nil, so io.EOF here is the end of the data, not a failure.
			if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if rows != info.Rows {
				t.Errorf("record reader gave %d rows, want %d", rows, info.Rows)
			}
		})
	}
	if next != len(recs) {
		t.Errorf("checked %d rows, wrote %d", next, len(recs))
	}
}

// sameType compares Arrow types ignoring the name of a list's element field (parquet-go
// writes "element", Arrow's default is "item").
func sameType(got, want arrow.DataType) bool {
	gl, ok1 := got.(*arrow.ListType)
	wl, ok2 := want.(*arrow.ListType)
	if ok1 || ok2 {
		return ok1 && ok2 && arrow.TypeEqual(gl.Elem(), wl.Elem())
	}
	return arrow.TypeEqual(got, want)
}

// checkArrowRow compares row i of rec, a record of a shard read by pqarrow, with the Record
// that was written (Writer stores [Caption] as Captions when Captions is empty).
func checkArrowRow(t *testing.T, rec arrow.Record, i int, want Record) {
	t.Helper()
	str := func(c int) string { return rec.Column(c).(*array.String).Value(i) }
	i32 := func(c int) int32 { return rec.Column(c).(*array.Int32).Value(i) }

	captions := want.Captions
	if len(captions) == 0 && want.Caption != "" {
		captions = []string{want.Caption}
	}
	list := rec.Column(2).(*array.List)
	start, end := list.ValueOffsets(i)
	elems := list.ListValues().(*array.String)
	var gotCaptions []string
	for j := start; j < end; j++ {
		gotCaptions = append(gotCaptions, elems.Value(int(j)))
	}
	if !slices.Equal(gotCaptions, captions) {
		t.Errorf("key %s: captions %q, want %q", want.Key, gotCaptions, captions)
	}

	if str(0) != want.Key || str(1) != want.Caption || str(8) != want.SHA256 ||
		!bytes.Equal(rec.Column(3).(*array.Binary).Value(i), want.JPG) ||
		i32(4) != want.Width || i32(5) != want.Height || i32(6) != want.OriginalWidth || i32(7) != want.OriginalHeight {
		t.Errorf("row %d: key %q caption %q sha256 %q size %dx%d (%dx%d), want %+v",
			i, str(0), str(1), str(8), i32(4), i32(5), i32(6), i32(7), want)
	}

	label := rec.Column(9)
	switch {
	case want.Label == nil && !label.IsNull(i):
		t.Errorf("key %s: label %d, want null", want.Key, i32(9))
	case want.Label != nil && (label.IsNull(i) || i32(9) != *want.Label):
		t.Errorf("key %s: label %v, want %d", want.Key, label.ValueStr(i), *want.Label)
	}

	url := rec.Column(10)
	switch {
	case want.URL == "" && !url.IsNull(i):
		t.Errorf("key %s: url %q, want null", want.Key, str(10))
	case want.URL != "" && (url.IsNull(i) || str(10) != want.URL):
		t.Errorf("key %s: url %v, want %q", want.Key, url.ValueStr(i), want.URL)
	}
}
