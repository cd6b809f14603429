package prepare_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/stages/internal/stagetest"
	"github.com/clipgo/clipgo/stages/prepare"
)

// rowsOf returns every row of every split of a prepared dataset as split -> key -> digest of
// the row's content (image bytes, captions, label, sizes), failing on a key seen twice.
func rowsOf(t *testing.T, dir string) map[string]map[string][32]byte {
	t.Helper()
	m, err := shard.ReadManifest(dir)
	stagetest.Must(t, err)
	rows := map[string]map[string][32]byte{}
	for split := range m.Splits {
		rows[split] = map[string][32]byte{}
		for _, r := range stagetest.ReadAll(t, dir, split) {
			if _, dup := rows[split][r.Key]; dup {
				t.Errorf("%s: split %s holds key %s twice", dir, split, r.Key)
			}
			b, err := json.Marshal(r)
			stagetest.Must(t, err)
			rows[split][r.Key] = sha256.Sum256(b)
		}
	}
	return rows
}

// rejectLines returns the lines of a dataset's rejects.jsonl, sorted.
func rejectLines(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, prepare.RejectsName))
	stagetest.Must(t, err)
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	slices.Sort(lines)
	return lines
}

// prepareParts runs every part of n into out, then merges them.
func prepareParts(t *testing.T, cfg prepare.Config, n int) prepare.Summary {
	t.Helper()
	var images int64
	for i := range n {
		c := cfg
		c.Part = fmt.Sprintf("%d/%d", i, n)
		sum := stagetest.Prepare(t, c)
		if want := prepare.PartDir(cfg.Out, i, n); sum.Out != want {
			t.Errorf("part %d/%d written to %s, want %s", i, n, sum.Out, want)
		}
		images += sum.Images()
	}
	sum, err := prepare.Merge(context.Background(), cfg.Out, stagetest.Quiet)
	stagetest.Must(t, err)
	if sum.Images() != images {
		t.Errorf("merged manifest counts %d images, the parts %d", sum.Images(), images)
	}
	return sum
}

// sameRows requires two datasets to hold the same rows in the same splits.
func sameRows(t *testing.T, want, got string) {
	t.Helper()
	w, g := rowsOf(t, want), rowsOf(t, got)
	if !slices.Equal(slices.Sorted(maps.Keys(w)), slices.Sorted(maps.Keys(g))) {
		t.Fatalf("splits %v, one process %v", slices.Sorted(maps.Keys(g)), slices.Sorted(maps.Keys(w)))
	}
	for split, rows := range w {
		if len(g[split]) != len(rows) {
			t.Errorf("split %s: %d rows, one process %d", split, len(g[split]), len(rows))
		}
		for key, d := range rows {
			if gd, ok := g[split][key]; !ok {
				t.Errorf("split %s: key %s missing", split, key)
			} else if gd != d {
				t.Errorf("split %s: key %s differs from one process's row", split, key)
			}
		}
	}
}

func TestPreparePartsEqualOneProcess(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		valCount int
	}{{"3 parts", 3, 0}, {"2 parts, --val-count 17", 2, 17}, {"4 parts", 4, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.n != 3 {
				t.Skip("-short: the 3-part case alone (the race run)")
			}
			cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "one"))
			cfg.Source, cfg.Seed, cfg.ValCount = "synthetic", 3, tc.valCount
			cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = 120, 12
			one := stagetest.Prepare(t, cfg)
			if tc.valCount > 0 && one.Splits["val"].Images != int64(tc.valCount) {
				t.Fatalf("one process put %d images in val, want %d", one.Splits["val"].Images, tc.valCount)
			}
			parts := cfg
			parts.Out = filepath.Join(t.TempDir(), "parts")
			sum := prepareParts(t, parts, tc.n)
			sameRows(t, cfg.Out, parts.Out)
			for name, sp := range one.Splits {
				if got := sum.Splits[name]; got == nil || got.Images != sp.Images || got.Captions != sp.Captions {
					t.Errorf("split %s: merged %+v, one process %d images %d captions", name, got, sp.Images, sp.Captions)
				}
			}
			a, err := shard.ReadManifest(cfg.Out)
			stagetest.Must(t, err)
			b, err := shard.ReadManifest(parts.Out)
			stagetest.Must(t, err)
			ea, _ := json.Marshal(a.Extra)
			eb, _ := json.Marshal(b.Extra)
			if string(ea) != string(eb) || a.Source != b.Source || !slices.Equal(a.ClassNames, b.ClassNames) {
				t.Errorf("merged manifest describes the source as %s %s %v, one process as %s %s %v", b.Source, eb, b.ClassNames, a.Source, ea, a.ClassNames)
			}
		})
	}
}

func TestPreparePartsKeepOneProcessRejects(t *testing.T) {
	captions, images, _, good := badInputs(t)
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "one"))
	cfg.Source, cfg.Captions.File, cfg.Captions.Images = "captions", captions, images
	one := stagetest.Prepare(t, cfg)
	if one.Images() != int64(good) {
		t.Fatalf("one process wrote %d images, want %d", one.Images(), good)
	}
	parts := cfg
	parts.Out = filepath.Join(t.TempDir(), "parts")
	sum := prepareParts(t, parts, 3)
	sameRows(t, cfg.Out, parts.Out)
	if !maps.Equal(sum.Rejects, one.Rejects) {
		t.Errorf("merged rejects %v, one process %v", sum.Rejects, one.Rejects)
	}
	if a, b := rejectLines(t, cfg.Out), rejectLines(t, parts.Out); !slices.Equal(a, b) {
		t.Errorf("merged rejects.jsonl:\n%s\none process:\n%s", strings.Join(b, "\n"), strings.Join(a, "\n"))
	}
}

