package index

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	pq "github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/clipgo/clipgo/stages/internal/evalmodel"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

func TestSearchImageQueryFindsItself(t *testing.T) {
	fx := embedTestFixture(t)
	recs := stagetest.ReadAll(t, fx.data, "val")
	for _, i := range []int{0, len(recs) - 1} {
		q := filepath.Join(t.TempDir(), "query.jpg")
		if err := os.WriteFile(q, recs[i].JPG, 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		res, err := Search(context.Background(), SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Image: q, Over: SearchOverImages, K: 3}, &out)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 3 || res.Hits[0].Key != recs[i].Key || math.Abs(res.Hits[0].Score-1) > 1e-5 {
			t.Fatalf("image query %s: hits %+v, want it first with score 1", recs[i].Key, res.Hits)
		}
		if res.Hits[0].Split != "val" || res.Kind != "image" || res.Rows != 38 {
			t.Errorf("result %+v", res)
		}
		first := strings.SplitN(out.String(), "\n", 2)[0]
		if want := "1 " + recs[i].Key + " 1.0000 " + recs[i].AllCaptions()[0]; first != want {
			t.Errorf("first line %q, want %q", first, want)
		}
	}
}

func TestSearchTextQueryRanksK(t *testing.T) {
	fx := embedTestFixture(t)
	recs := stagetest.ReadAll(t, fx.data, "train")
	caption := recs[2].AllCaptions()[0]
	for _, tc := range []struct {
		name, over string
		k, want    int
	}{
		{"text to images", "", 5, 5},
		{"text to captions", SearchOverCaptions, 4, 4},
		{"k beyond the index", SearchOverImages, 100, 38},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			res, err := Search(context.Background(), SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: caption, Over: tc.over, K: tc.k}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Hits) != tc.want {
				t.Fatalf("%d hits, want %d", len(res.Hits), tc.want)
			}
			if tc.over == "" && res.Over != SearchOverImages {
				t.Errorf("a text query searched %s by default", res.Over)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != tc.want {
				t.Errorf("%d output lines, want %d", len(lines), tc.want)
			}
			seen := map[int]bool{}
			for i, h := range res.Hits {
				if h.Rank != i+1 || seen[h.Row] || (i > 0 && h.Score > res.Hits[i-1].Score) {
					t.Fatalf("hit %d %+v after %+v: not ranked", i, h, res.Hits[max(i-1, 0)])
				}
				seen[h.Row] = true
				if !strings.HasPrefix(lines[i], strconv.Itoa(h.Rank)+" "+h.Key+" ") {
					t.Errorf("line %q for hit %+v", lines[i], h)
				}
			}
			if tc.over == SearchOverCaptions {
				// The query is an indexed caption: its own embedding matches exactly.
				if res.Hits[0].Caption != caption || math.Abs(res.Hits[0].Score-1) > 1e-5 {
					t.Errorf("caption query %q: first hit %+v", caption, res.Hits[0])
				}
			}
		})
	}
	// An image query ranks captions by default.
	q := filepath.Join(t.TempDir(), "q.jpg")
	os.WriteFile(q, recs[0].JPG, 0o644)
	res, err := Search(context.Background(), SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Image: q}, io.Discard)
	if err != nil || res.Over != SearchOverCaptions || len(res.Hits) != 8 {
		t.Errorf("image query: over %q, %d hits, %v; want captions, 8 hits", res.Over, len(res.Hits), err)
	}
}

func TestSearchHTMLInlinesImages(t *testing.T) {
	fx := embedTestFixture(t)
	page := filepath.Join(t.TempDir(), "out.html")
	query := `a <b>"quoted"</b> query`
	res, err := Search(context.Background(), SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: query, K: 4, HTML: page}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	if n := strings.Count(html, `src="data:image/jpeg;base64,`); n != 4 {
		t.Errorf("%d inlined JPEGs, want 4", n)
	}
	if strings.Contains(html, "<b>") || !strings.Contains(html, "&lt;b&gt;") {
		t.Error("the query is not escaped")
	}
	for _, h := range res.Hits {
		if !strings.Contains(html, h.Key) {
			t.Errorf("hit %s is not on the page", h.Key)
		}
	}
}

