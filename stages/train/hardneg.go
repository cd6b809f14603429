package train

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/atomicfile"
)

// HardNegativesConfig is train.hard_negatives: batches of near neighbours, mined from the
// model's own image embeddings, so that in-batch negatives are hard ones. Off unless
// every_epochs is set.
type HardNegativesConfig struct {
	// EveryEpochs mines epochs e > 0 with e a multiple of it: when such an epoch starts, the
	// training images are embedded with the current weights (the inference path: every patch,
	// no augmentation) and the epoch's order is built from near-neighbour groups. The other
	// epochs keep the shuffled order. 0: off.
	EveryEpochs int `yaml:"every_epochs,omitempty"`
	// Group is the number of images in a group of neighbours (a seed and its group−1 nearest
	// unused neighbours by cosine): it must divide the images of a stream's batch
	// (train.batch_size / streams / data.captions_per_image). Default 8.
	Group int `yaml:"group,omitempty"`
}

// DefaultHardNegativeGroup is train.hard_negatives.group when the recipe gives none.
const DefaultHardNegativeGroup = 8

// On says whether hard-negative mining is on.
func (c HardNegativesConfig) On() bool { return c.EveryEpochs > 0 }

func (c HardNegativesConfig) group() int { return cmp.Or(c.Group, DefaultHardNegativeGroup) }

func (c HardNegativesConfig) validate() error {
	switch {
	case c.EveryEpochs < 0:
		return fmt.Errorf("train.hard_negatives.every_epochs %d must not be negative (0: off)", c.EveryEpochs)
	case c.Group < 0 || c.Group == 1:
		return fmt.Errorf("train.hard_negatives.group %d must be at least 2 (0: %d)", c.Group, DefaultHardNegativeGroup)
	}
	return nil
}

// mines says whether epoch is built from neighbours (epoch 0 has no embeddings to mine yet).
func (c HardNegativesConfig) mines(epoch int) bool {
	return c.On() && epoch > 0 && epoch%c.EveryEpochs == 0
}

// checkShare refuses a group that does not divide a stream's batch of share rows, k rows per
// image, so that no group straddles two batches.
func (c HardNegativesConfig) checkShare(share, k int) error {
	if !c.On() {
		return nil
	}
	if images := share / max(k, 1); images%c.group() != 0 {
		return fmt.Errorf("train.hard_negatives.group %d must divide the %d images of each stream's batch (train.batch_size / data.streams / data.captions_per_image)",
			c.group(), images)
	}
	return nil
}

// neighbourOrder orders the n rows of emb ([n, dim], L2-normalised) in groups of near
// neighbours: seeds are taken in a random order drawn from seed, and each seed not yet placed
// is followed by its group−1 most similar rows (cosine, ties to the lower index) among those
// not yet placed. Every row appears once; the order is a function of (emb, group, seed) only.
// The search is exhaustive, O(n²·dim/group): written here because it is a few lines, and the
// split is embedded in full each mined epoch anyway (an index such as package index would pay
// off only far beyond the splits that fit in memory, which EpochInOrder needs).
func neighbourOrder(emb []float32, dim, group int, seed uint64) []int {
	n := len(emb) / dim
	placed := make([]bool, n)
	order := make([]int, 0, n)
	rng := rand.New(rand.NewPCG(seed, 0x68617264)) // "hard"
	type cand struct {
		i   int
		sim float32
	}
	best := make([]cand, 0, group)
	for _, s := range rng.Perm(n) {
		if placed[s] {
			continue
		}
		placed[s] = true
		order = append(order, s)
		q := emb[s*dim : (s+1)*dim]
		best = best[:0]
		for j := range n {
			if placed[j] {
				continue
			}
			var sim float32
			for d, x := range emb[j*dim : (j+1)*dim] {
				sim += x * q[d]
			}
			if len(best) == group-1 && sim <= best[len(best)-1].sim {
				continue
			}
			// Insert in descending order of similarity; an equal one goes after (lower index first).
			at := len(best)
			for at > 0 && best[at-1].sim < sim {
				at--
			}
			if len(best) < group-1 {
				best = append(best, cand{})
			}
			copy(best[at+1:], best[at:len(best)-1])
			best[at] = cand{j, sim}
		}
		for _, c := range best {
			placed[c.i] = true
			order = append(order, c.i)
		}
	}
	return order
}

// hardNegatives is the trainer's state of train.hard_negatives on this rank.
type hardNegatives struct {
	cfg HardNegativesConfig
	// The split's embeddings of the latest pass, and the step they were taken at: the streams
	// of a rank that start an epoch at the same step share one pass.
	step int64
	keys []string
	emb  []float32
	dim  int
}

// orderName is the file of a stream's mined order for one epoch, in the run directory: a
// resume reads it, since the weights it was mined with are gone by then.
func orderName(stream, epoch int) string {
	return filepath.Join("hard_negatives", fmt.Sprintf("stream-%03d-epoch-%06d.json", stream, epoch))
}

// orderFile is the content of an order file.
type orderFile struct {
	Stream int      `json:"stream"`
	Epoch  int      `json:"epoch"`
	Keys   []string `json:"keys"`
}

// maxOrderBytes bounds an order file read back: its keys are a stream's share of a split
// that EpochInOrder holds in memory.
const maxOrderBytes = 1 << 30

// readOrder reads and checks an order file's content for (stream, epoch).
func readOrder(r io.Reader, stream, epoch int) ([]string, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxOrderBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxOrderBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxOrderBytes)
	}
	var f orderFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	if f.Stream != stream || f.Epoch != epoch {
		return nil, fmt.Errorf("holds stream %d epoch %d, want stream %d epoch %d", f.Stream, f.Epoch, stream, epoch)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New("lists no keys")
	}
	return f.Keys, nil
}

