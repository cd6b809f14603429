package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clusteredVectors returns n vectors of width dim around centres random unit centres
// (Gaussian noise of norm about noise), and their exact top-k neighbours' rows for queries
// drawn the same way.
func clusteredVectors(r *rand.Rand, n, dim, centres int, noise float64) []float32 {
	c := make([]float32, centres*dim)
	for i := range centres {
		var ss float64
		for d := range dim {
			v := r.NormFloat64()
			c[i*dim+d] = float32(v)
			ss += v * v
		}
		for d := range dim {
			c[i*dim+d] /= float32(math.Sqrt(ss))
		}
	}
	out := make([]float32, n*dim)
	s := noise / math.Sqrt(float64(dim))
	for i := range n {
		k := r.IntN(centres)
		for d := range dim {
			out[i*dim+d] = c[k*dim+d] + float32(r.NormFloat64()*s)
		}
	}
	return out
}

// exactTop returns the rows of the k largest searchCosine scores with q, best first (lower
// row on ties): the exact scan's ranking.
func exactTop(vectors []float32, dim int, q []float32, k int) []int {
	scores := make([]float64, len(vectors)/dim)
	for r := range scores {
		scores[r] = searchCosine(q, vectors[r*dim:(r+1)*dim])
	}
	return searchTopK(scores, k)
}

func hitRows(h []IVFHit) []int {
	rows := make([]int, len(h))
	for i, x := range h {
		rows[i] = x.Row
	}
	return rows
}

// TestIVFRecall builds an IVF over clustered data and checks recall@10 against the exact
// scan: high with a few probes, and the exact ranking itself when every list is probed.
func TestIVFRecall(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 3))
	const n, dim, k = 4000, 32, 10
	vecs := clusteredVectors(r, n, dim, 40, 0.8)
	queries := clusteredVectors(r, 100, dim, 40, 0.8)
	var stages []string
	x, err := BuildIVF(context.Background(), vecs, dim, IVFOptions{Seed: 1}, func(stage string, _ float64) { stages = append(stages, stage) })
	if err != nil {
		t.Fatal(err)
	}
	if x.Lists() != 126 || x.Len() != n || !slices.Contains(stages, "train") || stages[len(stages)-1] != "assign" {
		t.Fatalf("%d lists (want 2·√n = 126), %d rows, stages %v", x.Lists(), x.Len(), stages)
	}
	s := x.Searcher()
	for _, tc := range []struct {
		nprobe int
		min    float64
	}{{1, 0.2}, {12, 0.85}, {x.Lists(), 1}} {
		found := 0
		for q := range 100 {
			qv := queries[q*dim : (q+1)*dim]
			want := exactTop(vecs, dim, qv, k)
			hits, err := s.Search(qv, k, tc.nprobe)
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range hitRows(hits) {
				if slices.Contains(want, row) {
					found++
				}
			}
			for i, h := range hits {
				if math.Abs(h.Cosine-searchCosine(qv, vecs[h.Row*dim:(h.Row+1)*dim])) > 0 || math.Abs(h.Cosine-float64(h.Score)) > 1e-5 {
					t.Fatalf("hit %d %+v: scores disagree with the exact cosine", i, h)
				}
			}
			if tc.nprobe == x.Lists() && !slices.Equal(hitRows(hits), want) {
				t.Fatalf("query %d probing every list: %v, exact %v", q, hitRows(hits), want)
			}
		}
		recall := float64(found) / (100 * k)
		t.Logf("nprobe %d: recall@10 %.3f", tc.nprobe, recall)
		if recall < tc.min {
			t.Errorf("nprobe %d: recall@10 %.3f, want at least %.2f", tc.nprobe, recall, tc.min)
		}
	}
	if _, err := s.Search(make([]float32, dim+1), k, 4); err == nil {
		t.Error("a query of the wrong width was accepted")
	}
}

