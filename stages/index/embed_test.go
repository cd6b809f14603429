package index

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/text"
	"github.com/clipgo/clipgo/vision"
)

// embedTestConfig is a tiny model at the synthetic scenes' smallest size (32 px).
func embedTestConfig(embedDim int) fusion.Config {
	return fusion.Config{EmbedDim: embedDim,
		Vision: vision.Config{ImageSize: 32, PatchSize: 16, Width: 16, Layers: 1, Heads: 2, MLPRatio: 2},
		Text:   text.Config{ContextLength: 12, VocabSize: 49408, Width: 16, Layers: 1, Heads: 2, MLPRatio: 2}}
}

// embedTestData prepares a small synthetic dataset (train, val and a labelled zeroshot
// split) at 32 px.
func embedTestData(t testing.TB) string {
	t.Helper()
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
	cfg.Source = "synthetic"
	cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = 30, 8
	stagetest.Prepare(t, cfg)
	return cfg.Out
}

// embedFixture is a checkpoint, a dataset and its index.
type embedFixture struct {
	cfg   fusion.Config
	ckpt  string
	data  string
	index string
	sum   EmbedSummary
}

// embedTestFixture embeds a fresh 38-image synthetic dataset with a random E=8 model.
func embedTestFixture(t testing.TB) *embedFixture {
	t.Helper()
	fx := &embedFixture{cfg: embedTestConfig(8)}
	fx.ckpt = stagetest.Checkpoint(t, fx.cfg, 3)
	fx.data = embedTestData(t)
	fx.index = filepath.Join(t.TempDir(), "index.parquet")
	var err error
	fx.sum, err = Embed(context.Background(), EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Out: fx.index, Batch: 4, Log: stagetest.Quiet})
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	return fx
}

// readIndexTable reads a whole index with pqarrow, as an outside tool would.
func readIndexTable(t *testing.T, path string) (arrow.Table, map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, kv := range rdr.MetaData().KeyValueMetadata() {
		if kv.Value != nil {
			meta[kv.Key] = *kv.Value
		}
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tbl.Release)
	return tbl, meta
}

// column concatenates a table's column into one array.
func column(t *testing.T, tbl arrow.Table, name string) arrow.Array {
	t.Helper()
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("column %q: %d matches in %s", name, len(idx), tbl.Schema())
	}
	arr, err := array.Concatenate(tbl.Column(idx[0]).Data().Chunks(), memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(arr.Release)
	return arr
}

