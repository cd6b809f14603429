package shard

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// A column chunk is a run of pages, each a Thrift PageHeader and a body. parquet-go trusts
// the header: it allocates compressed_page_size bytes before reading the body, a buffer of
// uncompressed_page_size to decompress into, and level, offset and value buffers sized by
// num_values, all int32s (up to 2 GiB, or 16 GiB of int64 values); its Thrift decoder
// allocates a binary field (page statistics) whole from its declared length. SNAPPY and
// ZSTD data carry sizes of their own that the decoders allocate from (up to 4 GiB and
// 64 GiB). checkChunkPages walks the headers and codec framing of a chunk first, with
// small reads and no allocation sized by the file, so that none of these sizes reaches
// parquet-go unchecked.

// Block_Maximum_Size of the ZSTD format: a block never decodes to more.
const zstdMaxBlock = 128 << 10

// pageCounts are the fields of one page-type header (data v1, dictionary or data v2).
type pageCounts struct {
	set            bool
	values         int32
	nulls, rows    int32 // data page v2
	defLen, repLen int32 // data page v2: bytes of levels before the (compressed) values
	compressed     bool  // data page v2: is_compressed, true when absent
}

// pageHeader is what checkChunkPages needs of a Thrift PageHeader.
type pageHeader struct {
	typ                      int32
	uncompressed, compressed int32
	v1, dict, v2             pageCounts
}

// Page types of the Parquet format.
const (
	pageData   = 0
	pageDict   = 2
	pageDataV2 = 3
)

// pageHeader reads a PageHeader; unknown fields are skipped (bounded by MaxThriftDepth).
func (t *thriftReader) pageHeader() (h pageHeader, err error) {
	var last int16
	for {
		id, typ, err := t.field(&last)
		if err != nil || typ == tStop {
			return h, err
		}
		switch {
		case id >= 1 && id <= 4 && typ == tI32:
			v, err := t.i32()
			if err != nil {
				return h, err
			}
			switch id {
			case 1:
				h.typ = v
			case 2:
				h.uncompressed = v
			case 3:
				h.compressed = v
			}
		case (id == 5 || id == 7 || id == 8) && typ == tStruct:
			c, err := t.pageCounts()
			if err != nil {
				return h, fmt.Errorf("page header field %d: %w", id, err)
			}
			switch id {
			case 5:
				h.v1 = c
			case 7:
				h.dict = c
			case 8:
				h.v2 = c
			}
		case id >= 1 && id <= 8 && id != 6:
			return h, fmt.Errorf("page header field %d has thrift type %d", id, typ)
		default:
			if err := t.skipValue(typ, 1, false); err != nil {
				return h, err
			}
		}
	}
}

// pageCounts reads a DataPageHeader, DictionaryPageHeader or DataPageHeaderV2: their
// integer fields 1-6 (counts, encodings, level lengths) and v2's is_compressed (7); other
// fields (statistics, is_sorted) are skipped.
func (t *thriftReader) pageCounts() (c pageCounts, err error) {
	c.set, c.compressed = true, true
	var last int16
	for {
		id, typ, err := t.field(&last)
		if err != nil || typ == tStop {
			return c, err
		}
		switch {
		case typ == tI32 && id >= 1 && id <= 6:
			v, err := t.i32()
			if err != nil {
				return c, err
			}
			switch id {
			case 1:
				c.values = v
			case 2:
				c.nulls = v
			case 3:
				c.rows = v
			case 5:
				c.defLen = v
			case 6:
				c.repLen = v
			}
		case id == 7 && (typ == tTrue || typ == tFalse):
			c.compressed = typ == tTrue
		case id == 1:
			return c, fmt.Errorf("num_values has thrift type %d", typ)
		default:
			if err := t.skipValue(typ, 2, false); err != nil {
				return c, err
			}
		}
	}
}

