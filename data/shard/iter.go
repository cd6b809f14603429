package shard

import (
	"context"
	"errors"
	"hash/fnv"
	"iter"
	"path/filepath"
)

var errStopped = errors.New("iteration stopped")

// Samples is Read as an iterator: it yields each sample with a nil error, and at most one
// final (Sample{}, err) when reading fails. Breaking out of the loop stops the read.
func Samples(ctx context.Context, files []string, opts ReadOptions) iter.Seq2[Sample, error] {
	return func(yield func(Sample, error) bool) {
		err := Read(ctx, files, opts, func(s Sample) error {
			if !yield(s, nil) {
				return errStopped
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopped) {
			yield(Sample{}, err)
		}
	}
}

// SampleSeed derives a per-sample seed (for augmentation) from the run's seed, the epoch
// and where the sample is stored: the file's base name and the row in the file. It does not
// depend on the rank, world size, worker count or shuffle order, so a sample gets the same
// augmentation in a given epoch however the run is laid out.
func SampleSeed(seed int64, epoch int, p Position) uint64 {
	h := fnv.New64a()
	h.Write([]byte(filepath.Base(p.File)))
	x := h.Sum64() ^ uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(epoch)*0xbf58476d1ce4e5b9 ^ uint64(p.FileRow)*0x94d049bb133111eb
	// splitmix64 finaliser
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
