package shard

import (
	"context"
	"errors"
	"os"
	"testing"
)

func TestSamplesIterator(t *testing.T) {
	files, want := writeShards(t, 2, 30, 8)
	n := 0
	for s, err := range Samples(context.Background(), files, ReadOptions{Columns: []string{ColKey}}) {
		if err != nil {
			t.Fatal(err)
		}
		if s.Key != want[n].Key {
			t.Fatalf("sample %d key %s, want %s", n, s.Key, want[n].Key)
		}
		if n++; n == 45 {
			break
		}
	}
	if n != 45 {
		t.Fatalf("iterated %d samples, want 45", n)
	}
	os.Remove(files[1])
	var last error
	for _, err := range Samples(context.Background(), files, ReadOptions{}) {
		last = err
	}
	if !errors.Is(last, os.ErrNotExist) {
		t.Fatalf("final error %v, want not-exist", last)
	}
}

func TestSampleSeedIndependentOfLayout(t *testing.T) {
	files, _ := writeShards(t, 3, 40, 8)
	seeds := map[string]uint64{}
	for _, s := range readAll(t, files, ReadOptions{Columns: []string{ColKey}}) {
		seeds[s.Key] = SampleSeed(5, 1, s.Pos)
	}
	distinct := map[uint64]bool{}
	for rank := range 3 {
		opts := ReadOptions{Columns: []string{ColKey}, Shuffle: true, Seed: 9, Rank: rank, World: 3, Workers: 2}
		for _, s := range readAll(t, files, opts) {
			if got := SampleSeed(5, 1, s.Pos); got != seeds[s.Key] {
				t.Fatalf("key %s: seed %x on rank %d of 3, %x on one rank", s.Key, got, rank, seeds[s.Key])
			}
			if SampleSeed(5, 2, s.Pos) == seeds[s.Key] || SampleSeed(6, 1, s.Pos) == seeds[s.Key] {
				t.Fatalf("key %s: seed ignores epoch or run seed", s.Key)
			}
			distinct[seeds[s.Key]] = true
		}
	}
	if len(distinct) != len(seeds) {
		t.Fatalf("%d distinct seeds for %d samples", len(distinct), len(seeds))
	}
}
