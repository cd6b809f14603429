package shard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// encodeHeader is the Thrift compact encoding of h, as parquet-go writes it.
func encodeHeader(t testing.TB, h *format.PageHeader) []byte {
	t.Helper()
	b, err := thrift.Marshal(new(thrift.CompactProtocol), h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// v1Page is a data page v1 header of n values over a body of size bytes.
func v1Page(n, size int32) *format.PageHeader {
	return &format.PageHeader{Type: format.DataPage, CompressedPageSize: size, UncompressedPageSize: size,
		DataPageHeader: thrift.New(format.DataPageHeader{NumValues: n})}
}

// chunkFile lays pages (headers and bodies, concatenated) out as a column chunk after a
// 4-byte magic and returns the file bytes and the chunk's metadata.
func chunkFile(codec format.CompressionCodec, values int64, pages ...[]byte) ([]byte, *format.ColumnMetaData) {
	file := []byte("PAR1")
	for _, p := range pages {
		file = append(file, p...)
	}
	md := &format.ColumnMetaData{Codec: codec, NumValues: values, DataPageOffset: 4, TotalCompressedSize: int64(len(file) - 4)}
	return append(file, "PAR1"...), md
}

// nested is a Thrift struct field (id 9) nested depth structs deep, as a page header.
func nested(depth int) []byte {
	b := bytes.Repeat([]byte{0x9c}, depth) // field delta 9, type struct
	return append(b, make([]byte, depth+1)...)
}

func TestCheckChunkPages(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 40)
	page := func(h *format.PageHeader, body []byte) []byte { return append(encodeHeader(t, h), body...) }
	good := page(v1Page(10, 40), body)
	small := Limits{MaxPageBytes: 1 << 10, MaxChunkValues: 100, MaxRowGroupBytes: 1 << 20}
	v2 := func(values, nulls, rows, def, rep int32) []byte {
		return page(&format.PageHeader{Type: format.DataPageV2, CompressedPageSize: 40, UncompressedPageSize: 40,
			DataPageHeaderV2: thrift.New(format.DataPageHeaderV2{NumValues: values, NumNulls: nulls, NumRows: rows,
				DefinitionLevelsByteLength: def, RepetitionLevelsByteLength: rep})}, body)
	}
	snappyPage := func(declared uint64) []byte {
		data := binary.AppendUvarint(nil, declared)
		data = append(data, make([]byte, 40-len(data))...)
		return page(v1Page(10, 40), data)
	}
	zstdPage := func(data []byte) []byte {
		h := v1Page(10, int32(len(data)))
		h.UncompressedPageSize = 1000
		return page(h, data)
	}
	zframe := func(fhd byte, rest ...byte) []byte {
		return append([]byte{0x28, 0xb5, 0x2f, 0xfd, fhd}, rest...)
	}
	rleBlocks := func(n int) []byte { // n RLE blocks of 100 KiB, the last one marked
		var b []byte
		for i := range n {
			h := uint32(100<<10)<<3 | 1<<1
			if i == n-1 {
				h |= 1
			}
			b = append(b, byte(h), byte(h>>8), byte(h>>16), 'x')
		}
		return b
	}
	zstdData, err := new(zstd.Codec).Encode(nil, bytes.Repeat([]byte("zstd data "), 100))
	if err != nil {
		t.Fatal(err)
	}
	statsBomb := page(&format.PageHeader{Type: format.DataPage, CompressedPageSize: 40, UncompressedPageSize: 40,
		DataPageHeader: thrift.New(format.DataPageHeader{NumValues: 10,
			Statistics: format.Statistics{MaxValue: []byte("a")}})}, body)
	statsBomb = bytes.Replace(statsBomb, []byte{1, 'a'}, []byte{0xff, 0xff, 0xff, 0xff, 0x07, 'a'}, 1) // length 2^31-1

	tests := []struct {
		name    string
		codec   format.CompressionCodec
		values  int64
		rows    int64
		rep     bool
		lim     Limits
		pages   [][]byte
		want    string // "" accepts; else a substring of the error
		corrupt bool
	}{
		{name: "one page", values: 10, rows: 10, pages: [][]byte{good}},
		{name: "two pages and a dictionary", values: 20, rows: 20, pages: [][]byte{
			page(&format.PageHeader{Type: format.DictionaryPage, CompressedPageSize: 40, UncompressedPageSize: 40,
				DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: 5})}, body), good, good}},
		{name: "empty chunk", pages: nil},
		{name: "repeated column: more values than rows", values: 10, rows: 2, rep: true, pages: [][]byte{good}},
		{name: "data page v2", values: 10, rows: 10, pages: [][]byte{v2(10, 2, 10, 4, 0)}},
		{name: "compressed size 2^31-1", values: 10, rows: 10, pages: [][]byte{page(v1Page(10, math.MaxInt32), body)},
			want: "runs past the chunk's end", corrupt: true},
		{name: "negative size", values: 10, rows: 10, pages: [][]byte{page(v1Page(10, -1), body)}, corrupt: true},
		{name: "uncompressed size over the limit", values: 10, rows: 10, lim: small, pages: [][]byte{page(&format.PageHeader{
			Type: format.DataPage, CompressedPageSize: 40, UncompressedPageSize: 2 << 10,
			DataPageHeader: thrift.New(format.DataPageHeader{NumValues: 10})}, body)},
			want: "page of 2048 bytes exceeds the limit of 1024"},
		{name: "page values over the chunk's", values: 10, rows: 10, pages: [][]byte{page(v1Page(math.MaxInt32, 40), body)},
			want: "page of 2147483647 values, the chunk has 10 left", corrupt: true},
		{name: "pages add up to more values", values: 15, rows: 15, pages: [][]byte{good, good},
			want: "page of 10 values, the chunk has 5 left", corrupt: true},
		{name: "chunk values over the limit", values: 101, rows: 101, rep: true, lim: small, pages: [][]byte{good},
			want: "chunk of 101 values exceeds the limit of 100"},
		{name: "flat chunk with more values than rows", values: 10, rows: 9, pages: [][]byte{good},
			want: "chunk of 10 values in a row group of 9 rows", corrupt: true},
		{name: "dictionary larger than the chunk", values: 10, rows: 10, pages: [][]byte{page(&format.PageHeader{
			Type: format.DictionaryPage, CompressedPageSize: 40, UncompressedPageSize: 40,
			DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: 1 << 30})}, body)}, corrupt: true},
		{name: "data page without its header", values: 10, rows: 10, pages: [][]byte{page(&format.PageHeader{
			Type: format.DataPage, CompressedPageSize: 40, UncompressedPageSize: 40}, body)},
			want: "lacks its type's header", corrupt: true},
		{name: "index page", values: 10, rows: 10, pages: [][]byte{page(&format.PageHeader{
			Type: format.IndexPage, CompressedPageSize: 40, UncompressedPageSize: 40}, body)},
			want: "page type 1", corrupt: true},
		{name: "v2 levels longer than the page", values: 10, rows: 10, pages: [][]byte{v2(10, 0, 10, 30, 30)},
			want: "30+30 bytes of levels", corrupt: true},
		{name: "v2 more nulls than values", values: 10, rows: 10, pages: [][]byte{v2(10, 11, 10, 0, 0)}, corrupt: true},
		{name: "statistics of 2^31-1 bytes", values: 10, rows: 10, pages: [][]byte{statsBomb},
			want: "runs past the end", corrupt: true},
		{name: "header nested too deep", values: 10, rows: 10, pages: [][]byte{nested(MaxThriftDepth + 4)},
			want: "nested deeper than 32", corrupt: true},
		{name: "truncated header", values: 10, rows: 10, pages: [][]byte{good[:3]}, corrupt: true},
		{name: "trailing garbage", values: 10, rows: 10, pages: [][]byte{good, {0xff}}, corrupt: true},
		{name: "snappy declares its size", codec: format.Snappy, values: 10, rows: 10, pages: [][]byte{snappyPage(40)}},
		{name: "snappy declares 4 GiB", codec: format.Snappy, values: 10, rows: 10, pages: [][]byte{snappyPage(1<<32 - 1)},
			want: "declares 4294967295 bytes, the page header 40", corrupt: true},
		{name: "zstd frame of 1000 bytes", codec: format.Zstd, values: 10, rows: 10,
			pages: [][]byte{zstdPage(zstdData)}},
		{name: "zstd frame declares 60 GiB", codec: format.Zstd, values: 10, rows: 10,
			pages: [][]byte{zstdPage(zframe(0xc0, 0, 0, 0, 0, 0, 15, 0, 0, 0, 1, 0, 0))},
			want:  "frame declares 64424509440 bytes", corrupt: true},
		{name: "zstd RLE blocks over the limit", codec: format.Zstd, values: 10, rows: 10, lim: Limits{MaxPageBytes: 1 << 20},
			pages: [][]byte{zstdPage(append(zframe(0x00, 0x00), rleBlocks(11)...))},
			want:  "may decode to 1126400 bytes exceed the limit of 1048576"},
		{name: "zstd bad magic", codec: format.Zstd, values: 10, rows: 10, pages: [][]byte{zstdPage([]byte("not zstd"))},
			want: "frame magic", corrupt: true},
		{name: "gzip refused", codec: format.Gzip, values: 10, rows: 10, pages: [][]byte{good},
			want: "codec GZIP is refused"},
		{name: "gzip accepted on request", codec: format.Gzip, values: 10, rows: 10, lim: Limits{UnboundedCodecs: true},
			pages: [][]byte{good}},
		{name: "chunk over the row group limit", values: 10, rows: 10, lim: Limits{MaxRowGroupBytes: 10},
			pages: [][]byte{good}, want: "exceeds the limit of 10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file, md := chunkFile(tc.codec, tc.values, tc.pages...)
			err := checkChunkPages(bytes.NewReader(file), int64(len(file)), md, tc.rows, tc.rep, tc.lim.withDefaults())
			switch {
			case tc.want == "" && !tc.corrupt:
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			case err == nil:
				t.Fatalf("accepted, want an error containing %q", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			case errors.Is(err, ErrCorrupt) != tc.corrupt:
				t.Errorf("error %q: errors.Is(ErrCorrupt) = %v, want %v", err, !tc.corrupt, tc.corrupt)
			}
		})
	}
}

