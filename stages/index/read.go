package index

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/metadata"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/readable"
)

// Limits bound what Open accepts from an index file, which is untrusted input: a
// corrupt or hostile file yields an error instead of exhausting memory. A zero field takes
// its value from DefaultLimits.
type Limits struct {
	MaxRows          int64 // rows in the file
	MaxDim           int   // embedding width E
	MaxFooterBytes   int64 // Parquet footer (schema and row group metadata)
	MaxRowGroupBytes int64 // one row group, uncompressed, as its metadata declares
	MaxRowGroups     int   // row groups in the file
}

// DefaultLimits admit an index of ten million images with E up to 8192.
var DefaultLimits = Limits{MaxRows: 10_000_000, MaxDim: 8192, MaxFooterBytes: 64 << 20,
	MaxRowGroupBytes: 1 << 30, MaxRowGroups: 1 << 20}

// withDefaults replaces the fields of l that are not positive with DefaultLimits'.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	return Limits{
		MaxRows:          cmp.Or(max(l.MaxRows, 0), d.MaxRows),
		MaxDim:           cmp.Or(max(l.MaxDim, 0), d.MaxDim),
		MaxFooterBytes:   cmp.Or(max(l.MaxFooterBytes, 0), d.MaxFooterBytes),
		MaxRowGroupBytes: cmp.Or(max(l.MaxRowGroupBytes, 0), d.MaxRowGroupBytes),
		MaxRowGroups:     cmp.Or(max(l.MaxRowGroups, 0), d.MaxRowGroups),
	}
}

// Reader is an open embedding index (see Embed). It reads one row group at a time and only
// the columns asked for, so a search over a large index holds the scores, not the vectors.
type Reader struct {
	path    string
	f       *os.File
	fr      *pqarrow.FileReader
	schema  *arrow.Schema
	leaves  map[string][]int // Parquet leaf columns of each top-level field
	rgStart []int64          // first row of each row group, then the row count
	dim     int
	config  fusion.Config
	ckpt    string
	ckptSum string
	// recorded: the file holds Embed's metadata (config, checkpoint); false for a file
	// rewritten by another tool, whose width is taken from the data.
	recorded bool
	mem      memory.Allocator
}

// Open opens an index written by Embed and checks it before any data is read: its
// size limits, its metadata (version, embedding width, model config) and the columns search
// needs (key, caption, image_embedding, text_embedding), by name and type.
func Open(path string, lim Limits) (ix *Reader, err error) {
	lim = lim.withDefaults()
	fail := func(err error) (*Reader, error) { return nil, fmt.Errorf("index %s: %w", path, err) }
	f, err := fileinput.OpenRegular(path) // a FIFO is refused, not waited on
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer func() {
		if r := recover(); r != nil { // the Arrow decoder on a malformed file
			ix, err = nil, fmt.Errorf("index %s: malformed Parquet: %v", path, r)
		}
		if err != nil {
			f.Close()
		}
	}()
	if err := indexCheckFooter(f, lim.MaxFooterBytes); err != nil {
		return fail(err)
	}
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		return fail(err)
	}
	md := rdr.MetaData()
	ix = &Reader{path: path, f: f, leaves: map[string][]int{}, mem: memory.DefaultAllocator}
	if err := ix.checkRowGroups(rdr, lim); err != nil {
		return fail(err)
	}
	if ix.fr, err = pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, ix.mem); err != nil {
		return fail(err)
	}
	if ix.schema, err = ix.fr.Schema(); err != nil {
		return fail(err)
	}
	sch := md.Schema
	for j := range sch.NumColumns() {
		if p := sch.Column(j).ColumnPath(); len(p) > 0 {
			ix.leaves[p[0]] = append(ix.leaves[p[0]], j)
		}
	}
	for _, col := range []string{ColKey, ColCaption} {
		if err := ix.checkField(col, "string", indexIsString); err != nil {
			return fail(err)
		}
	}
	if kv := md.KeyValueMetadata(); kv.FindValue(MetaVersion) != nil {
		if err := ix.readMetadata(kv, lim); err != nil {
			return fail(err)
		}
	} else if err := ix.inferDim(lim); err != nil {
		return fail(err)
	}
	for _, col := range []string{ColImageEmbedding, ColTextEmbedding} {
		if err := ix.checkField(col, fmt.Sprintf("fixed_size_list<float32>[%d]", ix.dim), ix.isVectorType); err != nil {
			return fail(err)
		}
	}
	return ix, nil
}

