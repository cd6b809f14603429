package shard

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// readRowGroup decodes row group rg of f into records, one per row, reading only the
// columns of lay. Rows marked in skip are decoded past but left empty. firstRow is the
// file row of the group's first row (for synthesised keys). A parquet-go panic on corrupt
// data becomes an error naming the file and row group.
func readRowGroup(f *parquetFile, lay *layout, rg int, firstRow int64, skip []bool, lim Limits) (recs []Record, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("shard %s row group %d: %w: parquet decoder panicked: %v", f.path, rg, ErrCorrupt, r)
		}
	}()
	md := f.pf.Metadata()
	if rg < 0 || rg >= len(md.RowGroups) || rg >= len(f.pf.RowGroups()) {
		return nil, fmt.Errorf("shard %s: no row group %d (file changed while reading?)", f.path, rg)
	}
	meta := md.RowGroups[rg]
	if meta.NumRows > lim.MaxRowGroupRows {
		return nil, fmt.Errorf("shard %s row group %d: %d rows exceed the limit of %d", f.path, rg, meta.NumRows, lim.MaxRowGroupRows)
	}
	var bytes int64
	for _, c := range lay.cols {
		bytes += meta.Columns[c.leaf].MetaData.TotalUncompressedSize
	}
	if bytes > lim.MaxRowGroupBytes {
		return nil, fmt.Errorf("shard %s row group %d: %d bytes in the projected columns exceed the limit of %d", f.path, rg, bytes, lim.MaxRowGroupBytes)
	}
	if err := checkRowGroupPages(f, lay, rg, lim); err != nil {
		return nil, err
	}
	n := int(meta.NumRows)
	recs = make([]Record, n)
	rowBytes := make([]int64, n)
	chunks := f.pf.RowGroups()[rg].ColumnChunks()
	for _, c := range lay.cols {
		d := &columnDecoder{spec: c, recs: recs, rowBytes: rowBytes, skip: skip, lim: lim}
		if err := d.read(chunks[c.leaf]); err != nil {
			row := max(d.row, 0)
			return nil, fmt.Errorf("shard %s row group %d row %d column %q: %w", f.path, rg, row, c.path, err)
		}
		if d.row+1 != n {
			return nil, fmt.Errorf("shard %s row group %d column %q: %w: %d rows of values, metadata says %d", f.path, rg, c.path, ErrCorrupt, d.row+1, n)
		}
	}
	for i := range recs {
		if skip != nil && skip[i] {
			continue
		}
		r := &recs[i]
		if lay.synthKey {
			r.Key = lay.syntheticKey(firstRow + int64(i))
		}
		if r.Caption == "" && len(r.Captions) > 0 {
			r.Caption = r.Captions[0]
		}
	}
	return recs, nil
}

// columnDecoder streams the values of one column chunk into the records' field.
type columnDecoder struct {
	spec     colSpec
	recs     []Record
	rowBytes []int64
	skip     []bool
	lim      Limits
	row      int // current row; -1 before the first value
}

func (d *columnDecoder) read(chunk parquet.ColumnChunk) error {
	d.row = -1
	pages := chunk.Pages()
	defer pages.Close()
	values := make([]parquet.Value, 256)
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		vr := page.Values()
		for {
			k, err := vr.ReadValues(values)
			for _, v := range values[:k] {
				if err := d.put(v); err != nil {
					return err
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if k == 0 {
				return fmt.Errorf("%w: page reader made no progress", ErrCorrupt)
			}
		}
	}
}

// put stores one value: a new row starts at repetition level 0; a value below the maximum
// definition level is a null (or an empty list).
func (d *columnDecoder) put(v parquet.Value) error {
	if v.RepetitionLevel() == 0 {
		d.row++
		if d.row >= len(d.recs) {
			return fmt.Errorf("%w: more rows of values than the row group's %d", ErrCorrupt, len(d.recs))
		}
	} else if d.row < 0 || d.spec.maxRep == 0 {
		return fmt.Errorf("%w: repetition level %d in a column without lists", ErrCorrupt, v.RepetitionLevel())
	}
	if v.IsNull() || v.DefinitionLevel() < d.spec.maxDef {
		return nil
	}
	if d.skip != nil && d.skip[d.row] {
		return nil
	}
	r := &d.recs[d.row]
	if d.spec.kind == parquet.ByteArray {
		b := v.ByteArray()
		n := int64(len(b))
		if n > d.lim.MaxValueBytes {
			return fmt.Errorf("value of %d bytes exceeds the limit of %d", n, d.lim.MaxValueBytes)
		}
		d.rowBytes[d.row] += n
		if d.rowBytes[d.row] > d.lim.MaxRowBytes {
			return fmt.Errorf("row of %d bytes exceeds the limit of %d", d.rowBytes[d.row], d.lim.MaxRowBytes)
		}
		switch d.spec.field {
		case ColKey:
			r.Key = string(b)
		case ColCaption:
			r.Caption = string(b)
		case ColCaptions:
			if len(r.Captions) >= d.lim.MaxCaptions {
				return fmt.Errorf("more than %d captions", d.lim.MaxCaptions)
			}
			r.Captions = append(r.Captions, string(b))
		case ColJPG:
			r.JPG = append([]byte(nil), b...)
		case ColSHA256:
			r.SHA256 = string(b)
		case ColURL:
			r.URL = string(b)
		}
		return nil
	}
	var x int64
	switch d.spec.kind {
	case parquet.Int32:
		x = int64(v.Int32())
	case parquet.Int64:
		x = v.Int64()
	}
	if x != int64(int32(x)) {
		return fmt.Errorf("value %d does not fit int32", x)
	}
	i := int32(x)
	switch d.spec.field {
	case ColWidth:
		r.Width = i
	case ColHeight:
		r.Height = i
	case ColOriginalWidth:
		r.OriginalWidth = i
	case ColOriginalHeight:
		r.OriginalHeight = i
	case ColLabel:
		r.Label = &i
	}
	return nil
}