func TestCheckChunkPagesOutsideFile(t *testing.T) {
	file, md := chunkFile(format.Uncompressed, 10, append(encodeHeader(t, v1Page(10, 4)), 1, 2, 3, 4))
	for _, tc := range []struct {
		name string
		edit func(*format.ColumnMetaData)
	}{
		{"dictionary offset 0 is no dictionary", nil},
		{"negative dictionary offset", func(m *format.ColumnMetaData) { m.DictionaryPageOffset = -8 }},
		{"chunk past the end", func(m *format.ColumnMetaData) { m.TotalCompressedSize = math.MaxInt64 }},
		{"offset past the end", func(m *format.ColumnMetaData) { m.DataPageOffset = math.MaxInt64 - 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := *md
			if tc.edit != nil {
				tc.edit(&m)
			}
			err := checkChunkPages(bytes.NewReader(file), int64(len(file)), &m, 10, false, DefaultLimits)
			if (err == nil) != (tc.edit == nil) || err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v", err)
			}
		})
	}
}

// TestCheckPagesAcceptsWrittenFiles runs the page checks over every column chunk of files
// written by this package, by parquet-go with snappy and dictionaries, and by Arrow in each
// of pyarrow's layouts (snappy and zstd, data pages v1 and v2, dictionary fallback).
func TestCheckPagesAcceptsWrittenFiles(t *testing.T) {
	native, _ := writeShards(t, 1, 30, 7)
	files := map[string]string{"native": native[0]}
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf.parquet")
	rows := make([]hfRow, 30)
	for i := range rows {
		rows[i] = hfRow{Image: &hfImage{Bytes: bytes.Repeat([]byte{byte(i)}, 300)}, Text: "caption " + string(rune('a'+i%5)), Label: int64(i)}
	}
	writeGeneric(t, hf, rows)
	files["hugging face"] = hf
	for _, l := range arrowLayouts {
		mem := memory.NewGoAllocator()
		recs := testRecords("i2d-", 20)
		want := make([]i2dRow, len(recs))
		for i, r := range recs {
			want[i] = i2dRow{Record: r, Caption: &recs[i].Caption}
		}
		sc, batches := img2datasetArrow(mem, want)
		path := filepath.Join(dir, strings.ReplaceAll(l.name, "/", "-")+".parquet")
		writeArrow(t, path, sc, batches, l)
		releaseAll(batches)
		files["arrow "+l.name] = path
	}
	for name, path := range files {
		t.Run(name, func(t *testing.T) {
			f, err := openParquet(path, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			size := f.pf.Size()
			var tail [4]byte
			if _, err := f.os.ReadAt(tail[:], size-8); err != nil {
				t.Fatal(err)
			}
			if err := checkFooter(f.os, size, int64(binary.LittleEndian.Uint32(tail[:]))); err != nil {
				t.Error(err)
			}
			repeated := map[int]bool{}
			var walk func(c *parquet.Column)
			walk = func(c *parquet.Column) {
				if c.Leaf() {
					repeated[c.Index()] = c.MaxRepetitionLevel() > 0
				}
				for _, k := range c.Columns() {
					walk(k)
				}
			}
			walk(f.pf.Root())
			md := f.pf.Metadata()
			for g := range md.RowGroups {
				rg := &md.RowGroups[g]
				for c := range rg.Columns {
					if err := checkChunkPages(f.os, size, &rg.Columns[c].MetaData, rg.NumRows, repeated[c], DefaultLimits); err != nil {
						t.Errorf("row group %d column %d: %v", g, c, err)
					}
				}
			}
		})
	}
}

// rewritePage returns a copy of the Parquet file b in which the first page header of leaf
// column col in row group 0 is replaced by edit's version of it, with the footer's later
// offsets moved to match.
func rewritePage(t testing.TB, b []byte, col int, edit func(*format.PageHeader)) []byte {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	footerAt := len(b) - 8 - n
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[footerAt:len(b)-8], &md); err != nil {
		t.Fatal(err)
	}
	cm := &md.RowGroups[0].Columns[col].MetaData
	start := cm.DataPageOffset
	if cm.DictionaryPageOffset != 0 {
		start = cm.DictionaryPageOffset
	}
	tr := newThriftReader(bytes.NewReader(b), start, int64(footerAt))
	if _, err := tr.pageHeader(); err != nil {
		t.Fatal(err)
	}
	var h format.PageHeader
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[start:tr.off], &h); err != nil {
		t.Fatal(err)
	}
	edit(&h)
	hb := encodeHeader(t, &h)
	delta := int64(len(hb)) - (tr.off - start)
	out := append(append(append([]byte(nil), b[:start]...), hb...), b[tr.off:footerAt]...)
	move := func(p *int64) {
		if *p > start {
			*p += delta
		}
	}
	for g := range md.RowGroups {
		rg := &md.RowGroups[g]
		move(&rg.FileOffset)
		for c := range rg.Columns {
			cc := &rg.Columns[c]
			cc.ColumnIndexOffset, cc.ColumnIndexLength, cc.OffsetIndexOffset, cc.OffsetIndexLength = 0, 0, 0, 0
			move(&cc.FileOffset)
			move(&cc.MetaData.DataPageOffset)
			move(&cc.MetaData.DictionaryPageOffset)
		}
	}
	cm.TotalCompressedSize += delta
	cm.TotalUncompressedSize += delta
	fb, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fb...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(fb)))
	return append(out, "PAR1"...)
}