// TestIVFBuildEdges: one row, a zero vector, more lists asked than rows, duplicate rows.
func TestIVFBuildEdges(t *testing.T) {
	vecs := []float32{0, 0, 0, 1, 1, 0, 1, 0}
	x, err := BuildIVF(context.Background(), vecs, 2, IVFOptions{Lists: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if x.Lists() != 4 {
		t.Errorf("%d lists for 4 rows", x.Lists())
	}
	hits, err := x.Searcher().Search([]float32{1, 0}, 4, 4)
	if err != nil || !slices.Equal(hitRows(hits), []int{2, 3, 0, 1}) {
		t.Errorf("hits %v, %v; want rows 2, 3 (equal: lower first), then the zero row and the orthogonal one (both 0)", hits, err)
	}
	if _, err := BuildIVF(context.Background(), nil, 2, IVFOptions{}, nil); err == nil {
		t.Error("no vectors accepted")
	}
	if _, err := BuildIVF(context.Background(), vecs[:3], 2, IVFOptions{}, nil); err == nil {
		t.Error("a ragged matrix accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := BuildIVF(ctx, vecs, 2, IVFOptions{}, nil); err == nil {
		t.Error("a cancelled build finished")
	}
}

// ivfTestFile writes a small IVF file over random clustered vectors and returns its path,
// the in-memory index and the vectors.
func ivfTestFile(t testing.TB, n, dim int) (string, *IVF, []float32) {
	r := rand.New(rand.NewPCG(19, 4))
	vecs := clusteredVectors(r, n, dim, 5, 0.7)
	x, err := BuildIVF(context.Background(), vecs, dim, IVFOptions{Seed: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "index.parquet.ivf")
	if err := WriteIVF(path, dim, n, [32]byte{1, 2, 3}, []string{ColImageEmbedding}, []*IVF{x}); err != nil {
		t.Fatal(err)
	}
	return path, x, vecs
}

func TestIVFFileRoundTrip(t *testing.T) {
	path, x, vecs := ivfTestFile(t, 300, 6)
	v, err := OpenIVF(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Dim != 6 || v.Rows != 300 || v.ParquetSum != ([32]byte{1, 2, 3}) || v.Section(ColTextEmbedding) != nil {
		t.Fatalf("header: dim %d rows %d sum %x", v.Dim, v.Rows, v.ParquetSum)
	}
	y := v.Section(ColImageEmbedding)
	if !slices.Equal(y.Centroids, x.Centroids) || !slices.Equal(y.Offsets, x.Offsets) || !slices.Equal(y.Rows, x.Rows) || !slices.Equal(y.InvNorms, x.InvNorms) {
		t.Fatal("the head read back differs from the one written")
	}
	r := rand.New(rand.NewPCG(19, 5))
	for range 20 {
		q := vecs[r.IntN(300)*6:][:6]
		a, err1 := x.Searcher().Search(q, 7, 3)
		b, err2 := y.Searcher().Search(q, 7, 3)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			t.Fatalf("in memory %v (%v), from the file %v (%v)", a, err1, b, err2)
		}
	}
}

// TestIVFFileRejectsDamage: every kind of damage is an error naming what is wrong, never a
// panic or a huge allocation; damage to the vectors is caught by the probed list's CRC.
func TestIVFFileRejectsDamage(t *testing.T) {
	path, x, _ := ivfTestFile(t, 200, 4)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	headEnd := len(good) - 4*200*4 // the vectors come last
	damage := map[string]func(b []byte) []byte{
		"empty":          func(b []byte) []byte { return nil },
		"bad magic":      func(b []byte) []byte { b[0] = 'X'; return b },
		"version":        func(b []byte) []byte { le.PutUint32(b[8:], 9); return b },
		"width":          func(b []byte) []byte { le.PutUint32(b[12:], 1<<30); return b },
		"rows":           func(b []byte) []byte { le.PutUint64(b[16:], 1<<40); return b },
		"sections":       func(b []byte) []byte { le.PutUint32(b[56:], 3); return b },
		"name length":    func(b []byte) []byte { le.PutUint32(b[60:], 1<<31); return b },
		"lists":          func(b []byte) []byte { le.PutUint32(b[64+len(ColImageEmbedding):], 201); return b },
		"head flipped":   func(b []byte) []byte { b[headEnd-40] ^= 1; return b },
		"truncated":      func(b []byte) []byte { return b[:len(b)-1] },
		"trailing bytes": func(b []byte) []byte { return append(b, 0) },
	}
	for name, f := range damage {
		p := filepath.Join(t.TempDir(), "bad.ivf")
		if err := os.WriteFile(p, f(bytes.Clone(good)), 0o644); err != nil {
			t.Fatal(err)
		}
		if v, err := OpenIVF(p, Limits{}); err == nil {
			v.Close()
			t.Errorf("%s: opened", name)
		} else if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	// A flipped vector byte: the file opens, the list holding it fails its CRC when probed.
	bad := bytes.Clone(good)
	bad[len(bad)-3] ^= 0x40
	p := filepath.Join(t.TempDir(), "vec.ivf")
	os.WriteFile(p, bad, 0o644)
	v, err := OpenIVF(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, err = v.Section(ColImageEmbedding).Searcher().Search([]float32{1, 0, 0, 0}, 3, x.Lists())
	if err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Errorf("damaged vectors probed: %v, want a CRC error", err)
	}
}

// FuzzOpenIVF opens arbitrary bytes as an IVF file and, when they open, searches every list:
// any outcome but a panic or a hang is fine.
func FuzzOpenIVF(f *testing.F) {
	path, _, _ := ivfTestFile(f, 40, 3)
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:60])
	damaged := bytes.Clone(good)
	damaged[len(damaged)/2] ^= 0xff
	f.Add(damaged)
	f.Add([]byte(ivfMagic))
	lim := Limits{MaxRows: 1 << 12, MaxDim: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "fuzz.ivf")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := OpenIVF(p, lim)
		if err != nil {
			return
		}
		defer v.Close()
		for _, col := range ivfColumns {
			if x := v.Section(col); x != nil {
				hits, err := x.Searcher().Search(make([]float32, v.Dim), 3, x.Lists())
				if err == nil && len(hits) > 3 {
					t.Fatalf("%d hits for k=3", len(hits))
				}
			}
		}
	})
}

// TestEmbedIVFAndSearch: embed --index ivf writes the IVF file beside the index; search probes
// it (every list, here: the exact results), --exact scans instead, a later exact embed removes
// the stale file, and an IVF file of another index is refused.
func TestEmbedIVFAndSearch(t *testing.T) {
	fx := embedTestFixture(t)
	ctx := context.Background()
	if _, err := Embed(ctx, EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Out: fx.index, Batch: 4, Index: "hnsw"}); err == nil {
		t.Error("--index hnsw accepted")
	}
	sum, err := Embed(ctx, EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Out: fx.index, Batch: 8, Index: IndexIVF})
	if err != nil {
		t.Fatal(err)
	}
	if sum.IVF != IVFPath(fx.index) {
		t.Fatalf("summary names IVF file %q", sum.IVF)
	}
	v, err := OpenIVF(sum.IVF, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	lists := v.Section(ColImageEmbedding).Lists()
	v.Close()
	if lists != 12 { // 2·√38
		t.Errorf("%d lists for 38 rows", lists)
	}
	caption := "a red circle"
	for _, over := range []string{SearchOverImages, SearchOverCaptions} {
		exact, err := Search(ctx, SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: caption, Over: over, K: 6, Exact: true}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ann, err := Search(ctx, SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: caption, Over: over, K: 6, NProbe: lists}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(exact.Hits, ann.Hits) {
			t.Errorf("over %s: IVF probing every list found %+v, the exact scan %+v", over, ann.Hits, exact.Hits)
		}
		few, err := Search(ctx, SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: caption, Over: over, K: 6, NProbe: 1}, io.Discard)
		if err != nil || len(few.Hits) == 0 || len(few.Hits) > 6 {
			t.Errorf("over %s, one probe: %d hits, %v", over, len(few.Hits), err)
		}
	}

	// An IVF file beside another index is refused.
	other := filepath.Join(t.TempDir(), "other.parquet")
	if _, err := Embed(ctx, EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Out: other, Batch: 4, Split: "val"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(sum.IVF)
	os.WriteFile(IVFPath(other), b, 0o644)
	_, err = Search(ctx, SearchOptions{Checkpoint: fx.ckpt, Index: other, Query: caption}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "another index") {
		t.Errorf("a foreign IVF file: %v", err)
	}
	if _, err := Search(ctx, SearchOptions{Checkpoint: fx.ckpt, Index: other, Query: caption, Exact: true}, io.Discard); err != nil {
		t.Errorf("--exact beside a foreign IVF file: %v", err)
	}
	// Embedding again without --index removes the stale file.
	if _, err := Embed(ctx, EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Out: fx.index, Batch: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sum.IVF); err == nil {
		t.Error("the IVF file of the replaced index is still there")
	}
}
