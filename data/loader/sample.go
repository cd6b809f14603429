package loader

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/pipeline"
)

// item is one record as read, with where it came from (for errors) and its position in this
// epoch's order on this rank (for resuming).
type item struct {
	rec      shard.Record
	pos      int64
	file     string
	rowGroup int
}

// sample is a record on its way to a batch. image and tokens come from the loader's pools and
// go back to them when the batch is collated.
type sample struct {
	pos      int64
	key      string
	label    int32
	hasLabel bool
	captions []string    // the chosen captions (training: one per view) or the captions to tokenize (eval)
	images   [][]float32 // the views, [3,S,S] each: CaptionsPerImage in training, one in eval
	tokens   []int32     // [len(captions), L]
}

// sampleRNG returns the RNG of one sample in one epoch: a function of (seed, epoch, key) only,
// so that neither the worker count nor the shard order changes what a sample draws.
func sampleRNG(seed uint64, epoch int, key string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(key))
	return rand.New(rand.NewPCG(mix(seed^mix(uint64(epoch))), h.Sum64()))
}

// mix is splitmix64's finaliser: it spreads nearby inputs (epochs 0, 1, 2 …) far apart.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// reject handles a bad record: in strict mode an error naming it, else a counted skip.
func (e *Epoch) reject(it item, reason string, err error) error {
	err = fmt.Errorf("key %q, shard %s row group %d: %w", it.rec.Key, it.file, it.rowGroup, err)
	if e.l.cfg.Strict {
		return err
	}
	e.skips.add(reason)
	return fmt.Errorf("%w: %w", pipeline.ErrSkip, err)
}

// decode turns a record into a sample: decoded, transformed image and chosen captions.
func (e *Epoch) decode(it item) (*sample, error) {
	cfg := &e.l.cfg
	caps := it.rec.AllCaptions()
	if len(caps) == 0 {
		return nil, e.reject(it, "no_caption", errors.New("record has no caption"))
	}
	img, _, err := imageproc.Decode(it.rec.JPG, imageproc.DefaultLimits)
	if err != nil {
		return nil, e.reject(it, imageproc.Reason(err), err)
	}
	s := &sample{pos: it.pos, key: it.rec.Key}
	if it.rec.Label != nil {
		s.label, s.hasLabel = *it.rec.Label, true
	}
	if cfg.Mode == Train {
		// Every draw comes in a fixed order: the captions, each view's augmentation, then
		// word dropout, so that one caption per image without word dropout draws what it did
		// before these options existed.
		rng := sampleRNG(cfg.Seed, e.epoch, it.rec.Key)
		k := max(cfg.CaptionsPerImage, 1)
		if k == 1 {
			j := rng.IntN(len(caps)) // open_clip's random caption; drawn before the augmentation
			s.captions = caps[j : j+1]
		} else {
			s.captions = pickCaptions(caps, k, rng)
		}
		s.images = make([][]float32, k)
		for r := range k {
			s.images[r] = e.l.pool.getImage()
			if err = cfg.Augment.Apply(s.images[r], img, rng); err != nil {
				break
			}
		}
		if cfg.WordDropout > 0 {
			s.captions = dropWords(s.captions, cfg.WordDropout, rng)
		}
	} else {
		s.images = [][]float32{e.l.pool.getImage()}
		s.captions = caps[:1]
		if cfg.AllCaptions {
			s.captions = caps
		}
		err = imageproc.EvalTransform(s.images[0], img, cfg.ImageSize)
	}
	if err != nil { // the image decoded, so this is a configuration error: stop
		for _, im := range s.images {
			if im != nil {
				e.l.pool.putImage(im)
			}
		}
		return nil, fmt.Errorf("key %q, shard %s row group %d: %w", it.rec.Key, it.file, it.rowGroup, err)
	}
	return s, nil
}

// pickCaptions returns k captions of caps, in a random order: all distinct when the record has
// k or more, else each caption as often as the others (±1).
func pickCaptions(caps []string, k int, rng *rand.Rand) []string {
	perm := rng.Perm(len(caps))
	out := make([]string, k)
	for r := range out {
		out[r] = caps[perm[r%len(perm)]]
	}
	return out
}

// dropWords returns the captions with each (space-separated) word dropped with probability
// p, keeping at least one word of a caption that has any (a random one when all were
// dropped): caption word dropout, a text augmentation. The words kept keep their order.
func dropWords(captions []string, p float64, rng *rand.Rand) []string {
	out := make([]string, len(captions))
	for i, c := range captions {
		words := strings.Fields(c)
		kept := words[:0:0]
		for _, w := range words {
			if rng.Float64() >= p {
				kept = append(kept, w)
			}
		}
		if len(kept) == 0 && len(words) > 0 {
			kept = append(kept, words[rng.IntN(len(words))])
		}
		out[i] = strings.Join(kept, " ")
	}
	return out
}

// tokenize fills s.tokens with the ids of s.captions.
func (e *Epoch) tokenize(s *sample) (*sample, error) {
	L := e.l.cfg.ContextLen
	s.tokens = e.l.pool.getTokens(len(s.captions) * L)
	for i, c := range s.captions {
		dst := s.tokens[i*L : (i+1)*L]
		clear(dst)
		if err := e.l.cfg.Tokenize(dst, c); err != nil {
			return nil, fmt.Errorf("key %q caption %d: tokenize: %w", s.key, i, err)
		}
	}
	return s, nil
}
