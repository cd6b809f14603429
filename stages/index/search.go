package index

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/stages/internal/evalmodel"
)

// Search directions: what a query is ranked against.
const (
	SearchOverImages   = "images"   // the image embeddings (text→image, image→image)
	SearchOverCaptions = "captions" // the first captions' embeddings (image→text, text→text)
)

// SearchOptions configures Search. Exactly one of Query and Image is set.
type SearchOptions struct {
	Checkpoint string // the model that made the index: a checkpoint, or a run directory (its latest)
	QuickGELU  bool   // the weights use OpenAI's QuickGELU (a bare state dict does not say)
	Index      string // index file written by Embed
	Query      string // a text query (longer than the model's context: truncated, EOT kept)
	Image      string // an image file as the query (decoded, eval transform)
	Over       string // SearchOverImages or SearchOverCaptions; default: images for a text query, captions for an image query
	K          int    // results (default 8; at most the index's rows)
	HTML       string // if set, write a self-contained result page here
	Limits     Limits
	// Exact scans every row even when an IVF file (IVFPath) lies beside the index; without
	// it, such a file is probed instead, NProbe lists (default DefaultNProbe).
	Exact  bool
	NProbe int
	// Force searches an index made with another checkpoint of the same architecture (its
	// recorded SHA-256 differs from Checkpoint's): its neighbours are then meaningless
	// unless the two files hold the same weights.
	Force bool
	Log   *slog.Logger // warnings; nil: slog.Default()
}

// SearchHit is one ranked result.
type SearchHit struct {
	Rank      int     `json:"rank"` // 1 = best
	Row       int     `json:"row"`  // row in the index
	Key       string  `json:"key"`
	Split     string  `json:"split,omitempty"`
	Caption   string  `json:"caption"`
	ClassName string  `json:"class_name,omitempty"`
	Score     float64 `json:"score"` // cosine similarity
}

// SearchResult is what Search found.
type SearchResult struct {
	Query string      // the text, or the image file
	Kind  string      // "text" or "image"
	Over  string      // SearchOverImages or SearchOverCaptions
	Rows  int         // index rows ranked
	Hits  []SearchHit // best first
	// Checkpoint is the weights file the query was embedded with, Index the index searched:
	// the page names both, so that a saved page says where its results came from.
	Checkpoint, Index string
}

