// Package prepare turns raw image–caption data into a prepared dataset (Parquet shards and a
// manifest), and looks into shards and tokenizes captions as the pipeline sees them.
package prepare

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/internal/runlock"
	"github.com/clipgo/clipgo/pipeline"
	"github.com/clipgo/clipgo/stages/internal/humanize"
)

// Config says where raw data comes from and how `prepare` turns it into shards.
type Config struct {
	Source      string  // synthetic | captions | imagefolder | idx | parquet | urls | webdataset
	Out         string  // dataset directory to create; must not hold a dataset already
	ImageSize   int     // side in pixels of the stored images
	ResizeMode  string  // center_crop | keep_ratio | border | no (img2dataset's modes)
	Quality     int     // JPEG quality of the stored images
	Workers     int     // decode+resize goroutines
	ValFraction float64 // share of images (by key hash) put in the val split
	ValCount    int     // exactly this many images in val instead (the smallest key hashes); 0: use ValFraction
	Seed        int64   // seeds the synthetic scenes and the train/val split
	Strict      bool    // stop at the first rejected record instead of skipping it
	Part        string  // "i/n": prepare only part i (from 0) of n into Out/parts (parts.go); "": all
	MaxPixels   int64   // images whose header declares more pixels are rejected

	RowGroupRows int   // rows per Parquet row group
	ShardRows    int64 // rows per shard file

	Synthetic ingest.SyntheticOptions // --source synthetic (Seed and Size come from above)
	Captions  ingest.CaptionsOptions  // --source captions
	Root      string                  // --source imagefolder
	IDXImages string                  // --source idx
	IDXLabels string
	Classes   []string // --source idx: class names of labels 0, 1, ... (default "0", "1", ...)
	Input     string   // --source parquet, webdataset, urls: a glob of Parquet files, tar shards, URL lists
	// URLs tunes --source urls: the URL column and the fetches (its Input and Dir come from
	// Input and Out, its caption column from Captions.CaptionColumn).
	URLs ingest.URLOptions

	part, parts int // Part, parsed by validate: this run keeps the images of part `part` of `parts`
}

// Summary is what `prepare` did.
type Summary struct {
	Out     string
	Splits  map[string]*shard.Split
	Rejects map[string]int64 // by reason
	Elapsed time.Duration
}

// Images returns the number of images written over all splits.
func (s Summary) Images() (n int64) {
	for _, sp := range s.Splits {
		n += sp.Images
	}
	return n
}

// WriteText prints the summary for people.
func (s Summary) WriteText(w io.Writer) {
	var images, captions, bytes int64
	for _, name := range slices.Sorted(maps.Keys(s.Splits)) {
		sp := s.Splits[name]
		fmt.Fprintf(w, "  %-9s %8d images %8d captions %6d shards %10s\n", name, sp.Images, sp.Captions, len(sp.Shards), humanize.Bytes(sp.Bytes))
		images, captions, bytes = images+sp.Images, captions+sp.Captions, bytes+sp.Bytes
	}
	fmt.Fprintf(w, "  %-9s %8d images %8d captions        %17s  in %s (%.0f images/s)\n", "written", images, captions, humanize.Bytes(bytes),
		s.Elapsed.Round(time.Millisecond), float64(images)/s.Elapsed.Seconds())
	var skipped int64
	for _, r := range slices.Sorted(maps.Keys(s.Rejects)) {
		fmt.Fprintf(w, "  skipped   %8d %s\n", s.Rejects[r], r)
		skipped += s.Rejects[r]
	}
	if skipped > 0 {
		fmt.Fprintf(w, "  skipped   %8d in all (listed in %s)\n", skipped, filepath.Join(s.Out, RejectsName))
	}
}

// RejectsName is the file, beside the manifest, that lists every rejected record as JSON lines.
const RejectsName = "rejects.jsonl"

// Reasons `prepare` itself rejects an image for; the source adds its own (ingest.Reason*).
const (
	ReasonDuplicateKey = "duplicate_key"
	ReasonReadError    = "read_error"
	reasonImagePrefix  = "image_" // + imageproc.Reason: image_corrupt, image_too_large, ...
)

