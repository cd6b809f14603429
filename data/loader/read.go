package loader

import (
	"context"

	"github.com/clipgo/clipgo/data/shard"
)

// columns are the shard columns the loader reads; the others are never read from disk.
var columns = []string{shard.ColKey, shard.ColCaption, shard.ColCaptions, shard.ColJPG, shard.ColLabel}

// readEpoch streams this rank's records of one epoch, from sample position start, in the
// shard reader's deterministic order: shuffled by (Seed, Epoch) in training, file order in
// evaluation.
func readEpoch(ctx context.Context, cfg Config, epoch int, start int64, emit func(item) error) error {
	opts := shard.ReadOptions{
		Columns: columns,
		Seed:    int64(cfg.Seed),
		Epoch:   epoch,
		Shuffle: cfg.Mode == Train,
		Rank:    cfg.Rank,
		World:   cfg.World,
		Workers: cfg.ReadWorkers,
		Skip:    start,
	}
	return shard.Read(ctx, cfg.Files, opts, func(s shard.Sample) error {
		return emit(item{rec: s.Record, pos: s.Pos.Index, file: s.Pos.File, rowGroup: s.Pos.RowGroup})
	})
}