// Search embeds a text or image query with the checkpoint's model and ranks the index's
// image (or caption) embeddings by cosine similarity to it. It writes one
// `rank key score caption` line per hit on w and, with opt.HTML, a page showing the hits'
// images from the index. The index must come from the same model: its embedding width and
// model config are checked against the checkpoint's (only the width, with a warning, for an
// index whose metadata another tool dropped).
func Search(ctx context.Context, opt SearchOptions, w io.Writer) (SearchResult, error) {
	res := SearchResult{Query: opt.Query, Kind: "text", Over: opt.Over}
	switch {
	case opt.Checkpoint == "" || opt.Index == "":
		return res, errors.New("search: --checkpoint and --index are required")
	case (opt.Query == "") == (opt.Image == ""):
		return res, errors.New("search: give either --query or --image")
	case opt.K < 0:
		return res, fmt.Errorf("search: k %d must be positive", opt.K)
	}
	if opt.Image != "" {
		res.Query, res.Kind = opt.Image, "image"
	}
	if res.Over == "" {
		res.Over = map[string]string{"text": SearchOverImages, "image": SearchOverCaptions}[res.Kind]
	}
	col := map[string]string{SearchOverImages: ColImageEmbedding, SearchOverCaptions: ColTextEmbedding}[res.Over]
	if col == "" {
		return res, fmt.Errorf("search: --over %q: want %s or %s", res.Over, SearchOverImages, SearchOverCaptions)
	}
	opt.K = cmp.Or(opt.K, 8)
	em, err := evalmodel.Open(opt.Checkpoint, 1, opt.QuickGELU)
	if err != nil {
		return res, fmt.Errorf("search: %w", err)
	}
	defer em.Close()
	res.Checkpoint, res.Index = em.Path, opt.Index
	cfg := em.Config
	ix, err := Open(opt.Index, opt.Limits)
	if err != nil {
		return res, fmt.Errorf("search: %w", err)
	}
	defer ix.Close()
	if ix.Dim() != cfg.EmbedDim {
		return res, fmt.Errorf("search: index %s holds %d-dimensional embeddings but checkpoint %s makes %d-dimensional ones: embed the data again with this checkpoint",
			opt.Index, ix.Dim(), em.Path, cfg.EmbedDim)
	}
	if !ix.Recorded() {
		cmp.Or(opt.Log, slog.Default()).Warn("the index records no clipgo metadata (rewritten by another tool, such as DuckDB's COPY, which drops it): only its embedding width matches this checkpoint's; if its embeddings come from another model or other weights the results are meaningless",
			"index", opt.Index, "dim", ix.Dim(), "checkpoint", em.Path)
	} else {
		if ix.Config() != cfg {
			a, _ := json.Marshal(ix.Config())
			b, _ := json.Marshal(cfg)
			return res, fmt.Errorf("search: index %s was made by another model (%s) than checkpoint %s (%s): embed the data again with this checkpoint",
				opt.Index, a, em.Path, b)
		}
		if err := checkIndexCheckpoint(ix, em, opt); err != nil {
			return res, fmt.Errorf("search: %w", err)
		}
	}
	q, queryImg, err := searchEmbedQuery(opt, em)
	if err != nil {
		return res, fmt.Errorf("search: %w", err)
	}
	res.Rows = ix.Rows()
	var top []int
	var scores map[int]float64 // row → cosine similarity, for the top rows
	ann := false
	if !opt.Exact {
		if top, scores, ann, err = annSearch(ix, opt, col, q, min(opt.K, res.Rows)); err != nil {
			return res, fmt.Errorf("search: %w", err)
		}
	}
	if !ann {
		all := make([]float64, 0, res.Rows)
		if err := ix.Scan(ctx, col, func(_ int, v []float32) error {
			all = append(all, searchCosine(q, v))
			return nil
		}); err != nil {
			return res, fmt.Errorf("search: %w", err)
		}
		top = searchTopK(all, min(opt.K, len(all)))
		scores = make(map[int]float64, len(top))
		for _, r := range top {
			scores[r] = all[r]
		}
	}
	rows, err := ix.Lookup(ctx, top)
	if err != nil {
		return res, fmt.Errorf("search: %w", err)
	}
	for i, r := range rows {
		res.Hits = append(res.Hits, SearchHit{Rank: i + 1, Row: r.Row, Key: r.Key, Split: r.Split,
			Caption: r.Caption, ClassName: r.ClassName, Score: scores[r.Row]})
	}
	for _, h := range res.Hits {
		if _, err := fmt.Fprintf(w, "%d %s %.4f %s\n", h.Rank, h.Key, h.Score, h.Caption); err != nil {
			return res, err
		}
	}
	if opt.HTML != "" {
		if err := writeSearchHTML(opt.HTML, res, rows, queryImg); err != nil {
			return res, fmt.Errorf("search: %w", err)
		}
	}
	return res, nil
}

// checkIndexCheckpoint refuses an index whose recorded checkpoint hash is not that of the
// checkpoint searching it (unless opt.Force), and warns when the index records none.
func checkIndexCheckpoint(ix *Reader, em *evalmodel.Model, opt SearchOptions) error {
	log := cmp.Or(opt.Log, slog.Default())
	want := ix.CheckpointSHA256()
	if want == "" {
		log.Warn("the index does not record which checkpoint made it (written by an older clipgo or rewritten by another tool): its embeddings cannot be checked against this checkpoint's; if they come from other weights the results are meaningless",
			"index", opt.Index, MetaCheckpointSHA256, "missing", "checkpoint", em.Path)
		return nil
	}
	got, err := em.SHA256()
	if err != nil {
		return fmt.Errorf("checkpoint hash: %w", err)
	}
	if got == want {
		return nil
	}
	made := "another checkpoint"
	if ix.Checkpoint() != "" {
		made = ix.Checkpoint()
	}
	if opt.Force {
		log.Warn("--force: searching an index made with other weights; its neighbours are meaningless unless both checkpoints hold the same weights",
			"index", opt.Index, "made_with", made, "made_with_sha256", want, "checkpoint", em.Path, "sha256", got)
		return nil
	}
	return fmt.Errorf("index %s was made with %s (sha256 %s), not with checkpoint %s (sha256 %s): the same architecture with other weights puts embeddings in another space, so its neighbours would be meaningless; embed the data again with this checkpoint, or pass --force if both hold the same weights",
		opt.Index, made, want[:12], em.Path, got[:12])
}

