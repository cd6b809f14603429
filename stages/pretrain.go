package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/clipgo/clipgo/data/imageproc"
	"github.com/clipgo/clipgo/data/loader"
	"github.com/clipgo/clipgo/data/shard"
	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/nn/optim"
	"github.com/clipgo/clipgo/text"
)

// Files of a run directory besides its checkpoints.
const (
	MetricsName   = "metrics.jsonl" // one JSON object per line: training and validation records
	RunConfigName = "config.yaml"   // the resolved config of the run
)

// ErrInterrupted is returned (wrapped, with the checkpoint written) when a run stops on a
// signal: the run can go on with --resume latest.
var ErrInterrupted = errors.New("training interrupted")

// PretrainOptions is one `clipgo pretrain` invocation.
type PretrainOptions struct {
	Config PretrainConfig
	RunDir string
	Resume string // "" (a new run), "latest", "auto" (latest if there is one, else new), or a checkpoint path
	// StopAt, when positive, ends this invocation after that step with a checkpoint, as an
	// interruption would: a long run fits into time slots, resumed with Resume "latest".
	StopAt int64
	// SampleLog, when set, names a JSON-lines file that gets one record per training sample
	// consumed, {"step","epoch","key"}, written as each step ends: an audit of what the
	// model saw (on a resume, the records past the checkpoint are dropped, as in the metrics).
	SampleLog string
}

// PretrainSummary is what a run did.
type PretrainSummary struct {
	RunDir         string
	FirstStep      int64 // the first step this invocation ran (> 0 after a resume)
	Steps          int64 // the step count reached
	FirstLoss      float32
	LastLoss       float32
	SamplesPerSec  float64
	Checkpoint     string // the newest checkpoint written
	SkippedSteps   int    // steps skipped for a non-finite loss or gradient
	Stopped        bool   // ended at StopAt before train.steps
	LastValidation *Validation
}

// Validation is the model's score on the validation split: the contrastive loss and the
// in-batch retrieval accuracy (top-1, both directions), averaged over full batches.
type Validation struct {
	Loss     float64 `json:"val_loss"`
	ImageTop float64 `json:"val_i2t_acc"` // image→text: the image's own caption ranks first
	TextTop  float64 `json:"val_t2i_acc"` // text→image
	Batches  int     `json:"val_batches"`
}