// searchTestIndex writes an index of rows vectors (E = len of each, for both embedding
// columns) with the metadata Embed writes for cfg, changed by edit.
func searchTestIndex(t testing.TB, path string, vecType arrow.DataType, rows [][]float32, meta map[string]string, drop string) {
	t.Helper()
	fields := []arrow.Field{{Name: ColKey, Type: arrow.BinaryTypes.String}, {Name: ColCaption, Type: arrow.BinaryTypes.String},
		{Name: ColImageEmbedding, Type: vecType, Nullable: true}, {Name: ColTextEmbedding, Type: vecType, Nullable: true}}
	fields = slices.DeleteFunc(fields, func(f arrow.Field) bool { return f.Name == drop })
	sc := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i, v := range rows {
		for f, fl := range sc.Fields() {
			switch fb := b.Field(f).(type) {
			case *array.StringBuilder:
				fb.Append(fl.Name + strconv.Itoa(i))
			case *array.FixedSizeListBuilder:
				fb.Append(true)
				fb.ValueBuilder().(*array.Float32Builder).AppendValues(v, nil)
			case *array.ListBuilder:
				fb.Append(true)
				fb.ValueBuilder().(*array.Float32Builder).AppendValues(v, nil)
			}
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fw, err := pqarrow.NewFileWriter(sc, f, pq.NewWriterProperties(pq.WithMaxRowGroupLength(3)), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		fw.AppendKeyValueMetadata(k, v)
	}
	if rec.NumRows() > 0 {
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

func searchTestMeta(t testing.TB, fx *embedFixture) map[string]string {
	raw, err := json.Marshal(fx.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{MetaVersion: "1", MetaConfig: string(raw), MetaEmbedDim: strconv.Itoa(fx.cfg.EmbedDim)}
}

func TestSearchRejectsBadInput(t *testing.T) {
	fx := embedTestFixture(t)
	dir := t.TempDir()
	E := fx.cfg.EmbedDim
	unit := func(n, dim int) [][]float32 {
		rows := make([][]float32, n)
		for i := range rows {
			rows[i] = make([]float32, dim)
			rows[i][i%dim] = 1
		}
		return rows
	}
	vec := arrow.FixedSizeListOf(int32(E), arrow.PrimitiveTypes.Float32)
	list := arrow.ListOf(arrow.PrimitiveTypes.Float32)
	write := func(name string, typ arrow.DataType, rows [][]float32, edit func(map[string]string), drop string) string {
		meta := searchTestMeta(t, fx)
		if edit != nil {
			edit(meta)
		}
		p := filepath.Join(dir, name+".parquet")
		searchTestIndex(t, p, typ, rows, meta, drop)
		return p
	}
	// Another model of the same width, and one of another width.
	other := embedTestConfig(E)
	other.Text.Layers = 2
	otherCkpt := stagetest.Checkpoint(t, other, 1)
	wideCkpt := stagetest.Checkpoint(t, embedTestConfig(12), 1)
	garbage := filepath.Join(dir, "garbage.parquet")
	os.WriteFile(garbage, []byte("this is not a parquet file at all"), 0o644)
	ragged := unit(5, E)
	ragged[3] = ragged[3][:E-1]

	for _, tc := range []struct {
		name string
		opt  SearchOptions
		want string // in the error
	}{
		{"missing checkpoint", SearchOptions{Checkpoint: filepath.Join(dir, "none.safetensors"), Index: fx.index, Query: "x"}, "none.safetensors"},
		{"missing index", SearchOptions{Checkpoint: fx.ckpt, Index: filepath.Join(dir, "none.parquet"), Query: "x"}, "none.parquet"},
		{"no query", SearchOptions{Checkpoint: fx.ckpt, Index: fx.index}, "either --query or --image"},
		{"two queries", SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: "x", Image: "y.jpg"}, "either --query or --image"},
		{"unknown direction", SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: "x", Over: "sounds"}, `--over "sounds"`},
		{"missing query image", SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Image: filepath.Join(dir, "none.jpg")}, "none.jpg"},
		{"query image not an image", SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Image: garbage}, "query image"},
		{"wrong dimension", SearchOptions{Checkpoint: wideCkpt, Index: fx.index, Query: "x"}, "8-dimensional embeddings but checkpoint"},
		{"another model", SearchOptions{Checkpoint: otherCkpt, Index: fx.index, Query: "x"}, "another model"},
		{"not parquet", SearchOptions{Checkpoint: fx.ckpt, Index: garbage, Query: "x"}, "not a Parquet file"},
		{"empty index", SearchOptions{Checkpoint: fx.ckpt, Index: write("empty", vec, nil, nil, ""), Query: "x"}, "index is empty"},
		{"missing column", SearchOptions{Checkpoint: fx.ckpt, Index: write("nocol", vec, unit(4, E), nil, ColTextEmbedding), Query: "x"}, `no column "text_embedding"`},
		{"missing key column", SearchOptions{Checkpoint: fx.ckpt, Index: write("nokey", vec, unit(4, E), nil, ColKey), Query: "x"}, `no column "key"`},
		{"no metadata, no embeddings", SearchOptions{Checkpoint: fx.ckpt, Index: write("nometa", vec, unit(4, E), func(m map[string]string) { clear(m) }, ColImageEmbedding), Query: "x"}, "not a clipgo embedding index"},
		{"no metadata, other width", SearchOptions{Checkpoint: fx.ckpt, Index: write("nometa4", list, unit(4, 4), func(m map[string]string) { clear(m) }, ""), Query: "x"}, "holds 4-dimensional embeddings"},
		{"no metadata, ragged", SearchOptions{Checkpoint: fx.ckpt, Index: write("ragged-nometa", list, append(unit(2, E), unit(1, E+1)...), func(m map[string]string) { clear(m) }, ""), Query: "x"}, "embedding of 9 values, want 8"},
		{"metadata dim lies", SearchOptions{Checkpoint: fx.ckpt, Index: write("lie", arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Float32), unit(4, 4), nil, ""), Query: "x"}, `column "image_embedding" has type fixed_size_list`},
		{"dim not a number", SearchOptions{Checkpoint: fx.ckpt, Index: write("nan", vec, unit(4, E), func(m map[string]string) { m[MetaEmbedDim] = "eight" }, ""), Query: "x"}, `"eight"`},
		{"huge dim", SearchOptions{Checkpoint: fx.ckpt, Index: write("huge", vec, unit(4, E), func(m map[string]string) { m[MetaEmbedDim] = "100000000" }, ""), Query: "x"}, "want an integer in"},
		{"other version", SearchOptions{Checkpoint: fx.ckpt, Index: write("v2", vec, unit(4, E), func(m map[string]string) { m[MetaVersion] = "2" }, ""), Query: "x"}, "version"},
		{"ragged list", SearchOptions{Checkpoint: fx.ckpt, Index: write("ragged", list, ragged, nil, ""), Query: "x"}, "row 3: embedding of 7 values, want 8"},
		{"too many rows", SearchOptions{Checkpoint: fx.ckpt, Index: fx.index, Query: "x", Limits: Limits{MaxRows: 10}}, "38 rows (limit 10)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Search(context.Background(), tc.opt, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}

	// A variable-size list of the right lengths, as a tool that loses the fixed size writes, is read.
	p := write("list", list, unit(5, E), nil, "")
	res, err := Search(context.Background(), SearchOptions{Checkpoint: fx.ckpt, Index: p, Query: "x", K: 2}, io.Discard)
	if err != nil || len(res.Hits) != 2 {
		t.Errorf("list<float> index: %d hits, %v", len(res.Hits), err)
	}
}

func TestSearchTopK(t *testing.T) {
	for _, tc := range []struct {
		scores []float64
		k      int
		want   []int
	}{
		{[]float64{0.1, 0.9, 0.5}, 2, []int{1, 2}},
		{[]float64{0.1, 0.9, 0.5}, 3, []int{1, 2, 0}},
		{[]float64{0.5, 0.5, 0.7, 0.5}, 3, []int{2, 0, 1}}, // ties keep row order
		{[]float64{-1, -2}, 1, []int{0}},
		{[]float64{1}, 0, nil},
		{nil, 3, []int{}},
	} {
		if got := searchTopK(tc.scores, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("searchTopK(%v, %d) = %v, want %v", tc.scores, tc.k, got, tc.want)
		}
	}
}

func TestSearchCosine(t *testing.T) {
	for _, tc := range []struct {
		q, v []float32
		want float64
	}{
		{[]float32{1, 0}, []float32{2, 0}, 1},
		{[]float32{1, 0}, []float32{0, 3}, 0},
		{[]float32{1, 1}, []float32{-1, -1}, -1},
		{[]float32{0, 0}, []float32{1, 0}, 0},
		{[]float32{3, 4}, []float32{4, 3}, 24.0 / 25},
	} {
		if got := searchCosine(tc.q, tc.v); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("searchCosine(%v, %v) = %v, want %v", tc.q, tc.v, got, tc.want)
		}
	}
}

// FuzzOpenIndex opens arbitrary bytes as an index and reads every row: any outcome but a
// panic or a hang is fine.
func FuzzOpenIndex(f *testing.F) {
	fx := embedTestFixture(f)
	valid, err := os.ReadFile(fx.index)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(append([]byte("PAR1"), valid[len(valid)-8:]...))
	f.Add([]byte("PAR1PAR1"))
	small := filepath.Join(f.TempDir(), "small.parquet")
	rows := [][]float32{{1, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 1, 0, 0, 0}}
	searchTestIndex(f, small, arrow.ListOf(arrow.PrimitiveTypes.Float32), rows, searchTestMeta(f, fx), "")
	if b, err := os.ReadFile(small); err == nil {
		f.Add(b)
		damaged := bytes.Clone(b)
		damaged[len(damaged)/3] ^= 0xff
		f.Add(damaged)
	}
	// Without metadata (as DuckDB's COPY leaves an index): the width comes from the first row.
	bare := filepath.Join(f.TempDir(), "bare.parquet")
	searchTestIndex(f, bare, arrow.ListOf(arrow.PrimitiveTypes.Float32), rows, nil, "")
	if b, err := os.ReadFile(bare); err == nil {
		f.Add(b)
	}
	lim := Limits{MaxRows: 1 << 12, MaxDim: 64, MaxFooterBytes: 1 << 16, MaxRowGroupBytes: 1 << 20, MaxRowGroups: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		wd := time.AfterFunc(30*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("WATCHDOG " + string(buf[:runtime.Stack(buf, true)]))
		})
		defer wd.Stop()
		ix, err := Open(path, lim)
		if err != nil {
			return
		}
		defer ix.Close()
		for _, col := range []string{ColImageEmbedding, ColTextEmbedding} {
			_ = ix.Scan(context.Background(), col, func(int, []float32) error { return nil })
		}
		_, _ = ix.Lookup(context.Background(), []int{0, ix.Rows() - 1})
	})
}

