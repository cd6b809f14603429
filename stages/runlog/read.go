// Package runlog is a training run's record in its run directory: the names of its files and
// the records of its metrics log (metrics.jsonl), which train writes and report reads.
package runlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// Files of a run directory besides its checkpoints.
const (
	MetricsName = "metrics.jsonl" // one JSON object per line: training and validation records
	ConfigName  = "config.yaml"   // the resolved config of the run (as of its latest invocation)
	// HistoryName is the log of changes to the config made when resuming: one Change per line.
	HistoryName = "config-history.jsonl"
	// BestName is the model of the run's best validation (train.early_stop), replaced on
	// each improvement: a state dict with the model config, as a checkpoint's model file.
	BestName = "best.safetensors"
)

// Limits on what Read takes: a run directory is outside input.
const (
	// MaxBytes is the largest metrics log Read reads.
	MaxBytes = 256 << 20
	// MaxLine is the longest line of a metrics log Read parses.
	MaxLine = 64 << 10
)

// Train is a training record of metrics.jsonl: the run after Step optimiser steps. Read
// leaves NaN in a float field that the record lacks.
type Train struct {
	Step  int64   `json:"step"`
	Epoch int     `json:"epoch"`
	Loss  float32 `json:"loss"` // the step's contrastive loss
	// LogitScale is the learnable logit scale t itself; LogitScaleExp is exp(t), the inverse
	// softmax temperature that multiplies the cosine similarities. Logs written before
	// LogitScaleExp existed held exp(t) in logit_scale: Read converts them. A model without a
	// temperature (model.loss triplet) has neither: NaN here, left out of the record.
	LogitScale    float64 `json:"logit_scale"`
	LogitScaleExp float64 `json:"logit_scale_exp"`
	// LogitBias is SigLIP's learnable bias b (model.loss siglip); nil (left out) for the
	// losses without one.
	LogitBias   *float64 `json:"logit_bias,omitempty"`
	LR          float64  `json:"lr"`
	GradNorm    float64  `json:"grad_norm"` // before clipping
	SamplesPerS float64  `json:"samples_per_s"`
	StallS      float64  `json:"stall_s"`          // waiting for input since the previous record
	ElapsedS    float64  `json:"elapsed_s"`        // since the invocation began
	CommS       *float64 `json:"comm_s,omitempty"` // data parallel: in collectives since the previous record
}

// MarshalJSON writes the record, leaving out a logit scale that is NaN or infinite (a model
// without a temperature): JSON has no NaN, and Read reads the missing key as NaN.
func (r Train) MarshalJSON() ([]byte, error) {
	type plain Train // the fields, without this method
	finite := func(x float64) *float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	return json.Marshal(struct {
		plain
		LogitScale    *float64 `json:"logit_scale,omitempty"`
		LogitScaleExp *float64 `json:"logit_scale_exp,omitempty"`
	}{plain(r), finite(r.LogitScale), finite(r.LogitScaleExp)})
}

// Val is a validation record of metrics.jsonl: the mean contrastive loss and in-batch
// top-1 accuracies over Batches validation batches, after Step steps. Read leaves NaN in an
// accuracy that the record lacks.
type Val struct {
	Step     int64   `json:"step"`
	Loss     float64 `json:"val_loss"`
	ImageTop float64 `json:"val_i2t_acc"` // image→text: the image's own caption ranks first
	TextTop  float64 `json:"val_t2i_acc"` // text→image
	Batches  int     `json:"val_batches"`
	// Recall is retrieval over the validated images and all their captions, and RecallMean
	// the mean of its six recalls: the default metric of train.early_stop. Absent from
	// records written before them.
	Recall     *Recall  `json:"val_recall,omitempty"`
	RecallMean *float64 `json:"val_recall_mean,omitempty"`
	// Best marks a validation that improved train.early_stop's metric: best.safetensors
	// holds the model of the latest such record.
	Best bool `json:"best,omitempty"`
}

