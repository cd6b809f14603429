// Package train trains a CLIP model on prepared shards: the recipe, the training loop (data
// parallel or not), validation, checkpoints and resuming, and the run directory it all goes to.
package train

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/internal/progress"
	"github.com/clipgo/clipgo/internal/runlock"
	"github.com/clipgo/clipgo/nn"
	"github.com/clipgo/clipgo/nn/checkpoint"
	"github.com/clipgo/clipgo/nn/optim"
	"github.com/clipgo/clipgo/stages/runlog"
	"github.com/clipgo/clipgo/text/tokenizer"
)

// ErrInterrupted is returned (wrapped, with the checkpoint written) when a run stops on a
// signal: the run can go on with --resume latest.
var ErrInterrupted = errors.New("training interrupted")

// Options is one `clipgo pretrain` invocation.
type Options struct {
	Config Config
	RunDir string
	Resume string // "" (a new run), "latest", "auto" (latest if there is one, else new), or a checkpoint path
	// StopAt, when positive, ends this invocation after that step with a checkpoint, as an
	// interruption would: a long run fits into time slots, resumed with Resume "latest". A
	// resume refuses a StopAt at or before the checkpoint's step.
	StopAt int64
	// AllowChanges lets a resume change recipe keys that make the run differ from one that
	// never stopped (batch, data, seed, optimisation; see exactKeys); the changes are recorded
	// in RUN/config-history.jsonl. Without it such a resume is refused, naming each key.
	// Raising train.steps needs no permission (and is recorded too).
	AllowChanges bool
	// SampleLog, when set, names a JSON-lines file that gets one record per training sample
	// consumed, {"step","epoch","key"}, written as each step ends: an audit of what the
	// model saw (on a resume, the records past the checkpoint are dropped, as in the metrics).
	SampleLog string
	// Comm joins the ranks of a data-parallel run (nil: one process). Each rank takes
	// batch_size/ranks pairs of every batch from its own data streams; features are gathered so
	// that the loss sees the whole batch, gradients are averaged, and every rank takes the
	// same optimiser step. Rank 0 reads the checkpoint to resume from and broadcasts it, writes
	// checkpoints, metrics and progress; the others only need the shards.
	Comm *dist.Comm
}

// Summary is what a run did.
type Summary struct {
	RunDir        string
	FirstStep     int64 // the first step this invocation ran (> 0 after a resume)
	Steps         int64 // the step count reached
	FirstLoss     float32
	LastLoss      float32
	SamplesPerSec float64
	CommSeconds   float64 // data parallel: this rank's time in collectives (waits for other ranks included)
	Checkpoint    string  // the newest checkpoint written
	SkippedSteps  int     // steps skipped for a non-finite loss or gradient
	Stopped       bool    // ended at StopAt before train.steps
	AlreadyDone   bool    // resumed a run that had reached train.steps: nothing to train
	EarlyStopped  bool    // ended by train.early_stop (patience ran out), now or before a resume
	Best          string  // train.early_stop: RUN/best.safetensors, when this invocation wrote it
	// Memory is the start-up estimate of this process's memory.
	Memory fusion.Memory
	// Length is the run's length in steps and how it follows from the recipe (train.epochs)
	// and the training split.
	Length Length
	// LastValidation is the model's last score on the validation split: the contrastive loss
	// and the in-batch retrieval accuracy (top-1, both directions), averaged over full batches.
	LastValidation *runlog.Val
}