// TestSearchRefusesAnIndexOfOtherWeights: an index records the SHA-256 of the checkpoint that
// made it; another checkpoint of the same architecture is refused unless Force, and an index
// without the hash is searched with a warning.
func TestSearchRefusesAnIndexOfOtherWeights(t *testing.T) {
	fx := embedTestFixture(t)
	_, meta := readIndexTable(t, fx.index)
	want, err := evalmodel.FileSHA256(fx.ckpt)
	stagetest.Must(t, err)
	if meta[MetaCheckpointSHA256] != want {
		t.Fatalf("index records %s = %q, want the checkpoint's %s", MetaCheckpointSHA256, meta[MetaCheckpointSHA256], want)
	}
	other := stagetest.Checkpoint(t, fx.cfg, 99) // same architecture, other weights
	q := SearchOptions{Checkpoint: other, Index: fx.index, Query: "a red circle", K: 2}
	_, err = Search(context.Background(), q, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), want[:12]) || !strings.Contains(err.Error(), fx.ckpt) {
		t.Fatalf("search with other weights: err = %v, want a refusal naming the index's checkpoint, its hash and --force", err)
	}
	var logs bytes.Buffer
	q.Force, q.Log = true, slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := Search(context.Background(), q, io.Discard); err != nil || !strings.Contains(logs.String(), "--force") {
		t.Fatalf("search --force: err = %v, logs %q; want results and a warning", err, logs.String())
	}

	// An index rewritten without the hash (as a tool keeping only some metadata would).
	bare := filepath.Join(t.TempDir(), "bare.parquet")
	m := searchTestMeta(t, fx)
	delete(m, MetaCheckpointSHA256)
	searchTestIndex(t, bare, arrow.FixedSizeListOf(int32(fx.cfg.EmbedDim), arrow.PrimitiveTypes.Float32), [][]float32{unit(fx.cfg.EmbedDim, 0), unit(fx.cfg.EmbedDim, 1)}, m, "")
	logs.Reset()
	q = SearchOptions{Checkpoint: fx.ckpt, Index: bare, Query: "a red circle", K: 1, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := Search(context.Background(), q, io.Discard); err != nil || !strings.Contains(logs.String(), "does not record which checkpoint made it") {
		t.Fatalf("search of an index without the hash: err = %v, logs %q; want results and a warning", err, logs.String())
	}
}

func unit(n, i int) []float32 {
	v := make([]float32, n)
	v[i] = 1
	return v
}