// Recall is CLIP_benchmark's retrieval recall@k at k = 1, 5, 10: image→text, the share of
// images with one of their captions among the k best-scoring captions; text→image, the share
// of captions whose image is among the k best-scoring images (1 when k reaches the number of
// candidates).
type Recall struct {
	I2T1  float64 `json:"i2t_r1"`
	I2T5  float64 `json:"i2t_r5"`
	I2T10 float64 `json:"i2t_r10"`
	T2I1  float64 `json:"t2i_r1"`
	T2I5  float64 `json:"t2i_r5"`
	T2I10 float64 `json:"t2i_r10"`
}

// Sample is a record of the sample log (`pretrain --sample-log`): one training sample that
// the step consumed, in the epoch it belongs to.
type Sample struct {
	Step  int64  `json:"step"`
	Epoch int    `json:"epoch"`
	Key   string `json:"key"`
}

// Change is a record of config-history.jsonl: one config key changed when a run was resumed
// at Step. Old and New are the values as YAML writes them; Reason says why it was let
// through ("--allow-changes", "train.steps raised", "does not change the training").
type Change struct {
	Time   string `json:"time"` // RFC 3339
	Step   int64  `json:"step"` // the checkpoint's step the run resumed from
	Key    string `json:"key"`  // dotted, as --set takes it
	Old    string `json:"old"`
	New    string `json:"new"`
	Reason string `json:"reason"`
}

// Log is what Read found in a run's metrics.jsonl, in file order.
type Log struct {
	Train []Train
	Val   []Val
	Notes []string // lines left out, and why
}

// newRecords returns records to decode a line into: NaN in every float field, so that a
// field still NaN after decoding was missing (or null), as JSON has no NaN.
func newRecords() (Train, Val) {
	nan := math.NaN()
	tr := Train{Loss: float32(nan), LogitScale: nan, LogitScaleExp: nan, LR: nan, GradNorm: nan, SamplesPerS: nan,
		StallS: nan, ElapsedS: nan}
	return tr, Val{Loss: nan, ImageTop: nan, TextTop: nan}
}

// Read reads a run's metrics.jsonl. A line that does not parse, or has no step, is left out
// and noted (a run killed mid-write leaves half a last line); a missing file, one over
// MaxBytes or a line over MaxLine is an error.
func Read(path string) (Log, error) {
	f, err := fileinput.OpenRegular(path)
	if err != nil {
		return Log{}, fmt.Errorf("metrics log: %w", err)
	}
	defer f.Close()
	log, err := Parse(f)
	if err != nil {
		return log, fmt.Errorf("metrics log %s: %w", path, err)
	}
	return log, nil
}

// Parse is Read over a reader.
func Parse(r io.Reader) (Log, error) {
	return parse(r, MaxBytes)
}

func parse(r io.Reader, maxBytes int64) (Log, error) {
	var log Log
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	n := 0
	var bad []int
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		// A line is one record of either kind; every key it has must decode.
		var step struct {
			Step *int64 `json:"step"`
		}
		tr, v := newRecords()
		if json.Unmarshal(raw, &step) != nil || step.Step == nil || json.Unmarshal(raw, &tr) != nil || json.Unmarshal(raw, &v) != nil {
			bad = append(bad, n)
			continue
		}
		switch {
		case !math.IsNaN(v.Loss):
			log.Val = append(log.Val, v)
		case !math.IsNaN(float64(tr.Loss)):
			if math.IsNaN(tr.LogitScaleExp) { // written before logit_scale_exp: logit_scale holds exp(t)
				tr.LogitScale, tr.LogitScaleExp = math.Log(tr.LogitScale), tr.LogitScale
			}
			log.Train = append(log.Train, tr)
		default:
			bad = append(bad, n)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return log, fmt.Errorf("line %d: longer than %d bytes", n+1, MaxLine)
		}
		return log, err
	}
	if lr.N == 0 {
		return log, fmt.Errorf("larger than %d bytes", maxBytes)
	}
	switch {
	case len(bad) == 1 && bad[0] == n:
		log.Notes = append(log.Notes, fmt.Sprintf("last line (%d) is incomplete or not a record; left out", n))
	case len(bad) > 0:
		shown := bad[:min(len(bad), 10)]
		log.Notes = append(log.Notes, fmt.Sprintf("%d lines are not records and were left out (lines %s)",
			len(bad), strings.Trim(fmt.Sprint(shown), "[]")))
	}
	return log, nil
}
