// Package filter writes a cleaner copy of a prepared dataset: it scores every image–caption
// pair of a split with a model and drops pairs and images by DataComp's filters — the CLIP
// score (a threshold, or a top fraction), the basic filter (caption length, image size and
// aspect ratio) — and near-duplicate images, among themselves and against evaluation sets
// (so that training never sees a test image). The new dataset has the same schema and a
// manifest; beside it go a record of every drop and why, the scores, and their histogram.
package filter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/plots"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/pipeline"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
)

// Options configures a filtering run. Every filter is off unless set.
type Options struct {
	Checkpoint string // model that scores the pairs (what evalmodel.Open takes)
	QuickGELU  bool
	Data       string // prepared dataset
	Split      string // the split filtered (default "train"); the others are copied unchanged
	Out        string // the new dataset directory; must not exist
	Batch      int    // images per model call (default 64)
	Workers    int    // image decode goroutines (default 1)

	// MinScore, when set, drops the pairs whose CLIP score (cosine of the image and caption
	// embeddings) is below it. TopFraction in (0,1] keeps that share of the pairs, those of
	// highest score (DataComp's "CLIP score top x%"); it sets the threshold from the scores.
	MinScore    *float64
	TopFraction float64

	// Basic is DataComp's basic filter without its language check (no language model here):
	// captions of fewer than MinWords words or MinChars characters, images whose smaller
	// original side is under MinSide pixels or whose aspect ratio exceeds MaxAspect.
	Basic Basic

	// Dedup, in (0,1], drops an image whose embedding's cosine with an image kept before it
	// reaches Dedup; images are visited best score first, so each group of near duplicates
	// keeps its best-captioned member.
	Dedup float64

	// Against lists evaluation sets, each a prepared dataset DIR (all its splits) or
	// DIR:SPLIT; a training image whose cosine with any of their images reaches
	// AgainstThreshold (default DefaultAgainstThreshold) is dropped and reported.
	Against          []string
	AgainstThreshold float64

	Log      *slog.Logger
	Progress io.Writer
}

// Basic holds the thresholds of DataComp's basic filter (Gadre et al. 2023, section 3.4: a
// caption of more than two words and five characters, an image of at least 200 pixels on its
// smaller side and an aspect ratio of at most 3). Zero fields are off.
type Basic struct {
	MinWords  int     `json:"min_words"`
	MinChars  int     `json:"min_chars"`
	MinSide   int     `json:"min_side"`
	MaxAspect float64 `json:"max_aspect"`
}

// DataCompBasic is DataComp's basic filter.
var DataCompBasic = Basic{MinWords: 3, MinChars: 6, MinSide: 200, MaxAspect: 3}

// Defaults.
const (
	DefaultSplit            = "train"
	DefaultAgainstThreshold = 0.95
	// MaxDedupImages bounds the images whose embeddings dedup compares pairwise (time grows
	// with their square).
	MaxDedupImages = 200_000
	histogramBins  = 60
)

// The reasons a pair or an image is dropped, as dropped.jsonl and the summary name them.
const (
	ReasonCaptionWords  = "basic:caption_words"
	ReasonCaptionChars  = "basic:caption_chars"
	ReasonImageSize     = "basic:image_size"
	ReasonAspectRatio   = "basic:aspect_ratio"
	ReasonScore         = "clip_score"
	ReasonEvalDuplicate = "eval_duplicate"
	ReasonDuplicate     = "near_duplicate"
	ReasonUndecodable   = "undecodable"
	ReasonNoCaption     = "no_caption_left"
)

// Files written beside the new dataset's shards.
const (
	SummaryName   = "filter.json"
	DroppedName   = "dropped.jsonl"
	ScoresName    = "scores.jsonl"
	HistogramName = "scores.png"
)

// Drop is one line of dropped.jsonl: a pair (Caption >= 0) or a whole image (Caption -1).
type Drop struct {
	Key     string   `json:"key"`
	Caption int      `json:"caption"`
	Text    string   `json:"text,omitempty"`
	Reason  string   `json:"reason"`
	Score   *float64 `json:"score,omitempty"`  // the pair's CLIP score, or the image's best
	Match   string   `json:"match,omitempty"`  // the duplicate kept, or the evaluation image
	Cosine  *float64 `json:"cosine,omitempty"` // with Match
}

