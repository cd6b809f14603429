package eval

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/metrics"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/stages/evalfile"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
	"github.com/clipgo/clipgo/text/tokenizer"
)

// RetrievalOptions configures a cross-modal retrieval evaluation over a split of a prepared
// dataset whose images carry their captions (several per image are grouped, as Flickr8k's
// five or the synthetic scenes' three).
type RetrievalOptions struct {
	Checkpoint string // model checkpoint (.safetensors written by pretrain), or a run directory: its latest
	Data       string // prepared dataset directory
	Split      string // default "val"
	Out        string // result JSON; details go beside it
	Dataset    string // dataset name in the result (default: "<data dir>:<split>")
	Batch      int    // images per model call (default 64)
	QuickGELU  bool   // the weights use OpenAI's QuickGELU (a bare state dict does not say)
	Workers    int    // image decode goroutines (default GOMAXPROCS)
	// Examples is the number of queries of each direction kept, with their top results, in
	// the details (0: none); they are spread evenly over the split.
	Examples int

	Report   io.Writer    // where the summary is printed (nil: nowhere)
	Log      *slog.Logger // nil: slog.Default()
	Progress io.Writer    // where a progress bar is drawn when it is a terminal (nil: none)
}

// RetrievalKs are the recall@k cut-offs reported, CLIP_benchmark's; those larger than the
// number of images or captions are left out.
var RetrievalKs = []int{1, 5, 10}

// Retrieval bounds and sizes.
const (
	// MinRetrievalImages is the fewest images a retrieval evaluation accepts: with one,
	// every recall is 1 whatever the model.
	MinRetrievalImages = 2
	retrievalTop       = 5  // results kept per example query
	thumbSide          = 96 // shortest side of an example's thumbnail, in pixels
	thumbMaxBytes      = 24 << 10
)