// readMetadata reads what Embed records of the model (version, width, config, checkpoint).
func (ix *Reader) readMetadata(kv metadata.KeyValueMetadata, lim Limits) error {
	ix.recorded = true
	get := func(key string) (string, error) {
		if v := kv.FindValue(key); v != nil {
			return *v, nil
		}
		return "", fmt.Errorf("no %q metadata: not a clipgo embedding index (write one with clipgo embed)", key)
	}
	v, err := get(MetaVersion)
	if err != nil {
		return err
	}
	if v != strconv.Itoa(Version) {
		return fmt.Errorf("index version %q is not supported (this build reads version %d)", v, Version)
	}
	d, err := get(MetaEmbedDim)
	if err != nil {
		return err
	}
	if ix.dim, err = strconv.Atoi(d); err != nil || ix.dim < 1 || ix.dim > lim.MaxDim {
		return fmt.Errorf("%s %q: want an integer in [1, %d]", MetaEmbedDim, d, lim.MaxDim)
	}
	c, err := get(MetaConfig)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(c), &ix.config); err != nil {
		return fmt.Errorf("%s: %w", MetaConfig, err)
	}
	if ix.config.EmbedDim != ix.dim {
		return fmt.Errorf("%s says E=%d but %s says %d", MetaConfig, ix.config.EmbedDim, MetaEmbedDim, ix.dim)
	}
	if p := kv.FindValue(MetaCheckpoint); p != nil {
		ix.ckpt = *p
	}
	if h := kv.FindValue(MetaCheckpointSHA256); h != nil {
		if !isHexSHA256(*h) {
			return fmt.Errorf("%s %s: want 64 hexadecimal digits", MetaCheckpointSHA256, readable.Quote(clipString(*h, 80)))
		}
		ix.ckptSum = *h
	}
	return nil
}

// inferDim takes the embedding width of an index that records no metadata (rewritten by
// another tool: DuckDB's COPY keeps the columns but drops the key/value metadata) from its
// image_embedding column: the fixed size of a fixed_size_list, else the first row's length
// (Scan then holds every row to it).
func (ix *Reader) inferDim(lim Limits) error {
	fixed := false
	isVector := func(t arrow.DataType) bool {
		if f, ok := t.(*arrow.FixedSizeListType); ok {
			ix.dim, fixed = int(f.Len()), true
		}
		return ix.isVectorType(t)
	}
	if err := ix.checkField(ColImageEmbedding, "a list of float32", isVector); err != nil {
		return fmt.Errorf("no %q metadata and %w: not a clipgo embedding index (write one with clipgo embed)", MetaVersion, err)
	}
	if !fixed {
		g := 0 // the first row group with rows (checkRowGroups saw that the file has some)
		for ix.rgStart[g+1] == ix.rgStart[g] {
			g++
		}
		cols, release, err := ix.readGroup(context.Background(), g, []string{ColImageEmbedding})
		if err != nil {
			return fmt.Errorf("row group %d column %s: %w", g, ColImageEmbedding, err)
		}
		defer release()
		arr, _ := indexChunkAt(cols[ColImageEmbedding], 0)
		v, ok := arr.(indexVectorArray)
		if !ok || v.IsNull(0) {
			return fmt.Errorf("column %s: the first row holds no embedding", ColImageEmbedding)
		}
		s, e := v.ValueOffsets(0)
		ix.dim = int(e - s)
	}
	if ix.dim < 1 || ix.dim > lim.MaxDim {
		return fmt.Errorf("column %s: embeddings of %d values (want 1 to %d)", ColImageEmbedding, ix.dim, lim.MaxDim)
	}
	return nil
}

