package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/bench"
)

func newParityCmd() *cobra.Command {
	opts := bench.ParityOptions{TolOutputs: 1e-4, TolGrads: 1e-3}
	cmd := &cobra.Command{
		Use:   "parity --weights W.safetensors --inputs I.safetensors --out O.safetensors [--reference R.safetensors]",
		Short: "one training step's features, logits, loss and gradients, as ../shared/peers/clip_step.py parity writes them",
		Long: `parity loads an open_clip state_dict and a batch (the files of clip_step.py export-random),
runs clipgo's forward and backward pass, and writes image_features, text_features,
logits_per_image, loss and grad.<name> for every parameter. With --reference (the PyTorch
reference's parity output for the same files) it compares every tensor and fails when an
error relative to the tensor's largest magnitude exceeds the tolerances.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := bench.Parity(opts, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if opts.Reference != "" && !rep.Pass {
				return fmt.Errorf("parity failed: worst output %s %.3g (tolerance %g), worst gradient %s %.3g (tolerance %g)",
					rep.WorstOut, rep.MaxOutErr, opts.TolOutputs, rep.WorstGrad, rep.MaxGradErr, opts.TolGrads)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Weights, "weights", "", "open_clip state_dict (safetensors)")
	f.StringVar(&opts.Inputs, "inputs", "", "batch: images F32 [B,3,S,S], texts int [B,L]")
	f.StringVar(&opts.Out, "out", "", "output safetensors")
	f.IntVar(&opts.VisionHeads, "vision-heads", 0, "vision attention heads (default: the weights' metadata, else --preset)")
	f.IntVar(&opts.TextHeads, "text-heads", 0, "text attention heads (default: the weights' metadata, else --preset)")
	f.StringVar(&opts.Preset, "preset", "", "model preset that supplies the head counts (tiny, small, vit-b-32)")
	f.StringVar(&opts.Reference, "reference", "", "the reference's output for the same files, to compare against")
	f.Float64Var(&opts.TolOutputs, "tol-outputs", opts.TolOutputs, "tolerance for features, logits and loss")
	f.Float64Var(&opts.TolGrads, "tol-grads", opts.TolGrads, "tolerance for gradients")
	_ = cmd.MarkFlagRequired("weights")
	_ = cmd.MarkFlagRequired("inputs")
	return cmd
}