// Pretrain trains a CLIP model on prepared shards: the input pipeline feeds fixed-size
// batches, each step runs forward and backward (over train.accum_steps micro-batches), clips,
// and takes an AdamW step with a cosine schedule, then clamps the logit scale. Metrics go to
// RunDir/metrics.jsonl, checkpoints to RunDir every train.checkpoint_every steps, at the end,
// at opts.StopAt and on interruption (ctx done).
func Pretrain(ctx context.Context, opts PretrainOptions, log *slog.Logger, progressTo io.Writer) (PretrainSummary, error) {
	t, err := newTrainer(opts, log)
	defer t.close()
	if err != nil {
		return t.sum, err
	}
	cfg := t.cfg
	bar := progress.New(progressTo, log, "pretrain", cfg.Train.Steps)
	bar.Add(t.step, "")
	defer bar.Finish()
	t.ep = t.train.Epoch(ctx, t.epoch, t.position)

	start, samples := time.Now(), int64(0)
	var lastStall time.Duration
	badInARow := 0
	for ; t.step < cfg.Train.Steps; t.step++ {
		step := t.step
		epoch, position := t.epoch, t.position
		loss, err := t.forwardBackward(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// The step did not happen: its checkpoint resumes the data where the step began.
				t.epoch, t.position = epoch, position
				return t.sum, interrupted(t.save(step), step, t.sum.Checkpoint)
			}
			return t.sum, fmt.Errorf("step %d: %w", step, err)
		}
		if err := t.logSamples(step + 1); err != nil {
			return t.sum, err
		}
		if finite, bad := optim.GradsFinite(t.params); !finite || math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
			badInARow++
			t.sum.SkippedSteps++
			log.Warn("non-finite step skipped", "step", step, "loss", loss, "param", bad, "in_a_row", badInARow)
			if badInARow >= cfg.Train.MaxBadSteps {
				last := t.sum.Checkpoint
				if last == "" {
					last = "none yet"
				}
				return t.sum, fmt.Errorf("step %d: %d non-finite steps in a row (train.max_bad_steps); last good checkpoint: %s", step, badInARow, last)
			}
			continue
		}
		badInARow = 0
		lr := t.sched.LR(int(step))
		gradNorm := optim.GradNorm(t.params)
		if cfg.Train.GradClip > 0 {
			optim.ClipGradNorm(t.params, cfg.Train.GradClip)
		}
		if err := t.opt.Step(lr); err != nil {
			return t.sum, fmt.Errorf("step %d: %w", step, err)
		}
		t.model.ClampLogitScale()
		samples += int64(cfg.Train.BatchSize * cfg.Train.AccumSteps)
		if step == t.sum.FirstStep {
			t.sum.FirstLoss = loss
		}
		t.sum.LastLoss, t.sum.Steps = loss, step+1

		rate := float64(samples) / time.Since(start).Seconds()
		bar.Add(1, fmt.Sprintf("loss %.4f T %.2f lr %.2e %.0f samples/s", loss, temperature(t.params), lr, rate))
		if (step+1)%cfg.Train.LogEvery == 0 || step == t.sum.FirstStep {
			stall := t.ep.Stats().Stall
			if stall < lastStall { // a new epoch started its own count
				lastStall = 0
			}
			if err := t.metrics.write(map[string]any{"step": step + 1, "epoch": t.epoch, "loss": loss,
				"logit_scale": temperature(t.params), "lr": lr, "grad_norm": gradNorm, "samples_per_s": rate,
				"stall_s": (stall - lastStall).Seconds(), "elapsed_s": time.Since(start).Seconds()}); err != nil {
				return t.sum, err
			}
			lastStall = stall
		}
		last := step+1 == cfg.Train.Steps
		if t.valFiles != nil && ((cfg.Train.ValEvery > 0 && (step+1)%cfg.Train.ValEvery == 0) || last) {
			v, err := validate(ctx, t.model, t.valFiles, cfg, t.tok)
			if err != nil {
				return t.sum, fmt.Errorf("step %d: validation: %w", step+1, err)
			}
			t.sum.LastValidation = &v
			log.Info("validation", "step", step+1, "loss", v.Loss, "i2t_acc", v.ImageTop, "t2i_acc", v.TextTop)
			if err := t.metrics.write(map[string]any{"step": step + 1, "val_loss": v.Loss, "val_i2t_acc": v.ImageTop,
				"val_t2i_acc": v.TextTop, "val_batches": v.Batches}); err != nil {
				return t.sum, err
			}
		}
		stop := opts.StopAt > 0 && step+1 >= opts.StopAt && !last
		if (step+1)%cfg.Train.CheckpointEvery == 0 || last || stop {
			if err := t.save(step + 1); err != nil {
				return t.sum, err
			}
		}
		if stop {
			t.sum.Stopped = true
			break
		}
		if ctx.Err() != nil {
			return t.sum, interrupted(t.save(step+1), step+1, t.sum.Checkpoint)
		}
	}
	t.sum.SamplesPerSec = float64(samples) / time.Since(start).Seconds()
	return t.sum, nil
}

// trainer is the state of one Pretrain invocation.
type trainer struct {
	cfg     PretrainConfig
	opts    PretrainOptions
	log     *slog.Logger
	sum     PretrainSummary
	model   *fusion.Model
	params  []*nn.Param
	opt     *optim.AdamW
	sched   optim.Cosine
	tok     *text.Tokenizer
	train   *loader.Loader
	ep      *loader.Epoch
	metrics *metricsLog
	samples *metricsLog // opts.SampleLog, or nil
	seen    []seenSample
	cfgJSON string

	valFiles []string
	accum    [][]float32 // gradient sums over micro-batches (train.accum_steps > 1)

	step     int64 // optimiser steps done
	epoch    int   // data epoch
	position int64 // samples of the epoch consumed
}