// shardBytes returns a shard file's bytes and the leaf index of its image column, which the
// crafted-page tests rewrite.
func shardBytes(t testing.TB, path string) ([]byte, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := openParquet(path, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return b, lookupColumn(f.pf.Root(), ColJPG).Index()
}

// TestRowGroupPagesCrafted crafts a shard whose image column's first page header declares
// a 2 GiB body (parquet-go would allocate it before finding the file too short) and checks
// that checkRowGroupPages refuses it, naming the file, row group, column and page, while
// the unedited rewrite reads back whole.
func TestRowGroupPagesCrafted(t *testing.T) {
	native, recs := writeShards(t, 1, 12, 12)
	valid, jpg := shardBytes(t, native[0])
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		edit func(*format.PageHeader)
		want string
	}{
		{"unchanged", func(*format.PageHeader) {}, ""},
		{"2 GiB body", func(h *format.PageHeader) { h.CompressedPageSize = math.MaxInt32 }, "page of 2147483647 bytes runs past"},
		{"2 GiB uncompressed", func(h *format.PageHeader) { h.UncompressedPageSize = math.MaxInt32 }, "exceeds the limit of 268435456"},
		{"2^31-1 values", func(h *format.PageHeader) {
			h.DataPageHeader.V.NumValues, h.DataPageHeaderV2.V.NumValues = math.MaxInt32, math.MaxInt32
		}, "values, the chunk has 12 left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".parquet")
			if err := os.WriteFile(path, rewritePage(t, valid, jpg, tc.edit), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := openParquet(path, DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			lay, err := resolve(f.pf, path, AllColumns, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = checkRowGroupPages(f, lay, 0, DefaultLimits)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, []string{path}, ReadOptions{}); len(got) != len(recs) || !bytes.Equal(got[5].JPG, recs[5].JPG) {
					t.Errorf("rewritten file reads %d records, want %d equal ones", len(got), len(recs))
				}
				return
			}
			want := "shard " + path + ` row group 0 column "jpg": page 0 at byte `
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q ... %q", err, want, tc.want)
			}
		})
	}
}