// Score is one line of scores.jsonl: a pair's CLIP score.
type Score struct {
	Key     string  `json:"key"`
	Caption int     `json:"caption"`
	Text    string  `json:"text"`
	Score   float64 `json:"score"`
}

// Summary is filter.json: what was asked, what came in, what was kept, and why the rest went.
type Summary struct {
	Data        string             `json:"data"`
	Split       string             `json:"split"`
	Model       string             `json:"model"`
	Checkpoint  string             `json:"checkpoint"`
	Options     map[string]any     `json:"options"`
	ImagesIn    int                `json:"images_in"`
	PairsIn     int                `json:"pairs_in"`
	ImagesKept  int                `json:"images_kept"`
	PairsKept   int                `json:"pairs_kept"`
	Threshold   *float64           `json:"score_threshold,omitempty"` // the CLIP-score cut applied
	Quantiles   map[string]float64 `json:"score_quantiles,omitempty"`
	PairsBy     map[string]int     `json:"dropped_pairs_by_reason"`
	ImagesBy    map[string]int     `json:"dropped_images_by_reason"`
	EvalImages  int                `json:"eval_images,omitempty"`
	EvalMatches []Drop             `json:"eval_duplicates,omitempty"` // every training image dropped as an eval duplicate
}

// record is what the scoring pass keeps of one image.
type record struct {
	key      string
	captions []string
	scores   []float32 // per caption
	emb      []float32 // image embedding (nil: undecodable)
	w, h     int32     // original size
	dropped  []string  // per caption: reason, "" kept
	imgDrop  *Drop     // the image's drop, nil: kept
}

func (r *record) best() float32 {
	b := float32(math.Inf(-1))
	for c, s := range r.scores {
		if r.dropped[c] == "" {
			b = max(b, s)
		}
	}
	return b
}

// Run filters opts.Split of opts.Data into opts.Out and returns the summary it writes.
func Run(ctx context.Context, opts Options) (Summary, error) {
	log := cmp.Or(opts.Log, slog.Default())
	split := cmp.Or(opts.Split, DefaultSplit)
	if err := check(opts); err != nil {
		return Summary{}, fmt.Errorf("filter: %w", err)
	}
	m, err := shard.ReadManifest(opts.Data)
	if err != nil {
		return Summary{}, fmt.Errorf("filter: %w", err)
	}
	files, err := m.Files(opts.Data, split)
	if err != nil {
		return Summary{}, fmt.Errorf("filter: %w", err)
	}
	model, err := evalmodel.Open(opts.Checkpoint, opts.Batch, opts.QuickGELU)
	if err != nil {
		return Summary{}, fmt.Errorf("filter: %w", err)
	}
	defer model.Close()

	recs, err := score(ctx, model, files, m.Splits[split].Images, opts, log)
	if err != nil {
		return Summary{}, fmt.Errorf("filter: %s split %s: %w", opts.Data, split, err)
	}
	sum := Summary{Data: opts.Data, Split: split, Model: model.Desc, Checkpoint: model.Path, Options: describe(opts),
		PairsBy: map[string]int{}, ImagesBy: map[string]int{}, ImagesIn: len(recs)}
	for _, r := range recs {
		sum.PairsIn += len(r.captions)
	}

	applyBasic(recs, opts.Basic)
	var all []float64 // scores of the pairs that reach the CLIP-score filter
	for _, r := range recs {
		for c, s := range r.scores {
			if r.dropped[c] == "" && r.imgDrop == nil {
				all = append(all, float64(s))
			}
		}
	}
	threshold := scoreThreshold(all, opts)
	if threshold != nil {
		for _, r := range recs {
			for c, s := range r.scores {
				if r.dropped[c] == "" && float64(s) < *threshold {
					r.dropped[c] = ReasonScore
				}
			}
		}
	}
	sum.Threshold, sum.Quantiles = threshold, quantiles(all)
	for _, r := range recs {
		if r.imgDrop == nil && !slices.Contains(r.dropped, "") {
			r.imgDrop = &Drop{Key: r.key, Caption: -1, Reason: ReasonNoCaption}
		}
	}
	if len(opts.Against) > 0 {
		eval, n, err := embedAgainst(ctx, model, opts, log)
		if err != nil {
			return Summary{}, fmt.Errorf("filter: %w", err)
		}
		sum.EvalImages = n
		sum.EvalMatches = dropEvalDuplicates(recs, eval, cmp.Or(opts.AgainstThreshold, DefaultAgainstThreshold))
	}
	if opts.Dedup > 0 {
		if err := dedup(ctx, recs, opts.Dedup); err != nil {
			return Summary{}, fmt.Errorf("filter: %w", err)
		}
	}

	if err := write(ctx, m, opts, split, files, recs, &sum, all, threshold); err != nil {
		return Summary{}, fmt.Errorf("filter: %w", err)
	}
	log.Info("filter: done", "out", opts.Out, "images", fmt.Sprintf("%d of %d", sum.ImagesKept, sum.ImagesIn),
		"pairs", fmt.Sprintf("%d of %d", sum.PairsKept, sum.PairsIn))
	return sum, nil
}

