package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/parquet-go/parquet-go"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// ErrCorrupt marks a file that is not valid Parquet or contradicts its own metadata.
var ErrCorrupt = errors.New("corrupt parquet file")

// parquetFile is an open shard: the OS file and parquet-go's view of its footer.
type parquetFile struct {
	path string
	os   *os.File
	pf   *parquet.File
}

// openParquet opens path and parses its footer, bounding the footer size before
// parquet-go allocates it and converting a parquet-go panic into an error.
func openParquet(path string, lim Limits) (_ *parquetFile, err error) {
	f, err := fileinput.OpenRegular(path) // a FIFO is refused, not waited on
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("shard %s: %w: parquet decoder panicked: %v", path, ErrCorrupt, r)
		}
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	size := st.Size()
	if size < 12 {
		return nil, fmt.Errorf("shard %s: %w: %d bytes is too short for Parquet (empty or truncated file)", path, ErrCorrupt, size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return nil, fmt.Errorf("shard %s: reading footer: %w", path, err)
	}
	if string(tail[4:]) != "PAR1" {
		return nil, fmt.Errorf("shard %s: %w: no PAR1 magic at the end (not Parquet, or truncated)", path, ErrCorrupt)
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footer > size-12 {
		return nil, fmt.Errorf("shard %s: %w: footer of %d bytes in a %d-byte file (truncated?)", path, ErrCorrupt, footer, size)
	}
	if footer > lim.MaxFooterBytes {
		return nil, fmt.Errorf("shard %s: footer of %d bytes exceeds the limit of %d", path, footer, lim.MaxFooterBytes)
	}
	if err := checkFooter(f, size, footer); err != nil {
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	pf, err := parquet.OpenFile(f, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w: %w", path, ErrCorrupt, err)
	}
	if err := checkRowCounts(pf.Metadata(), lim); err != nil {
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	if err := checkMetadata(pf, size); err != nil {
		return nil, fmt.Errorf("shard %s: %w: %w", path, ErrCorrupt, err)
	}
	return &parquetFile{path: path, os: f, pf: pf}, nil
}

// checkMetadata verifies that the row groups' column chunks lie inside the file and that
// their row counts add up, so that later reads can trust them.
func checkMetadata(pf *parquet.File, size int64) error {
	md := pf.Metadata()
	leaves := len(pf.Schema().Columns())
	var rows int64
	for i, rg := range md.RowGroups {
		if rg.NumRows < 0 {
			return fmt.Errorf("row group %d has %d rows", i, rg.NumRows)
		}
		rows += rg.NumRows
		if len(rg.Columns) != leaves {
			return fmt.Errorf("row group %d has %d column chunks, the schema %d columns", i, len(rg.Columns), leaves)
		}
		for j, c := range rg.Columns {
			m := c.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 4 || m.TotalCompressedSize < 0 || m.TotalUncompressedSize < 0 ||
				m.TotalCompressedSize > size || start > size-m.TotalCompressedSize {
				return fmt.Errorf("row group %d column %d: chunk at %d+%d outside the %d-byte file", i, j, start, m.TotalCompressedSize, size)
			}
		}
	}
	if rows != md.NumRows {
		return fmt.Errorf("row groups hold %d rows, the footer says %d", rows, md.NumRows)
	}
	return nil
}

func (f *parquetFile) Close() error { return f.os.Close() }

// colSpec is one Record field resolved to a leaf column of a file.
type colSpec struct {
	field          string // Record column name
	path           string // dotted column path in the file
	leaf           int    // leaf column index
	maxRep, maxDef int
	kind           parquet.Kind
}

// layout says how to read the requested Record fields from one file.
type layout struct {
	mapping   Mapping
	cols      []colSpec
	synthKey  bool   // no key column: synthesise one
	keyPrefix string // file base name for synthesised keys
}

// want lists the kind each Record field accepts and whether it is a list.
var fieldKinds = map[string]struct {
	kinds []parquet.Kind
	list  bool
}{
	ColKey:            {[]parquet.Kind{parquet.ByteArray}, false},
	ColCaption:        {[]parquet.Kind{parquet.ByteArray}, false},
	ColCaptions:       {[]parquet.Kind{parquet.ByteArray}, true},
	ColJPG:            {[]parquet.Kind{parquet.ByteArray}, false},
	ColWidth:          {[]parquet.Kind{parquet.Int32, parquet.Int64}, false},
	ColHeight:         {[]parquet.Kind{parquet.Int32, parquet.Int64}, false},
	ColOriginalWidth:  {[]parquet.Kind{parquet.Int32, parquet.Int64}, false},
	ColOriginalHeight: {[]parquet.Kind{parquet.Int32, parquet.Int64}, false},
	ColSHA256:         {[]parquet.Kind{parquet.ByteArray}, false},
	ColLabel:          {[]parquet.Kind{parquet.Int32, parquet.Int64}, false},
	ColURL:            {[]parquet.Kind{parquet.ByteArray}, false},
}

// resolve maps the requested Record columns onto the file's columns. Key, caption and
// image are required when requested (a missing key is synthesised instead); captions,
// label and the size, sha256 and url columns are optional.
func resolve(pf *parquet.File, path string, columns []string, m *Mapping) (_ *layout, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: schema: parquet-go panicked: %v", ErrCorrupt, r)
		}
	}()
	lay := &layout{keyPrefix: filepath.Base(path)}
	if m != nil {
		lay.mapping = *m
	} else {
		lay.mapping = DetectMapping(pf.Schema())
	}
	want := make(map[string]bool, len(columns))
	for _, c := range columns {
		if _, ok := fieldKinds[c]; !ok {
			return nil, fmt.Errorf("unknown column %q (Record columns: %v)", c, AllColumns)
		}
		want[c] = true
	}
	if want[ColCaptions] { // captions fall back to caption, and caption to captions[0]
		want[ColCaption] = true
	}
	mp := lay.mapping
	source := map[string]string{
		ColKey: mp.Key, ColCaption: mp.Caption, ColCaptions: mp.Captions, ColJPG: mp.imagePath(),
		ColLabel: mp.Label, ColWidth: ColWidth, ColHeight: ColHeight, ColOriginalWidth: ColOriginalWidth,
		ColOriginalHeight: ColOriginalHeight, ColSHA256: ColSHA256, ColURL: ColURL,
	}
	for _, field := range AllColumns {
		if !want[field] {
			continue
		}
		src := source[field]
		var col *parquet.Column
		if src != "" {
			col = lookupColumn(pf.Root(), src)
		}
		if col == nil {
			switch field {
			case ColKey:
				if src == "" {
					lay.synthKey = true
					continue
				}
			case ColCaption:
				if src == "" && want[ColCaptions] && mp.Captions != "" && lookupColumn(pf.Root(), mp.Captions) != nil {
					continue // caption = captions[0]
				}
			case ColJPG:
			default:
				continue // optional
			}
			if src == "" {
				return nil, fmt.Errorf("no %s column found (mapping %s); set a Mapping", field, mp)
			}
			return nil, fmt.Errorf("missing column %q for %s (mapping %s)", src, field, mp)
		}
		fk := fieldKinds[field]
		if !col.Leaf() {
			return nil, fmt.Errorf("column %q (%s) is a group, want %v", src, field, fk.kinds)
		}
		kind := col.Type().Kind()
		ok := false
		for _, k := range fk.kinds {
			ok = ok || k == kind
		}
		if !ok {
			return nil, fmt.Errorf("column %q (%s) is %s, want %v", src, field, kind, fk.kinds)
		}
		if rep := col.MaxRepetitionLevel(); (rep > 0) != fk.list || rep > 1 {
			if fk.list {
				return nil, fmt.Errorf("column %q (%s) is not a list of strings", src, field)
			}
			return nil, fmt.Errorf("column %q (%s) is repeated, want one value per row", src, field)
		}
		lay.cols = append(lay.cols, colSpec{
			field: field, path: src, leaf: col.Index(),
			maxRep: col.MaxRepetitionLevel(), maxDef: col.MaxDefinitionLevel(), kind: kind,
		})
	}
	return lay, nil
}

// syntheticKey is the key of a row of a file without a key column.
func (l *layout) syntheticKey(fileRow int64) string {
	return l.keyPrefix + "/" + strconv.FormatInt(fileRow, 10)
}

var _ io.Closer = (*parquetFile)(nil)