func TestCheckFooterNesting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		footer []byte
		ok     bool
	}{
		{"empty struct", []byte{0}, true},
		{"nested within the limit", nested(MaxThriftDepth - 1), true},
		{"nested past the limit", nested(1 << 16), false},
		{"list of 2^32 elements", []byte{0x19, 0xf5, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}, false},
		{"map of 2^40 entries", []byte{0x1b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x55, 0}, false},
		{"binary of 2^31 bytes", []byte{0x18, 0x80, 0x80, 0x80, 0x80, 0x08, 0}, false},
		{"varint of 11 bytes", append([]byte{0x15}, append(bytes.Repeat([]byte{0x80}, 10), 1, 0)...), false},
		{"unknown type 14", []byte{0x1e, 0}, false},
		{"no stop", []byte{0x15, 0x02}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := append(append([]byte("PAR1"), tc.footer...), 0, 0, 0, 0, 'P', 'A', 'R', '1')
			binary.LittleEndian.PutUint32(file[len(file)-8:], uint32(len(tc.footer)))
			err := checkFooter(bytes.NewReader(file), int64(len(file)), int64(len(tc.footer)))
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func FuzzCheckChunkPages(f *testing.F) {
	good := append(encodeHeader(f, v1Page(10, 4)), 1, 2, 3, 4)
	f.Add(good, uint8(0), int64(10))
	f.Add(append(good, good...), uint8(1), int64(20))
	f.Add(nested(40), uint8(6), int64(1))
	f.Add(append(encodeHeader(f, v1Page(10, 9)), 0x28, 0xb5, 0x2f, 0xfd, 0x20, 4, 1, 0, 0), uint8(6), int64(10))
	codecs := []format.CompressionCodec{format.Uncompressed, format.Snappy, format.Zstd, format.Gzip}
	lim := Limits{MaxPageBytes: 1 << 16, MaxChunkValues: 1 << 10}.withDefaults()
	f.Fuzz(func(t *testing.T, pages []byte, codec uint8, values int64) {
		file, md := chunkFile(codecs[int(codec)%len(codecs)], values, pages)
		_ = checkChunkPages(bytes.NewReader(file), int64(len(file)), md, values, codec&4 != 0, lim)
		_ = checkFooter(bytes.NewReader(file), int64(len(file)), int64(len(pages)))
	})
}

func TestCheckRowCounts(t *testing.T) {
	lim := Limits{MaxRowGroupRows: 100}.withDefaults()
	groups := func(rows ...int64) *format.FileMetaData {
		md := &format.FileMetaData{}
		for _, r := range rows {
			md.RowGroups = append(md.RowGroups, format.RowGroup{NumRows: r})
			md.NumRows += r
		}
		return md
	}
	for _, tc := range []struct {
		name string
		md   *format.FileMetaData
		want string // "" accepts
	}{
		{"two groups", groups(100, 3), ""},
		{"no groups", groups(), ""},
		{"group over the limit", groups(3, 101), "row group 1: 101 rows exceed the limit of 100"},
		{"2^40 rows", groups(1 << 40), "exceed the limit"},
		{"negative rows", groups(5, -1), "row group 1 has -1 rows"},
		{"sum differs", &format.FileMetaData{NumRows: 7, RowGroups: []format.RowGroup{{NumRows: 3}}}, "hold 3 rows, the footer says 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRowCounts(tc.md, lim)
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	overflow := &format.FileMetaData{RowGroups: []format.RowGroup{{NumRows: math.MaxInt64}, {NumRows: math.MaxInt64}}}
	if err := checkRowCounts(overflow, Limits{MaxRowGroupRows: math.MaxInt64}.withDefaults()); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Errorf("overflowing counts: error %v", err)
	}
}

// TestCheckFooterOnShard appends an unknown field of nested structs to a shard's footer:
// parquet-go skips it (by recursion) when shallow, and checkFooter refuses it when deeper
// than MaxThriftDepth; 8 Mi levels (a 16 MiB footer) overflow parquet-go's stack, fatally.
func TestCheckFooterOnShard(t *testing.T) {
	native, _ := writeShards(t, 1, 4, 4)
	valid, err := os.ReadFile(native[0])
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint32(valid[len(valid)-8:]))
	footer := valid[len(valid)-8-n : len(valid)-9] // without its final stop
	for _, depth := range []int{MaxThriftDepth - 2, MaxThriftDepth + 1, 1 << 20} {
		fb := append(append([]byte(nil), footer...), 0x0c, 0xc8, 0x01) // field 100: a struct
		fb = append(append(fb, nested(depth)...), 0)
		file := append(append([]byte(nil), valid[:len(valid)-8-n]...), fb...)
		file = append(binary.LittleEndian.AppendUint32(file, uint32(len(fb))), "PAR1"...)
		err := checkFooter(bytes.NewReader(file), int64(len(file)), int64(len(fb)))
		if ok := depth < MaxThriftDepth-1; (err == nil) != ok {
			t.Errorf("depth %d: error %v", depth, err)
		}
		if err == nil {
			path := filepath.Join(t.TempDir(), "nested.parquet")
			if err := os.WriteFile(path, file, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, []string{path}, ReadOptions{}); len(got) != 4 {
				t.Errorf("depth %d: read %d records, want 4", depth, len(got))
			}
		}
	}
}

// BenchmarkCheckRowGroupPages walks the page headers of every row group of a shard of 2,048
// rows with 4 KiB images (BenchmarkReadShard's file), all columns; bytes per op are the
// file's, so MB/s compares with BenchmarkReadShard's.
func BenchmarkCheckRowGroupPages(b *testing.B) {
	recs := testRecords("bench-", 2048)
	for i := range recs {
		recs[i].JPG = bytes.Repeat(recs[i].JPG[:64], 64)
	}
	path := filepath.Join(b.TempDir(), "bench.parquet")
	if _, err := WriteFile(path, recs, DefaultRowGroupRows); err != nil {
		b.Fatal(err)
	}
	f, err := openParquet(path, DefaultLimits)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lay, err := resolve(f.pf, path, AllColumns, nil)
	if err != nil {
		b.Fatal(err)
	}
	groups := len(f.pf.Metadata().RowGroups)
	b.SetBytes(f.pf.Size())
	b.ReportAllocs()
	for b.Loop() {
		for g := range groups {
			if err := checkRowGroupPages(f, lay, g, DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestDescribeChecksPages: DescribeFile samples every column of the first row group, so it
// checks their page headers as the reader does (a fuzzed file declaring 2^31−1 values made
// parquet-go allocate 8 GiB there).
func TestDescribeChecksPages(t *testing.T) {
	native, _ := writeShards(t, 1, 12, 12)
	valid, jpg := shardBytes(t, native[0])
	path := filepath.Join(t.TempDir(), "values.parquet")
	crafted := rewritePage(t, valid, jpg, func(h *format.PageHeader) {
		h.DataPageHeader.V.NumValues, h.DataPageHeaderV2.V.NumValues = math.MaxInt32, math.MaxInt32
	})
	if err := os.WriteFile(path, crafted, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DescribeFile(path, 3, DefaultLimits); err == nil || !strings.Contains(err.Error(), "values") {
		t.Fatalf("DescribeFile of a page declaring 2^31-1 values: %v, want a refusal", err)
	}
	if fi, err := DescribeFile(native[0], 3, DefaultLimits); err != nil || len(fi.Samples) != 3 {
		t.Fatalf("DescribeFile of the valid shard: %+v, %v", fi.Samples, err)
	}
}
