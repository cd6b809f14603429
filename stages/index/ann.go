package index

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/clipgo/clipgo/internal/progress"
)

// Index kinds: what `clipgo embed --index` builds beside the Parquet index.
const (
	IndexExact = "exact" // nothing more: search scans every row
	IndexIVF   = "ivf"   // an IVF file (IVFPath) that search probes instead of scanning
)

// IndexKinds lists the accepted values of --index.
var IndexKinds = []string{IndexExact, IndexIVF}

// ivfColumns are the embedding columns an IVF file indexes, in file order.
var ivfColumns = []string{ColImageEmbedding, ColTextEmbedding}

// BuildIVFFile builds the IVF file beside the index at path (IVFPath(path)) over both of its
// embedding columns, and returns how long it took. The index is read back with the bounded
// reader, a column at a time.
func BuildIVFFile(ctx context.Context, path string, opt IVFOptions, lim Limits, log *slog.Logger, progressW io.Writer) (time.Duration, error) {
	start := time.Now()
	log = cmp.Or(log, slog.New(slog.DiscardHandler))
	ix, err := Open(path, lim)
	if err != nil {
		return 0, err
	}
	defer ix.Close()
	sum, err := ix.footerSHA256(lim)
	if err != nil {
		return 0, fmt.Errorf("index %s: %w", path, err)
	}
	n, dim := ix.Rows(), ix.Dim()
	bar := progress.New(progressW, log, "ivf", int64(len(ivfColumns))*100)
	defer bar.Finish()
	var sections []*IVF
	for _, col := range ivfColumns {
		vecs := make([]float32, 0, n*dim)
		if err := ix.Scan(ctx, col, func(_ int, v []float32) error {
			vecs = append(vecs, v...)
			return nil
		}); err != nil {
			return 0, err
		}
		done := 0
		x, err := BuildIVF(ctx, vecs, dim, opt, func(stage string, f float64) {
			if d := int(f * 50); stage == "assign" {
				bar.Add(int64(50+d-done), col)
				done = 50 + d
			} else if d > done {
				bar.Add(int64(d-done), col)
				done = d
			}
		})
		if err != nil {
			return 0, fmt.Errorf("ivf %s: %w", col, err)
		}
		sections = append(sections, x)
		log.Info("ivf", "column", col, "rows", n, "lists", x.Lists())
	}
	if err := WriteIVF(IVFPath(path), dim, n, sum, ivfColumns, sections); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// footerSHA256 is parquetFooterSHA256 of the open index.
func (ix *Reader) footerSHA256(lim Limits) ([32]byte, error) {
	st, err := ix.f.Stat()
	if err != nil {
		return [32]byte{}, err
	}
	return parquetFooterSHA256(ix.f, st.Size(), lim.withDefaults().MaxFooterBytes)
}

// removeStaleIVF deletes an IVF file beside index (one built for the index this run replaced).
func removeStaleIVF(index string) error {
	if err := os.Remove(IVFPath(index)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the IVF file of the replaced index: %w", err)
	}
	return nil
}

// annSearch ranks column col of the index by its IVF file when one lies beside it: it returns
// the top rows, best first, with their cosine similarity to q (searchCosine of the stored
// vector, the score an exact scan gives), and ok=false when there is no IVF file. A file that
// belongs to another index (its recorded footer hash differs) is an error.
func annSearch(ix *Reader, opt SearchOptions, col string, q []float32, k int) (top []int, scores map[int]float64, ok bool, err error) {
	path := IVFPath(opt.Index)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	v, err := OpenIVF(path, opt.Limits)
	if err != nil {
		return nil, nil, false, err
	}
	defer v.Close()
	sum, err := ix.footerSHA256(opt.Limits)
	if err != nil {
		return nil, nil, false, fmt.Errorf("index %s: %w", opt.Index, err)
	}
	if sum != v.ParquetSum || v.Rows != ix.Rows() || v.Dim != ix.Dim() {
		return nil, nil, false, fmt.Errorf("IVF file %s was built for another index than %s (rewritten since): rebuild it with clipgo embed --index ivf, or pass --exact", path, opt.Index)
	}
	x := v.Section(col)
	if x == nil {
		return nil, nil, false, fmt.Errorf("IVF file %s has no %s section: rebuild it with clipgo embed --index ivf, or pass --exact", path, col)
	}
	hits, err := x.Searcher().Search(q, k, cmp.Or(opt.NProbe, DefaultNProbe))
	if err != nil {
		return nil, nil, false, err
	}
	// Rank the hits by the exact score, as the exact scan does (equal scores: lower row first).
	scores = make(map[int]float64, len(hits))
	for _, h := range hits {
		top = append(top, h.Row)
		scores[h.Row] = h.Cosine
	}
	slices.SortStableFunc(top, func(a, b int) int {
		return cmp.Or(cmp.Compare(scores[b], scores[a]), cmp.Compare(a, b))
	})
	return top, scores, true, nil
}