func TestPrepareMergeRefuses(t *testing.T) {
	base := func(t *testing.T) prepare.Config {
		cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "ds"))
		cfg.Source = "synthetic"
		cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = 40, 0
		return cfg
	}
	part := func(t *testing.T, cfg prepare.Config, p string) {
		cfg.Part = p
		stagetest.Prepare(t, cfg)
	}
	merge := func(t *testing.T, cfg prepare.Config, wants ...string) {
		t.Helper()
		manifest := filepath.Join(cfg.Out, shard.ManifestName)
		_, before := os.Stat(manifest)
		_, err := prepare.Merge(context.Background(), cfg.Out, stagetest.Quiet)
		if err == nil {
			t.Fatal("merged")
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
		if _, err := os.Stat(manifest); err == nil && before != nil {
			t.Error("a refused merge wrote a manifest")
		}
	}
	t.Run("a part missing", func(t *testing.T) {
		cfg := base(t)
		part(t, cfg, "0/3")
		part(t, cfg, "2/3")
		merge(t, cfg, "part 1 of 3", "--part 1/3")
	})
	t.Run("parts of two runs", func(t *testing.T) {
		cfg := base(t)
		part(t, cfg, "0/2")
		part(t, cfg, "1/2")
		part(t, cfg, "0/3")
		merge(t, cfg, "parts of 2 and of 3")
	})
	t.Run("other settings", func(t *testing.T) {
		cfg := base(t)
		part(t, cfg, "0/2")
		cfg.Seed = 9
		part(t, cfg, "1/2")
		merge(t, cfg, "different runs")
	})
	t.Run("an unfinished part", func(t *testing.T) {
		cfg := base(t)
		part(t, cfg, "0/2")
		stagetest.Must(t, os.MkdirAll(prepare.PartDir(cfg.Out, 1, 2), 0o755))
		merge(t, cfg, "not finished", "part-00001-of-00002")
	})
	t.Run("no parts", func(t *testing.T) {
		merge(t, base(t), "prepare the parts first")
	})
	t.Run("merged already", func(t *testing.T) {
		cfg := base(t)
		part(t, cfg, "0/2")
		part(t, cfg, "1/2")
		_, err := prepare.Merge(context.Background(), cfg.Out, stagetest.Quiet)
		stagetest.Must(t, err)
		merge(t, cfg, "already holds a dataset")
	})
}

func TestParsePart(t *testing.T) {
	for _, s := range []string{"1", "a/2", "1/0", "2/2", "-1/3", "0/100001", "1/2/3"} {
		if _, _, err := prepare.ParsePart(s); err == nil {
			t.Errorf("ParsePart(%q) accepted", s)
		}
	}
	if i, n, err := prepare.ParsePart("2/5"); err != nil || i != 2 || n != 5 {
		t.Errorf("ParsePart(2/5) = %d, %d, %v", i, n, err)
	}
}

// TestPrepareRanks runs RunRanks on a local group of 3 "ranks" (goroutines): rank 0 returns the
// merged dataset, equal to one process's.
func TestPrepareRanks(t *testing.T) {
	cfg := stagetest.PrepareConfig(filepath.Join(t.TempDir(), "one"))
	cfg.Source, cfg.Workers = "synthetic", 1
	cfg.Synthetic.N, cfg.Synthetic.ZeroShotN = 60, 6
	stagetest.Prepare(t, cfg)
	ranked := cfg
	ranked.Out = filepath.Join(t.TempDir(), "ranks")
	comms := dist.NewLocalGroup(3)
	sums := make([]prepare.Summary, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Go(func() {
			sums[r], errs[r] = prepare.RunRanks(context.Background(), ranked, c, stagetest.Quiet, io.Discard)
		})
	}
	wg.Wait()
	for r, err := range errs {
		stagetest.Must(t, err)
		if r > 0 && sums[r].Splits != nil {
			t.Errorf("rank %d returned a summary", r)
		}
	}
	if sums[0].Images() != 66 {
		t.Errorf("rank 0's merged summary counts %d images, want 66", sums[0].Images())
	}
	sameRows(t, cfg.Out, ranked.Out)

	// A rank that fails (here: an image size every rank refuses would fail them all, so give
	// rank 1 alone an out directory it cannot create) fails the job on every rank, none waits.
	bad := cfg
	bad.Out = filepath.Join(t.TempDir(), "bad")
	comms = dist.NewLocalGroup(2)
	for r, c := range comms {
		c2 := bad
		if r == 1 {
			c2.ImageSize = 1
		}
		wg.Go(func() { _, errs[r] = prepare.RunRanks(context.Background(), c2, c, stagetest.Quiet, io.Discard) })
	}
	wg.Wait()
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "rank(s) 1 of 2 failed") {
		t.Errorf("rank 0: %v, want rank 1's failure named", errs[0])
	}
	if errs[1] == nil {
		t.Error("rank 1 did not fail")
	}
}

// FuzzParsePart: any --part value is refused or gives 0 <= I < N <= MaxParts, which reads back.
func FuzzParsePart(f *testing.F) {
	for _, s := range []string{"", "0/1", "2/5", "5/5", "-1/3", "1/0", "a/b", "1/2/3", "99999/100000", "0/100001", " 1/2", "+1/2", "1/+2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i, n, err := prepare.ParsePart(s)
		if err != nil {
			return
		}
		if i < 0 || i >= n || n > prepare.MaxParts {
			t.Fatalf("ParsePart(%q) = %d, %d", s, i, n)
		}
		if s != "" {
			if i2, n2, err := prepare.ParsePart(fmt.Sprintf("%d/%d", i, n)); err != nil || i2 != i || n2 != n {
				t.Fatalf("ParsePart(%q) = %d/%d does not read back: %d, %d, %v", s, i, n, i2, n2, err)
			}
		}
	})
}
