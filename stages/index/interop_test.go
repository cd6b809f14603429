package index

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	pq "github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/clipgo/clipgo/internal/testenv"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
)

// parquetPeer finds node and scripts/peers/parquet/parquet_check.mjs with its pinned hyparquet
// and @duckdb/node-api installed (make interop-deps), handling their absence with
// testenv.Missing.
func parquetPeer(t *testing.T) (node, script string) {
	t.Helper()
	node = testenv.Command(t, "node", "make interop-deps installs Node.js and the pinned npm packages")
	dir := filepath.Join(testenv.RepoRoot(t), "scripts", "peers", "parquet")
	for _, pkg := range []string{"hyparquet", "hyparquet-compressors", filepath.Join("@duckdb", "node-api")} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			testenv.Missing(t, pkg+" is not installed in "+dir+" (make interop-deps runs npm ci there)")
		}
	}
	return node, filepath.Join(dir, "parquet_check.mjs")
}

func runParquetCheck(t *testing.T, node, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(node, append([]string{script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s %s: %v\n%s", filepath.Base(script), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// peerRead is what one of parquet_check.mjs's readers read of an index.
type peerRead struct {
	RootRepetition string            `json:"root_repetition"` // hyparquet only
	Types          map[string]string `json:"types"`           // column types as the reader names them
	Rows           int               `json:"rows"`
	Key            []string          `json:"key"`
	ImageEmbedding [][]float64       `json:"image_embedding"`
	TextEmbedding  [][]float64       `json:"text_embedding"`
}

// indexContent is an index as clipgo's reader reads it: keys and both embedding columns.
type indexContent struct {
	keys     []string
	img, txt [][]float32
}

func readIndexContent(t *testing.T, path string) (indexContent, *Reader) {
	t.Helper()
	ix, err := Open(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	var c indexContent
	for col, dst := range map[string]*[][]float32{ColImageEmbedding: &c.img, ColTextEmbedding: &c.txt} {
		stagetest.Must(t, ix.Scan(context.Background(), col, func(_ int, v []float32) error {
			*dst = append(*dst, slices.Clone(v))
			return nil
		}))
	}
	all := make([]int, ix.Rows())
	for i := range all {
		all[i] = i
	}
	rows, err := ix.Lookup(context.Background(), all)
	stagetest.Must(t, err)
	for _, r := range rows {
		c.keys = append(c.keys, r.Key)
	}
	return c, ix
}

// sameVectors reports the first row where got (float32 values carried as float64) differs from want.
func sameVectors(t *testing.T, who, col string, got [][]float64, want [][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s %s: %d rows, clipgo reads %d", who, col, len(got), len(want))
	}
	for i := range want {
		g := make([]float32, len(got[i]))
		for j, x := range got[i] {
			g[j] = float32(x)
			if float64(g[j]) != x {
				t.Fatalf("%s %s row %d value %d: %v is not a float32", who, col, i, j, x)
			}
		}
		if !slices.Equal(g, want[i]) {
			t.Fatalf("%s %s row %d: %v, clipgo reads %v", who, col, i, g, want[i])
		}
	}
}

// TestIndexInterop (make interop; make test when the npm peers are installed): clipgo embed's
// index as two independent readers see it, and as DuckDB rewrites it. hyparquet and DuckDB read
// every key and embedding exactly as clipgo does (DuckDB casting each column to FLOAT[E]);
// hyparquet sees the required root. DuckDB's COPY of the index drops its key/value metadata;
// clipgo still opens the copy (its width from the data) and search finds the same hits, with a
// warning that the model cannot be checked.
func TestIndexInterop(t *testing.T) {
	node, script := parquetPeer(t)
	fx := embedTestFixture(t)
	want, _ := readIndexContent(t, fx.index)
	E := fx.cfg.EmbedDim

	t.Run("hyparquet and DuckDB read it", func(t *testing.T) {
		var got struct{ Hyparquet, DuckDB peerRead }
		out := runParquetCheck(t, node, script, "read", fx.index, strconv.Itoa(E))
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("parquet_check read: %v\n%.400s", err, out)
		}
		if got.Hyparquet.RootRepetition != "REQUIRED" {
			t.Errorf("hyparquet: root repetition %q, want REQUIRED", got.Hyparquet.RootRepetition)
		}
		for who, r := range map[string]peerRead{"hyparquet": got.Hyparquet, "duckdb": got.DuckDB} {
			t.Logf("%s: %d rows; embedding columns %s, %s", who, r.Rows, r.Types[ColImageEmbedding], r.Types[ColTextEmbedding])
			if r.Rows != len(want.keys) || !slices.Equal(r.Key, want.keys) {
				t.Fatalf("%s: %d rows, keys %q; clipgo reads %d: %q", who, r.Rows, r.Key, len(want.keys), want.keys)
			}
			sameVectors(t, who, ColImageEmbedding, r.ImageEmbedding, want.img)
			sameVectors(t, who, ColTextEmbedding, r.TextEmbedding, want.txt)
		}
	})

	t.Run("a DuckDB rewrite searches", func(t *testing.T) {
		copied := filepath.Join(t.TempDir(), "duckdb.parquet")
		runParquetCheck(t, node, script, "rewrite", fx.index, copied)
		got, ix := readIndexContent(t, copied)
		if ix.Recorded() || ix.Dim() != E || ix.CheckpointSHA256() != "" {
			t.Fatalf("DuckDB's copy: recorded %v, dim %d, checkpoint hash %q; want no metadata and the width %d from the data",
				ix.Recorded(), ix.Dim(), ix.CheckpointSHA256(), E)
		}
		if !slices.Equal(got.keys, want.keys) || !slices.EqualFunc(got.img, want.img, slices.Equal) || !slices.EqualFunc(got.txt, want.txt, slices.Equal) {
			t.Fatal("DuckDB's copy reads back other keys or embeddings than the index")
		}
		search := func(index string, logs io.Writer) SearchResult {
			t.Helper()
			res, err := Search(context.Background(), SearchOptions{Checkpoint: fx.ckpt, Index: index, Query: "a red circle", K: 5,
				Log: slog.New(slog.NewTextHandler(logs, nil))}, io.Discard)
			if err != nil {
				t.Fatalf("search %s: %v", index, err)
			}
			return res
		}
		var logs bytes.Buffer
		a, b := search(fx.index, io.Discard), search(copied, &logs)
		if len(a.Hits) != 5 || !slices.Equal(a.Hits, b.Hits) {
			t.Fatalf("hits in DuckDB's copy %+v, in the index %+v", b.Hits, a.Hits)
		}
		if !strings.Contains(logs.String(), "records no clipgo metadata") {
			t.Fatalf("search of DuckDB's copy logged %q, want a warning that the model cannot be checked", logs.String())
		}
	})
}

// TestOpenReadsBothRootLayouts: indexes written before clipgo set the Parquet root REQUIRED have
// arrow-go v15's default, a REPEATED root; Open reads both alike.
func TestOpenReadsBothRootLayouts(t *testing.T) {
	const E = 4
	cfg, err := json.Marshal(embedTestConfig(E))
	stagetest.Must(t, err)
	vec := arrow.FixedSizeListOf(E, arrow.PrimitiveTypes.Float32)
	sc := arrow.NewSchema([]arrow.Field{{Name: ColKey, Type: arrow.BinaryTypes.String}, {Name: ColCaption, Type: arrow.BinaryTypes.String},
		{Name: ColImageEmbedding, Type: vec, Nullable: true}, {Name: ColTextEmbedding, Type: vec, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range 5 {
		b.Field(0).(*array.StringBuilder).Append("k" + strconv.Itoa(i))
		b.Field(1).(*array.StringBuilder).Append("c" + strconv.Itoa(i))
		for f := 2; f < 4; f++ {
			lb := b.Field(f).(*array.FixedSizeListBuilder)
			lb.Append(true)
			lb.ValueBuilder().(*array.Float32Builder).AppendValues([]float32{float32(i), float32(f), 1, -1}, nil)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var contents []indexContent
	for _, rep := range []pq.Repetition{pq.Repetitions.Repeated, pq.Repetitions.Required} {
		path := filepath.Join(t.TempDir(), rep.String()+".parquet")
		f, err := os.Create(path)
		stagetest.Must(t, err)
		fw, err := pqarrow.NewFileWriter(sc, f, pq.NewWriterProperties(pq.WithRootRepetition(rep), pq.WithMaxRowGroupLength(2)),
			pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		stagetest.Must(t, err)
		for k, v := range map[string]string{MetaVersion: strconv.Itoa(Version), MetaConfig: string(cfg), MetaEmbedDim: strconv.Itoa(E)} {
			stagetest.Must(t, fw.AppendKeyValueMetadata(k, v))
		}
		stagetest.Must(t, fw.Write(rec))
		stagetest.Must(t, fw.Close())
		pf, err := file.OpenParquetFile(path, false)
		stagetest.Must(t, err)
		if got := pf.MetaData().Schema.Root().RepetitionType(); got != rep {
			t.Fatalf("written with root %s, the file says %s", rep, got)
		}
		pf.Close()
		c, ix := readIndexContent(t, path)
		if !ix.Recorded() || ix.Rows() != 5 || ix.Dim() != E {
			t.Fatalf("root %s: recorded %v, %d rows of width %d; want 5 of width %d with metadata", rep, ix.Recorded(), ix.Rows(), ix.Dim(), E)
		}
		contents = append(contents, c)
	}
	a, c := contents[0], contents[1]
	if !slices.Equal(a.keys, c.keys) || !slices.EqualFunc(a.img, c.img, slices.Equal) || !slices.EqualFunc(a.txt, c.txt, slices.Equal) {
		t.Fatalf("a repeated root reads %+v, a required one %+v", a, c)
	}
}
