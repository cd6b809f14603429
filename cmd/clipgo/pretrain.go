package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/internal/dist"
	"github.com/clipgo/clipgo/stages/train"
)

func newPretrainCmd() *cobra.Command {
	var (
		recipe, out, resume, sampleLog, initPath string
		sets                                     []string
		stopAt                                   int64
		allowChanges, quickGELU, printConfig     bool
	)
	cmd := &cobra.Command{
		Use:   "pretrain --config RECIPE --out RUN_DIR [--set key=value ...] [--init WEIGHTS] [--resume latest]",
		Short: "train a CLIP model on prepared shards (CLIP, SigLIP or triplet loss), from scratch or from pretrained weights",
		Long: `pretrain trains a CLIP model (vision and text transformers, learnable temperature) on the
train split of a prepared dataset. RECIPE is a YAML file or a built-in recipe name (demo,
flickr8k, flickr8k-siglip); --set overrides any key by its dotted name (model.vision.layers=6, train.steps=100,
train.batch_size=32, data.train=DIR, ...); --print-config shows the result, defaults included.
The run's length is train.steps, or train.epochs (passes over the train split; the steps follow
from its size and train.batch_size). Metrics go to RUN_DIR/metrics.jsonl; checkpoints
(RUN_DIR/step-*.safetensors, optimiser state beside them) every train.checkpoint_every steps,
at the end and on SIGINT/SIGTERM/SIGUSR1. --resume latest continues a run exactly where it stopped,
with the run's own recipe (RUN_DIR/config.yaml) unless --config is given; a recipe that changes
the training (batch, data, seed, optimisation) is refused unless --allow-changes, and every
change is recorded in RUN_DIR/config-history.jsonl. Raising train.steps continues a finished run.
A damaged newest checkpoint is an error: fall back explicitly with --resume RUN_DIR/step-N.safetensors.
One pretrain writes a run directory at a time (a lock file, RUN_DIR/.clipgo.lock).

--init WEIGHTS (or init: in the recipe) starts a new run from pretrained weights: a clipgo
checkpoint or run directory, an open_clip or OpenAI-converted state dict (.safetensors, with or
without "module.", F32/F16/BF16), or a Hugging Face CLIPModel directory (model.safetensors and
config.json). The model comes from the weights (no model_preset); model.* keys may only set what
keeps their tensors: quick_gelu (--quick-gelu, for OpenAI's bare state dicts), heads, the loss
settings the tensors hold (a state dict with logit_bias trains with model.loss siglip). The
optimiser starts fresh at step 0. The weights' path and SHA-256 go to RUN_DIR/config-history.jsonl;
a resume continues from the run's own checkpoint and never reads them again.

model.loss picks the objective: clip (default), siglip (sigmoid loss, learnable bias) or triplet
(model.triplet.margin, model.triplet.hardest); model.triplet.weight=W adds W × triplet to clip.

Data parallel: built with MPI (make build-mpi), "mpirun -np N clipgo pretrain ..." trains on N
ranks; train.batch_size is the global batch, each rank takes its share (README: Scaling out).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if stopAt < 0 {
				return fmt.Errorf("--stop-at %d: want a step after the run's current one", stopAt)
			}
			if !cmd.Flags().Changed("config") {
				// A resume continues the run's own recipe, not the built-in default.
				path, ok, err := train.ResumeRecipe(out, resume)
				if err != nil {
					return err
				}
				if ok {
					recipe = path
				}
			}
			if cmd.Flags().Changed("init") {
				if initPath == "" {
					return errors.New("--init: want the pretrained weights to start from (a .safetensors file or a Hugging Face model directory)")
				}
				sets = append(sets, "init="+initPath)
			}
			if quickGELU {
				sets = append(sets, "model.quick_gelu=true")
			}
			cfg, err := train.LoadConfig(recipe, sets)
			if err != nil {
				return err
			}
			if printConfig {
				raw, err := cfg.RecipeYAML()
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "# clipgo pretrain --print-config: the recipe %s with every default filled in and --set applied;\n# a recipe file as it is (--config FILE)\n%s", recipe, raw)
				return nil
			}
			comm, err := dist.Init()
			if err != nil {
				return err
			}
			defer comm.Close()
			log, progressTo := logger(), io.Writer(os.Stderr)
			if comm.Size() > 1 {
				log = rankLogger(comm.Rank())
			}
			sum, err := train.Run(cmd.Context(), train.Options{Config: cfg, RunDir: out, Resume: resume,
				StopAt: stopAt, SampleLog: sampleLog, AllowChanges: allowChanges, Comm: comm}, log, progressTo)
			if errors.Is(err, train.ErrInterrupted) {
				// Every rank stopped at the same step; rank 0 names the checkpoint.
				if comm.Rank() == 0 {
					fmt.Fprintln(os.Stderr, "clipgo:", err)
				}
				comm.Close()
				os.Exit(interruptedExit(cmd.Context()))
			}
			if err != nil {
				if comm.Size() > 1 {
					// The other ranks would wait for this one forever in their next collective.
					fmt.Fprintf(os.Stderr, "clipgo: rank %d of %d: %v (aborting the job)\n", comm.Rank(), comm.Size(), err)
					comm.Abort(1)
				}
				return err
			}
			if comm.Rank() != 0 {
				return nil
			}
			w := cmd.OutOrStdout()
			if sum.AlreadyDone && sum.EarlyStopped {
				fmt.Fprintf(w, "%s already ended early at step %d (train.early_stop: patience ran out); its best model is %s\n",
					sum.RunDir, sum.Steps, filepath.Join(sum.RunDir, train.BestName))
				return nil
			}
			if sum.AlreadyDone {
				fmt.Fprintf(w, "%s already reached train.steps %d (checkpoint %s): nothing to train; raise train.steps or train.epochs (--set train.steps=N) to continue it\n",
					sum.RunDir, sum.Steps, sum.Checkpoint)
				return nil
			}
			if n := comm.Size(); n > 1 {
				steps := max(sum.Steps-sum.FirstStep, 1)
				fmt.Fprintf(w, "data parallel on %d ranks, %d pairs per rank per step; rank 0 spent %.1f s in collectives (%.1f ms per step)\n",
					n, cfg.Train.BatchSize/n, sum.CommSeconds, 1000*sum.CommSeconds/float64(steps))
			}
			fmt.Fprintf(w, "trained %s: steps %d..%d, loss %.4f -> %.4f, %.0f samples/s, checkpoint %s\n",
				sum.RunDir, sum.FirstStep, sum.Steps, sum.FirstLoss, sum.LastLoss, sum.SamplesPerSec, sum.Checkpoint)
			if v := sum.LastValidation; v != nil {
				fmt.Fprintf(w, "validation: loss %.4f, in-batch top-1 image→text %.3f, text→image %.3f (%d batches)\n",
					v.Loss, v.ImageTop, v.TextTop, v.Batches)
			}
			if sum.Stopped {
				fmt.Fprintf(w, "stopped at step %d of %d (--stop-at); continue with --resume latest\n", sum.Steps, sum.Length.Steps)
			}
			if sum.EarlyStopped {
				fmt.Fprintf(w, "stopped early at step %d of %d (train.early_stop: no better validation in patience %d); best model %s\n",
					sum.Steps, sum.Length.Steps, cfg.Train.EarlyStop.Patience, filepath.Join(sum.RunDir, train.BestName))
			}
			if sum.SkippedSteps > 0 {
				fmt.Fprintf(w, "skipped %d non-finite steps\n", sum.SkippedSteps)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&recipe, "config", "demo", "training recipe: a YAML file or a built-in name (demo, flickr8k, flickr8k-siglip)")
	f.StringVar(&out, "out", "", "run directory (checkpoints, metrics.jsonl, config.yaml)")
	f.StringArrayVar(&sets, "set", nil, "override a config key: --set train.steps=100 (repeatable)")
	f.StringVar(&resume, "resume", "", `continue a run: "latest", a checkpoint path, or "auto" (latest when RUN_DIR has one, else start)`)
	f.Int64Var(&stopAt, "stop-at", 0, "end after this step with a checkpoint (continue later with --resume latest); a resume refuses a step at or before its checkpoint's")
	f.BoolVar(&allowChanges, "allow-changes", false, "let a resume change recipe keys that make it differ from a run that never stopped (batch, data, seed, optimisation); recorded in RUN_DIR/config-history.jsonl")
	f.StringVar(&initPath, "init", "", "start a new run from pretrained weights: a clipgo checkpoint or run, an open_clip/OpenAI state dict, or a Hugging Face CLIPModel directory; the model comes from them (the recipe's model_preset and model section are not used; --set model.* may set what keeps their shapes)")
	f.BoolVar(&quickGELU, "quick-gelu", false, "the model uses QuickGELU (OpenAI's models; a bare state dict does not record it): model.quick_gelu=true")
	f.BoolVar(&printConfig, "print-config", false, "print the resolved recipe (defaults filled in, --set applied) as YAML that --config reads back, and exit without training")
	f.StringVar(&sampleLog, "sample-log", "", "append one JSON line per training sample consumed (step, epoch, key) to this file: an audit of what the model saw")
	return cmd
}
