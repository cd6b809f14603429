package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/stages/runlog"
)

// stream is one disjoint share of the training data, read as share id of the job's streams,
// with where it stands. Each global batch takes batch_size/streams samples of every stream,
// side by side in stream order.
type stream struct {
	id       int
	loader   *loader.Loader
	ep       *loader.Epoch
	epoch    int
	position int64 // samples of epoch consumed
	// order returns the key order of the current epoch (train.hard_negatives); nil: shuffled.
	order func(context.Context, *stream) ([]string, error)
}

// next returns the stream's next batch, starting its next epoch (reshuffled) when one ends.
func (s *stream) next(ctx context.Context) (*loader.Batch, error) {
	var err error
	if s.ep == nil {
		if s.ep, err = s.open(ctx); err != nil {
			return nil, err
		}
	}
	b, err := s.ep.Next()
	if errors.Is(err, io.EOF) {
		s.ep.Close()
		s.ep, s.epoch, s.position = nil, s.epoch+1, 0
		if s.ep, err = s.open(ctx); err != nil {
			return nil, err
		}
		if b, err = s.ep.Next(); errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("epoch %d of data stream %d has no full batch of %d samples: prepare the data with smaller row groups (--row-group-rows), or use fewer data.streams or ranks",
				s.epoch, s.id, s.loader.Config().BatchSize)
		}
	}
	if err != nil {
		return nil, err
	}
	s.position = b.Position
	return b, nil
}

// resolvePositions returns where each of the job's streams starts: at the checkpoint's
// positions when it drew from as many streams, else (a run resumed with another
// data.streams, or one process's run continued on several ranks) at the beginning of the
// checkpoint's earliest epoch, with a warning: the data order cannot carry over.
func (t *trainer) resolvePositions(saved []checkpoint.StreamPos) []checkpoint.StreamPos {
	pos := make([]checkpoint.StreamPos, t.nStream)
	switch {
	case len(saved) == 0:
	case len(saved) == t.nStream:
		copy(pos, saved)
	default:
		first := saved[0].Epoch
		for _, p := range saved {
			first = min(first, p.Epoch)
		}
		for i := range pos {
			pos[i].Epoch = first
		}
		if t.lead {
			t.log.Warn("the checkpoint drew its batches from another number of data streams: the data restarts at the beginning of its epoch",
				"checkpoint_streams", len(saved), "streams", t.nStream, "epoch", first,
				"hint", fmt.Sprintf("set data.streams=%d to continue its data order on a number of ranks that divides it", len(saved)))
		}
	}
	return pos
}

// openStreams makes this rank's loaders: rank r of W reads streams r·S/W to (r+1)·S/W − 1 of
// the S streams, each as its own disjoint share of the shards' row groups.
func (t *trainer) openStreams(files []string, pos []checkpoint.StreamPos) error {
	cfg := t.cfg
	if t.nStream > 1 {
		// Streams split the data by row groups: each needs some.
		plan, err := shard.NewPlan(files, shard.ReadOptions{Columns: shard.TextColumns})
		if err != nil {
			return err
		}
		if plan.RowGroups() < t.nStream {
			return fmt.Errorf("the train split has %d row groups, fewer than its %d data streams (one per rank unless data.streams says otherwise): prepare it with smaller row groups (--row-group-rows)",
				plan.RowGroups(), t.nStream)
		}
	}
	per := t.nStream / t.comm.Size()
	share := cfg.Train.BatchSize / t.nStream
	var order func(context.Context, *stream) ([]string, error)
	if hn := cfg.Train.HardNegatives; hn.On() {
		if err := hn.checkShare(share, cfg.Data.CaptionsPerImage); err != nil {
			return err
		}
		t.hardneg, order = &hardNegatives{cfg: hn}, t.streamOrder
	}
	for k := range per {
		id := t.comm.Rank()*per + k
		l, err := loader.New(loader.Config{Files: files, Mode: loader.Train, BatchSize: share,
			ImageSize: cfg.Model.Vision.ImageSize, ContextLen: cfg.Model.Text.ContextLength, Tokenize: t.tok.TokenizeInto,
			Seed: uint64(cfg.Train.Seed), Rank: id, World: t.nStream, DecodeWorkers: cfg.Data.Workers,
			Augment: cfg.Data.augment(), CaptionsPerImage: cfg.Data.CaptionsPerImage, WordDropout: cfg.Data.WordDropout})
		if err != nil {
			return err
		}
		t.streams = append(t.streams, &stream{id: id, loader: l, epoch: int(pos[id].Epoch), position: pos[id].Sample, order: order})
	}
	if per > 1 {
		local := cfg.Train.BatchSize / t.comm.Size()
		s, l := cfg.Model.Vision.ImageSize, cfg.Model.Text.ContextLength
		t.images, t.tokens = make([]float32, local*3*s*s), make([]int32, local*l)
	}
	return nil
}