// newTrainer checks the config and the data, builds the model, optimiser and input pipeline,
// and restores a checkpoint when resuming.
func newTrainer(opts PretrainOptions, log *slog.Logger) (*trainer, error) {
	cfg := opts.Config
	t := &trainer{cfg: cfg, opts: opts, log: log, sum: PretrainSummary{RunDir: opts.RunDir}}
	if err := cfg.Validate(); err != nil {
		return t, err
	}
	if cfg.Model.Text.VocabSize < text.VocabSize {
		return t, fmt.Errorf("model.text.vocab_size %d is smaller than the CLIP tokenizer's %d ids: real captions need the full vocabulary",
			cfg.Model.Text.VocabSize, text.VocabSize)
	}
	trainFiles, err := splitFiles(cfg.Data.Train, cfg.Data.TrainSplit)
	if err != nil {
		return t, fmt.Errorf("data.train: %w", err)
	}
	if cfg.Data.Val != "" {
		if t.valFiles, err = splitFiles(cfg.Data.Val, cfg.Data.ValSplit); err != nil {
			return t, fmt.Errorf("data.val: %w", err)
		}
	}
	if opts.Resume == "auto" {
		opts.Resume = ""
		if _, err := checkpoint.Latest(opts.RunDir); err == nil {
			opts.Resume = "latest"
		}
	}
	t.opts = opts
	if err := prepareRunDir(opts, cfg); err != nil {
		return t, err
	}
	raw, err := json.Marshal(cfg.Model) // the checkpoint rebuilds its model from this alone
	if err != nil {
		return t, err
	}
	t.cfgJSON = string(raw)

	if t.model, err = fusion.New(cfg.Model, cfg.Train.BatchSize, cfg.Train.Seed); err != nil {
		return t, err
	}
	t.params = t.model.Params()
	if t.opt, err = optim.NewAdamW(t.params, optim.AdamWConfig{Beta1: cfg.Train.Beta1, Beta2: cfg.Train.Beta2,
		Eps: cfg.Train.Eps, WeightDecay: cfg.Train.WeightDecay}); err != nil {
		return t, err
	}
	t.sched = optim.Cosine{Base: cfg.Train.LR, Warmup: int(cfg.Train.Warmup), Steps: int(cfg.Train.Steps)}
	if cfg.Train.AccumSteps > 1 {
		t.accum = make([][]float32, len(t.params))
		for i, p := range t.params {
			t.accum[i] = make([]float32, len(p.Grad))
		}
	}
	if opts.Resume != "" {
		if err := t.restore(); err != nil {
			return t, err
		}
	}
	t.sum.FirstStep = t.step
	if t.metrics, err = openMetrics(filepath.Join(opts.RunDir, MetricsName), t.step); err != nil {
		return t, err
	}
	if opts.SampleLog != "" {
		if t.samples, err = openMetrics(opts.SampleLog, t.step); err != nil {
			return t, fmt.Errorf("sample log: %w", err)
		}
	}
	if t.tok, err = text.NewTokenizer(); err != nil {
		return t, err
	}
	j := cfg.Data.Jitter
	t.train, err = loader.New(loader.Config{Files: trainFiles, Mode: loader.Train, BatchSize: cfg.Train.BatchSize,
		ImageSize: cfg.Model.Vision.ImageSize, ContextLen: cfg.Model.Text.ContextLength, Tokenize: t.tok.TokenizeInto,
		Seed: uint64(cfg.Train.Seed), DecodeWorkers: cfg.Data.Workers,
		Augment: imageproc.Augment{Flip: cfg.Data.Flip, Jitter: imageproc.Jitter{Prob: boolProb(j > 0), Brightness: j, Contrast: j, Saturation: j}}})
	if err != nil {
		return t, fmt.Errorf("data.train: %w", err)
	}
	return t, nil
}

// restore loads the checkpoint named by opts.Resume: parameters, optimiser state, step and
// data position.
func (t *trainer) restore() error {
	path, err := resolveResume(t.opts)
	if err != nil {
		return err
	}
	if saved, err := fusion.ReadConfig(path); err != nil {
		return fmt.Errorf("resume: %w", err)
	} else if saved != t.cfg.Model {
		return fmt.Errorf("resume %s: the checkpoint's model %+v differs from the config's %+v", path, saved, t.cfg.Model)
	}
	meta, state, err := checkpoint.Load(path, t.params)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := t.opt.LoadState(state); err != nil {
		return fmt.Errorf("resume %s: optimiser state: %w", path, err)
	}
	t.step, t.epoch, t.position = meta.Step, int(meta.Epoch), meta.Sample
	t.sum.Checkpoint = path
	t.log.Info("resumed", "checkpoint", path, "step", t.step, "epoch", t.epoch, "sample", t.position)
	return nil
}

// nextBatch returns the next training batch, starting the next epoch (reshuffled) when one
// ends, and records the data position for checkpoints.
func (t *trainer) nextBatch(ctx context.Context) (*loader.Batch, error) {
	b, err := t.ep.Next()
	if errors.Is(err, io.EOF) {
		t.ep.Close()
		t.epoch, t.position = t.epoch+1, 0
		t.ep = t.train.Epoch(ctx, t.epoch, 0)
		b, err = t.ep.Next()
	}
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	t.position = b.Position
	return b, nil
}