// indexCheckFooter reads the Parquet trailer (footer length, "PAR1") and bounds the footer.
func indexCheckFooter(f *os.File, max int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size < 12 {
		return fmt.Errorf("%d bytes: too short for Parquet", size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(tail[4:]) != "PAR1" {
		return errors.New("not a Parquet file (no PAR1 trailer)")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > max || n > size-12 {
		return fmt.Errorf("footer of %d bytes in a %d-byte file (limit %d)", n, size, max)
	}
	return nil
}

// checkRowGroups bounds the row count and each row group's declared size, and records
// where each row group starts.
func (ix *Reader) checkRowGroups(rdr *file.Reader, lim Limits) error {
	md := rdr.MetaData()
	rows := md.NumRows
	if rows < 0 || rows > lim.MaxRows {
		return fmt.Errorf("%d rows (limit %d)", rows, lim.MaxRows)
	}
	if rows == 0 {
		return errors.New("no rows: the index is empty")
	}
	n := rdr.NumRowGroups()
	if n > lim.MaxRowGroups {
		return fmt.Errorf("%d row groups (limit %d)", n, lim.MaxRowGroups)
	}
	var sum int64
	for g := range n {
		rg := md.RowGroup(g)
		r := rg.NumRows()
		if r < 0 || r > rows-sum {
			return fmt.Errorf("row group %d: %d rows, more than the file's %d", g, r, rows)
		}
		if b := rg.TotalByteSize(); b < 0 || b > lim.MaxRowGroupBytes {
			return fmt.Errorf("row group %d: %d bytes (limit %d)", g, b, lim.MaxRowGroupBytes)
		}
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return fmt.Errorf("row group %d column %d: %w", g, c, err)
			}
			if b := cc.TotalUncompressedSize(); b < 0 || b > lim.MaxRowGroupBytes {
				return fmt.Errorf("row group %d column %s: %d bytes (limit %d)", g, cc.PathInSchema(), b, lim.MaxRowGroupBytes)
			}
		}
		ix.rgStart = append(ix.rgStart, sum)
		sum += r
	}
	if sum != rows {
		return fmt.Errorf("row groups hold %d rows, the footer says %d", sum, rows)
	}
	ix.rgStart = append(ix.rgStart, sum)
	return nil
}

// checkField checks that column col exists, has leaves and a type ok accepts.
func (ix *Reader) checkField(col, want string, ok func(arrow.DataType) bool) error {
	fs, found := ix.schema.FieldsByName(col)
	switch {
	case !found:
		return fmt.Errorf("no column %q", col)
	case len(fs) > 1:
		return fmt.Errorf("column %q appears %d times", col, len(fs))
	case len(ix.leaves[col]) == 0:
		return fmt.Errorf("column %q has no data", col)
	case !ok(fs[0].Type):
		return fmt.Errorf("column %q has type %s, want %s", col, fs[0].Type, want)
	}
	return nil
}

func indexIsString(t arrow.DataType) bool {
	return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING
}

// isVectorType accepts fixed_size_list<float>[E] and, from tools that lose the fixed size,
// list<float> and large_list<float> (each row's length is then checked when read).
func (ix *Reader) isVectorType(t arrow.DataType) bool {
	switch t := t.(type) {
	case *arrow.FixedSizeListType:
		return t.Elem().ID() == arrow.FLOAT32 && int(t.Len()) == ix.dim
	case *arrow.ListType:
		return t.Elem().ID() == arrow.FLOAT32
	case *arrow.LargeListType:
		return t.Elem().ID() == arrow.FLOAT32
	}
	return false
}

// Close releases the file.
func (ix *Reader) Close() error { return ix.f.Close() }

// Rows returns the number of rows.
func (ix *Reader) Rows() int { return int(ix.rgStart[len(ix.rgStart)-1]) }

// Dim returns the embedding width E.
func (ix *Reader) Dim() int { return ix.dim }

// Recorded reports whether the index records the model that made it (Embed's metadata:
// version, width, config, checkpoint). An index rewritten by another tool (DuckDB's COPY
// drops the key/value metadata) does not: its width comes from the data, Config is zero and
// CheckpointSHA256 empty.
func (ix *Reader) Recorded() bool { return ix.recorded }

// Config returns the model config the index was made with.
func (ix *Reader) Config() fusion.Config { return ix.config }

// Checkpoint returns the checkpoint path the index was made with, as given to Embed.
func (ix *Reader) Checkpoint() string { return ix.ckpt }

// CheckpointSHA256 returns the hex SHA-256 of the checkpoint file the index was made with,
// "" when the index does not record it (written by an older clipgo, or rewritten by a tool
// that dropped the metadata).
func (ix *Reader) CheckpointSHA256() string { return ix.ckptSum }

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// HasImages reports whether the index holds the images' bytes (Embed without NoImages).
func (ix *Reader) HasImages() bool { return len(ix.leaves[ColJPG]) > 0 }

// readGroup reads the named top-level columns of row group g and returns their arrays by
// name; the caller calls release. Columns are read one after the other in this goroutine
// (pqarrow's ReadRowGroups decodes on goroutines of its own, where a decoder's panic on a
// malformed page could not be recovered).
func (ix *Reader) readGroup(ctx context.Context, g int, cols []string) (_ map[string][]arrow.Array, release func(), err error) {
	var read []*arrow.Chunked
	free := func() {
		for _, c := range read {
			c.Release()
		}
	}
	defer func() {
		if r := recover(); r != nil { // the Arrow decoder on a malformed file
			err = fmt.Errorf("malformed Parquet: %v", r)
		}
		if err != nil {
			free()
		}
	}()
	want := ix.rgStart[g+1] - ix.rgStart[g]
	out := map[string][]arrow.Array{}
	for _, c := range cols {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		fields := ix.schema.FieldIndices(c)
		if len(fields) != 1 {
			return nil, nil, fmt.Errorf("no column %q", c)
		}
		leaves := map[int]bool{}
		for _, l := range ix.leaves[c] {
			leaves[l] = true
		}
		rdr, err := ix.fr.GetFieldReader(ctx, fields[0], leaves, []int{g})
		if err != nil {
			return nil, nil, fmt.Errorf("column %q: %w", c, err)
		}
		chunked, err := ix.fr.ReadColumn([]int{g}, rdr)
		if err != nil {
			return nil, nil, fmt.Errorf("column %q: %w", c, err)
		}
		read = append(read, chunked)
		if chunked.Len() != int(want) {
			return nil, nil, fmt.Errorf("column %q: %d values, the footer says %d rows", c, chunked.Len(), want)
		}
		out[c] = chunked.Chunks()
	}
	return out, free, nil
}

// indexVectorArray is what fixed_size_list, list and large_list arrays share.
type indexVectorArray interface {
	arrow.Array
	ValueOffsets(i int) (start, end int64)
	ListValues() arrow.Array
}

// Scan calls fn for every row's vector in column col (image_embedding or text_embedding),
// in row order; v is valid only during the call. Rows that are null, of another length than
// E, or hold a null or non-finite value are errors naming the row.
func (ix *Reader) Scan(ctx context.Context, col string, fn func(row int, v []float32) error) error {
	if col != ColImageEmbedding && col != ColTextEmbedding {
		return fmt.Errorf("index %s: %q is not an embedding column", ix.path, col)
	}
	for g := range len(ix.rgStart) - 1 {
		if err := ix.scanGroup(ctx, g, col, fn); err != nil {
			return fmt.Errorf("index %s row group %d column %s: %w", ix.path, g, col, err)
		}
	}
	return nil
}

func (ix *Reader) scanGroup(ctx context.Context, g int, col string, fn func(row int, v []float32) error) error {
	cols, release, err := ix.readGroup(ctx, g, []string{col})
	if err != nil {
		return err
	}
	defer release()
	row := int(ix.rgStart[g])
	for _, chunk := range cols[col] {
		arr, ok := chunk.(indexVectorArray)
		if !ok {
			return fmt.Errorf("array of type %s, want a list of float32", chunk.DataType())
		}
		vals, ok := arr.ListValues().(*array.Float32)
		if !ok {
			return fmt.Errorf("values of type %s, want float32", arr.ListValues().DataType())
		}
		raw := vals.Float32Values()
		for i := range arr.Len() {
			if arr.IsNull(i) {
				return fmt.Errorf("row %d: null embedding", row)
			}
			s, e := arr.ValueOffsets(i)
			if e-s != int64(ix.dim) || s < 0 || e > int64(len(raw)) {
				return fmt.Errorf("row %d: embedding of %d values, want %d", row, e-s, ix.dim)
			}
			v := raw[s:e]
			for j, x := range v {
				if vals.IsNull(int(s)+j) || math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
					return fmt.Errorf("row %d: value %d is null or not finite", row, j)
				}
			}
			if err := fn(row, v); err != nil {
				return err
			}
			row++
		}
	}
	return ctx.Err()
}

