package tests

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/clipgo/clipgo/stages/eval"
	"github.com/clipgo/clipgo/stages/index"
	"github.com/clipgo/clipgo/stages/report"
	"github.com/clipgo/clipgo/stages/train"
)

// TestPipelineEndToEnd runs every stage a user runs, on small synthetic data: prepare → a
// short pretrain → zeroshot → retrieval → embed → search → report, and checks that every
// output exists and parses.
func TestPipelineEndToEnd(t *testing.T) {
	ctx := context.Background()
	data := prepareSynthetic(t, 400)
	run := filepath.Join(t.TempDir(), "run")
	cfg := demoConfig(t, data, "train.steps=30", "train.batch_size=16", "train.warmup=3", "train.log_every=5",
		"train.val_every=15", "train.checkpoint_every=15", "train.val_batches=2")
	if _, err := train.Run(ctx, train.Options{Config: cfg, RunDir: run}, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	evalDir := filepath.Join(run, "eval")
	zs, err := eval.ZeroShot(ctx, eval.ZeroShotOptions{Checkpoint: run, Data: data, Task: "synthetic",
		Out: filepath.Join(evalDir, "zeroshot-synthetic.json"), Batch: 16, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"acc1", "acc5", "mean_per_class_recall"} {
		if v, ok := zs.Metrics[k]; !ok || v < 0 || v > 1 {
			t.Errorf("zero-shot %s = %v (present %v)", k, v, ok)
		}
	}
	rt, err := eval.Retrieval(ctx, eval.RetrievalOptions{Checkpoint: run, Data: data, Split: "val",
		Out: filepath.Join(evalDir, "retrieval-val.json"), Batch: 16, Examples: 2, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rt.Metrics["image_retrieval_recall@5"]; !ok {
		t.Errorf("retrieval metrics %v lack image_retrieval_recall@5", rt.Metrics)
	}
	indexPath := filepath.Join(t.TempDir(), "index.parquet")
	if _, err := index.Embed(ctx, index.EmbedOptions{Checkpoint: run, Data: data, Split: "val", Out: indexPath, Batch: 16}); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "search.html")
	var lines strings.Builder
	res, err := index.Search(ctx, index.SearchOptions{Checkpoint: run, Index: indexPath, Query: "a small red circle on the left", K: 5, HTML: page}, &lines)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 5 || strings.Count(lines.String(), "\n") < 5 {
		t.Errorf("search gave %d hits and printed %q", len(res.Hits), lines.String())
	}
	reportPath, err := report.Write(report.Options{RunDir: run})
	if err != nil {
		t.Fatal(err)
	}

	for _, f := range []string{
		filepath.Join(evalDir, "zeroshot-synthetic.json"), filepath.Join(evalDir, "zeroshot-synthetic.details.json"),
		filepath.Join(evalDir, "retrieval-val.json"), filepath.Join(evalDir, "retrieval-val.details.json"),
		filepath.Join(run, "metrics.jsonl"),
	} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".jsonl") {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Errorf("%s does not parse: %v", f, err)
		}
	}
	for _, f := range []string{filepath.Join(evalDir, "zeroshot-synthetic.confusion.png")} {
		if b, err := os.ReadFile(f); err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}
	for _, f := range []string{reportPath, page} {
		file, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := html.Parse(file); err != nil {
			t.Errorf("%s does not parse as HTML: %v", f, err)
		}
		file.Close()
	}
}
