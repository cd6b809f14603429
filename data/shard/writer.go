package shard

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/parquet-go/parquet-go"

	"github.com/clipgo/clipgo/internal/atomicfile"
)

// Writer defaults.
const (
	DefaultRowGroupRows = 256       // rows per row group: the unit of streaming and parallel reads
	DefaultShardRows    = 10_000    // rows per shard file before rotation
	DefaultShardBytes   = 256 << 20 // bytes per shard file before rotation
)

// WriterOptions configures a Writer. The zero value uses the defaults above.
type WriterOptions struct {
	RowGroupRows int   // rows per row group (default DefaultRowGroupRows)
	ShardRows    int64 // rotate after this many rows (default DefaultShardRows; <0: never)
	ShardBytes   int64 // rotate once a shard file reaches this size (default DefaultShardBytes; <0: never)
}

func (o WriterOptions) withDefaults() WriterOptions {
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	if o.ShardRows == 0 {
		o.ShardRows = DefaultShardRows
	}
	if o.ShardBytes == 0 {
		o.ShardBytes = DefaultShardBytes
	}
	return o
}

// ShardInfo describes one finished shard file. Path is relative to the dataset directory
// (slash separated), so a manifest stays valid when the directory moves.
type ShardInfo struct {
	Path     string `json:"path"`
	Rows     int64  `json:"rows"`
	Captions int64  `json:"captions"`
	Bytes    int64  `json:"bytes"`
}

// Writer writes the records of one split as a sequence of shard files
// <dir>/<split>/<split>-00000.parquet, ..., rotating by row count and file size. Each shard
// is written to a temporary file, synced and renamed into place when complete, so a reader
// never sees a partial shard. A Writer is not safe for concurrent use.
type Writer struct {
	dir, split string
	opts       WriterOptions

	shards []ShardInfo
	cur    *shardFile
}

// NewWriter returns a Writer for split under the dataset directory dir.
func NewWriter(dir, split string, opts WriterOptions) (*Writer, error) {
	if split == "" || split != filepath.Base(split) || split == "." || split == ".." {
		return nil, fmt.Errorf("shard writer: invalid split name %q", split)
	}
	if err := os.MkdirAll(filepath.Join(dir, split), 0o755); err != nil {
		return nil, fmt.Errorf("shard writer: %w", err)
	}
	return &Writer{dir: dir, split: split, opts: opts.withDefaults()}, nil
}

// Write appends one record, rotating to a new shard when the current one is full.
func (w *Writer) Write(r Record) error {
	if w.cur == nil {
		rel := fmt.Sprintf("%s/%s-%05d.parquet", w.split, w.split, len(w.shards))
		f, err := createShard(filepath.Join(w.dir, filepath.FromSlash(rel)), w.opts.RowGroupRows)
		if err != nil {
			return err
		}
		f.info.Path = rel
		w.cur = f
	}
	if err := w.cur.write(r); err != nil {
		w.abort()
		return err
	}
	full := (w.opts.ShardRows > 0 && w.cur.info.Rows >= w.opts.ShardRows) ||
		(w.opts.ShardBytes > 0 && w.cur.size() >= w.opts.ShardBytes)
	if full {
		return w.finish()
	}
	return nil
}

// Close finishes the current shard and returns every shard written, in order.
func (w *Writer) Close() ([]ShardInfo, error) {
	if w.cur != nil {
		if err := w.finish(); err != nil {
			return nil, err
		}
	}
	return w.shards, nil
}

// Abort removes the shard being written (finished shards stay).
func (w *Writer) Abort() { w.abort() }

func (w *Writer) abort() {
	if w.cur != nil {
		w.cur.abort()
		w.cur = nil
	}
}

func (w *Writer) finish() error {
	f := w.cur
	w.cur = nil
	info, err := f.close()
	if err != nil {
		return err
	}
	w.shards = append(w.shards, info)
	return nil
}

// WriteFile writes records to the single shard file path (atomically), in row groups of
// rowGroupRows (DefaultRowGroupRows when <= 0). Tests and tools use it; datasets use Writer.
func WriteFile(path string, records []Record, rowGroupRows int) (ShardInfo, error) {
	if rowGroupRows <= 0 {
		rowGroupRows = DefaultRowGroupRows
	}
	f, err := createShard(path, rowGroupRows)
	if err != nil {
		return ShardInfo{}, err
	}
	for _, r := range records {
		if err := f.write(r); err != nil {
			f.abort()
			return ShardInfo{}, err
		}
	}
	info, err := f.close()
	info.Path = filepath.Base(path)
	return info, err
}

// writerOptions are the parquet-go settings of every shard: no page statistics or column
// index bounds for jpg (meaningless for image bytes and +8% size), row groups flushed
// explicitly by shardFile.
func writerOptions() []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.SkipPageBounds(ColJPG),
		parquet.SkipPageStatistics(ColJPG),
		parquet.PageBufferSize(1 << 20),
		parquet.MaxRowsPerRowGroup(1 << 30),
		parquet.CreatedBy("clipgo", "1", ""),
	}
}

// shardFile is one shard being written to a temporary file beside its final path.
type shardFile struct {
	path    string
	tmp     *atomicfile.File
	cw      *countingWriter
	pw      *parquet.GenericWriter[Record]
	rgRows  int
	pending int // rows in the open row group
	info    ShardInfo
	buf     []Record
}

func createShard(path string, rowGroupRows int) (*shardFile, error) {
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", path, err)
	}
	cw := &countingWriter{w: tmp}
	return &shardFile{
		path:   path,
		tmp:    tmp,
		cw:     cw,
		pw:     parquet.NewGenericWriter[Record](cw, writerOptions()...),
		rgRows: rowGroupRows,
		buf:    make([]Record, 1),
	}, nil
}

func (f *shardFile) write(r Record) error {
	if len(r.Captions) == 0 && r.Caption != "" {
		r.Captions = []string{r.Caption}
	}
	f.buf[0] = r
	if _, err := f.pw.Write(f.buf); err != nil {
		return fmt.Errorf("shard %s row %d key %q: %w", f.path, f.info.Rows, r.Key, err)
	}
	f.buf[0] = Record{}
	f.info.Rows++
	f.info.Captions += int64(len(r.Captions))
	f.pending++
	if f.pending >= f.rgRows {
		if err := f.pw.Flush(); err != nil {
			return fmt.Errorf("shard %s row group %d: %w", f.path, f.info.Rows/int64(f.rgRows), err)
		}
		f.pending = 0
	}
	return nil
}

// size estimates the file's size: bytes written plus the open row group.
func (f *shardFile) size() int64 { return f.pw.Size() }

func (f *shardFile) close() (ShardInfo, error) {
	if err := f.pw.Close(); err != nil {
		f.tmp.Abort()
		return ShardInfo{}, fmt.Errorf("shard %s: %w", f.path, err)
	}
	if err := f.tmp.Commit(); err != nil {
		return ShardInfo{}, fmt.Errorf("shard: %w", err)
	}
	f.info.Bytes = f.cw.n
	return f.info, nil
}

func (f *shardFile) abort() { f.tmp.Abort() }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
