package shard

// Limits bound what a reader accepts from a file, so that a corrupt or hostile file yields
// an error instead of exhausting memory. A zero field takes its value from DefaultLimits.
type Limits struct {
	MaxValueBytes    int64 // largest single binary or string value (an encoded image)
	MaxRowBytes      int64 // largest row, summed over the projected columns
	MaxRowGroupRows  int64 // most rows in one row group
	MaxRowGroupBytes int64 // largest row group, uncompressed, over the projected columns
	MaxCaptions      int   // most captions in one row
	MaxFooterBytes   int64 // largest file footer (schema and row group metadata)

	// MaxPageBytes bounds one page of a column chunk, its header, compressed body and
	// uncompressed size alike: parquet-go allocates each of them whole from the page header
	// before it reads a byte of data.
	MaxPageBytes int64
	// MaxChunkValues bounds the values of one column chunk (rows times list entries, nulls
	// included); parquet-go allocates level, offset and value buffers from a page's count.
	MaxChunkValues int64
	// UnboundedCodecs accepts GZIP, BROTLI and LZ4 column chunks, whose pages parquet-go
	// inflates into a buffer that grows without bound (a deflate page expands up to ~1000x
	// its size). Uncompressed, SNAPPY and ZSTD pages are checked before decoding.
	UnboundedCodecs bool
}

// DefaultLimits are generous for image–text data: 64 MiB per image, 1 GiB per row group,
// 256 MiB per page (pyarrow's pages hold up to 1,024 values, images included).
var DefaultLimits = Limits{
	MaxValueBytes:    64 << 20,
	MaxRowBytes:      128 << 20,
	MaxRowGroupRows:  1 << 20,
	MaxRowGroupBytes: 1 << 30,
	MaxCaptions:      4096,
	MaxFooterBytes:   64 << 20,
	MaxPageBytes:     256 << 20,
	MaxChunkValues:   1 << 24,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxValueBytes > 0 {
		d.MaxValueBytes = l.MaxValueBytes
	}
	if l.MaxRowBytes > 0 {
		d.MaxRowBytes = l.MaxRowBytes
	}
	if l.MaxRowGroupRows > 0 {
		d.MaxRowGroupRows = l.MaxRowGroupRows
	}
	if l.MaxRowGroupBytes > 0 {
		d.MaxRowGroupBytes = l.MaxRowGroupBytes
	}
	if l.MaxCaptions > 0 {
		d.MaxCaptions = l.MaxCaptions
	}
	if l.MaxFooterBytes > 0 {
		d.MaxFooterBytes = l.MaxFooterBytes
	}
	if l.MaxPageBytes > 0 {
		d.MaxPageBytes = l.MaxPageBytes
	}
	if l.MaxChunkValues > 0 {
		d.MaxChunkValues = l.MaxChunkValues
	}
	d.UnboundedCodecs = l.UnboundedCodecs
	return d
}