// streamOrder returns the key order of stream s's current epoch, or nil when the epoch is
// not mined: the order file of a run that mined it before (a resume), else a new mining
// with the current weights, written to the run directory.
func (t *trainer) streamOrder(ctx context.Context, s *stream) ([]string, error) {
	h := t.hardneg
	if h == nil || !h.cfg.mines(s.epoch) {
		return nil, nil
	}
	path := filepath.Join(t.opts.RunDir, orderName(s.id, s.epoch))
	if f, err := os.Open(path); err == nil {
		keys, err := readOrder(f, s.id, s.epoch)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("train.hard_negatives: order %s: %w", path, err)
		}
		return keys, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("train.hard_negatives: %w", err)
	} else if s.position > 0 {
		t.log.Warn("train.hard_negatives: the order of the epoch resumed is not in the run directory: mined again with the checkpoint's weights, so the rest of the epoch differs from the interrupted run's",
			"stream", s.id, "epoch", s.epoch, "missing", path)
	}
	start := time.Now()
	if h.keys == nil || h.step != t.step {
		t.log.Info("hard negatives: embedding the training images", "stream", s.id, "epoch", s.epoch, "step", t.step)
		if err := h.embed(ctx, t, s.loader.Config().Files); err != nil {
			return nil, fmt.Errorf("train.hard_negatives: embedding the training images: %w", err)
		}
		h.step = t.step
	}
	embedded := time.Since(start)
	keys, err := h.order(ctx, s.loader.Config(), s.epoch, uint64(t.cfg.Train.Seed))
	if err != nil {
		return nil, fmt.Errorf("train.hard_negatives: %w", err)
	}
	raw, err := json.Marshal(orderFile{Stream: s.id, Epoch: s.epoch, Keys: keys})
	if err == nil {
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = atomicfile.WriteFile(path, raw)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("train.hard_negatives: saving the order: %w", err)
	}
	t.log.Info("hard negatives mined", "stream", s.id, "epoch", s.epoch, "step", t.step, "images", len(keys),
		"embed_s", embedded.Seconds(), "order_s", (time.Since(start) - embedded).Seconds())
	return keys, nil
}

// embed embeds every training image with the model's current weights, through the
// inference path (the evaluation transform, every patch).
func (h *hardNegatives) embed(ctx context.Context, t *trainer, files []string) error {
	cfg := t.cfg
	enc, err := fusion.NewEncoder(t.model)
	if err != nil {
		return err
	}
	defer enc.Close()
	l, err := loader.New(loader.Config{Files: files, Mode: loader.Eval, BatchSize: t.model.Batch(),
		ImageSize: cfg.Model.Vision.ImageSize, ContextLen: cfg.Model.Text.ContextLength, Tokenize: t.tok.TokenizeInto,
		Seed: uint64(cfg.Train.Seed), DecodeWorkers: cfg.Data.Workers})
	if err != nil {
		return err
	}
	ep := l.Epoch(ctx, 0, 0)
	defer ep.Close()
	h.keys, h.emb, h.dim = h.keys[:0], h.emb[:0], enc.Dim()
	for {
		b, err := ep.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		emb, err := enc.Images(b.Images)
		if err == nil {
			h.keys = append(h.keys, b.Keys...)
			h.emb = append(h.emb, emb...)
		}
		b.Release()
		if err != nil {
			return err
		}
	}
}

// order returns the mined order of the share of the split that the stream read by lc reads in
// epoch: its keys (in the shuffled order, so that the order does not depend on how the split
// is stored) grouped by neighbourOrder with a seed of (seed, epoch, stream); keys without an
// embedding (images the embedding pass skipped) go last.
func (h *hardNegatives) order(ctx context.Context, lc loader.Config, epoch int, seed uint64) ([]string, error) {
	var share []string
	err := shard.Read(ctx, lc.Files, shard.ReadOptions{Columns: shard.TextColumns, Seed: int64(lc.Seed), Epoch: epoch,
		Shuffle: true, Rank: lc.Rank, World: lc.World, Workers: lc.ReadWorkers}, func(s shard.Sample) error {
		share = append(share, s.Key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	at := make(map[string]int, len(h.keys))
	for i, k := range h.keys {
		at[k] = i
	}
	var keys, missing []string
	emb := make([]float32, 0, len(share)*h.dim)
	for _, k := range share {
		if i, ok := at[k]; ok {
			keys = append(keys, k)
			emb = append(emb, h.emb[i*h.dim:(i+1)*h.dim]...)
		} else {
			missing = append(missing, k)
		}
	}
	ord := neighbourOrder(emb, h.dim, h.cfg.group(), seed^mix64(uint64(epoch))^mix64(uint64(lc.Rank)<<32))
	out := make([]string, 0, len(share))
	for _, i := range ord {
		out = append(out, keys[i])
	}
	return append(out, missing...), nil
}

// mix64 is splitmix64's finaliser: it spreads nearby inputs apart.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// open starts the stream's current epoch at its position: in the mined order when
// train.hard_negatives mines this epoch.
func (s *stream) open(ctx context.Context) (*loader.Epoch, error) {
	if s.order == nil {
		return s.loader.Epoch(ctx, s.epoch, s.position), nil
	}
	keys, err := s.order(ctx, s)
	if err != nil {
		return nil, err
	}
	return s.loader.EpochInOrder(ctx, s.epoch, s.position, keys), nil
}