// checkChunkPages checks every page header of the column chunk md of a file of fileSize
// bytes read through r, before parquet-go reads the chunk: the pages must tile the chunk,
// each within lim.MaxPageBytes, their values within the chunk's count (itself within
// lim.MaxChunkValues, and within rows unless the column is repeated), and SNAPPY and ZSTD
// bodies must not declare more bytes than their page. The error names the page and its
// offset; the caller adds the file, row group and column.
func checkChunkPages(r io.ReaderAt, fileSize int64, md *format.ColumnMetaData, rows int64, repeated bool, lim Limits) error {
	lim = lim.withDefaults()
	switch md.Codec {
	case format.Uncompressed, format.Snappy, format.Zstd:
	case format.Gzip, format.Brotli, format.Lz4, format.Lz4Raw:
		if !lim.UnboundedCodecs {
			return fmt.Errorf("codec %s is refused: parquet-go inflates its pages without a bound, so one crafted page could exhaust memory; "+
				"re-encode the file with SNAPPY or ZSTD (pyarrow: compression='zstd'), or, for files you trust, set Limits.UnboundedCodecs", md.Codec)
		}
	default:
		return fmt.Errorf("%w: unsupported codec %s", ErrCorrupt, md.Codec)
	}
	start := md.DataPageOffset
	if md.DictionaryPageOffset != 0 { // where parquet-go starts reading
		start = md.DictionaryPageOffset
	}
	size := md.TotalCompressedSize
	if start < 4 || size < 0 || size > fileSize || start > fileSize-size {
		return fmt.Errorf("%w: chunk at %d+%d outside the %d-byte file", ErrCorrupt, start, size, fileSize)
	}
	if size > lim.MaxRowGroupBytes {
		return fmt.Errorf("chunk of %d bytes exceeds the limit of %d", size, lim.MaxRowGroupBytes)
	}
	if md.NumValues < 0 || !repeated && md.NumValues > rows {
		return fmt.Errorf("%w: chunk of %d values in a row group of %d rows", ErrCorrupt, md.NumValues, rows)
	}
	if md.NumValues > lim.MaxChunkValues {
		return fmt.Errorf("chunk of %d values exceeds the limit of %d", md.NumValues, lim.MaxChunkValues)
	}
	end := start + size
	t := newThriftReader(r, start, end)
	var values int64 // data values seen so far
	for page, off := 0, start; off < end; page++ {
		t.off, t.end = off, min(end, off+lim.MaxPageBytes)
		h, err := t.pageHeader()
		if err != nil {
			return fmt.Errorf("page %d at byte %d: %w: header: %w", page, off, ErrCorrupt, err)
		}
		body := t.off
		if err := checkPage(h, end-body, md.NumValues-values, lim); err != nil {
			return fmt.Errorf("page %d at byte %d: %w", page, off, err)
		}
		c := h.v1
		switch h.typ {
		case pageDict:
			c = h.dict
		case pageDataV2:
			c = h.v2
		}
		if h.typ != pageDict {
			values += int64(c.values)
		}
		if h.typ != pageDataV2 || c.compressed { // only v2 pages may be stored uncompressed
			from := body
			if h.typ == pageDataV2 { // a v2 page's levels precede its data, uncompressed
				from += int64(c.defLen) + int64(c.repLen)
			}
			err = checkCodecData(t, md.Codec, from, body+int64(h.compressed), int64(h.uncompressed), lim)
			if err != nil {
				return fmt.Errorf("page %d at byte %d: %s data: %w", page, off, md.Codec, err)
			}
		}
		off = body + int64(h.compressed)
	}
	return nil
}

// checkPage checks one page header against the bytes left in its chunk after the header,
// the values the chunk has left for it, and lim.
func checkPage(h pageHeader, bytesLeft, valuesLeft int64, lim Limits) error {
	if h.compressed < 0 || h.uncompressed < 0 {
		return fmt.Errorf("%w: page of %d bytes, %d uncompressed", ErrCorrupt, h.compressed, h.uncompressed)
	}
	if int64(h.compressed) > bytesLeft {
		return fmt.Errorf("%w: page of %d bytes runs past the chunk's end (%d bytes left)", ErrCorrupt, h.compressed, bytesLeft)
	}
	if n := int64(max(h.compressed, h.uncompressed)); n > lim.MaxPageBytes {
		return fmt.Errorf("page of %d bytes exceeds the limit of %d", n, lim.MaxPageBytes)
	}
	var c pageCounts
	switch h.typ {
	case pageData:
		c = h.v1
	case pageDict:
		c = h.dict
	case pageDataV2:
		c = h.v2
		if c.nulls < 0 || c.nulls > c.values || c.rows < 0 || c.rows > c.values {
			return fmt.Errorf("%w: data page v2 of %d values has %d nulls and %d rows", ErrCorrupt, c.values, c.nulls, c.rows)
		}
		if c.defLen < 0 || c.repLen < 0 || int64(c.defLen)+int64(c.repLen) > int64(h.compressed) {
			return fmt.Errorf("%w: data page v2 of %d bytes has %d+%d bytes of levels", ErrCorrupt, h.compressed, c.repLen, c.defLen)
		}
	default:
		return fmt.Errorf("%w: page type %d is not a data or dictionary page", ErrCorrupt, h.typ)
	}
	if !c.set {
		return fmt.Errorf("%w: page of type %d lacks its type's header", ErrCorrupt, h.typ)
	}
	if c.values < 0 || int64(c.values) > valuesLeft {
		return fmt.Errorf("%w: page of %d values, the chunk has %d left", ErrCorrupt, c.values, valuesLeft)
	}
	return nil
}

