package loader

import (
	"context"
)

// EpochInOrder is Epoch with this rank's samples of the epoch in the order of keys instead of
// the shuffle's: the trainer's hard-negative batches, where consecutive samples are near
// neighbours. The rank reads the same records as Epoch would (its share of the epoch's row
// groups), holds them in memory (its share of the split, images included: meant for splits
// that fit), and emits first those whose keys are listed, in that order, then the others
// (and repeats of a key) in the shuffled order; listed keys it does not hold are passed
// over. A sample's position is its index in that sequence, so that a checkpoint's
// Batch.Position resumes the same order given the same keys. Each sample draws its caption
// and augmentation as in Epoch (a function of seed, epoch and key). With no keys it is Epoch.
func (l *Loader) EpochInOrder(ctx context.Context, epoch int, start int64, keys []string) *Epoch {
	if len(keys) == 0 {
		return l.Epoch(ctx, epoch, start)
	}
	cfg := l.cfg
	return l.stream(ctx, epoch, func(ctx context.Context, emit func(item) error) error {
		return readInOrder(ctx, cfg, epoch, start, keys, emit)
	})
}

// readInOrder reads the rank's records of the epoch, then emits them in the order of keys
// (see EpochInOrder), dropping the first start.
func readInOrder(ctx context.Context, cfg Config, epoch int, start int64, keys []string, emit func(item) error) error {
	listed := make(map[string]bool, len(keys))
	for _, k := range keys {
		listed[k] = true
	}
	held := make(map[string]item, len(keys))
	var rest []item // unlisted keys and repeats, in the shuffled order
	err := readEpoch(ctx, cfg, epoch, 0, func(it item) error {
		if _, dup := held[it.rec.Key]; listed[it.rec.Key] && !dup {
			held[it.rec.Key] = it
		} else {
			rest = append(rest, it)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var pos int64
	next := func(it item) error {
		it.pos, pos = pos, pos+1
		if it.pos < start {
			return nil
		}
		return emit(it)
	}
	for _, k := range keys {
		it, ok := held[k]
		if !ok {
			continue
		}
		delete(held, k) // a key listed twice is emitted once
		if err := next(it); err != nil {
			return err
		}
	}
	for _, it := range rest {
		if err := next(it); err != nil {
			return err
		}
	}
	return nil
}