func check(opts Options) error {
	switch {
	case opts.Data == "":
		return errors.New("--data is required")
	case opts.Out == "":
		return errors.New("--out is required")
	case filepath.Clean(opts.Out) == filepath.Clean(opts.Data):
		return errors.New("--out is --data: the filtered dataset goes to a new directory")
	case opts.MinScore != nil && (math.IsNaN(*opts.MinScore) || *opts.MinScore < -1 || *opts.MinScore > 1):
		return fmt.Errorf("--min-score %v: a CLIP score is a cosine, in [-1,1]", *opts.MinScore)
	case math.IsNaN(opts.TopFraction) || opts.TopFraction < 0 || opts.TopFraction > 1:
		return fmt.Errorf("--top-fraction %v: want a share in (0,1] (0: off)", opts.TopFraction)
	case opts.MinScore != nil && opts.TopFraction > 0:
		return errors.New("--min-score and --top-fraction both set: give one CLIP-score cut")
	case math.IsNaN(opts.Dedup) || opts.Dedup < 0 || opts.Dedup > 1:
		return fmt.Errorf("--dedup %v: want a cosine in (0,1] (0: off)", opts.Dedup)
	case math.IsNaN(opts.AgainstThreshold) || opts.AgainstThreshold < 0 || opts.AgainstThreshold > 1:
		return fmt.Errorf("--against-threshold %v: want a cosine in (0,1]", opts.AgainstThreshold)
	case opts.Basic.MinWords < 0 || opts.Basic.MinChars < 0 || opts.Basic.MinSide < 0 || math.IsNaN(opts.Basic.MaxAspect) ||
		(opts.Basic.MaxAspect != 0 && opts.Basic.MaxAspect < 1):
		return fmt.Errorf("basic filter %+v: counts must be ≥ 0 and the aspect-ratio limit ≥ 1 (0: off)", opts.Basic)
	}
	if _, err := os.Stat(opts.Out); err == nil {
		return fmt.Errorf("--out %s exists: give a new directory", opts.Out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func describe(opts Options) map[string]any {
	d := map[string]any{"basic": opts.Basic, "top_fraction": opts.TopFraction, "dedup": opts.Dedup}
	if opts.MinScore != nil {
		d["min_score"] = *opts.MinScore
	}
	if len(opts.Against) > 0 {
		d["against"], d["against_threshold"] = opts.Against, cmp.Or(opts.AgainstThreshold, DefaultAgainstThreshold)
	}
	return d
}

// decoded is one record with its image ready for the model.
type decoded struct {
	rec   shard.Record
	image []float32 // nil: undecodable
}

// embedImages streams the records of files through the model: each batch's records with
// their image embeddings (nil for an undecodable image), in file order.
func embedImages(ctx context.Context, model *evalmodel.Model, files []string, total int64, opts Options, what string, log *slog.Logger,
	fn func(recs []shard.Record, embs [][]float32) error) error {
	size := model.Config.Vision.ImageSize
	bar := progress.New(opts.Progress, log, what, total)
	defer bar.Finish()
	p := pipeline.New(ctx)
	recs := pipeline.Source(p, "read", func(ctx context.Context, emit func(shard.Record) error) error {
		return shard.Read(ctx, files, shard.ReadOptions{}, func(s shard.Sample) error { return emit(s.Record) })
	})
	imgs := pipeline.Map(p, "decode", recs, pipeline.Options{Workers: max(opts.Workers, 1)},
		func(_ context.Context, r shard.Record) (decoded, error) {
			d := decoded{rec: r}
			img, _, err := imageproc.Decode(r.JPG, imageproc.DefaultLimits)
			if err != nil {
				return d, nil
			}
			d.image = make([]float32, 3*size*size)
			if err := imageproc.EvalTransform(d.image, img, size); err != nil {
				d.image = nil
			}
			d.rec.JPG = nil // the writing pass reads the shards again
			return d, nil
		})
	batches := pipeline.Batch(p, "batch", imgs, cmp.Or(max(opts.Batch, 0), evalmodel.DefaultBatch), true)
	pipeline.Sink(p, "embed", batches, func(_ context.Context, ds []decoded) error {
		var images []float32
		for _, d := range ds {
			images = append(images, d.image...)
		}
		var flat []float32
		if len(images) > 0 {
			var err error
			if flat, err = model.Enc.Images(images); err != nil {
				return err
			}
		}
		E := model.Enc.Dim()
		rs, embs := make([]shard.Record, len(ds)), make([][]float32, len(ds))
		j := 0
		for i, d := range ds {
			rs[i] = d.rec
			if d.image != nil {
				embs[i] = flat[j*E : (j+1)*E]
				j++
			}
		}
		bar.Add(int64(len(ds)), "")
		return fn(rs, embs)
	})
	return p.Wait()
}

// score embeds every image and caption of files and scores each pair.
func score(ctx context.Context, model *evalmodel.Model, files []string, total int64, opts Options, log *slog.Logger) ([]*record, error) {
	var out []*record
	err := embedImages(ctx, model, files, total, opts, "filter: score", log, func(rs []shard.Record, embs [][]float32) error {
		var texts []string
		for i, r := range rs {
			if embs[i] != nil {
				texts = append(texts, r.AllCaptions()...)
			}
		}
		var temb []float32
		if len(texts) > 0 {
			var err error
			if temb, err = model.Enc.Texts(texts); err != nil {
				return err
			}
		}
		E, t := model.Enc.Dim(), 0
		for i, r := range rs {
			caps := r.AllCaptions()
			rec := &record{key: r.Key, captions: caps, scores: make([]float32, len(caps)), dropped: make([]string, len(caps)),
				w: cmp.Or(r.OriginalWidth, r.Width), h: cmp.Or(r.OriginalHeight, r.Height)}
			if embs[i] == nil {
				rec.imgDrop = &Drop{Key: r.Key, Caption: -1, Reason: ReasonUndecodable}
				for c := range caps {
					rec.scores[c] = float32(math.NaN())
				}
			} else {
				rec.emb = slices.Clone(embs[i])
				for c := range caps {
					rec.scores[c] = dot(rec.emb, temb[t*E:(t+1)*E])
					t++
				}
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// applyBasic marks the pairs and images the basic filter drops.
func applyBasic(recs []*record, b Basic) {
	for _, r := range recs {
		if r.imgDrop != nil {
			continue
		}
		short, long := min(r.w, r.h), max(r.w, r.h)
		switch {
		case b.MinSide > 0 && int(short) < b.MinSide:
			r.imgDrop = &Drop{Key: r.key, Caption: -1, Reason: ReasonImageSize}
		case b.MaxAspect > 0 && (short <= 0 || float64(long)/float64(short) > b.MaxAspect):
			r.imgDrop = &Drop{Key: r.key, Caption: -1, Reason: ReasonAspectRatio}
		}
		if r.imgDrop != nil { // its pairs go with it
			continue
		}
		for c, text := range r.captions {
			switch {
			case b.MinWords > 0 && len(strings.Fields(text)) < b.MinWords:
				r.dropped[c] = ReasonCaptionWords
			case b.MinChars > 0 && len([]rune(strings.TrimSpace(text))) < b.MinChars:
				r.dropped[c] = ReasonCaptionChars
			}
		}
	}
}

// scoreThreshold is the CLIP-score cut: MinScore, or the score of the last pair kept by
// TopFraction (ties at it kept), or nil when neither is set.
func scoreThreshold(scores []float64, opts Options) *float64 {
	switch {
	case opts.MinScore != nil:
		t := *opts.MinScore
		return &t
	case opts.TopFraction > 0 && len(scores) > 0:
		s := slices.Clone(scores)
		slices.Sort(s)
		keep := max(1, int(math.Round(opts.TopFraction*float64(len(s)))))
		t := s[len(s)-keep]
		return &t
	}
	return nil
}

// quantiles summarises the scores (nearest rank).
func quantiles(scores []float64) map[string]float64 {
	if len(scores) == 0 {
		return nil
	}
	s := slices.Clone(scores)
	slices.Sort(s)
	q := map[string]float64{}
	for _, p := range []int{0, 5, 25, 50, 75, 95, 100} {
		q[fmt.Sprintf("p%02d", p)] = s[min(len(s)-1, p*len(s)/100)]
	}
	return q
}

// evalSet is the images of the evaluation sets: their keys (DIR:SPLIT:KEY) and embeddings.
type evalSet struct {
	keys []string
	embs [][]float32
}

// embedAgainst embeds the images of the evaluation sets of opts.Against.
func embedAgainst(ctx context.Context, model *evalmodel.Model, opts Options, log *slog.Logger) (evalSet, int, error) {
	var set evalSet
	for _, ref := range opts.Against {
		dir, split, _ := strings.Cut(ref, ":")
		m, err := shard.ReadManifest(dir)
		if err != nil {
			return set, 0, fmt.Errorf("--against %s: %w", ref, err)
		}
		splits := []string{split}
		if split == "" {
			splits = slices.Sorted(maps.Keys(m.Splits))
			if filepath.Clean(dir) == filepath.Clean(opts.Data) { // the set filtered is not its own evaluation set
				splits = slices.DeleteFunc(splits, func(s string) bool { return s == cmp.Or(opts.Split, DefaultSplit) })
			}
		}
		for _, s := range splits {
			files, err := m.Files(dir, s)
			if err != nil {
				return set, 0, fmt.Errorf("--against %s: %w", ref, err)
			}
			err = embedImages(ctx, model, files, m.Splits[s].Images, opts, "filter: against "+dir+":"+s, log,
				func(rs []shard.Record, embs [][]float32) error {
					for i, r := range rs {
						if embs[i] != nil {
							set.keys = append(set.keys, dir+":"+s+":"+r.Key)
							set.embs = append(set.embs, slices.Clone(embs[i]))
						}
					}
					return nil
				})
			if err != nil {
				return set, 0, fmt.Errorf("--against %s split %s: %w", dir, s, err)
			}
		}
	}
	return set, len(set.keys), nil
}

// dropEvalDuplicates drops every kept training image whose cosine with an evaluation image
// reaches t, and returns those drops.
func dropEvalDuplicates(recs []*record, eval evalSet, t float64) []Drop {
	var out []Drop
	for _, r := range recs {
		if r.imgDrop != nil || r.emb == nil {
			continue
		}
		best, at := float32(math.Inf(-1)), -1
		for j, e := range eval.embs {
			if c := dot(r.emb, e); c > best {
				best, at = c, j
			}
		}
		if at >= 0 && float64(best) >= t {
			c := float64(best)
			r.imgDrop = &Drop{Key: r.key, Caption: -1, Reason: ReasonEvalDuplicate, Match: eval.keys[at], Cosine: &c}
			out = append(out, *r.imgDrop)
		}
	}
	return out
}

// dedup visits the kept images best score first and drops each whose cosine with an image
// kept before it reaches t (greedy clustering at radius t, one kept per cluster).
func dedup(ctx context.Context, recs []*record, t float64) error {
	var order []*record
	for _, r := range recs {
		if r.imgDrop == nil {
			order = append(order, r)
		}
	}
	if len(order) > MaxDedupImages {
		return fmt.Errorf("--dedup compares images pairwise: %d images, more than the limit of %d", len(order), MaxDedupImages)
	}
	slices.SortStableFunc(order, func(a, b *record) int { return cmp.Compare(b.best(), a.best()) })
	var kept []*record
	for i, r := range order {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var match *record
		best := float32(math.Inf(-1))
		for _, k := range kept {
			if c := dot(r.emb, k.emb); c > best {
				best, match = c, k
			}
		}
		if match != nil && float64(best) >= t {
			c := float64(best)
			r.imgDrop = &Drop{Key: r.key, Caption: -1, Reason: ReasonDuplicate, Match: match.key, Cosine: &c}
			continue
		}
		kept = append(kept, r)
	}
	return nil
}

// write writes the new dataset into a temporary directory beside opts.Out and renames it
// into place, so that an interrupted run leaves no half dataset under opts.Out.
func write(ctx context.Context, m *shard.Manifest, opts Options, split string, files []string, recs []*record,
	sum *Summary, scores []float64, threshold *float64) (err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(opts.Out)), "."+filepath.Base(opts.Out)+".partial-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	w, err := shard.NewWriter(tmp, split, shard.WriterOptions{})
	if err != nil {
		return err
	}
	i := 0
	err = shard.Read(ctx, files, shard.ReadOptions{}, func(s shard.Sample) error {
		if i >= len(recs) || recs[i].key != s.Key {
			return fmt.Errorf("record %d (%s) of the second read is not the scoring pass's: did the dataset change?", i, s.Key)
		}
		r := recs[i]
		i++
		if r.imgDrop != nil {
			return nil
		}
		var caps []string
		for c, text := range r.captions {
			if r.dropped[c] == "" {
				caps = append(caps, text)
			}
		}
		out := s.Record
		out.Caption, out.Captions = caps[0], caps
		return w.Write(out)
	})
	if err != nil {
		w.Abort()
		return err
	}
	shards, err := w.Close()
	if err != nil {
		return err
	}
	nm := *m
	nm.Splits = map[string]*shard.Split{split: shard.NewSplit(shards)}
	for name, s := range m.Splits {
		if name == split {
			continue
		}
		for _, sh := range s.Shards {
			if err := copyFile(filepath.Join(opts.Data, filepath.FromSlash(sh.Path)), filepath.Join(tmp, filepath.FromSlash(sh.Path))); err != nil {
				return fmt.Errorf("copy split %s: %w", name, err)
			}
		}
		nm.Splits[name] = s
	}

	var drops []byte
	var scoreLines []byte
	for _, r := range recs {
		if r.imgDrop == nil {
			sum.ImagesKept++
		} else {
			sum.ImagesBy[r.imgDrop.Reason]++
			d := *r.imgDrop
			if b := r.best(); !math.IsInf(float64(b), 0) && !math.IsNaN(float64(b)) {
				v := float64(b)
				d.Score = &v
			}
			drops = appendJSON(drops, d)
		}
		for c, text := range r.captions {
			s := float64(r.scores[c])
			if !math.IsNaN(s) {
				scoreLines = appendJSON(scoreLines, Score{Key: r.key, Caption: c, Text: text, Score: s})
			}
			switch {
			case r.imgDrop == nil && r.dropped[c] == "":
				sum.PairsKept++
			case r.dropped[c] != "":
				sum.PairsBy[r.dropped[c]]++
				d := Drop{Key: r.key, Caption: c, Text: text, Reason: r.dropped[c]}
				if !math.IsNaN(s) {
					d.Score = &s
				}
				drops = appendJSON(drops, d)
			default: // the pair goes with its image
				sum.PairsBy[r.imgDrop.Reason]++
			}
		}
	}
	extra := map[string]any{}
	for k, v := range m.Extra {
		extra[k] = v
	}
	extra["filter"] = map[string]any{"from": opts.Data, "split": split, "images_in": sum.ImagesIn, "images_kept": sum.ImagesKept,
		"pairs_in": sum.PairsIn, "pairs_kept": sum.PairsKept, "options": sum.Options}
	nm.Extra = extra
	if err := shard.WriteManifest(tmp, &nm); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{SummaryName, append(raw, '\n')}, {DroppedName, drops}, {ScoresName, scoreLines}} {
		if err := atomicfile.WriteFile(filepath.Join(tmp, f.name), f.b); err != nil {
			return err
		}
	}
	if len(scores) > 0 {
		var marks []plots.Mark
		if threshold != nil {
			marks = append(marks, plots.Mark{Name: fmt.Sprintf("threshold %.4f", *threshold), X: *threshold})
		}
		if err := plots.Histogram(filepath.Join(tmp, HistogramName), fmt.Sprintf("CLIP scores of %d pairs", len(scores)),
			"cosine of image and caption embeddings", histogramBins, []plots.Series{{Name: "pairs", Y: scores}}, marks...); err != nil {
			return err
		}
	}
	return os.Rename(tmp, opts.Out)
}

func appendJSON(b []byte, v any) []byte {
	raw, _ := json.Marshal(v) // plain structs of strings and numbers: Marshal cannot fail
	return append(append(b, raw...), '\n')
}

// copyFile copies src to dst (creating dst's directory): a hard link when the file system
// allows, else a byte copy.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