// nextInput returns this rank's next micro-batch: its streams' batches side by side, and the
// function that hands their buffers back once the step has used them. With several captions
// per image it gives the model the rows' image identities.
func (t *trainer) nextInput() (images []float32, tokens []int32, release func(), err error) {
	var imgAt, tokAt int
	t.keys = t.keys[:0]
	for _, s := range t.streams {
		b, err := s.next(t.dataCtx)
		if err != nil {
			if len(t.streams) > 1 {
				err = fmt.Errorf("stream %d: %w", s.id, err)
			}
			return nil, nil, nil, fmt.Errorf("input: %w", err)
		}
		if t.samples != nil {
			for _, k := range b.Keys {
				t.seen = append(t.seen, seenSample{epoch: b.Epoch, key: k})
			}
		}
		if t.cfg.Data.CaptionsPerImage > 1 {
			t.keys = append(t.keys, b.Keys...)
			if len(t.keys) == t.model.Batch() {
				if err := t.model.SetImageIDs(imageIDs(t.keys, b.Size)); err != nil {
					b.Release()
					return nil, nil, nil, err
				}
			}
		}
		if len(t.streams) == 1 {
			return b.Images, b.Tokens, b.Release, nil
		}
		imgAt += copy(t.images[imgAt:], b.Images)
		tokAt += copy(t.tokens[tokAt:], b.Tokens)
		b.Release()
	}
	return t.images, t.tokens, func() {}, nil
}

// mark returns where this rank's streams stand, for rewind.
func (t *trainer) mark() []checkpoint.StreamPos {
	m := make([]checkpoint.StreamPos, len(t.streams))
	for i, s := range t.streams {
		m[i] = checkpoint.StreamPos{Epoch: int64(s.epoch), Sample: s.position}
	}
	return m
}

// rewind puts the streams' recorded positions back to a mark, so that a checkpoint written
// after an interrupted step resumes the data where the step began.
func (t *trainer) rewind(m []checkpoint.StreamPos) {
	for i, s := range t.streams {
		s.epoch, s.position = int(m[i].Epoch), m[i].Sample
	}
}

// stall is the time this rank's training loop waited for input in the current epochs.
func (t *trainer) stall() time.Duration {
	var d time.Duration
	for _, s := range t.streams {
		if s.ep != nil {
			d += s.ep.Stats().Stall
		}
	}
	return d
}

// validate scores the model on the validation split in eval mode (no augmentation), over
// full batches: the model's graph has a fixed batch size, so a last partial batch is left out.
// Data parallel, every rank reads the whole (small) split and scores its rows of each global
// batch, so that the scores do not depend on the number of ranks.
func (t *trainer) validate(ctx context.Context) (runlog.Val, error) {
	cfg := t.cfg
	world, rank := t.comm.Size(), t.comm.Rank()
	B := cfg.Train.BatchSize
	b := B / world
	if err := t.model.SetImageIDs(nil); err != nil { // validation's rows are distinct images
		return runlog.Val{}, err
	}
	l, err := loader.New(loader.Config{Files: t.valFiles, Mode: loader.Eval, BatchSize: B, ImageSize: cfg.Model.Vision.ImageSize,
		ContextLen: cfg.Model.Text.ContextLength, Tokenize: t.tok.TokenizeInto, Seed: uint64(cfg.Train.Seed), DecodeWorkers: cfg.Data.Workers})
	if err != nil {
		return runlog.Val{}, err
	}
	ep := l.Epoch(ctx, 0, 0)
	defer ep.Close()
	var v runlog.Val
	var sums [3]float32                                                                               // loss, image→text hits, text→image hits
	img, tok := 3*cfg.Model.Vision.ImageSize*cfg.Model.Vision.ImageSize, cfg.Model.Text.ContextLength // values per image, per caption
	for cfg.Train.ValBatches <= 0 || v.Batches < cfg.Train.ValBatches {
		batch, err := ep.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v, err
		}
		if batch.Size != B {
			batch.Release()
			break
		}
		out, err := t.model.Forward(batch.Images[rank*b*img:(rank+1)*b*img], batch.Tokens[rank*b*tok:(rank+1)*b*tok])
		batch.Release()
		if err != nil {
			return v, err
		}
		i2t, t2i := inBatchHits(out, b, rank)
		sums[0] += out.Loss
		sums[1] += float32(i2t)
		sums[2] += float32(t2i)
		v.Batches++
	}
	if v.Batches == 0 {
		return v, fmt.Errorf("the validation split has fewer than train.batch_size=%d images", B)
	}
	if err := t.comm.AllReduceSum(sums[:]); err != nil {
		return v, err
	}
	n := float64(v.Batches)
	v.Loss = float64(sums[0]) / (n * float64(world))
	v.ImageTop = float64(sums[1]) / (n * float64(B))
	v.TextTop = float64(sums[2]) / (n * float64(B))
	if v.Recall, err = t.valRecall(ctx); err != nil {
		return v, err
	}
	mean := recallMean(v.Recall)
	v.RecallMean = &mean
	return v, nil
}

// inBatchHits counts this rank's images whose own caption ranks first among the global
// batch's (image→text), and its captions whose own image does (text→image). In one process
// the text→image rows are the columns of LogitsPerImage [B, B]; data parallel, rank r holds
// rows r·b … of both [b, N] matrices.
func inBatchHits(out fusion.Outputs, b, rank int) (i2t, t2i int) {
	n := len(out.LogitsPerImage) / b
	argmax := func(row []float32, stride int) int {
		best := 0
		for c := 1; c < n; c++ {
			if row[c*stride] > row[best*stride] {
				best = c
			}
		}
		return best
	}
	for i := range b {
		if argmax(out.LogitsPerImage[i*n:], 1) == rank*b+i {
			i2t++
		}
		var row []float32
		stride := 1
		if out.LogitsPerText != nil {
			row = out.LogitsPerText[i*n:]
		} else {
			row, stride = out.LogitsPerImage[i:], n
		}
		if argmax(row, stride) == rank*b+i {
			t2i++
		}
	}
	return i2t, t2i
}
