// Package loader is the training and evaluation input pipeline: it streams shard records,
// decodes and transforms their images and tokenizes their captions on worker pools, and hands
// out fixed-size batches of float32 CHW images and int32 tokens, prefetched ahead of the
// consumer. It is built on package pipeline, which supplies ordering, cancellation, clean
// shutdown and per-stage metrics.
//
// Batches are deterministic: every random choice for a sample (its caption, its crop, flip and
// jitter) comes from an RNG seeded by (seed, epoch, sample key), and every stage keeps input
// order, so the same seed yields the same batches whatever the number of workers.
//
// The loader does not import the tokenizer: Config.Tokenize is any function that writes a
// caption's ids into a context-length slice.
package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/pipeline"
)

// Mode selects the training or the evaluation behaviour of a Loader.
type Mode int

const (
	// Train augments images, picks one caption per image per epoch at random (seeded) and
	// drops the last partial batch.
	Train Mode = iota
	// Eval applies the deterministic eval transform, keeps the last partial batch and can
	// return every caption of each image (Config.AllCaptions), as retrieval needs.
	Eval
)

func (m Mode) String() string {
	switch m {
	case Train:
		return "train"
	case Eval:
		return "eval"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Tokenizer writes the ids of caption into dst, whose length is the context length, padding
// with zeros. The loader clears dst before each call.
type Tokenizer func(dst []int32, caption string) error

// Config describes a Loader. Files, BatchSize, ImageSize, ContextLen and Tokenize are required.
type Config struct {
	Files []string // shard files of the split, in a fixed order
	Mode  Mode

	BatchSize  int // B: samples per batch
	ImageSize  int // S: images are [3,S,S]
	ContextLen int // L: tokens per caption
	Tokenize   Tokenizer

	Seed        uint64 // drives the shuffle, the caption choice and the augmentation
	Rank, World int    // this process's share of the data (World 0 means 1)

	ReadWorkers     int // goroutines reading row groups (default shard.DefaultWorkers)
	DecodeWorkers   int // goroutines decoding and transforming images (default GOMAXPROCS)
	TokenizeWorkers int // goroutines tokenizing (default 1)
	Prefetch        int // batches made ahead of the consumer (default 2)

	Augment     imageproc.Augment // training augmentation (Size is set to ImageSize)
	AllCaptions bool              // eval: tokenize every caption of each image, not just the first
	// CaptionsPerImage k > 1 (training) gives each record k rows of a batch: k of its captions
	// (distinct while it has that many), each with its own augmented view, under its key, for
	// a multi-positive loss. BatchSize counts rows and must be a multiple of k. 0 or 1: one.
	CaptionsPerImage int
	// WordDropout (training) drops each word of a caption with this probability, keeping at
	// least one: a text augmentation. In [0, 1).
	WordDropout float64
	Strict      bool // fail on a bad record instead of skipping and counting it
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case len(c.Files) == 0:
		return c, errors.New("loader: no shard files")
	case c.BatchSize < 1:
		return c, fmt.Errorf("loader: batch size %d, want at least 1", c.BatchSize)
	case c.ImageSize < 1:
		return c, fmt.Errorf("loader: image size %d, want at least 1", c.ImageSize)
	case c.ContextLen < 1:
		return c, fmt.Errorf("loader: context length %d, want at least 1", c.ContextLen)
	case c.Tokenize == nil:
		return c, errors.New("loader: no tokenizer")
	case c.Mode != Train && c.Mode != Eval:
		return c, fmt.Errorf("loader: unknown mode %d", int(c.Mode))
	}
	if c.World < 1 {
		c.World = 1
	}
	if c.Rank < 0 || c.Rank >= c.World {
		return c, fmt.Errorf("loader: rank %d outside world of %d", c.Rank, c.World)
	}
	if c.DecodeWorkers < 1 {
		c.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	if c.TokenizeWorkers < 1 {
		c.TokenizeWorkers = 1
	}
	if c.Prefetch < 1 {
		c.Prefetch = 2
	}
	if c.Mode == Train {
		c.AllCaptions = false
	} else {
		c.CaptionsPerImage, c.WordDropout = 1, 0
	}
	switch {
	case c.CaptionsPerImage < 0 || c.CaptionsPerImage > c.BatchSize:
		return c, fmt.Errorf("loader: %d captions per image, want 1 to the batch size %d", c.CaptionsPerImage, c.BatchSize)
	case c.CaptionsPerImage > 1 && c.BatchSize%c.CaptionsPerImage != 0:
		return c, fmt.Errorf("loader: batch size %d is not a multiple of %d captions per image", c.BatchSize, c.CaptionsPerImage)
	case !(c.WordDropout >= 0 && c.WordDropout < 1):
		return c, fmt.Errorf("loader: word dropout %g, want [0, 1)", c.WordDropout)
	}
	c.CaptionsPerImage = max(c.CaptionsPerImage, 1)
	c.Augment.Size = c.ImageSize
	return c, nil
}

// Loader makes batches from a split. It holds the configuration and the buffers that batches
// reuse across epochs; each Epoch call streams one pass over the data. A Loader may serve one
// epoch at a time.
type Loader struct {
	cfg  Config
	pool *pools
}

// New checks cfg and returns a Loader.
func New(cfg Config) (*Loader, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Loader{cfg: cfg, pool: newPools(cfg)}, nil
}

// Config returns the configuration in use, defaults filled in.
func (l *Loader) Config() Config { return l.cfg }

// Epoch starts streaming epoch epoch, beginning at sample position start (0, or a
// Batch.Position saved in a checkpoint, to resume). The caller must read it to io.EOF or
// call Close.
func (l *Loader) Epoch(ctx context.Context, epoch int, start int64) *Epoch {
	cfg := l.cfg
	return l.stream(ctx, epoch, func(ctx context.Context, emit func(item) error) error {
		return readEpoch(ctx, cfg, epoch, start, emit)
	})
}

// stream runs the pipeline of one epoch over the records read emits.
func (l *Loader) stream(ctx context.Context, epoch int, read func(context.Context, func(item) error) error) *Epoch {
	e := &Epoch{l: l, epoch: epoch, skips: newSkipCounter()}
	p := pipeline.New(ctx)
	cfg := l.cfg
	recs := pipeline.Source(p, "read", read)
	imgs := pipeline.Map(p, "decode", recs, pipeline.Options{Workers: cfg.DecodeWorkers},
		func(_ context.Context, it item) (*sample, error) { return e.decode(it) })
	toks := pipeline.Map(p, "tokenize", imgs, pipeline.Options{Workers: cfg.TokenizeWorkers},
		func(_ context.Context, s *sample) (*sample, error) { return e.tokenize(s) })
	groups := pipeline.Batch(p, "batch", toks, cfg.BatchSize/cfg.CaptionsPerImage, cfg.Mode == Eval)
	batches := pipeline.Map(p, "collate", groups, pipeline.Options{},
		func(_ context.Context, ss []*sample) (*Batch, error) { return e.collate(ss), nil })
	e.p = p
	e.out = pipeline.Receive(p, "consumer", pipeline.Buffer(p, "prefetch", batches, cfg.Prefetch))
	return e
}

// Epoch is one pass over the data, read with Next.
type Epoch struct {
	l     *Loader
	epoch int
	p     *pipeline.Pipeline
	out   *pipeline.Receiver[*Batch]
	skips *skipCounter
	err   error // sticky: io.EOF or the error that ended the epoch
}

// Next returns the next batch, io.EOF after the last one, or the error that stopped the
// pipeline (naming the stage and, for a bad record in strict mode, its key, file and row
// group). Call Batch.Release when done with a batch so that its buffers are reused.
func (e *Epoch) Next() (*Batch, error) {
	if e.err != nil {
		return nil, e.err
	}
	b, err := e.out.Next()
	if err != nil {
		e.err = err
		return nil, err
	}
	return b, nil
}

// Close stops the epoch early (or after its end) and waits for its goroutines to return. It
// returns the error that had stopped the epoch before, if any; later Next calls return io.EOF
// or that error.
func (e *Epoch) Close() error {
	err := e.p.Stop()
	if e.err == nil {
		e.err = io.EOF
	}
	return err
}

// Stats is a snapshot of an epoch's progress, for metrics logs.
type Stats struct {
	Stages  []pipeline.Stats // read, decode, tokenize, batch, collate, prefetch, consumer
	Stall   time.Duration    // time the consumer waited in Next for a batch
	Skipped map[string]int64 // bad records skipped, by reason
}

// Stats returns a snapshot; it is safe to call while the epoch runs.
func (e *Epoch) Stats() Stats {
	st := e.p.Stats()
	s := Stats{Stages: st, Skipped: e.skips.snapshot()}
	for _, x := range st {
		if x.Stage == "consumer" {
			s.Stall = x.WaitIn
		}
	}
	return s
}

// skipCounter counts skipped records by reason.
type skipCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

func newSkipCounter() *skipCounter { return &skipCounter{n: map[string]int64{}} }

func (c *skipCounter) add(reason string) {
	c.mu.Lock()
	c.n[reason]++
	c.mu.Unlock()
}

func (c *skipCounter) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		m[k] = v
	}
	return m
}