// Run trains a CLIP model on prepared shards: the input pipeline feeds fixed-size
// batches, each step runs forward and backward (over train.accum_steps micro-batches), clips,
// and takes an AdamW step with a cosine schedule, then clamps the logit scale. Metrics go to
// RunDir/metrics.jsonl, checkpoints to RunDir every train.checkpoint_every steps, at the end,
// at opts.StopAt and on interruption (ctx done).
//
// With opts.Comm of several ranks, each rank runs Run on its share of every batch and
// the ranks stay in lockstep (see Options.Comm).
func Run(ctx context.Context, opts Options, log *slog.Logger, progressTo io.Writer) (Summary, error) {
	t, err := newTrainer(ctx, opts, log)
	defer t.close()
	if err != nil {
		return t.sum, err
	}
	cfg := t.cfg
	if !t.lead {
		progressTo = io.Discard
	}
	bar := progress.New(progressTo, log, "pretrain", cfg.Train.Steps)
	bar.Resumed(t.step) // a resume's rate and ETA are of this process's steps
	defer bar.Finish()

	if done, err := t.startEarlyStop(); err != nil {
		return t.sum, err
	} else if done {
		t.sum.EarlyStopped, t.sum.AlreadyDone, t.sum.Steps = true, true, t.step
		return t.sum, nil
	}
	if t.redoVal {
		// A signal stopped the run during the validation of its checkpoint's step: do it now.
		if err := t.validateAt(t.step); err != nil {
			if t.dataCtx.Err() != nil {
				return t.sum, interrupted(nil, t.step, t.sum.Checkpoint)
			}
			return t.sum, err
		}
	}
	if t.step >= cfg.Train.Steps {
		t.sum.AlreadyDone, t.sum.Steps = true, t.step
		return t.sum, nil
	}
	t.logStartup()
	start, samples := time.Now(), int64(0)
	var lastStall, lastComm time.Duration
	badInARow := 0
	for ; t.step < cfg.Train.Steps; t.step++ {
		step := t.step
		before := t.mark()
		loss, stop, err := t.forwardBackward(ctx)
		if err != nil {
			if ctx.Err() != nil && t.comm.Size() == 1 {
				// The step did not happen: its checkpoint resumes the data where the step began.
				t.rewind(before)
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
				return t.sum, fmt.Errorf("step %d: %d non-finite steps in a row (train.max_bad_steps); last good checkpoint: %s",
					step, badInARow, cmp.Or(t.sum.Checkpoint, "none yet"))
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
		scale, bias := logitScale(t.params), logitBias(t.params)
		temp := "" // a loss without a temperature (triplet) has none to show
		if !math.IsNaN(scale) {
			temp = fmt.Sprintf(" T %.2f", math.Exp(scale))
		}
		bar.Add(1, fmt.Sprintf("loss %.4f%s lr %.2e %.0f samples/s", loss, temp, lr, rate))
		if t.lead && ((step+1)%cfg.Train.LogEvery == 0 || step == t.sum.FirstStep) {
			stall := t.stall()
			if stall < lastStall { // a new epoch started its own count
				lastStall = 0
			}
			rec := runlog.Train{Step: step + 1, Epoch: t.streams[0].epoch, Loss: loss, LogitScale: scale,
				LogitScaleExp: math.Exp(scale), LogitBias: bias, LR: lr, GradNorm: gradNorm, SamplesPerS: rate,
				StallS: (stall - lastStall).Seconds(), ElapsedS: time.Since(start).Seconds()}
			if t.comm.Size() > 1 {
				comm := t.commTime()
				s := (comm - lastComm).Seconds()
				rec.CommS = &s
				lastComm = comm
			}
			if err := t.metrics.WriteTrain(rec); err != nil {
				return t.sum, err
			}
			lastStall = stall
		}
		last := step+1 == cfg.Train.Steps
		if t.valDue(step + 1) {
			if err := t.validateAt(step + 1); err != nil {
				if t.dataCtx.Err() != nil {
					// A signal during validation: the step is done, its checkpoint is written,
					// and the resume redoes the validation (the metrics log lacks it).
					return t.sum, interrupted(t.save(step+1), step+1, t.sum.Checkpoint)
				}
				return t.sum, err
			}
		}
		stopAt := opts.StopAt > 0 && step+1 >= opts.StopAt && !last
		early := t.earlyDone && !last
		if (step+1)%cfg.Train.CheckpointEvery == 0 || last || stopAt || early {
			if err := t.save(step + 1); err != nil {
				return t.sum, err
			}
		}
		if stopAt {
			t.sum.Stopped = true
			break
		}
		if early {
			t.sum.EarlyStopped = true
			break
		}
		if stop && !last {
			err := t.save(step + 1)
			// Under mpirun, the first rank to exit gets the others killed: they wait until
			// rank 0's checkpoint is on disk.
			if berr := t.comm.Barrier(); err == nil {
				err = berr
			}
			return t.sum, interrupted(err, step+1, t.sum.Checkpoint)
		}
	}
	t.sum.SamplesPerSec = float64(samples) / time.Since(start).Seconds()
	t.sum.CommSeconds = t.commTime().Seconds()
	return t.sum, nil
}

// validateAt validates the model after step steps and logs the record.
func (t *trainer) validateAt(step int64) error {
	v, err := t.validate(t.dataCtx)
	if err != nil {
		return fmt.Errorf("step %d: validation: %w", step, err)
	}
	v.Step = step
	if err := t.judge(&v); err != nil {
		return fmt.Errorf("step %d: %w", step, err)
	}
	t.sum.LastValidation = &v
	attrs := []any{"step", step, "loss", v.Loss, "i2t_acc", v.ImageTop, "t2i_acc", v.TextTop}
	if v.Recall != nil && v.RecallMean != nil { // a pointer would log as its address
		attrs = append(attrs, "t2i_r10", v.Recall.T2I10, "i2t_r10", v.Recall.I2T10, "recall_mean", *v.RecallMean)
	}
	t.log.Info("validation", append(attrs, "best", v.Best)...)
	if t.lead {
		return t.metrics.WriteVal(v)
	}
	return nil
}

// trainer is the state of one Run invocation (of one rank, data parallel).
type trainer struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	sum     Summary
	model   *fusion.Model
	params  []*nn.Param
	opt     *optim.AdamW
	sched   optim.Cosine
	tok     *tokenizer.Tokenizer
	metrics *runlog.Writer // rank 0 only
	samples *runlog.Writer // opts.SampleLog, or nil
	seen    []seenSample
	cfgJSON string
	init    *initWeights // a new run's pretrained weights (Config.Init), on rank 0 until loaded

	comm       *dist.Comm
	lead       bool          // rank 0: logs, writes checkpoints and metrics
	flat       []float32     // gradients, loss and stop flag, all-reduced in one call (several ranks)
	reduceTime time.Duration // spent in that all-reduce
	dataCtx    context.Context
	cancel     context.CancelFunc

	valFiles []string
	accum    [][]float32 // gradient sums over micro-batches (train.accum_steps > 1)

	lock        *runlock.Lock // rank 0: the run directory's writer lock
	resumedStep int64         // the checkpoint's step a resume started from (-1: a new run)
	length      Length        // how the run's steps follow from the training split (train.epochs)
	redoVal     bool          // the checkpoint's step lacks its validation record

	step    int64     // optimiser steps done
	streams []*stream // this rank's shares of the training data
	nStream int       // streams of the whole job
	images  []float32 // this rank's batch, when it has several streams to put side by side
	tokens  []int32
	keys    []string // its rows' keys (data.captions_per_image > 1)

	early     *earlyStop // train.early_stop's state (nil: off)
	earlyDone bool       // patience ran out at the latest validation

	hardneg *hardNegatives // train.hard_negatives' state (nil: off)
}

// newTrainer checks the config and the data, builds the model, optimiser and input pipeline,
// and restores a checkpoint when resuming.
func newTrainer(ctx context.Context, opts Options, log *slog.Logger) (*trainer, error) {
	cfg := opts.Config
	t := &trainer{cfg: cfg, opts: opts, log: log, sum: Summary{RunDir: opts.RunDir}, comm: opts.Comm, resumedStep: -1}
	if t.comm == nil {
		t.comm = dist.Single()
	}
	t.lead = t.comm.Rank() == 0
	parent := ctx
	if t.comm.Size() > 1 {
		// A signal reaches the ranks at different moments: they agree on stopping at a step's
		// end (forwardBackward), so the input must not stop under one of them mid-step.
		parent = context.WithoutCancel(ctx)
	}
	t.dataCtx, t.cancel = context.WithCancel(parent)
	if err := cfg.Validate(); err != nil {
		return t, err
	}
	if cfg.Init != "" {
		if err := t.resolveInit(); err != nil {
			return t, err
		}
		cfg = t.cfg
		if err := cfg.Model.Validate(); err != nil {
			return t, fmt.Errorf("init %s: %w", cfg.Init, err)
		}
	}
	if cfg.Model.Text.VocabSize < tokenizer.VocabSize {
		return t, fmt.Errorf("model.text.vocab_size %d is smaller than the CLIP tokenizer's %d ids: real captions need the full vocabulary",
			cfg.Model.Text.VocabSize, tokenizer.VocabSize)
	}
	world := t.comm.Size()
	t.nStream = cfg.Data.Streams
	if t.nStream == 0 {
		t.nStream = world
	}
	// The run records the streams it draws from (0 means one per rank): a resume on another
	// number of ranks then compares what the data was, not how it was spelt.
	cfg.Data.Streams = t.nStream
	t.cfg = cfg
	if t.nStream%world != 0 || cfg.Train.BatchSize%t.nStream != 0 {
		return t, fmt.Errorf("train.batch_size %d over data.streams %d on %d ranks: the streams must divide the batch and the ranks the streams",
			cfg.Train.BatchSize, t.nStream, world)
	}
	trainFiles, err := splitFiles(cfg.Data.Train, cfg.Data.TrainSplit)
	if err != nil {
		return t, fmt.Errorf("data.train: %w", err)
	}
	if t.cfg, err = t.resolveLength(); err != nil { // train.epochs become steps
		return t, err
	}
	cfg = t.cfg
	if cfg.Data.Val != "" {
		if t.valFiles, err = splitFiles(cfg.Data.Val, cfg.Data.ValSplit); err != nil {
			return t, fmt.Errorf("data.val: %w", err)
		}
	}
	if err := t.checkMemory(cfg.Train.BatchSize / world); err != nil { // before anything is allocated or written
		return t, err
	}
	if t.lead {
		// One writer per run directory: taken before anything in it is read to decide or written.
		if opts.RunDir == "" {
			return t, errors.New("pretrain: --out RUN_DIR is required")
		}
		if t.lock, err = runlock.Acquire(opts.RunDir, "pretrain"); err != nil {
			return t, fmt.Errorf("pretrain: %w", err)
		}
		if w := t.lock.Warning(); w != "" {
			log.Warn(w)
		}
		if opts.Resume == "auto" {
			// A run with any checkpoint resumes (and a damaged newest one is an error then);
			// only a directory without one starts afresh.
			steps, err := checkpoint.Steps(opts.RunDir)
			if err != nil {
				return t, fmt.Errorf("pretrain: %w", err)
			}
			opts.Resume = ""
			if len(steps) > 0 {
				opts.Resume = "latest"
			}
		}
		t.opts = opts
		if err := prepareRunDir(opts, cfg); err != nil {
			return t, err
		}
	}
	raw, err := json.Marshal(cfg.Model) // the checkpoint rebuilds its model from this alone
	if err != nil {
		return t, err
	}
	t.cfgJSON = string(raw)

	local := cfg.Train.BatchSize / world
	if world == 1 {
		t.model, err = fusion.New(cfg.Model, local, cfg.Train.Seed, t.modelOptions()...)
	} else {
		t.model, err = fusion.NewDataParallel(cfg.Model, local, cfg.Train.Seed, t.comm, t.modelOptions()...)
	}
	if err != nil {
		return t, err
	}
	t.params = t.model.Params()
	if err := t.loadInit(); err != nil {
		return t, err
	}
	if err := t.recordInit(); err != nil {
		return t, err
	}
	if t.opt, err = optim.NewAdamW(t.params, optim.AdamWConfig{Beta1: cfg.Train.Beta1, Beta2: cfg.Train.Beta2,
		Eps: cfg.Train.Eps, WeightDecay: cfg.Train.WeightDecay}); err != nil {
		return t, err
	}
	if err := t.applyFineTune(); err != nil {
		return t, err
	}
	t.sched = optim.Cosine{Base: cfg.Train.LR, Warmup: int(cfg.Train.Warmup), Steps: int(cfg.Train.Steps)}
	if cfg.Train.AccumSteps > 1 {
		t.accum = make([][]float32, len(t.params))
		for i, p := range t.params {
			t.accum[i] = make([]float32, len(p.Grad))
		}
	}
	var saved []checkpoint.StreamPos
	if t.lead && t.opts.Resume != "" {
		if saved, err = t.restore(); err != nil {
			return t, err
		}
	}
	if t.lead && t.resumedStep >= 0 {
		t.redoVal = t.missingValidation(t.step)
	}
	if world > 1 {
		if saved, err = t.broadcastStart(saved); err != nil {
			return t, err
		}
		n := 2 // the loss and the stop flag ride with the gradients
		for _, p := range t.params {
			n += len(p.Grad)
		}
		t.flat = make([]float32, n)
	}
	t.sum.FirstStep = t.step
	if t.lead {
		if t.metrics, err = runlog.OpenMetrics(opts.RunDir, t.step); err != nil {
			return t, fmt.Errorf("metrics: %w", err)
		}
	}
	if opts.SampleLog != "" {
		path := opts.SampleLog
		if world > 1 {
			path = fmt.Sprintf("%s.rank-%d", path, t.comm.Rank())
		}
		if t.samples, err = runlog.Open(path, t.step); err != nil {
			return t, fmt.Errorf("sample log: %w", err)
		}
	}
	if t.tok, err = tokenizer.New(); err != nil {
		return t, err
	}
	if err := t.openStreams(trainFiles, t.resolvePositions(saved)); err != nil {
		return t, fmt.Errorf("data.train: %w", err)
	}
	return t, nil
}

// restore loads the checkpoint named by opts.Resume (on rank 0): parameters, optimiser state
// and step; it returns the data stream positions.
func (t *trainer) restore() ([]checkpoint.StreamPos, error) {
	path, err := resolveResume(t.opts)
	if err != nil {
		return nil, err
	}
	saved, err := fusion.ReadConfig(path) // the model's sizes, within limits
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	head, err := checkpoint.ReadMeta(path)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	old, ok, err := recordedConfig(t.opts.RunDir)
	if err != nil {
		return nil, err
	}
	if !ok {
		old = t.cfg
	}
	old.Model = saved          // the checkpoint holds the weights of its own model
	if old.Data.Streams == 0 { // recorded before runs wrote their streams: the checkpoint has them
		old.Data.Streams = max(len(head.Streams), 1)
	}
	if old, err = old.withLength(t.length.SplitPairs); err != nil { // its epochs, as steps over the same split
		return nil, fmt.Errorf("resume: the run's recorded recipe: %w", err)
	}
	changes, err := t.checkResume(old, head.Step)
	if err != nil {
		return nil, err
	}
	if steps, _ := checkpoint.Steps(t.opts.RunDir); len(steps) > 0 && steps[len(steps)-1] > head.Step {
		t.log.Warn("resuming from an older checkpoint than the run's newest: the newer checkpoints are left untouched, and a checkpoint due at one of their steps fails rather than replace it",
			"checkpoint", path, "newest", checkpoint.ModelPath(t.opts.RunDir, steps[len(steps)-1]))
	}
	meta, state, err := checkpoint.Load(path, t.params)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	if t.opts.AllowChanges { // the locks may have changed: the optimiser's params with them
		state = adaptOptimizerState(state, t.opt.Params())
	}
	if err := t.opt.LoadState(state); err != nil {
		return nil, fmt.Errorf("resume %s: optimiser state: %w", path, err)
	}
	t.step, t.resumedStep = meta.Step, meta.Step
	t.sum.Checkpoint = path
	if err := writeRunConfig(t.opts.RunDir, t.cfg, changes); err != nil {
		return nil, err
	}
	pos := meta.Streams
	if pos == nil {
		pos = []checkpoint.StreamPos{{Epoch: meta.Epoch, Sample: meta.Sample}}
	}
	t.log.Info("resumed", "checkpoint", path, "step", t.step, "epoch", meta.Epoch, "sample", meta.Sample, "streams", len(pos))
	return pos, nil
}

// forwardBackward runs train.accum_steps micro-batches and leaves the mean of their
// gradients in the params; it returns the mean loss. Each micro-batch's loss contrasts its own
// pairs (as open_clip without --accum-freq's feature cache). Data parallel, the gradients and
// the loss are then averaged over the ranks, and stop reports whether any rank was asked to
// stop (ctx done): all of them then stop after this step.
func (t *trainer) forwardBackward(ctx context.Context) (loss float32, stop bool, err error) {
	k := max(t.cfg.Train.AccumSteps, 1)
	t.seen = t.seen[:0]
	var total float64
	for micro := 0; micro < k; micro++ {
		images, tokens, release, err := t.nextInput()
		if err != nil {
			return 0, false, err
		}
		t.model.SetStepSeed(uint64(t.step)*uint64(k) + uint64(micro)) // patch dropout draws as the step's own
		loss, err := t.model.Step(images, tokens)
		release()
		if err != nil {
			return 0, false, err
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
	loss, stop = float32(total/float64(k)), ctx.Err() != nil
	if t.comm.Size() > 1 {
		return t.allReduce(loss, stop)
	}
	return loss, stop, nil
}

// save writes a checkpoint after step steps (rank 0) and prunes old ones. Every rank calls it:
// the data positions of all ranks' streams go into the checkpoint.
func (t *trainer) save(step int64) error {
	pos, err := t.positions()
	if err != nil {
		return fmt.Errorf("checkpoint at step %d: %w", step, err)
	}
	if !t.lead {
		return nil
	}
	if existing := checkpoint.ModelPath(t.opts.RunDir, step); step == t.resumedStep {
		if _, err := os.Stat(existing); err == nil {
			// Stopped before its first step: the checkpoint resumed from is this state.
			t.sum.Checkpoint = existing
			return nil
		}
	}
	meta := checkpoint.Meta{Config: t.cfgJSON, Step: step, Epoch: pos[0].Epoch, Sample: pos[0].Sample, Seed: t.cfg.Train.Seed}
	if len(pos) > 1 {
		meta.Streams = pos
	}
	path, err := checkpoint.Save(t.opts.RunDir, step, t.params, t.opt.State(), meta)
	if errors.Is(err, checkpoint.ErrExists) {
		return fmt.Errorf("checkpoint at step %d: %w; this run resumed from step %d, and a newer checkpoint is never replaced: move it out of %s to go on, or resume from it",
			step, err, t.resumedStep, t.opts.RunDir)
	}
	if err != nil {
		return fmt.Errorf("checkpoint at step %d: %w", step, err)
	}
	t.sum.Checkpoint = path
	if k := t.cfg.Train.KeepCheckpoints; k > 0 {
		if err := checkpoint.Prune(t.opts.RunDir, k, step); err != nil {
			t.log.Warn("pruning old checkpoints", "err", err)
		}
	}
	return nil
}

func (t *trainer) close() {
	for _, s := range t.streams {
		if s.ep != nil {
			s.ep.Close()
		}
	}
	if t.cancel != nil {
		t.cancel()
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
	if err := t.lock.Release(); err != nil {
		t.log.Warn("releasing the run directory's lock", "err", err)
	}
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
	recs := make([]runlog.Sample, len(t.seen))
	for i, s := range t.seen {
		recs[i] = runlog.Sample{Step: step, Epoch: s.epoch, Key: s.key}
	}
	return t.samples.WriteSamples(recs) // one write per step: a kill tears at most the step's last line
}

// interrupted reports a run stopped by a signal, with the checkpoint written for it.
func interrupted(saveErr error, step int64, path string) error {
	if saveErr != nil {
		return fmt.Errorf("%w at step %d, and its checkpoint failed: %v", ErrInterrupted, step, saveErr)
	}
	if path == "" { // another rank than 0: rank 0 wrote and named it
		return fmt.Errorf("%w at step %d", ErrInterrupted, step)
	}
	return fmt.Errorf("%w at step %d: checkpoint %s; continue with --resume latest", ErrInterrupted, step, path)
}

func boolProb(b bool) float64 {
	if b {
		return 0.8
	}
	return 0
}

// logitScale returns the learnable logit scale t; exp(t) is the inverse softmax temperature
// the model has learned. It is NaN for a model without one (model.loss triplet), which the
// metrics record then leaves out.
func logitScale(params []*nn.Param) float64 {
	for _, p := range params {
		if p.Name == fusion.LogitScaleName {
			return float64(p.Value[0])
		}
	}
	return math.NaN()
}

// logitBias returns SigLIP's learnable logit bias, or nil for a model without one.
func logitBias(params []*nn.Param) *float64 {
	for _, p := range params {
		if p.Name == fusion.LogitBiasName {
			b := float64(p.Value[0])
			return &b
		}
	}
	return nil
}