// Run reads cfg's source, decodes, checks and resizes every image on cfg.Workers
// goroutines, and writes the train/val (and source-forced) splits as Parquet shards with a
// manifest. Bad records are skipped and counted by reason, or stop the run with cfg.Strict.
// Shard contents do not depend on the number of workers.
func Run(ctx context.Context, cfg Config, log *slog.Logger, progressTo io.Writer) (_ Summary, err error) {
	start := time.Now()
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	if cfg.parts > 1 {
		cfg.Out = PartDir(cfg.Out, cfg.part, cfg.parts)
	}
	if log == nil {
		log = slog.Default()
	}
	// One writer per dataset directory: the lock is taken before the directory is judged
	// (a manifest present or not) and held until the manifest is written, so two prepares into
	// one --out cannot both find it free. The lock file lives inside the directory, so nothing
	// below removes the directory while holding it.
	_, statErr := os.Stat(cfg.Out)
	created := errors.Is(statErr, fs.ErrNotExist)
	lock, err := runlock.Acquire(cfg.Out, "prepare")
	if err != nil {
		return Summary{}, fmt.Errorf("prepare: %w", err)
	}
	defer func() {
		if rerr := lock.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("prepare: %w", rerr)
		}
		if err != nil && created {
			os.Remove(cfg.Out) // only when this run made it and left it empty (no shard, no rejects)
		}
	}()
	if w := lock.Warning(); w != "" {
		log.Warn(w)
	}
	if err := claimOutDir(cfg.Out); err != nil {
		return Summary{}, err
	}
	src, err := cfg.openSource(ctx, log)
	if err != nil {
		return Summary{}, err
	}
	if cfg.ValCount > 0 {
		if cfg.ValFraction, err = valThreshold(ctx, src, cfg.Seed, cfg.ValCount); err != nil {
			return Summary{}, err
		}
	}
	rejects, err := newRejectLog(filepath.Join(cfg.Out, RejectsName), cfg.Strict)
	if err != nil {
		return Summary{}, err
	}
	defer rejects.close()

	resizer := imageproc.Resizer{Size: cfg.ImageSize}
	resizer.Mode, _ = imageproc.ParseResizeMode(cfg.ResizeMode) // checked by validate
	limits := imageproc.Limits{MaxPixels: cfg.MaxPixels}

	var total int64 = -1
	if cfg.Source == "synthetic" {
		total = int64(cfg.Synthetic.N + cfg.Synthetic.ZeroShotN)
	}
	bar := progress.New(progressTo, log, "prepare", total)
	defer bar.Finish()
	defer countTotal(ctx, cfg, src, bar)() // a listing source's total, for an ETA

	out := newSplitWriters(cfg)
	defer out.abort()

	p := pipeline.New(ctx)
	items := pipeline.Source(p, "scan", func(ctx context.Context, emit func(ingest.Item) error) error {
		if cfg.parts <= 1 {
			return src.Scan(ctx, emit, rejects.add)
		}
		return src.Scan(ctx, func(it ingest.Item) error {
			if !cfg.inPart(it.Key) {
				bar.Add(1, "")
				return nil
			}
			return emit(it)
		}, func(r ingest.Reject) error {
			if !cfg.ownsReject(r) {
				return nil
			}
			return rejects.add(r)
		})
	})
	encoded := pipeline.Map(p, "decode+resize", items, pipeline.Options{Workers: cfg.Workers, Buffer: 2 * cfg.Workers},
		func(ctx context.Context, it ingest.Item) (encodedItem, error) {
			rec, rej := encodeItem(it, resizer, limits, cfg.Quality)
			return encodedItem{item: it, rec: rec, reject: rej}, nil
		})
	seen := newKeySet()
	pipeline.Sink(p, "write", encoded, func(ctx context.Context, e encodedItem) error {
		bar.Add(1, "")
		if e.reject != nil {
			return rejects.add(*e.reject)
		}
		if !seen.add(e.rec.Key) {
			return rejects.add(ingest.Reject{Origin: e.item.Origin, Key: e.rec.Key, Reason: ReasonDuplicateKey,
				Detail: "an earlier record has the same key; the first one is kept"})
		}
		return out.write(cfg.splitOf(e.item), e.rec)
	})
	if err := p.Wait(); err != nil {
		return Summary{}, fmt.Errorf("prepare %s: %w", src.Name(), err)
	}

	splits, err := out.close()
	if err != nil {
		return Summary{}, err
	}
	if len(splits) == 0 {
		return Summary{}, fmt.Errorf("prepare %s: no image was written (%d rejected: see %s)", src.Name(), rejects.total(), rejects.path)
	}
	m := &shard.Manifest{
		SchemaVersion: shard.SchemaVersion,
		Source:        src.Name(),
		Created:       time.Now().UTC(),
		ImageSize:     cfg.ImageSize,
		ResizeMode:    cfg.ResizeMode,
		Splits:        splits,
		ClassNames:    src.Classes(),
		Rejects:       rejects.counts(),
		Extra:         cfg.withPartInfo(sourceExtra(src)),
	}
	if err := rejects.close(); err != nil {
		return Summary{}, err
	}
	if err := shard.WriteManifest(cfg.Out, m); err != nil {
		return Summary{}, err
	}
	return Summary{Out: cfg.Out, Splits: splits, Rejects: m.Rejects, Elapsed: time.Since(start)}, nil
}

