package loader

import (
	"context"
	"io"
	"slices"
	"testing"
)

// readOrdered reads one EpochInOrder to the end, as readAll reads an Epoch.
func readOrdered(t *testing.T, cfg Config, epoch int, start int64, keys []string) []Batch {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := l.EpochInOrder(context.Background(), epoch, start, keys)
	defer e.Close()
	var out []Batch
	for {
		b, err := e.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c := *b
		c.Images, c.Keys, c.Tokens = slices.Clone(b.Images), slices.Clone(b.Keys), slices.Clone(b.Tokens)
		c.TextImage, c.Labels, c.pool = slices.Clone(b.TextImage), slices.Clone(b.Labels), nil
		b.Release()
		out = append(out, c)
	}
}

// TestEpochInOrder: a rank's epoch in a given key order holds the records Epoch gives it (the
// same caption and augmentation for each key), listed keys first in the order given (unknown
// and repeated keys passed over), the rest after in the shuffled order; a resume at a batch's
// position continues it; no keys is Epoch.
func TestEpochInOrder(t *testing.T) {
	files := writeShards(t, testRecords(t, 40, 16, false), 2, 5)
	cfg := baseConfig(files, Train)
	cfg.BatchSize, cfg.Rank, cfg.World = 4, 1, 2
	shuffled, _ := readAll(t, cfg, 3, 0)
	var keys []string
	rows := map[string][]float32{}
	imgLen := 3 * cfg.ImageSize * cfg.ImageSize
	for _, b := range shuffled {
		keys = append(keys, b.Keys...)
		for r, k := range b.Keys {
			rows[k] = b.Images[r*imgLen : (r+1)*imgLen]
		}
	}
	if len(keys) != 20 {
		t.Fatalf("rank 1 of 2 read %d of 40 records, want 20", len(keys))
	}
	// List the second half of the rank's keys, reversed, then a key it does not hold and a
	// repeat; the first half should follow in its shuffled order.
	listed := slices.Clone(keys[10:])
	slices.Reverse(listed)
	order := append(slices.Clone(listed), "k99999", listed[0])
	want := append(listed, keys[:10]...)
	got := readOrdered(t, cfg, 3, 0, order)
	var gotKeys []string
	for _, b := range got {
		gotKeys = append(gotKeys, b.Keys...)
		for r, k := range b.Keys {
			if !slices.Equal(b.Images[r*imgLen:(r+1)*imgLen], rows[k]) {
				t.Fatalf("%s: its view differs from the shuffled epoch's", k)
			}
		}
	}
	if !slices.Equal(gotKeys, want) {
		t.Fatalf("keys in order %v\nwant %v", gotKeys, want)
	}
	rest := readOrdered(t, cfg, 3, got[1].Position, order)
	if digest(rest) != digest(got[2:]) {
		t.Fatalf("resuming at position %d did not reproduce batches 2..%d", got[1].Position, len(got)-1)
	}
	if none := readOrdered(t, cfg, 3, 0, nil); digest(none) != digest(shuffled) {
		t.Fatal("EpochInOrder without keys differs from Epoch")
	}
}