// Row is one row of an index, without its embeddings.
type Row struct {
	Row       int
	Key       string
	Split     string
	Caption   string
	ClassName string
	JPG       []byte // nil when the index holds no images
}

// Lookup returns the given rows (any order, repeats allowed), reading only the row groups
// that hold them.
func (ix *Reader) Lookup(ctx context.Context, rows []int) ([]Row, error) {
	out := make([]Row, len(rows))
	byGroup := map[int][]int{} // row group -> positions in rows
	for i, r := range rows {
		if r < 0 || r >= ix.Rows() {
			return nil, fmt.Errorf("index %s: row %d out of range [0, %d)", ix.path, r, ix.Rows())
		}
		g := sort.Search(len(ix.rgStart)-1, func(g int) bool { return ix.rgStart[g+1] > int64(r) })
		byGroup[g] = append(byGroup[g], i)
	}
	cols := []string{ColKey, ColCaption}
	for _, c := range []string{ColSplit, ColClassName, ColJPG} {
		if len(ix.leaves[c]) > 0 {
			cols = append(cols, c)
		}
	}
	for g, pos := range byGroup {
		if err := ix.lookupGroup(ctx, g, cols, rows, pos, out); err != nil {
			return nil, fmt.Errorf("index %s row group %d: %w", ix.path, g, err)
		}
	}
	return out, nil
}