// forwardBackward runs train.accum_steps micro-batches and leaves the mean of their
// gradients in the params; it returns the mean loss. Each micro-batch's loss contrasts its own
// pairs (as open_clip without --accum-freq's feature cache).
func (t *trainer) forwardBackward(ctx context.Context) (float32, error) {
	k := max(t.cfg.Train.AccumSteps, 1)
	t.seen = t.seen[:0]
	var total float64
	for micro := 0; micro < k; micro++ {
		b, err := t.nextBatch(ctx)
		if err != nil {
			return 0, err
		}
		if t.samples != nil {
			for _, k := range b.Keys {
				t.seen = append(t.seen, seenSample{epoch: b.Epoch, key: k})
			}
		}
		loss, err := t.model.Step(b.Images, b.Tokens)
		b.Release()
		if err != nil {
			return 0, err
		}
		total += float64(loss)
		if k > 1 {
			for i, p := range t.params {
				acc := t.accum[i]
				for j, g := range p.Grad {
					acc[j] += g
				}
			}
		}
	}
	if k > 1 {
		inv := 1 / float32(k)
		for i, p := range t.params {
			acc := t.accum[i]
			for j := range acc {
				p.Grad[j], acc[j] = acc[j]*inv, 0
			}
		}
	}
	return float32(total / float64(k)), nil
}

// seenSample is one sample a step consumed, for the sample log.
type seenSample struct {
	epoch int
	key   string
}

// logSamples writes the samples of the step that just ended to the sample log.
func (t *trainer) logSamples(step int64) error {
	defer func() { t.seen = t.seen[:0] }()
	if t.samples == nil {
		return nil
	}
	var buf bytes.Buffer // one write per step: a kill tears at most the step's last line
	enc := json.NewEncoder(&buf)
	for _, s := range t.seen {
		if err := enc.Encode(map[string]any{"step": step, "epoch": s.epoch, "key": s.key}); err != nil {
			return err
		}
	}
	if _, err := t.samples.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("sample log: %w", err)
	}
	return nil
}

// save writes a checkpoint after step steps and prunes old ones.
func (t *trainer) save(step int64) error {
	path, err := checkpoint.Save(t.opts.RunDir, step, t.params, t.opt.State(), checkpoint.Meta{
		Config: t.cfgJSON, Step: step, Epoch: int64(t.epoch), Sample: t.position, Seed: t.cfg.Train.Seed})
	if err != nil {
		return fmt.Errorf("checkpoint at step %d: %w", step, err)
	}
	t.sum.Checkpoint = path
	if k := t.cfg.Train.KeepCheckpoints; k > 0 {
		if err := checkpoint.Prune(t.opts.RunDir, k); err != nil {
			t.log.Warn("pruning old checkpoints", "err", err)
		}
	}
	return nil
}

func (t *trainer) close() {
	if t.ep != nil {
		t.ep.Close()
	}
	if t.metrics != nil {
		t.metrics.Close()
	}
	if t.samples != nil {
		t.samples.Close()
	}
	if t.model != nil {
		t.model.Close()
	}
}

// interrupted reports a run stopped by a signal, with the checkpoint written for it.
func interrupted(saveErr error, step int64, path string) error {
	if saveErr != nil {
		return fmt.Errorf("%w at step %d, and its checkpoint failed: %v", ErrInterrupted, step, saveErr)
	}
	return fmt.Errorf("%w at step %d: checkpoint %s; continue with --resume latest", ErrInterrupted, step, path)
}