// checkCodecData checks the framing of the compressed data in [from, to) of t's file (it
// moves t there): a SNAPPY block must declare at most uncompressed bytes, and the blocks of
// ZSTD frames at most lim.MaxPageBytes (frame content sizes at most uncompressed).
func checkCodecData(t *thriftReader, codec format.CompressionCodec, from, to, uncompressed int64, lim Limits) error {
	if from > to {
		return fmt.Errorf("%w: no room for data", ErrCorrupt)
	}
	t.off, t.end = from, to
	switch codec {
	case format.Snappy:
		if from == to {
			return nil
		}
		n, err := t.uvarint()
		if err != nil {
			return fmt.Errorf("%w: length: %w", ErrCorrupt, err)
		}
		if n > uint64(uncompressed) {
			return fmt.Errorf("%w: declares %d bytes, the page header %d", ErrCorrupt, n, uncompressed)
		}
	case format.Zstd:
		return checkZstd(t, uncompressed, lim.MaxPageBytes)
	}
	return nil
}

// checkZstd walks the frames and block headers of ZSTD data without decoding it: every
// frame content size must fit in uncompressed, and the most its blocks can decode to in
// limit (a raw or RLE block decodes to its size, a compressed one to at most 128 KiB).
func checkZstd(t *thriftReader, uncompressed, limit int64) error {
	var bound int64
	var b [8]byte
	for t.left() > 0 {
		if err := t.read(b[:4]); err != nil {
			return fmt.Errorf("%w: frame magic: %w", ErrCorrupt, err)
		}
		magic := binary.LittleEndian.Uint32(b[:4])
		if magic&^0xf == 0x184D2A50 { // skippable frame
			if err := t.read(b[:4]); err != nil {
				return fmt.Errorf("%w: skippable frame: %w", ErrCorrupt, err)
			}
			if err := t.skip(uint64(binary.LittleEndian.Uint32(b[:4]))); err != nil {
				return fmt.Errorf("%w: skippable frame: %w", ErrCorrupt, err)
			}
			continue
		}
		if magic != 0xFD2FB528 {
			return fmt.Errorf("%w: frame magic %#x", ErrCorrupt, magic)
		}
		fhd, err := t.byte()
		if err != nil {
			return fmt.Errorf("%w: frame header: %w", ErrCorrupt, err)
		}
		single := fhd>>5&1 == 1
		fcsBytes := [4]int{0, 2, 4, 8}[fhd>>6]
		if fhd>>6 == 0 && single {
			fcsBytes = 1
		}
		skip := [4]uint64{0, 1, 2, 4}[fhd&3] // dictionary id
		if !single {
			skip++ // window descriptor
		}
		if err := t.skip(skip); err != nil {
			return fmt.Errorf("%w: frame header: %w", ErrCorrupt, err)
		}
		clear(b[:])
		if err := t.read(b[:fcsBytes]); err != nil {
			return fmt.Errorf("%w: frame header: %w", ErrCorrupt, err)
		}
		fcs := binary.LittleEndian.Uint64(b[:])
		if fcsBytes == 2 {
			fcs += 256
		}
		if fcs > uint64(uncompressed) {
			return fmt.Errorf("%w: frame declares %d bytes, the page header %d", ErrCorrupt, fcs, uncompressed)
		}
		for last := false; !last; {
			if err := t.read(b[:3]); err != nil {
				return fmt.Errorf("%w: block header: %w", ErrCorrupt, err)
			}
			h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			size := uint64(h >> 3)
			last = h&1 == 1
			switch h >> 1 & 3 {
			case 0: // raw
				bound += int64(size)
				err = t.skip(size)
			case 1: // RLE: one byte repeated size times
				bound += int64(size)
				err = t.skip(1)
			case 2:
				if size > zstdMaxBlock {
					return fmt.Errorf("%w: compressed block of %d bytes", ErrCorrupt, size)
				}
				bound += zstdMaxBlock
				err = t.skip(size)
			default:
				return fmt.Errorf("%w: reserved block type", ErrCorrupt)
			}
			if err != nil {
				return fmt.Errorf("%w: block: %w", ErrCorrupt, err)
			}
			if bound > limit {
				return fmt.Errorf("blocks that may decode to %d bytes exceed the limit of %d", bound, limit)
			}
		}
		if fhd>>2&1 == 1 { // content checksum
			if err := t.skip(4); err != nil {
				return fmt.Errorf("%w: checksum: %w", ErrCorrupt, err)
			}
		}
	}
	return nil
}