// Retrieval embeds every image and every caption of a split and ranks, for each caption, the
// images (text→image, CLIP_benchmark's "image retrieval") and, for each image, the captions
// (image→text, "text retrieval"): recall@1/5/10 and the mean and median rank of the first
// right answer, written to opts.Out as CLIP_benchmark's result, with example queries (their
// images as JPEG data URIs) in the details beside it.
//
// Every image needs at least one caption (the loader skips, and logs, records without); the
// split needs at least MinRetrievalImages images.
func Retrieval(ctx context.Context, opts RetrievalOptions) (evalfile.Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Out == "" {
		return evalfile.Result{}, errors.New("retrieval: --out is required")
	}
	if opts.Data == "" {
		return evalfile.Result{}, errors.New("retrieval: --data is required")
	}
	split := cmp.Or(opts.Split, "val")
	if err := ingest.CheckPrepared(opts.Data); err != nil { // before the model loads: raw data fails fast
		return evalfile.Result{}, fmt.Errorf("retrieval: %w", err)
	}
	model, err := evalmodel.Open(opts.Checkpoint, opts.Batch, opts.QuickGELU)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("retrieval: %w", err)
	}
	defer model.Close()
	m, err := shard.ReadManifest(opts.Data)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("retrieval: %w", err)
	}
	files, err := m.Files(opts.Data, split)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("retrieval: %w", err)
	}
	name := filepath.Base(filepath.Clean(opts.Data)) + ":" + split

	emb, err := embedSplit(ctx, model, files, m.Splits[split].Images, opts, name, log)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("retrieval %s: %w", name, err)
	}
	ni, nt := len(emb.keys), len(emb.textImage)
	if ni < MinRetrievalImages {
		return evalfile.Result{}, fmt.Errorf("retrieval %s: %d images with captions, need at least %d", name, ni, MinRetrievalImages)
	}
	var ks []int
	for _, k := range RetrievalKs {
		if k <= min(ni, nt) {
			ks = append(ks, k)
		}
	}
	r, err := metrics.RetrievalMetrics(emb.images, emb.texts, model.Enc.Dim(), emb.textImage, ks)
	if err != nil {
		return evalfile.Result{}, fmt.Errorf("retrieval %s: %w", name, err)
	}
	res := evalfile.Result{Dataset: cmp.Or(opts.Dataset, name), Model: model.Desc, Pretrained: model.Path,
		Task: evalfile.TaskRetrieval, Metrics: r.Metrics()}
	det := evalfile.Details{Images: ni, Texts: nt}
	if opts.Examples > 0 {
		if det.Examples, err = examples(ctx, files, emb, model.Enc.Dim(), opts.Examples, r); err != nil {
			return evalfile.Result{}, fmt.Errorf("retrieval %s: examples: %w", name, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return evalfile.Result{}, fmt.Errorf("retrieval: %w", err)
	}
	if err := evalfile.Write(opts.Out, res, det); err != nil {
		return evalfile.Result{}, fmt.Errorf("retrieval: %w", err)
	}
	if opts.Report != nil {
		WriteRetrievalReport(opts.Report, res, det)
	}
	return res, nil
}

// embeddedSplit holds a split's embeddings: images [NI,E] and captions [NT,E], both unit
// rows, with textImage[t] the image of caption t.
type embeddedSplit struct {
	images, texts []float32
	textImage     []int
	keys          []string // [NI]
}

// embedSplit runs the split through the loader in eval mode with every caption of each image.
func embedSplit(ctx context.Context, model *evalmodel.Model, files []string, total int64, opts RetrievalOptions, name string, log *slog.Logger) (*embeddedSplit, error) {
	tok, err := tokenizer.New()
	if err != nil {
		return nil, err
	}
	ld, err := loader.New(loader.Config{Files: files, Mode: loader.Eval, AllCaptions: true,
		BatchSize: cmp.Or(max(opts.Batch, 0), DefaultBatch), ImageSize: model.Config.Vision.ImageSize, ContextLen: model.Config.Text.ContextLength,
		Tokenize: tok.TokenizeInto, DecodeWorkers: opts.Workers})
	if err != nil {
		return nil, err
	}
	bar := progress.New(opts.Progress, log, "retrieval", total)
	defer bar.Finish()
	ep := ld.Epoch(ctx, 0, 0)
	defer ep.Close()
	var out embeddedSplit
	for {
		b, err := ep.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		ie, err := model.Enc.Images(b.Images)
		if err == nil {
			var te []float32
			te, err = model.Enc.Tokens(b.Tokens)
			out.texts = append(out.texts, te...)
		}
		base := len(out.keys)
		for _, i := range b.TextImage {
			out.textImage = append(out.textImage, base+int(i))
		}
		out.images = append(out.images, ie...)
		out.keys = append(out.keys, b.Keys...)
		bar.Add(int64(b.Size), "")
		b.Release()
		if err != nil {
			return nil, err
		}
	}
	logSkips(log, name, ep.Stats().Skipped)
	return &out, nil
}

// examples picks n caption queries and n image queries spread evenly over the split, then
// the n of each whose first right answer ranks lowest (evalfile.KindWorst, those that rank it
// first left out), and returns their top results, with the images read back from the shards
// as data URIs.
func examples(ctx context.Context, files []string, emb *embeddedSplit, dim, n int, r metrics.Retrieval) ([]evalfile.Example, error) {
	ni, nt := len(emb.keys), len(emb.textImage)
	captions, err := readCaptions(ctx, files)
	if err != nil {
		return nil, err
	}
	// The caption text of each caption row: rows of one image follow its captions in order.
	capText := make([]string, nt)
	for t := 0; t < nt; {
		i := emb.textImage[t]
		caps := captions[emb.keys[i]]
		for j := 0; t < nt && emb.textImage[t] == i; j, t = j+1, t+1 {
			if j < len(caps) {
				capText[t] = caps[j]
			}
		}
	}
	var out []evalfile.Example
	need := map[string]bool{}
	textQuery := func(q int, kind string) {
		ex := evalfile.Example{Direction: "text_to_image", Kind: kind, Query: capText[q]}
		for _, h := range topK(emb.texts[q*dim:(q+1)*dim], emb.images, dim, retrievalTop) {
			ex.Results = append(ex.Results, evalfile.Hit{Key: emb.keys[h.row], Score: h.score, Correct: h.row == emb.textImage[q]})
			need[emb.keys[h.row]] = true
		}
		if kind == evalfile.KindWorst {
			ex.Rank, ex.AnswerKey = r.ImageRanks[q], emb.keys[emb.textImage[q]]
			need[ex.AnswerKey] = true
		}
		out = append(out, ex)
	}
	imageQuery := func(q int, kind string) {
		ex := evalfile.Example{Direction: "image_to_text", Kind: kind, Query: emb.keys[q]}
		need[emb.keys[q]] = true
		for _, h := range topK(emb.images[q*dim:(q+1)*dim], emb.texts, dim, retrievalTop) {
			i := emb.textImage[h.row]
			ex.Results = append(ex.Results, evalfile.Hit{Key: emb.keys[i], Text: capText[h.row], Score: h.score, Correct: i == q})
		}
		if kind == evalfile.KindWorst {
			ex.Rank = r.TextRanks[q]
			ex.AnswerText = capText[slices.Index(emb.textImage, q)]
		}
		out = append(out, ex)
	}
	for _, q := range spread(nt, n) {
		textQuery(q, "")
	}
	for _, q := range spread(ni, n) {
		imageQuery(q, "")
	}
	for _, q := range worst(r.ImageRanks, n) {
		textQuery(q, evalfile.KindWorst)
	}
	for _, q := range worst(r.TextRanks, n) {
		imageQuery(q, evalfile.KindWorst)
	}
	images, err := readImages(ctx, files, need)
	if err != nil {
		return nil, err
	}
	uris := make(map[string]string, len(need))
	for key := range need {
		if raw, ok := images[key]; ok {
			if uris[key], err = thumbnailURI(raw); err != nil {
				return nil, fmt.Errorf("image %s: %w", key, err)
			}
		}
	}
	for e := range out {
		ex := &out[e]
		if ex.Direction == "image_to_text" {
			ex.QueryImg = uris[ex.Query]
			continue
		}
		for h := range ex.Results {
			ex.Results[h].Image = uris[ex.Results[h].Key]
		}
		if ex.AnswerKey != "" {
			ex.Answer = uris[ex.AnswerKey]
		}
	}
	return out, nil
}

// worst returns the indices of up to n of ranks' largest ranks above 1 (the queries whose
// first right answer the model ranks lowest), worst first, lower index first on ties.
func worst(ranks []int, n int) []int {
	var idx []int
	for i, r := range ranks {
		if r > 1 {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return ranks[b] - ranks[a] })
	return idx[:min(len(idx), n)]
}

// readCaptions returns every record's captions by key, reading no image bytes.
func readCaptions(ctx context.Context, files []string) (map[string][]string, error) {
	captions := map[string][]string{}
	err := shard.Read(ctx, files, shard.ReadOptions{Columns: shard.TextColumns}, func(s shard.Sample) error {
		captions[s.Key] = s.AllCaptions()
		return nil
	})
	return captions, err
}

// readImages returns the encoded images of the records whose keys are in want.
func readImages(ctx context.Context, files []string, want map[string]bool) (map[string][]byte, error) {
	images := map[string][]byte{}
	err := shard.Read(ctx, files, shard.ReadOptions{Columns: []string{shard.ColKey, shard.ColJPG}}, func(s shard.Sample) error {
		if want[s.Key] {
			images[s.Key] = s.JPG
		}
		return nil
	})
	return images, err
}

// spread returns up to n indices in [0,total) evenly spaced, starting at 0.
func spread(total, n int) []int {
	n = min(n, total)
	out := make([]int, n)
	for i := range out {
		out[i] = i * total / n
	}
	return out
}

type hit struct {
	row   int
	score float64
}

// topK returns the k rows of m [R,dim] with the largest dot product with q, best first
// (lower row first on ties). It keeps a running top k, so memory is O(k), not O(R).
func topK(q, m []float32, dim, k int) []hit {
	rows := len(m) / dim
	k = min(k, rows)
	if k <= 0 {
		return nil
	}
	top := make([]hit, 0, k+1)
	for r := range rows {
		var s float64
		for j, v := range m[r*dim : (r+1)*dim] {
			s += float64(v) * float64(q[j])
		}
		if len(top) == k && !(s > top[k-1].score) {
			continue
		}
		at := len(top) // after every equal score: the lower row stays first
		for at > 0 && s > top[at-1].score {
			at--
		}
		top = slices.Insert(top, at, hit{r, s})
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// thumbnailURI returns a data:image/jpeg URI of an encoded image: its own bytes when they are
// a small JPEG already, else a re-encoded copy whose shortest side is at most thumbSide.
func thumbnailURI(raw []byte) (string, error) {
	if !bytes.HasPrefix(raw, []byte{0xFF, 0xD8, 0xFF}) || len(raw) > thumbMaxBytes {
		img, _, err := imageproc.Decode(raw, imageproc.DefaultLimits)
		if err != nil {
			return "", err
		}
		if img, err = (imageproc.Resizer{Size: thumbSide, Mode: imageproc.ResizeKeepRatio, OnlyIfBigger: true}).Resize(img); err != nil {
			return "", err
		}
		if raw, err = imageproc.EncodeJPEG(img, 85); err != nil {
			return "", err
		}
	}
	return "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(raw), nil
}

// WriteRetrievalReport prints a retrieval result for people.
func WriteRetrievalReport(w io.Writer, res evalfile.Result, det evalfile.Details) {
	fmt.Fprintf(w, "retrieval %s: %d images, %d captions\n", res.Dataset, det.Images, det.Texts)
	for _, k := range slices.Sorted(maps.Keys(res.Metrics)) {
		fmt.Fprintf(w, "  %-30s %.4f\n", k, res.Metrics[k])
	}
	for _, ex := range det.Examples {
		if ex.Direction != "text_to_image" || len(ex.Results) == 0 {
			continue
		}
		mark := "wrong"
		if ex.Results[0].Correct {
			mark = "right"
		}
		fmt.Fprintf(w, "  %q -> %s (%s)\n", ex.Query, ex.Results[0].Key, mark)
	}
}
