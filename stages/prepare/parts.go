package prepare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clipgo/clipgo/data/ingest"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/internal/fileinput"
	"github.com/clipgo/clipgo/internal/runlock"
)

// Preparing one dataset on several processes or machines (`prepare --part i/n`, or
// `clipgo-mpi prepare` under an MPI launcher): every part scans the whole source but keeps only
// the images whose key hashes to it, so the parts are disjoint and together hold exactly the
// images of one process's run. An image's train/val split is a hash of its key too (splitOf),
// the same in every part, and a --val-count threshold is computed by every part over the whole
// source; duplicates of a key all land in its part, which keeps the first as one process
// would. A part writes a complete dataset of its own under OUT/parts/part-I-of-N; Merge then
// writes OUT/manifest.json over the parts' shards (where they lie: nothing is copied) and
// OUT/rejects.jsonl. Only the shards' grouping and order differ from one process's output.

// MaxParts bounds n of --part i/n.
const MaxParts = 100_000

// PartsDir is the folder, inside a dataset directory, that holds its parts.
const PartsDir = "parts"

// partExtraKey is the manifest Extra entry that marks a part and records how it split.
const partExtraKey = "part"

// partSalt seeds the key hash that assigns images to parts; it differs from the split's hash
// (keyFraction with the --seed) so that every part gets its share of val.
const partSalt = 0x7061727473 // "parts"

// ParsePart reads "i/n" (i counted from 0, 0 <= i < n <= MaxParts); "" is the whole input
// (0, 1).
func ParsePart(s string) (i, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("prepare --part %q: want I/N, e.g. 0/4 (part I of N, counted from 0)", s)
	}
	if n < 1 || n > MaxParts {
		return 0, 0, fmt.Errorf("prepare --part %q: N must be in [1, %d]", s, MaxParts)
	}
	if i < 0 || i >= n {
		return 0, 0, fmt.Errorf("prepare --part %q: I must be in [0, %d] (parts are counted from 0)", s, n-1)
	}
	return i, n, nil
}

// PartDir is where part i of n of the dataset dir is written.
func PartDir(dir string, i, n int) string {
	return filepath.Join(dir, PartsDir, fmt.Sprintf("part-%05d-of-%05d", i, n))
}

var partDirName = regexp.MustCompile(`^part-(\d{5})-of-(\d{5})$`)

// partOf returns the part in [0, n) that an image of this key belongs to.
func partOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	return min(int(keyFraction(partSalt, key)*float64(n)), n-1)
}

// inPart reports whether this run keeps the image of key.
func (cfg *Config) inPart(key string) bool { return partOf(key, cfg.parts) == cfg.part }

// ownsReject reports whether this run records a source's reject: the part of its key, or part
// 0 for a reject without a key (a malformed line), so that the merged rejects equal one
// process's.
func (cfg *Config) ownsReject(r ingest.Reject) bool {
	if r.Key == "" {
		return cfg.part == 0
	}
	return cfg.inPart(r.Key)
}

// partInfo is what a part records in its manifest (Extra["part"]) for Merge to check.
type partInfo struct {
	Index       int     `json:"index"`
	Count       int     `json:"count"`
	Seed        int64   `json:"seed"`
	ValFraction float64 `json:"val_fraction"` // the split's key-hash threshold (after --val-count)
}

// withPartInfo adds this part's partInfo to a source's manifest extra.
func (cfg *Config) withPartInfo(extra map[string]any) map[string]any {
	if cfg.parts <= 1 {
		return extra
	}
	extra = maps.Clone(extra)
	if extra == nil {
		extra = make(map[string]any)
	}
	extra[partExtraKey] = partInfo{Index: cfg.part, Count: cfg.parts, Seed: cfg.Seed, ValFraction: cfg.ValFraction}
	return extra
}

// Merge writes the manifest of the dataset dir from its n parts (dir/parts/part-*-of-N, each
// prepared by `prepare --part i/N --out dir`), and dir/rejects.jsonl from theirs. It refuses
// parts missing, unfinished, or prepared from another source or with other settings. The
// shards stay in the parts' folders; the manifest points to them.
func Merge(ctx context.Context, dir string, log *slog.Logger) (_ Summary, err error) {
	start := time.Now()
	if log == nil {
		log = slog.Default()
	}
	if dir == "" {
		return Summary{}, errors.New("prepare --merge: --out is required (the dataset directory holding parts/)")
	}
	if _, err := os.Stat(filepath.Join(dir, PartsDir)); err != nil {
		return Summary{}, fmt.Errorf("prepare --merge: %w (prepare the parts first: prepare --part I/N --out %s)", err, dir)
	}
	lock, err := runlock.Acquire(dir, "prepare --merge")
	if err != nil {
		return Summary{}, fmt.Errorf("prepare --merge: %w", err)
	}
	defer func() {
		if rerr := lock.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("prepare --merge: %w", rerr)
		}
	}()
	if w := lock.Warning(); w != "" {
		log.Warn(w)
	}
	if err := claimOutDir(dir); err != nil {
		return Summary{}, err
	}
	names, err := partNames(dir)
	if err != nil {
		return Summary{}, err
	}
	var parts []shard.ManifestPart
	var first partInfo
	for k, name := range names {
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		m, err := shard.ReadManifest(filepath.Join(dir, PartsDir, name))
		if err != nil {
			return Summary{}, fmt.Errorf("prepare --merge: part %s is not finished or not readable (prepare it again with --part): %w", name, err)
		}
		info, err := readPartInfo(m)
		if err != nil {
			return Summary{}, fmt.Errorf("prepare --merge: %s: %w", name, err)
		}
		if k == 0 {
			first = info
		}
		if info.Index != k || info.Count != len(names) || info.Seed != first.Seed || info.ValFraction != first.ValFraction {
			return Summary{}, fmt.Errorf("prepare --merge: %s records part %d of %d (seed %d, val threshold %g), unlike part 0 (part of %d, seed %d, val threshold %g): the parts come from different runs",
				name, info.Index, info.Count, info.Seed, info.ValFraction, len(names), first.Seed, first.ValFraction)
		}
		delete(m.Extra, partExtraKey)
		if len(m.Extra) == 0 {
			m.Extra = nil
		}
		parts = append(parts, shard.ManifestPart{Dir: PartsDir + "/" + name, Manifest: m})
	}
	m, err := shard.MergeManifests(parts)
	if err != nil {
		return Summary{}, fmt.Errorf("prepare --merge %s: %w", dir, err)
	}
	if err := mergeRejects(dir, names); err != nil {
		return Summary{}, err
	}
	m.Created = time.Now().UTC()
	if err := shard.WriteManifest(dir, m); err != nil {
		return Summary{}, err
	}
	return Summary{Out: dir, Splits: m.Splits, Rejects: m.Rejects, Elapsed: time.Since(start)}, nil
}