// validate scores the model on the validation split in eval mode (no augmentation), over
// full batches: the model's graph has a fixed batch size, so a last partial batch is left out.
func validate(ctx context.Context, model *fusion.Model, files []string, cfg PretrainConfig, tok *text.Tokenizer) (Validation, error) {
	B := cfg.Train.BatchSize
	l, err := loader.New(loader.Config{Files: files, Mode: loader.Eval, BatchSize: B, ImageSize: cfg.Model.Vision.ImageSize,
		ContextLen: cfg.Model.Text.ContextLength, Tokenize: tok.TokenizeInto, Seed: uint64(cfg.Train.Seed), DecodeWorkers: cfg.Data.Workers})
	if err != nil {
		return Validation{}, err
	}
	ep := l.Epoch(ctx, 0, 0)
	defer ep.Close()
	var v Validation
	for cfg.Train.ValBatches <= 0 || v.Batches < cfg.Train.ValBatches {
		b, err := ep.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v, err
		}
		if b.Size != B {
			b.Release()
			break
		}
		out, err := model.Forward(b.Images, b.Tokens)
		b.Release()
		if err != nil {
			return v, err
		}
		i2t, t2i := inBatchTop1(out.LogitsPerImage, B)
		v.Loss += float64(out.Loss)
		v.ImageTop += i2t
		v.TextTop += t2i
		v.Batches++
	}
	if v.Batches == 0 {
		return v, fmt.Errorf("the validation split has fewer than train.batch_size=%d images", B)
	}
	n := float64(v.Batches)
	v.Loss, v.ImageTop, v.TextTop = v.Loss/n, v.ImageTop/n, v.TextTop/n
	return v, nil
}

// inBatchTop1 returns the share of rows (image→text) and of columns (text→image) of the
// [B,B] logits whose largest entry is on the diagonal.
func inBatchTop1(logits []float32, B int) (i2t, t2i float64) {
	for r := 0; r < B; r++ {
		best := 0
		for c := 1; c < B; c++ {
			if logits[r*B+c] > logits[r*B+best] {
				best = c
			}
		}
		if best == r {
			i2t++
		}
	}
	for c := 0; c < B; c++ {
		best := 0
		for r := 1; r < B; r++ {
			if logits[r*B+c] > logits[best*B+c] {
				best = r
			}
		}
		if best == c {
			t2i++
		}
	}
	return i2t / float64(B), t2i / float64(B)
}

// splitFiles returns the shard files of one split of a prepared dataset.
func splitFiles(dir, split string) ([]string, error) {
	m, err := shard.ReadManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (no prepared dataset at %s: make it with clipgo prepare, or make data for the demo)", err, dir)
	}
	if err != nil {
		return nil, err
	}
	return m.Files(dir, split)
}

// prepareRunDir creates the run directory and records the resolved config. A new run refuses
// a directory that already holds checkpoints: it would mix two runs.
func prepareRunDir(opts PretrainOptions, cfg PretrainConfig) error {
	if opts.RunDir == "" {
		return errors.New("pretrain: --out RUN_DIR is required")
	}
	if err := os.MkdirAll(opts.RunDir, 0o755); err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	if opts.Resume == "" {
		if latest, err := checkpoint.Latest(opts.RunDir); err == nil {
			return fmt.Errorf("pretrain: %s already holds a run (checkpoint %s): continue it with --resume latest, or choose another --out",
				opts.RunDir, filepath.Base(latest))
		}
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("pretrain: %w", err)
	}
	return writeFileAtomic(filepath.Join(opts.RunDir, RunConfigName), raw)
}

func resolveResume(opts PretrainOptions) (string, error) {
	if opts.Resume != "latest" {
		return opts.Resume, nil
	}
	path, err := checkpoint.Latest(opts.RunDir)
	if err != nil {
		return "", fmt.Errorf("--resume latest: %w", err)
	}
	return path, nil
}

// metricsLog appends JSON lines to the run's metrics file.
type metricsLog struct {
	f   *os.File
	enc *json.Encoder
}

// openMetrics opens the metrics log for appending; on a resume from step, it first drops the
// records of steps after it (written by the interrupted run past its last checkpoint), so
// that the log reads as one uninterrupted run.
func openMetrics(path string, step int64) (*metricsLog, error) {
	if step > 0 {
		if err := truncateMetrics(path, step); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &metricsLog{f: f, enc: json.NewEncoder(f)}, nil
}

func (m *metricsLog) write(rec map[string]any) error {
	if err := m.enc.Encode(rec); err != nil {
		return fmt.Errorf("metrics %s: %w", m.f.Name(), err)
	}
	return nil
}

func (m *metricsLog) Close() error { return m.f.Close() }

func boolProb(b bool) float64 {
	if b {
		return 0.8
	}
	return 0
}

// temperature returns exp(logit_scale), the inverse softmax temperature the model has learned.
func temperature(params []*nn.Param) float64 {
	for _, p := range params {
		if p.Name == "logit_scale" {
			return math.Exp(float64(p.Value[0]))
		}
	}
	return math.NaN()
}