// searchEmbedQuery returns the query's L2-normalised [E] embedding and, for an image query,
// the image file's bytes.
func searchEmbedQuery(opt SearchOptions, em *evalmodel.Model) ([]float32, []byte, error) {
	enc := em.Enc
	if opt.Image == "" {
		q, err := enc.Texts([]string{opt.Query})
		return q, nil, err
	}
	b, err := fileinput.ReadFile(opt.Image, int64(imageproc.DefaultLimits.MaxBytes)) // a FIFO is refused, not waited on
	if err != nil {
		return nil, nil, fmt.Errorf("query image: %w", err)
	}
	img, _, err := imageproc.Decode(b, imageproc.DefaultLimits)
	if err != nil {
		return nil, nil, fmt.Errorf("query image %s: %w", opt.Image, err)
	}
	x := make([]float32, enc.ImageLen())
	if err := imageproc.EvalTransform(x, img, em.Config.Vision.ImageSize); err != nil {
		return nil, nil, fmt.Errorf("query image %s: %w", opt.Image, err)
	}
	q, err := enc.Images(x)
	return q, b, err
}

// searchCosine returns q·v / (‖q‖‖v‖), 0 when either is zero; float64 accumulation.
func searchCosine(q, v []float32) float64 {
	var dot, qq, vv float64
	for i := range q {
		a, b := float64(q[i]), float64(v[i])
		dot += a * b
		qq += a * a
		vv += b * b
	}
	if qq == 0 || vv == 0 {
		return 0
	}
	return dot / math.Sqrt(qq*vv)
}

// searchTopK returns the indices of the k largest scores, best first; equal scores keep index order.
func searchTopK(scores []float64, k int) []int {
	if k <= 0 {
		return nil
	}
	top := make([]int, 0, k+1)
	for i, s := range scores {
		if len(top) == k && s <= scores[top[k-1]] {
			continue
		}
		at := sort.Search(len(top), func(j int) bool { return scores[top[j]] < s })
		top = slices.Insert(top, at, i)
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

//go:embed search_template.html
var searchTemplateText string

var searchTemplate = template.Must(template.New("search").Parse(searchTemplateText))

// searchPageHit is a hit as the page shows it.
type searchPageHit struct {
	SearchHit
	Image template.URL // data URI, empty when the index has no image
}

// writeSearchHTML writes one self-contained page: the query, and each hit with its score,
// caption and image inlined as a data URI.
func writeSearchHTML(path string, res SearchResult, rows []Row, queryImg []byte) error {
	page := struct {
		SearchResult
		QueryImage template.URL
		Hits       []searchPageHit
	}{SearchResult: res, QueryImage: searchDataURI(queryImg)}
	for i, h := range res.Hits {
		page.Hits = append(page.Hits, searchPageHit{SearchHit: h, Image: searchDataURI(rows[i].JPG)})
	}
	var buf bytes.Buffer
	if err := searchTemplate.Execute(&buf, page); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

// searchDataURI returns b as a data: URI when it is an image browsers show, else "".
func searchDataURI(b []byte) template.URL {
	mime := http.DetectContentType(b)
	if len(b) == 0 || !strings.HasPrefix(mime, "image/") {
		return ""
	}
	return template.URL("data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b))
}
