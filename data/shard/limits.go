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
}

// DefaultLimits are generous for image–text data: 64 MiB per image, 1 GiB per row group.
var DefaultLimits = Limits{
	MaxValueBytes:    64 << 20,
	MaxRowBytes:      128 << 20,
	MaxRowGroupRows:  1 << 20,
	MaxRowGroupBytes: 1 << 30,
	MaxCaptions:      4096,
	MaxFooterBytes:   64 << 20,
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
	return d
}
