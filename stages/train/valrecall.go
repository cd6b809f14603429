package train

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/metrics"
	"github.com/clipgo/clipgo/stages/runlog"
)

// valRecall scores retrieval on the validation split with the model's current weights: the
// images validation reads (train.val_batches full batches, or the whole split) against all
// their captions, through the inference path (every patch, no augmentation). Rank 0 computes
// it and the others receive it, so that every rank of a data-parallel job holds the same
// figures (and takes the same early-stopping decision).
func (t *trainer) valRecall(ctx context.Context) (*runlog.Recall, error) {
	var r [6]float32
	if t.lead {
		rec, err := t.computeRecall(ctx)
		if err != nil {
			return nil, err
		}
		r = [6]float32{float32(rec.I2T1), float32(rec.I2T5), float32(rec.I2T10), float32(rec.T2I1), float32(rec.T2I5), float32(rec.T2I10)}
	}
	if t.comm.Size() > 1 {
		if err := t.comm.AllReduceSum(r[:]); err != nil {
			return nil, err
		}
	}
	return &runlog.Recall{I2T1: float64(r[0]), I2T5: float64(r[1]), I2T10: float64(r[2]),
		T2I1: float64(r[3]), T2I5: float64(r[4]), T2I10: float64(r[5])}, nil
}

func (t *trainer) computeRecall(ctx context.Context) (runlog.Recall, error) {
	cfg := t.cfg
	enc, err := fusion.NewEncoder(t.model)
	if err != nil {
		return runlog.Recall{}, err
	}
	defer enc.Close()
	B := t.model.Batch()
	l, err := loader.New(loader.Config{Files: t.valFiles, Mode: loader.Eval, BatchSize: B, ImageSize: cfg.Model.Vision.ImageSize,
		ContextLen: cfg.Model.Text.ContextLength, Tokenize: t.tok.TokenizeInto, Seed: uint64(cfg.Train.Seed),
		DecodeWorkers: cfg.Data.Workers, AllCaptions: true})
	if err != nil {
		return runlog.Recall{}, err
	}
	ep := l.Epoch(ctx, 0, 0)
	defer ep.Close()
	limit := -1 // images to score: as many as the in-batch validation reads
	if cfg.Train.ValBatches > 0 {
		limit = cfg.Train.ValBatches * cfg.Train.BatchSize
	}
	imgLen, L := enc.ImageLen(), cfg.Model.Text.ContextLength
	var images, texts []float32
	var textImage []int
	n := 0
	for limit < 0 || n < limit {
		batch, err := ep.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return runlog.Recall{}, err
		}
		k := batch.Size
		if limit >= 0 {
			k = min(k, limit-n)
		}
		emb, err := enc.Images(batch.Images[:k*imgLen])
		if err == nil {
			images = append(images, emb...)
			var ids []int32
			for j, i := range batch.TextImage {
				if int(i) < k {
					ids = append(ids, batch.Tokens[j*L:(j+1)*L]...)
					textImage = append(textImage, n+int(i))
				}
			}
			if emb, err = enc.Tokens(ids); err == nil {
				texts = append(texts, emb...)
			}
		}
		batch.Release()
		if err != nil {
			return runlog.Recall{}, err
		}
		n += k
	}
	if n == 0 {
		return runlog.Recall{}, errors.New("retrieval: the validation split has no images")
	}
	res, err := metrics.RetrievalMetrics(images, texts, enc.Dim(), textImage, []int{1})
	if err != nil {
		return runlog.Recall{}, fmt.Errorf("retrieval: %w", err)
	}
	i2t := func(k int) float64 { return recallOfRanks(res.TextRanks, k) }
	t2i := func(k int) float64 { return recallOfRanks(res.ImageRanks, k) }
	return runlog.Recall{I2T1: i2t(1), I2T5: i2t(5), I2T10: i2t(10), T2I1: t2i(1), T2I5: t2i(5), T2I10: t2i(10)}, nil
}

// recallOfRanks is the share of queries whose first correct answer ranks within k (rank 0, a
// query without answers, is a miss), rounded to float32 as CLIP_benchmark reports it. A k at or
// beyond the number of candidates counts every answered query.
func recallOfRanks(ranks []int, k int) float64 {
	hits := 0
	for _, r := range ranks {
		if r >= 1 && r <= k {
			hits++
		}
	}
	return float64(float32(float64(hits) / float64(len(ranks))))
}

// recallMean is the mean of a record's six recalls.
func recallMean(r *runlog.Recall) float64 {
	return (r.I2T1 + r.I2T5 + r.I2T10 + r.T2I1 + r.T2I5 + r.T2I10) / 6
}