func (cfg *Config) validate() error {
	switch {
	case cfg.Out == "":
		return errors.New("prepare: --out is required")
	case cfg.ImageSize < 8 || cfg.ImageSize > 4096:
		return fmt.Errorf("prepare: --image-size %d is outside [8, 4096]", cfg.ImageSize)
	case !(cfg.ValFraction >= 0 && cfg.ValFraction < 1): // NaN too
		return fmt.Errorf("prepare: --val-fraction %g is outside [0, 1)", cfg.ValFraction)
	case cfg.ValCount < 0:
		return fmt.Errorf("prepare: --val-count %d is negative", cfg.ValCount)
	case cfg.Quality < 1 || cfg.Quality > 100:
		return fmt.Errorf("prepare: --quality %d is outside [1, 100]", cfg.Quality)
	}
	if _, err := imageproc.ParseResizeMode(cfg.ResizeMode); err != nil {
		return fmt.Errorf("prepare: --resize-mode: %w", err)
	}
	var err error
	if cfg.part, cfg.parts, err = ParsePart(cfg.Part); err != nil {
		return err
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	return nil
}

func (cfg *Config) openSource(ctx context.Context, log *slog.Logger) (ingest.Source, error) {
	need := func(flag, v string) error {
		if v == "" {
			return fmt.Errorf("prepare --source %s: %s is required", cfg.Source, flag)
		}
		return nil
	}
	switch cfg.Source {
	case "synthetic":
		o := cfg.Synthetic
		o.Seed, o.Size = cfg.Seed, cfg.ImageSize
		return ingest.Synthetic(o)
	case "captions":
		if err := need("--captions", cfg.Captions.File); err != nil { // --images defaults to its directory
			return nil, err
		}
		return ingest.CaptionsContext(ctx, cfg.Captions)
	case "imagefolder":
		if err := need("--root", cfg.Root); err != nil {
			return nil, err
		}
		return ingest.ImageFolder(cfg.Root)
	case "idx":
		if err := errors.Join(need("--idx-images", cfg.IDXImages), need("--idx-labels", cfg.IDXLabels)); err != nil {
			return nil, err
		}
		return ingest.IDX(cfg.IDXImages, cfg.IDXLabels, cfg.Classes...)
	case "parquet":
		if err := need("--input", cfg.Input); err != nil {
			return nil, err
		}
		return ingest.Parquet(cfg.Input)
	case "webdataset":
		if err := need("--input", cfg.Input); err != nil {
			return nil, err
		}
		return ingest.WebDataset(cfg.Input)
	case "urls":
		if err := need("--input", cfg.Input); err != nil {
			return nil, err
		}
		o := cfg.URLs
		o.Input, o.Dir, o.CaptionColumn, o.Log = cfg.Input, cfg.Out, cfg.Captions.CaptionColumn, log
		if cfg.parts > 1 { // download only this part's rows
			o.Keep = cfg.inPart
		}
		return ingest.URLs(o)
	case "":
		return nil, errors.New("prepare: --source is required (" + sourceKinds + ")")
	default:
		return nil, fmt.Errorf("prepare: unknown --source %q (%s)", cfg.Source, sourceKinds)
	}
}

// sourceKinds lists the values of --source, for messages.
const sourceKinds = "synthetic, captions, imagefolder, idx, parquet, urls or webdataset"

// splitOf puts an item in the split its source forces, else in val or train by a hash of its
// key: stable across runs and worker counts, and independent of the order items arrive in.
func (cfg *Config) splitOf(it ingest.Item) string {
	if it.Split != "" {
		return it.Split
	}
	if cfg.ValFraction > 0 && keyFraction(cfg.Seed, it.Key) < cfg.ValFraction {
		return "val"
	}
	return "train"
}

// valThreshold scans the source's keys (without loading images) and returns the key-hash
// fraction below which exactly n of them fall, so that splitOf puts n images in val. Items a
// source forces into a split of its own do not count.
func valThreshold(ctx context.Context, src ingest.Source, seed int64, n int) (float64, error) {
	var fracs []float64
	err := src.Scan(ctx, func(it ingest.Item) error {
		if it.Split == "" {
			fracs = append(fracs, keyFraction(seed, it.Key))
		}
		return nil
	}, func(ingest.Reject) error { return nil })
	if err != nil {
		return 0, fmt.Errorf("prepare --val-count: %w", err)
	}
	if n >= len(fracs) {
		return 0, fmt.Errorf("prepare --val-count %d: the source has only %d images to split", n, len(fracs))
	}
	slices.Sort(fracs)
	return (fracs[n-1] + fracs[n]) / 2, nil // between the n-th and the (n+1)-th smallest
}

// keyFraction maps (seed, key) to a uniform number in [0, 1). FNV-1a alone mixes the last
// bytes of a key poorly into the high bits (keys "x-0001", "x-0002", ... would land together),
// so its sum goes through splitmix64's finaliser.
func keyFraction(seed int64, key string) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(key))
	z := h.Sum64()
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// claimOutDir refuses a directory (already created and locked by Run) that holds a dataset:
// prepare never overwrites data a user may still need.
func claimOutDir(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, shard.ManifestName)); err == nil {
		return fmt.Errorf("prepare: %s already holds a dataset (%s); choose another --out or remove it", dir, shard.ManifestName)
	}
	return nil
}