func (ix *Reader) lookupGroup(ctx context.Context, g int, cols []string, rows, pos []int, out []Row) error {
	arrs, release, err := ix.readGroup(ctx, g, cols)
	if err != nil {
		return err
	}
	defer release()
	for _, p := range pos {
		r := &out[p]
		r.Row = rows[p]
		local := rows[p] - int(ix.rgStart[g])
		for _, c := range cols {
			arr, i := indexChunkAt(arrs[c], local)
			if arr == nil {
				return fmt.Errorf("column %q: row %d missing", c, r.Row)
			}
			if arr.IsNull(i) {
				if c == ColKey || c == ColCaption {
					return fmt.Errorf("column %q row %d: null", c, r.Row)
				}
				continue
			}
			var s string
			switch a := arr.(type) {
			case interface{ Value(int) string }:
				s = a.Value(i)
			case *array.Binary:
				r.JPG = bytes.Clone(a.Value(i))
				continue
			case *array.LargeBinary:
				r.JPG = bytes.Clone(a.Value(i))
				continue
			default:
				return fmt.Errorf("column %q has type %s", c, arr.DataType())
			}
			switch c {
			case ColKey:
				r.Key = s
			case ColCaption:
				r.Caption = s
			case ColSplit:
				r.Split = s
			case ColClassName:
				r.ClassName = s
			case ColJPG:
				return fmt.Errorf("column %q has type %s, want binary", c, arr.DataType())
			}
		}
	}
	return ctx.Err()
}

// indexChunkAt returns the chunk holding element i of chunks and i's position in it.
func indexChunkAt(chunks []arrow.Array, i int) (arrow.Array, int) {
	for _, c := range chunks {
		if i < c.Len() {
			return c, i
		}
		i -= c.Len()
	}
	return nil, 0
}
