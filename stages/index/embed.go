// Package index makes and searches embedding indexes: Embed writes a prepared dataset's image
// and caption embeddings as one Parquet file (the index format), Open reads one, and Search
// ranks its rows against a text or image query.
package index

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	pq "github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
	"github.com/clipgo/clipgo/stages/internal/humanize"
)

// Columns of an embedding index, the Parquet file `clipgo embed` writes. Embeddings are
// Arrow FixedSizeList<float32>[E] (pandas reads them as arrays, DuckDB as FLOAT[E]); label
// and class_name are null where the dataset has no label; jpg is absent with --no-images.
const (
	ColKey            = "key"
	ColSplit          = "split"
	ColCaption        = "caption"  // the first caption, whose embedding is text_embedding
	ColCaptions       = "captions" // every caption of the image
	ColLabel          = "label"
	ColClassName      = "class_name"
	ColImageEmbedding = "image_embedding" // L2-normalised image embedding, [E]
	ColTextEmbedding  = "text_embedding"  // L2-normalised embedding of caption, [E]
	ColJPG            = "jpg"             // the image as stored in the dataset
)

// File-level metadata keys of an embedding index: what a reader needs to know which model's
// space the vectors live in.
const (
	MetaVersion    = "clipgo.index_version"
	MetaConfig     = "clipgo.model_config" // fusion.Config as JSON
	MetaCheckpoint = "clipgo.checkpoint"   // path of the checkpoint file embed used
	// MetaCheckpointSHA256 is the hex SHA-256 of that file: search refuses another
	// checkpoint's weights, which share the config but not the embedding space.
	MetaCheckpointSHA256 = "clipgo.checkpoint_sha256"
	MetaEmbedDim         = "clipgo.embed_dim" // E, decimal
	MetaDataset          = "clipgo.dataset"   // dataset directory as given to embed
)

// Version is the index layout this build writes and reads.
const Version = 1

// RowGroupRows is the number of rows in each row group of an index: small enough that a
// reader fetching one result's image reads little, large enough that the footer stays small.
const RowGroupRows = 1024

// EmbedOptions configures Embed.
type EmbedOptions struct {
	Checkpoint string // model checkpoint, or a run directory (its latest checkpoint)
	Data       string // prepared dataset directory
	Split      string // split to embed; "" embeds every split, in name order
	Out        string // index file to write (.parquet)
	Batch      int    // images per model batch (default 64)
	QuickGELU  bool   // the weights use OpenAI's QuickGELU (a bare state dict does not say)
	Workers    int    // image decode goroutines (default GOMAXPROCS)
	NoImages   bool   // leave the jpg column out (a smaller index; search then shows no images)
	// Index is what is built beside the Parquet file: IndexExact (the default: nothing) or
	// IndexIVF (an IVF file, IVFPath(Out), configured by IVF).
	Index string
	IVF   IVFOptions

	Log      *slog.Logger // nil: no logs
	Progress io.Writer    // where the progress bar is drawn; nil: none
}

// EmbedSummary is what Embed wrote.
type EmbedSummary struct {
	Out     string
	Rows    int64          // images embedded
	Splits  map[string]int // images per split
	Dim     int            // E
	Bytes   int64          // size of the index file
	Elapsed time.Duration
	IVF     string        // the IVF file written, if any
	IVFTime time.Duration // of Elapsed, the time spent building it
}

