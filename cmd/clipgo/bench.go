package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/bench"
)

func newBenchCmd() *cobra.Command {
	opts := bench.Options{Preset: "tiny", Warmup: -1, DataBatches: 2}
	var cpuProfile, mode string
	cmd := &cobra.Command{
		Use:   "bench [--mode training|inference] [--preset tiny|small] [--threads N] [--steps N] [--warmup N] [--batch N]",
		Short: "time full training steps (or, --mode inference, the encoders) on random data; one JSON line, as the PyTorch reference prints",
		Long: `bench times training steps of a preset (forward and loss, backward, the optimiser phase:
finite check, gradient norm, AdamW with the cosine schedule, logit-scale clamp) on random
in-memory batches laid out as the PyTorch reference's make_batch, and prints one JSON line
with the reference's fields (step median and its forward/backward/optimiser split, samples/s,
GFLOP per sample counted as the reference does, achieved GFLOP/s) plus the sgemm ceiling
measured in the same process with the same parallelism, MFU against it, peak RSS and heap
allocations per timed step. --threads sets GOMAXPROCS, which sizes every kernel's and the
optimiser's goroutines (OpenBLAS itself runs single-threaded).

--mode inference times the inference path instead (the encoder evaluation, embed and search
use: forward-only graphs, random weights, no training model): --steps batches of --batch
images, then of token rows, after --warmup batches of each, and prints images/s, texts/s and
peak RSS, as scripts/peers/infer_peer.py does for PyTorch under no_grad.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var prof *os.File
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer f.Close()
				prof, opts.CPUProfile = f, f
			}
			var res any
			var err error
			switch mode {
			case "training":
				res, err = bench.Run(cmd.Context(), opts)
			case "inference":
				res, err = bench.RunInference(cmd.Context(), opts)
			default:
				err = fmt.Errorf("--mode %q: want training or inference", mode)
			}
			if err != nil {
				return err
			}
			if prof != nil {
				if err := prof.Close(); err != nil {
					return fmt.Errorf("cpu profile %s: %w", cpuProfile, err)
				}
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "training", "training (full steps) or inference (the encoder's images/s and texts/s)")
	f.StringVar(&opts.Preset, "preset", opts.Preset, "model preset: tiny or small (the reference's)")
	f.IntVar(&opts.Threads, "threads", 0, "GOMAXPROCS for the run (0: leave it)")
	f.IntVar(&opts.Steps, "steps", 0, "timed steps, or batches per tower in inference mode (0: the preset's, tiny 30, small 10)")
	f.IntVar(&opts.Warmup, "warmup", opts.Warmup, "untimed warm-up steps (-1: the preset's, tiny 5, small 2)")
	f.IntVar(&opts.Batch, "batch", 0, "pairs per step, or rows per encoder batch (0: the preset's, tiny 64, small 128)")
	f.IntVar(&opts.DataBatches, "data-batches", opts.DataBatches, "distinct random batches, cycled")
	f.Int64Var(&opts.Seed, "seed", 0, "model init seed (data from seed+1)")
	f.IntVar(&opts.PeakN, "sgemm-n", 0, "size n of the n×n×n sgemm that measures the ceiling (0: 1024, -1: skip)")
	f.StringArrayVar(&opts.Sets, "set", nil, "override a model size: --set text.vocab_size=49408 (repeatable)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the timed steps to this file")
	return cmd
}