func TestEmbedWritesAnIndexOthersRead(t *testing.T) {
	fx := embedTestFixture(t)
	man, err := shard.ReadManifest(fx.data)
	if err != nil {
		t.Fatal(err)
	}
	// The index, in the order Embed writes it: splits by name, shard order within each.
	var recs []shard.Record
	var splits []string
	for _, split := range []string{"train", "val", "zeroshot"} {
		for _, r := range stagetest.ReadAll(t, fx.data, split) {
			recs = append(recs, r)
			splits = append(splits, split)
		}
	}
	if len(recs) != 38 || fx.sum.Rows != 38 || fx.sum.Dim != 8 {
		t.Fatalf("%d records in the dataset, summary %+v; want 38 rows of E=8", len(recs), fx.sum)
	}
	tbl, meta := readIndexTable(t, fx.index)
	// A required root, as parquet-mr and pyarrow write it (hyparquet cannot read a repeated one).
	pf, err := file.OpenParquetFile(fx.index, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep := pf.MetaData().Schema.Root().RepetitionType(); rep != parquet.Repetitions.Required {
		t.Errorf("the index's root is %s, want required", rep)
	}
	pf.Close()
	if tbl.NumRows() != int64(len(recs)) {
		t.Fatalf("index has %d rows, want %d", tbl.NumRows(), len(recs))
	}

	cfgJSON, _ := json.Marshal(fx.cfg)
	for k, want := range map[string]string{MetaVersion: "1", MetaEmbedDim: "8",
		MetaConfig: string(cfgJSON), MetaCheckpoint: fx.ckpt, MetaDataset: fx.data} {
		if meta[k] != want {
			t.Errorf("metadata %s = %q, want %q", k, meta[k], want)
		}
	}
	for _, tc := range []struct {
		col string
		typ arrow.DataType
	}{
		{ColKey, arrow.BinaryTypes.String},
		{ColSplit, arrow.BinaryTypes.String},
		{ColCaption, arrow.BinaryTypes.String},
		{ColCaptions, arrow.ListOf(arrow.BinaryTypes.String)},
		{ColLabel, arrow.PrimitiveTypes.Int32},
		{ColClassName, arrow.BinaryTypes.String},
		{ColImageEmbedding, arrow.FixedSizeListOf(8, arrow.PrimitiveTypes.Float32)},
		{ColTextEmbedding, arrow.FixedSizeListOf(8, arrow.PrimitiveTypes.Float32)},
		{ColJPG, arrow.BinaryTypes.Binary},
	} {
		if got := column(t, tbl, tc.col).DataType(); !arrow.TypeEqual(got, tc.typ) {
			t.Errorf("column %s: type %s, want %s", tc.col, got, tc.typ)
		}
	}

	// Reference embeddings straight from the encoder.
	enc, err := fusion.LoadEncoder(fx.ckpt, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	per := enc.ImageLen()
	images := make([]float32, len(recs)*per)
	texts := make([]string, len(recs))
	for i, r := range recs {
		img, _, err := imageproc.Decode(r.JPG, imageproc.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := imageproc.EvalTransform(images[i*per:(i+1)*per], img, 32); err != nil {
			t.Fatal(err)
		}
		texts[i] = r.AllCaptions()[0]
	}
	wantImg, err := enc.Images(images)
	if err != nil {
		t.Fatal(err)
	}
	wantTxt, err := enc.Texts(texts)
	if err != nil {
		t.Fatal(err)
	}

	keys := column(t, tbl, ColKey).(*array.String)
	spl := column(t, tbl, ColSplit).(*array.String)
	capt := column(t, tbl, ColCaption).(*array.String)
	caps := column(t, tbl, ColCaptions).(*array.List)
	labels := column(t, tbl, ColLabel).(*array.Int32)
	classes := column(t, tbl, ColClassName).(*array.String)
	jpg := column(t, tbl, ColJPG).(*array.Binary)
	vecs := map[string][]float32{}
	for _, c := range []string{ColImageEmbedding, ColTextEmbedding} {
		vecs[c] = column(t, tbl, c).(*array.FixedSizeList).ListValues().(*array.Float32).Float32Values()
	}
	const E = 8
	labelled := 0
	for i, r := range recs {
		if keys.Value(i) != r.Key || spl.Value(i) != splits[i] || capt.Value(i) != r.AllCaptions()[0] {
			t.Fatalf("row %d: key %q split %q caption %q, want %q %q %q", i, keys.Value(i), spl.Value(i), capt.Value(i), r.Key, splits[i], r.AllCaptions()[0])
		}
		s, e := caps.ValueOffsets(i)
		if int(e-s) != len(r.AllCaptions()) {
			t.Errorf("row %d: %d captions, want %d", i, e-s, len(r.AllCaptions()))
		}
		if !bytes.Equal(jpg.Value(i), r.JPG) {
			t.Errorf("row %d: jpg bytes differ from the dataset's", i)
		}
		switch {
		case r.Label == nil:
			if !labels.IsNull(i) || !classes.IsNull(i) {
				t.Errorf("row %d: unlabelled record has label %v class %q", i, labels.Value(i), classes.Value(i))
			}
		default:
			labelled++
			if labels.IsNull(i) || labels.Value(i) != *r.Label || classes.Value(i) != man.ClassNames[*r.Label] {
				t.Errorf("row %d: label %d class %q, want %d %q", i, labels.Value(i), classes.Value(i), *r.Label, man.ClassNames[*r.Label])
			}
		}
		for c, want := range map[string][]float32{ColImageEmbedding: wantImg, ColTextEmbedding: wantTxt} {
			v := vecs[c][i*E : (i+1)*E]
			var norm float64
			for j, x := range v {
				norm += float64(x) * float64(x)
				if d := math.Abs(float64(x - want[i*E+j])); d > 1e-5 {
					t.Fatalf("row %d %s[%d] = %g, the encoder gives %g", i, c, j, x, want[i*E+j])
				}
			}
			if math.Abs(norm-1) > 1e-5 {
				t.Errorf("row %d %s: norm² %g, want 1", i, c, norm)
			}
		}
	}
	if labelled != 8 {
		t.Errorf("%d labelled rows, want the 8 zeroshot ones", labelled)
	}
}

func TestEmbedOptions(t *testing.T) {
	fx := embedTestFixture(t)
	dir := t.TempDir()
	t.Run("one split without images", func(t *testing.T) {
		out := filepath.Join(dir, "sub", "val.parquet")
		sum, err := Embed(context.Background(), EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Split: "zeroshot", Out: out, NoImages: true})
		if err != nil {
			t.Fatal(err)
		}
		tbl, meta := readIndexTable(t, out)
		if tbl.NumRows() != 8 || sum.Rows != 8 || sum.Splits["zeroshot"] != 8 || meta[MetaEmbedDim] != strconv.Itoa(8) {
			t.Errorf("zeroshot index: %d rows, summary %+v", tbl.NumRows(), sum)
		}
		if idx := tbl.Schema().FieldIndices(ColJPG); len(idx) != 0 {
			t.Error("--no-images index has a jpg column")
		}
	})
	for _, tc := range []struct {
		name string
		opt  EmbedOptions
	}{
		{"missing checkpoint", EmbedOptions{Checkpoint: filepath.Join(dir, "none.safetensors"), Data: fx.data}},
		{"missing dataset", EmbedOptions{Checkpoint: fx.ckpt, Data: filepath.Join(dir, "none")}},
		{"unknown split", EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Split: "test"}},
		{"no out", EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opt.Out == "" && tc.name != "no out" {
				tc.opt.Out = filepath.Join(dir, "bad.parquet")
			}
			if _, err := Embed(context.Background(), tc.opt); err == nil {
				t.Fatal("no error")
			}
			if _, err := os.Stat(filepath.Join(dir, "bad.parquet")); !os.IsNotExist(err) {
				t.Errorf("a failed embed left %s behind (%v)", "bad.parquet", err)
			}
		})
	}
	t.Run("cancelled leaves nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		sub := t.TempDir()
		out := filepath.Join(sub, "x.parquet")
		if _, err := Embed(ctx, EmbedOptions{Checkpoint: fx.ckpt, Data: fx.data, Out: out, Batch: 2}); err == nil {
			t.Fatal("cancelled embed succeeded")
		}
		if ents, _ := os.ReadDir(sub); len(ents) != 0 {
			t.Errorf("cancelled embed left %d files in %s", len(ents), sub)
		}
	})
}