// Embed writes an embedding index of a prepared dataset: for every image its key, split,
// captions, label and class name, the L2-normalised image embedding (eval transform) and
// the L2-normalised embedding of its first caption, and its JPEG bytes, as one Parquet file
// written with Arrow, so that pandas, polars or DuckDB read it directly. The file appears
// atomically: a failed run leaves no partial index behind.
func Embed(ctx context.Context, opt EmbedOptions) (EmbedSummary, error) {
	start := time.Now()
	if opt.Checkpoint == "" || opt.Data == "" || opt.Out == "" {
		return EmbedSummary{}, errors.New("embed: --checkpoint, --data and --out are required")
	}
	if err := ingest.CheckPrepared(opt.Data); err != nil { // before the model loads: raw data fails fast
		return EmbedSummary{}, fmt.Errorf("embed: %w", err)
	}
	if opt.Batch <= 0 {
		opt.Batch = 64
	}
	opt.Index = cmp.Or(opt.Index, IndexExact)
	if !slices.Contains(IndexKinds, opt.Index) {
		return EmbedSummary{}, fmt.Errorf("embed: --index %q: want one of %v", opt.Index, IndexKinds)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	man, err := shard.ReadManifest(opt.Data)
	if err != nil {
		return EmbedSummary{}, fmt.Errorf("embed: %w", err)
	}
	splits := slices.Sorted(maps.Keys(man.Splits))
	if opt.Split != "" {
		if man.Splits[opt.Split] == nil {
			return EmbedSummary{}, fmt.Errorf("embed: dataset %s has no split %q (has %v)", opt.Data, opt.Split, splits)
		}
		splits = []string{opt.Split}
	}
	em, err := evalmodel.Open(opt.Checkpoint, opt.Batch, opt.QuickGELU)
	if err != nil {
		return EmbedSummary{}, fmt.Errorf("embed: %w", err)
	}
	defer em.Close()
	cfg, enc := em.Config, em.Enc
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return EmbedSummary{}, fmt.Errorf("embed: %w", err)
	}
	ckptSum, err := em.SHA256()
	if err != nil {
		return EmbedSummary{}, fmt.Errorf("embed: checkpoint hash: %w", err)
	}

	w, err := newIndexWriter(opt.Out, cfg.EmbedDim, !opt.NoImages, man.ClassNames)
	if err != nil {
		return EmbedSummary{}, fmt.Errorf("embed: %w", err)
	}
	defer w.abort()
	for _, kv := range [][2]string{
		{MetaVersion, strconv.Itoa(Version)},
		{MetaConfig, string(cfgJSON)},
		{MetaCheckpoint, em.Path},
		{MetaCheckpointSHA256, ckptSum},
		{MetaEmbedDim, strconv.Itoa(cfg.EmbedDim)},
		{MetaDataset, opt.Data},
	} {
		if err := w.fw.AppendKeyValueMetadata(kv[0], kv[1]); err != nil {
			return EmbedSummary{}, fmt.Errorf("embed: %s: %w", opt.Out, err)
		}
	}

	var total int64
	for _, s := range splits {
		total += man.Splits[s].Images
	}
	bar := progress.New(opt.Progress, opt.Log, "embed", total)
	defer bar.Finish()
	sum := EmbedSummary{Out: opt.Out, Splits: map[string]int{}, Dim: cfg.EmbedDim}
	e := &embedder{enc: enc, size: cfg.Vision.ImageSize, workers: opt.Workers}
	for _, split := range splits {
		files, err := man.Files(opt.Data, split)
		if err != nil {
			return EmbedSummary{}, fmt.Errorf("embed: %w", err)
		}
		var batch []shard.Sample
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			imgEmb, txtEmb, err := e.embed(batch)
			if err != nil {
				return err
			}
			if err := w.write(split, batch, imgEmb, txtEmb); err != nil {
				return fmt.Errorf("%s: %w", opt.Out, err)
			}
			sum.Rows += int64(len(batch))
			sum.Splits[split] += len(batch)
			bar.Add(int64(len(batch)), split)
			batch = batch[:0]
			return nil
		}
		err = shard.Read(ctx, files, shard.ReadOptions{}, func(s shard.Sample) error {
			batch = append(batch, s)
			if len(batch) == opt.Batch {
				return flush()
			}
			return ctx.Err()
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return EmbedSummary{}, fmt.Errorf("embed: split %s: %w", split, err)
		}
	}
	if sum.Rows == 0 {
		return EmbedSummary{}, fmt.Errorf("embed: dataset %s has no images in %v", opt.Data, splits)
	}
	if sum.Bytes, err = w.commit(); err != nil {
		return EmbedSummary{}, fmt.Errorf("embed: %w", err)
	}
	if err := removeStaleIVF(opt.Out); err != nil {
		return EmbedSummary{}, fmt.Errorf("embed: %w", err)
	}
	if opt.Index == IndexIVF {
		if sum.IVFTime, err = BuildIVFFile(ctx, opt.Out, opt.IVF, Limits{}, opt.Log, opt.Progress); err != nil {
			return EmbedSummary{}, fmt.Errorf("embed: %w", err)
		}
		sum.IVF = IVFPath(opt.Out)
	}
	sum.Elapsed = time.Since(start)
	opt.Log.Info("embed", "out", opt.Out, "rows", sum.Rows, "dim", sum.Dim, "bytes", sum.Bytes, "elapsed", sum.Elapsed.Round(time.Millisecond))
	return sum, nil
}