// partNames lists dir/parts/part-I-of-N in order, and refuses a set that is not parts 0..N-1 of
// one N.
func partNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, PartsDir))
	if err != nil {
		return nil, fmt.Errorf("prepare --merge: %w", err)
	}
	var names []string
	n := -1
	for _, e := range entries {
		mt := partDirName.FindStringSubmatch(e.Name())
		if mt == nil || !e.IsDir() {
			continue
		}
		count, _ := strconv.Atoi(mt[2])
		if n >= 0 && count != n {
			return nil, fmt.Errorf("prepare --merge: %s holds parts of %d and of %d: remove the parts of the run you do not want", filepath.Join(dir, PartsDir), n, count)
		}
		n = count
		names = append(names, e.Name())
	}
	if n < 1 || n > MaxParts {
		return nil, fmt.Errorf("prepare --merge: no part-I-of-N folder in %s", filepath.Join(dir, PartsDir))
	}
	slices.Sort(names)
	for i := range n {
		if want := fmt.Sprintf("part-%05d-of-%05d", i, n); i >= len(names) || names[i] != want {
			return nil, fmt.Errorf("prepare --merge: part %d of %d (%s) is missing: prepare it with --part %d/%d", i, n, filepath.Join(dir, PartsDir, want), i, n)
		}
	}
	return names, nil
}

// readPartInfo reads the partInfo a part's manifest records.
func readPartInfo(m *shard.Manifest) (partInfo, error) {
	raw, ok := m.Extra[partExtraKey]
	if !ok {
		return partInfo{}, errors.New("its manifest records no part: not prepared with --part")
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return partInfo{}, err
	}
	var info partInfo
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		return partInfo{}, fmt.Errorf("its manifest's part record: %w", err)
	}
	return info, nil
}

// mergeRejects concatenates the parts' rejects.jsonl, in part order, into dir/rejects.jsonl.
func mergeRejects(dir string, names []string) error {
	out, err := atomicfile.Create(filepath.Join(dir, RejectsName))
	if err != nil {
		return fmt.Errorf("prepare --merge: %w", err)
	}
	defer out.Abort()
	for _, name := range names {
		p := filepath.Join(dir, PartsDir, name, RejectsName)
		f, err := fileinput.OpenRegular(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("prepare --merge: %w", err)
		}
		_, err = io.Copy(out, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("prepare --merge: %s: %w", p, err)
		}
	}
	return out.Commit()
}

// RunRanks prepares cfg on the ranks of comm: rank r prepares part r of comm.Size() (cfg.Part
// must be empty), every rank reports its result to all, and rank 0 merges the parts when all
// succeeded. With one rank it is Run. Every rank returns the merged summary's error, if any,
// and rank 0 the merged summary.
func RunRanks(ctx context.Context, cfg Config, comm *dist.Comm, log *slog.Logger, progressTo io.Writer) (Summary, error) {
	if comm == nil || comm.Size() == 1 {
		return Run(ctx, cfg, log, progressTo)
	}
	start := time.Now()
	if cfg.Part != "" {
		return Summary{}, fmt.Errorf("prepare --part %s: not under an MPI launcher, whose ranks are the parts", cfg.Part)
	}
	rank, size := comm.Rank(), comm.Size()
	cfg.Part = fmt.Sprintf("%d/%d", rank, size)
	_, runErr := Run(ctx, cfg, log, progressTo)
	// Every rank reaches the all-gather, failed or not, so none waits for a rank that gave up.
	ok := []int64{1}
	if runErr != nil {
		ok[0] = 0
	}
	all := make([]int64, size)
	if err := comm.AllGatherInt64(ok, all); err != nil {
		return Summary{}, errors.Join(runErr, err)
	}
	if runErr != nil {
		return Summary{}, fmt.Errorf("rank %d of %d: %w", rank, size, runErr)
	}
	var failed []string
	for r, v := range all {
		if v == 0 {
			failed = append(failed, strconv.Itoa(r))
		}
	}
	if len(failed) > 0 {
		return Summary{}, fmt.Errorf("prepare: rank(s) %s of %d failed (their errors are above); rerun only those parts with `clipgo prepare --part R/%d`, then `clipgo prepare --merge --out %s`",
			strings.Join(failed, ", "), size, size, cfg.Out)
	}
	if rank != 0 {
		return Summary{}, nil
	}
	sum, err := Merge(ctx, cfg.Out, log)
	sum.Elapsed = time.Since(start)
	return sum, err
}