type encodedItem struct {
	item   ingest.Item
	rec    shard.Record
	reject *ingest.Reject
}

// encodeItem loads, decodes, checks and resizes one item's image and encodes it as JPEG.
func encodeItem(it ingest.Item, resizer imageproc.Resizer, limits imageproc.Limits, quality int) (shard.Record, *ingest.Reject) {
	reject := func(reason string, err error) (shard.Record, *ingest.Reject) {
		return shard.Record{}, &ingest.Reject{Origin: it.Origin, Key: it.Key, Reason: reason, Detail: err.Error()}
	}
	img := it.Image
	var raw []byte // the file's bytes, when the item came as a file
	var info imageproc.Info
	if img == nil {
		var err error
		raw, err = it.Load()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return reject(ingest.ReasonMissingFile, err)
		case errors.Is(err, ingest.ErrTooLarge):
			return reject(ingest.ReasonFileTooLarge, err)
		case errors.Is(err, fileinput.ErrNotRegular): // e.g. a FIFO swapped in after the scan
			return reject(ingest.ReasonNotAFile, err)
		case err != nil:
			return reject(ReasonReadError, err)
		}
		if img, info, err = imageproc.Decode(raw, limits); err != nil {
			return reject(reasonImagePrefix+imageproc.Reason(err), err)
		}
	}
	orig := img.Bounds().Size()
	resized, err := resizer.Resize(img)
	if err != nil {
		return reject(reasonImagePrefix+imageproc.Reason(err), err)
	}
	// A JPEG that needs no resizing is stored as it came (img2dataset's skip_reencode): a
	// re-encode would only lose detail, and the original bytes are what open_clip's
	// preprocess(Image.open(f)) decodes, so the inference path then sees its exact pixels.
	jpg := raw
	if resized != img || info.Format != "jpeg" {
		if jpg, err = imageproc.EncodeJPEG(resized, quality); err != nil {
			return reject(reasonImagePrefix+"encode", err)
		}
	}
	sum := sha256.Sum256(jpg)
	size := resized.Bounds().Size()
	return shard.Record{
		Key:            it.Key,
		Caption:        it.Captions[0],
		Captions:       it.Captions,
		JPG:            jpg,
		Width:          int32(size.X),
		Height:         int32(size.Y),
		OriginalWidth:  int32(orig.X),
		OriginalHeight: int32(orig.Y),
		SHA256:         hex.EncodeToString(sum[:]),
		Label:          it.Label,
	}, nil
}