// WriteText prints the summary for people.
func (s EmbedSummary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "embedded %d images (E=%d) into %s (%s) in %s (%.0f images/s)\n", s.Rows, s.Dim, s.Out,
		humanize.Bytes(s.Bytes), s.Elapsed.Round(time.Millisecond), float64(s.Rows)/s.Elapsed.Seconds())
	for _, name := range slices.Sorted(maps.Keys(s.Splits)) {
		fmt.Fprintf(w, "  %-9s %8d images\n", name, s.Splits[name])
	}
	if s.IVF != "" {
		fmt.Fprintf(w, "IVF index %s built in %s\n", s.IVF, s.IVFTime.Round(time.Millisecond))
	}
}

// embedder turns batches of shard samples into image and caption embeddings.
type embedder struct {
	enc     *fusion.Encoder
	size    int // S: the model's image side
	workers int
	images  []float32 // [B,3,S,S] scratch
}

// embed returns the [n,E] image embeddings (eval transform) and [n,E] first-caption
// embeddings of the samples.
func (e *embedder) embed(batch []shard.Sample) (img, txt []float32, err error) {
	per := e.enc.ImageLen()
	e.images = slices.Grow(e.images[:0], len(batch)*per)[:len(batch)*per]
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(e.workers, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = e.transform(e.images[i*per:(i+1)*per], &batch[i])
			}
		}()
	}
	for i := range batch {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if img, err = e.enc.Images(e.images); err != nil {
		return nil, nil, err
	}
	texts := make([]string, len(batch))
	for i := range batch {
		texts[i] = embedCaption(&batch[i].Record)
	}
	if txt, err = e.enc.Texts(texts); err != nil {
		return nil, nil, err
	}
	return img, txt, nil
}

// transform decodes s's image into dst with the evaluation transform.
func (e *embedder) transform(dst []float32, s *shard.Sample) error {
	im, _, err := imageproc.Decode(s.JPG, imageproc.DefaultLimits)
	if err == nil {
		err = imageproc.EvalTransform(dst, im, e.size)
	}
	if err != nil {
		return fmt.Errorf("key %q (shard %s row group %d row %d): %w", s.Key, s.Pos.File, s.Pos.RowGroup, s.Pos.Row, err)
	}
	return nil
}

// embedCaption is the caption an index row's text embedding is made of: the first one.
func embedCaption(r *shard.Record) string {
	if caps := r.AllCaptions(); len(caps) > 0 {
		return caps[0]
	}
	return ""
}

// indexSchema returns the Arrow schema of an index with embeddings of width dim.
func indexSchema(dim int, images bool) *arrow.Schema {
	vec := arrow.FixedSizeListOf(int32(dim), arrow.PrimitiveTypes.Float32)
	fields := []arrow.Field{
		{Name: ColKey, Type: arrow.BinaryTypes.String},
		{Name: ColSplit, Type: arrow.BinaryTypes.String},
		{Name: ColCaption, Type: arrow.BinaryTypes.String},
		{Name: ColCaptions, Type: arrow.ListOf(arrow.BinaryTypes.String)},
		{Name: ColLabel, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColClassName, Type: arrow.BinaryTypes.String, Nullable: true},
		// Nullable although never null: Arrow v15's Parquet writer writes every value of a
		// required fixed_size_list column as null (measured; a nullable one round-trips).
		{Name: ColImageEmbedding, Type: vec, Nullable: true},
		{Name: ColTextEmbedding, Type: vec, Nullable: true},
	}
	if images {
		fields = append(fields, arrow.Field{Name: ColJPG, Type: arrow.BinaryTypes.Binary})
	}
	return arrow.NewSchema(fields, nil)
}