// checkRowGroupPages runs checkChunkPages over the column chunks of row group rg of f that
// lay reads. readRowGroup calls it before parquet-go decodes a page.
func checkRowGroupPages(f *parquetFile, lay *layout, rg int, lim Limits) error {
	return checkColumnPages(f, lay.cols, rg, lim)
}

// checkColumnPages checks the page headers of row group rg's chunks of the columns cols.
func checkColumnPages(f *parquetFile, cols []colSpec, rg int, lim Limits) error {
	md := f.pf.Metadata()
	if rg < 0 || rg >= len(md.RowGroups) {
		return fmt.Errorf("shard %s: no row group %d", f.path, rg)
	}
	g := &md.RowGroups[rg]
	for _, c := range cols {
		if c.leaf < 0 || c.leaf >= len(g.Columns) {
			return fmt.Errorf("shard %s row group %d: %w: no column chunk %d", f.path, rg, ErrCorrupt, c.leaf)
		}
		if err := checkChunkPages(f.os, f.pf.Size(), &g.Columns[c.leaf].MetaData, g.NumRows, c.maxRep > 0, lim); err != nil {
			return fmt.Errorf("shard %s row group %d column %q: %w", f.path, rg, c.path, err)
		}
	}
	return nil
}

// leafColumns lists every leaf column of a file with its path and repetition, for readers of
// all columns (DescribeFile). The footer check bounds the schema's depth.
func leafColumns(root *parquet.Column) []colSpec {
	var out []colSpec
	var walk func(c *parquet.Column)
	walk = func(c *parquet.Column) {
		if c.Leaf() {
			out = append(out, colSpec{path: strings.Join(c.Path(), "."), leaf: c.Index(), maxRep: c.MaxRepetitionLevel()})
			return
		}
		for _, child := range c.Columns() {
			walk(child)
		}
	}
	walk(root)
	return out
}

// checkFooter walks the Thrift footer of footer bytes at the end of a file of size bytes
// (before its length and magic) with checkThriftStruct. openParquet calls it before
// parquet.OpenFile decodes the footer.
func checkFooter(r io.ReaderAt, size, footer int64) error {
	if footer < 0 || footer > size-12 {
		return fmt.Errorf("%w: footer of %d bytes in a %d-byte file", ErrCorrupt, footer, size)
	}
	if err := checkThriftStruct(r, size-8-footer, size-8); err != nil {
		return fmt.Errorf("%w: footer: %w", ErrCorrupt, err)
	}
	return nil
}

// checkRowCounts refuses a footer whose row groups hold more than lim.MaxRowGroupRows rows
// each, or whose counts overflow when added. NewPlan sizes per-row skip marks and sample
// counts from these numbers before readRowGroup's own check runs, and a crafted count of
// 2^40 rows would make that allocation fail fatally. openParquet calls it with the footer.
func checkRowCounts(md *format.FileMetaData, lim Limits) error {
	var rows int64
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 {
			return fmt.Errorf("%w: row group %d has %d rows", ErrCorrupt, i, rg.NumRows)
		}
		if rg.NumRows > lim.MaxRowGroupRows {
			return fmt.Errorf("row group %d: %d rows exceed the limit of %d", i, rg.NumRows, lim.MaxRowGroupRows)
		}
		if rows > math.MaxInt64-rg.NumRows {
			return fmt.Errorf("%w: row counts overflow int64 at row group %d", ErrCorrupt, i)
		}
		rows += rg.NumRows
	}
	if rows != md.NumRows {
		return fmt.Errorf("%w: row groups hold %d rows, the footer says %d", ErrCorrupt, rows, md.NumRows)
	}
	return nil
}
