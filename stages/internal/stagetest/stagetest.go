// Package stagetest holds the fixtures the stages' tests share: a quiet logger, prepared
// datasets of synthetic scenes, and checkpoints of randomly initialised models.
package stagetest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/prepare"
)

// Quiet is a logger that writes nothing.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Must fails the test on an error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// PrepareConfig is a small preparation into out: 32 px images, a fifth of them in val, small
// row groups and shards. Source and its options are left for the test to set.
func PrepareConfig(out string) prepare.Config {
	return prepare.Config{Out: out, ImageSize: 32, ResizeMode: "center_crop", Quality: 90, Workers: 2,
		ValFraction: 0.2, RowGroupRows: 16, ShardRows: 64}
}

// Prepare runs prepare.Run quietly, failing the test on an error.
func Prepare(t testing.TB, cfg prepare.Config) prepare.Summary {
	t.Helper()
	sum, err := prepare.Run(context.Background(), cfg, Quiet, io.Discard)
	if err != nil {
		t.Fatalf("prepare.Run: %v", err)
	}
	return sum
}

// ReadAll returns every record of a split of a prepared dataset, in shard order.
func ReadAll(t testing.TB, dir, split string) []shard.Record {
	t.Helper()
	m, err := shard.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := m.Files(dir, split)
	if err != nil {
		t.Fatal(err)
	}
	var recs []shard.Record
	if err := shard.Read(context.Background(), files, shard.ReadOptions{}, func(s shard.Sample) error {
		recs = append(recs, s.Record)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Checkpoint saves a randomly initialised model of cfg (seeded) as a training checkpoint
// would, and returns its path.
func Checkpoint(t testing.TB, cfg fusion.Config, seed int64) string {
	t.Helper()
	m, err := fusion.New(cfg, 2, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path, err := checkpoint.Save(t.TempDir(), 1, m.Params(), nil, checkpoint.Meta{Config: string(raw), Step: 1})
	if err != nil {
		t.Fatal(err)
	}
	return path
}