// splitWriters holds one shard writer per split, opened on first use.
type splitWriters struct {
	dir     string
	opts    shard.WriterOptions
	writers map[string]*shard.Writer
}

func newSplitWriters(cfg Config) *splitWriters {
	return &splitWriters{dir: cfg.Out, opts: shard.WriterOptions{RowGroupRows: cfg.RowGroupRows, ShardRows: cfg.ShardRows},
		writers: make(map[string]*shard.Writer)}
}

func (s *splitWriters) write(split string, r shard.Record) error {
	w, ok := s.writers[split]
	if !ok {
		var err error
		if w, err = shard.NewWriter(s.dir, split, s.opts); err != nil {
			return fmt.Errorf("split %s: %w", split, err)
		}
		s.writers[split] = w
	}
	if err := w.Write(r); err != nil {
		return fmt.Errorf("split %s key %s: %w", split, r.Key, err)
	}
	return nil
}

func (s *splitWriters) close() (map[string]*shard.Split, error) {
	splits := make(map[string]*shard.Split, len(s.writers))
	for _, name := range slices.Sorted(maps.Keys(s.writers)) {
		infos, err := s.writers[name].Close()
		delete(s.writers, name)
		if err != nil {
			return nil, fmt.Errorf("split %s: %w", name, err)
		}
		splits[name] = shard.NewSplit(infos)
	}
	return splits, nil
}

// abort removes the partial shards of writers that were not closed (a failed run).
func (s *splitWriters) abort() {
	for _, w := range s.writers {
		w.Abort()
	}
}

// rejectLog writes rejects.jsonl and counts rejects by reason. It is safe for concurrent use:
// the source's rejects and the writer's arrive from different goroutines.
type rejectLog struct {
	mu     sync.Mutex
	path   string
	f      *os.File
	enc    *json.Encoder
	byWhy  map[string]int64
	strict bool
}

func newRejectLog(path string, strict bool) (*rejectLog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return &rejectLog{path: path, f: f, enc: json.NewEncoder(f), byWhy: make(map[string]int64), strict: strict}, nil
}

// ErrStrict marks the error that stops a --strict run at its first rejected record.
var ErrStrict = errors.New("rejected record in --strict mode")

func (l *rejectLog) add(r ingest.Reject) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byWhy[r.Reason]++
	if err := l.enc.Encode(struct {
		Origin string `json:"origin"`
		Key    string `json:"key,omitempty"`
		Reason string `json:"reason"`
		Detail string `json:"detail,omitempty"`
	}{r.Origin, r.Key, r.Reason, r.Detail}); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	if l.strict {
		return fmt.Errorf("%w: %s", ErrStrict, r)
	}
	return nil
}

func (l *rejectLog) counts() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.byWhy)
}

func (l *rejectLog) total() (n int64) {
	for _, c := range l.counts() {
		n += c
	}
	return n
}

func (l *rejectLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", l.path, err)
	}
	return nil
}

// sourceExtra returns what a source wants recorded in the manifest (e.g. the synthetic
// held-out attribute combinations), when it has any.
func sourceExtra(src ingest.Source) map[string]any {
	if x, ok := src.(interface{ ManifestExtra() map[string]any }); ok {
		return x.ManifestExtra()
	}
	return nil
}
