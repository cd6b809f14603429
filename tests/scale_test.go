package tests

// Issue 19: prepare across processes and machines (item 4) and memory flat with the data size
// (item 3; `make scale` measures the full 10,000 vs 200,000 pairs, scripts/scale.sh).

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/clipgo/clipgo/data/shard"
)

// datasetRows reads every row of a prepared dataset: split -> key -> digest of the row.
func datasetRows(t *testing.T, dir string) map[string]map[string][32]byte {
	t.Helper()
	m, err := shard.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]map[string][32]byte{}
	for split := range m.Splits {
		files, err := m.Files(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		rows[split] = map[string][32]byte{}
		if err := shard.Read(context.Background(), files, shard.ReadOptions{}, func(s shard.Sample) error {
			if _, dup := rows[split][s.Record.Key]; dup {
				return fmt.Errorf("split %s holds key %s twice", split, s.Record.Key)
			}
			b, err := json.Marshal(s.Record)
			rows[split][s.Record.Key] = sha256.Sum256(b)
			return err
		}); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	return rows
}

// requireSameRows fails unless got holds exactly want's rows (keys and contents) in the same
// splits.
func requireSameRows(t *testing.T, what string, want, got map[string]map[string][32]byte) {
	t.Helper()
	if !slices.Equal(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))) {
		t.Fatalf("%s: splits %v, one process %v", what, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for split, rows := range want {
		bad := 0
		for key, d := range rows {
			if got[split][key] != d {
				bad++
			}
		}
		if bad > 0 || len(got[split]) != len(rows) {
			t.Errorf("%s: split %s has %d rows, one process %d; %d of one process's rows missing or different", what, split, len(got[split]), len(rows), bad)
		}
	}
}

// TestPrepareAcrossRanks: mpirun -np 2 and -np 4 clipgo-mpi prepare, and three processes of
// prepare --part I/3 then --merge, each give one process's rows in the same splits.
func TestPrepareAcrossRanks(t *testing.T) {
	bin, mpirun := buildMPICLI(t)
	args := func(out string, extra ...string) []string {
		return append([]string{"prepare", "--source", "synthetic", "--n", "300", "--zeroshot-n", "20", "--image-size", "32",
			"--row-group-rows", "16", "--shard-rows", "64", "--workers", "1", "--val-count", "31", "--out", out}, extra...)
	}
	root := t.TempDir()
	one := filepath.Join(root, "one")
	if msg, err := run(t, bin, "", args(one)...); err != nil { // no launcher: one process
		t.Fatalf("prepare: %v\n%s", err, msg)
	}
	want := datasetRows(t, one)
	if n := len(want["val"]); n != 31 {
		t.Fatalf("one process put %d images in val, want 31", n)
	}
	for _, n := range []int{2, 4} {
		out := filepath.Join(root, "np"+strconv.Itoa(n))
		msg, err := mpiCommand(mpirun, n, bin, args(out)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mpirun -np %d clipgo-mpi prepare: %v\n%s", n, err, msg)
		}
		if !strings.Contains(string(msg), "prepared "+out) || strings.Count(string(msg), "prepared ") != 1 {
			t.Errorf("mpirun -np %d: want one summary, rank 0's:\n%s", n, msg)
		}
		requireSameRows(t, fmt.Sprintf("mpirun -np %d", n), want, datasetRows(t, out))
	}
	parts := filepath.Join(root, "parts")
	for i := range 3 {
		if msg, err := run(t, bin, "", args(parts, "--part", fmt.Sprintf("%d/3", i))...); err != nil {
			t.Fatalf("prepare --part %d/3: %v\n%s", i, err, msg)
		}
	}
	if msg, err := run(t, bin, "", "prepare", "--merge", "--out", parts); err != nil || !strings.Contains(msg, "merged "+parts) {
		t.Fatalf("prepare --merge: %v\n%s", err, msg)
	}
	requireSameRows(t, "--part I/3 + --merge", want, datasetRows(t, parts))
}

// TestMemoryFlatWithDataSize is the quick form of `make scale`: the peak RSS of prepare at
// 2,000 and 20,000 pairs (32 px) must agree within 25% (make scale: 10% at 10,000 vs 200,000,
// over prepare, pretrain and embed).
func TestMemoryFlatWithDataSize(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: prepares 22,000 images (make scale measures the full case)")
	}
	bin := buildCLI(t)
	peak := func(n int) int64 {
		out := filepath.Join(t.TempDir(), "ds")
		c := faultStart(t, bin, "prepare", "--source", "synthetic", "--n", strconv.Itoa(n), "--zeroshot-n", "0",
			"--image-size", "32", "--workers", "2", "--out", out)
		if code, msg := c.wait(); code != 0 {
			t.Fatalf("prepare --n %d: exit %d\n%s", n, code, msg)
		}
		// A child's ru_maxrss starts from this test process's RSS (see memory_test.go): a floor
		// well below prepare's own.
		ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Skip("no rusage on this system")
		}
		return ru.Maxrss << 10
	}
	small, large := peak(2_000), peak(20_000)
	ratio := float64(large) / float64(small)
	t.Logf("prepare peak RSS: %d MiB at 2,000 pairs, %d MiB at 20,000 (%.2fx)", small>>20, large>>20, ratio)
	if ratio > 1.25 {
		t.Errorf("prepare's peak RSS grew %.2fx from 2,000 to 20,000 pairs (%d -> %d MiB): something holds per-image state", ratio, small>>20, large>>20)
	}
}