// indexWriter writes index rows to a temporary file beside the destination and renames it
// into place on commit.
type indexWriter struct {
	path    string
	tmp     *atomicfile.File
	fw      *pqarrow.FileWriter
	b       *array.RecordBuilder
	dim     int
	images  bool
	classes []string
	done    bool
}

// indexSink hides the file's Close from pqarrow, which would otherwise close it before the
// writer syncs it.
type indexSink struct{ io.Writer }

func newIndexWriter(path string, dim int, images bool, classes []string) (*indexWriter, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return nil, err
	}
	sc := indexSchema(dim, images)
	props := pq.NewWriterProperties(
		pq.WithCompression(compress.Codecs.Zstd),
		pq.WithCompressionFor(ColJPG, compress.Codecs.Uncompressed),
		pq.WithDictionaryDefault(false),
		pq.WithDictionaryFor(ColSplit, true),
		pq.WithDictionaryFor(ColClassName, true),
		pq.WithStats(false),
		pq.WithMaxRowGroupLength(RowGroupRows),
		pq.WithCreatedBy("clipgo embed"),
		// A required root, as parquet-mr and pyarrow write it: arrow-go v15 writes REPEATED by
		// default, and readers such as hyparquet then fail on every column (apache/arrow-go#722).
		pq.WithRootRepetition(pq.Repetitions.Required),
	)
	fw, err := pqarrow.NewFileWriter(sc, indexSink{tmp}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		tmp.Abort()
		return nil, err
	}
	return &indexWriter{path: path, tmp: tmp, fw: fw, b: array.NewRecordBuilder(memory.DefaultAllocator, sc),
		dim: dim, images: images, classes: classes}, nil
}

// write appends one batch of rows: samples with their [n,E] image and text embeddings.
func (w *indexWriter) write(split string, batch []shard.Sample, img, txt []float32) error {
	n, E := len(batch), w.dim
	if len(img) != n*E || len(txt) != n*E {
		return fmt.Errorf("index: %d and %d embedding values for %d rows of width %d", len(img), len(txt), n, E)
	}
	b := w.b
	key := b.Field(0).(*array.StringBuilder)
	spl := b.Field(1).(*array.StringBuilder)
	capt := b.Field(2).(*array.StringBuilder)
	caps := b.Field(3).(*array.ListBuilder)
	capv := caps.ValueBuilder().(*array.StringBuilder)
	label := b.Field(4).(*array.Int32Builder)
	class := b.Field(5).(*array.StringBuilder)
	for i := range batch {
		r := &batch[i].Record
		key.Append(r.Key)
		spl.Append(split)
		capt.Append(embedCaption(r))
		caps.Append(true)
		capv.AppendValues(r.AllCaptions(), nil)
		switch {
		case r.Label == nil:
			label.AppendNull()
			class.AppendNull()
		case *r.Label >= 0 && int(*r.Label) < len(w.classes):
			label.Append(*r.Label)
			class.Append(w.classes[*r.Label])
		default:
			label.Append(*r.Label)
			class.AppendNull()
		}
	}
	valid := slices.Repeat([]bool{true}, n)
	for f, vals := range map[int][]float32{6: img, 7: txt} {
		lb := b.Field(f).(*array.FixedSizeListBuilder)
		lb.AppendValues(valid)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(vals, nil)
	}
	if w.images {
		jpg := b.Field(8).(*array.BinaryBuilder)
		for i := range batch {
			jpg.Append(batch[i].JPG)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	return w.fw.WriteBuffered(rec)
}

// commit closes the Parquet file, syncs it and renames it into place; it returns its size.
func (w *indexWriter) commit() (int64, error) {
	w.done = true
	w.b.Release()
	if err := w.fw.Close(); err != nil {
		w.tmp.Abort()
		return 0, fmt.Errorf("write %s: %w", w.path, err)
	}
	st, err := w.tmp.Stat()
	if err != nil {
		w.tmp.Abort()
		return 0, fmt.Errorf("write %s: %w", w.path, err)
	}
	if err := w.tmp.Commit(); err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// abort discards the temporary file unless commit ran.
func (w *indexWriter) abort() {
	if w.done {
		return
	}
	w.done = true
	w.b.Release()
	w.fw.Close()
	w.tmp.Abort()
}
