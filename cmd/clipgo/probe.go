package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/eval"
)

func newProbeCmd() *cobra.Command {
	opts := eval.ProbeOptions{Batch: eval.DefaultBatch, ValFraction: eval.DefaultProbeValFraction}
	cmd := &cobra.Command{
		Use:   "probe --checkpoint C --train D1 --test D2 --out metrics.json [--C c] [--val-fraction f] [--seed s]",
		Short: "linear probe: logistic regression on frozen image features of a labelled train set, measured on a test set",
		Long: `probe measures how linearly separable a model's image features are, as CLIP_benchmark's
linear_probe task and the CLIP paper do: it embeds every image of --train and --test
(L2-normalised image features), fits a multinomial logistic regression with an L2 penalty on
the training features, and classifies the test images with it.

The classifier is scikit-learn's LogisticRegression(C, multinomial, lbfgs): it minimises
C·Σ cross-entropy + ½‖W‖² (intercept unpenalised) with L-BFGS (gonum), up to --max-iter
iterations. Unless --C is given, C is chosen on a seeded --val-fraction of the training
images over 10^-6..10^6, 8 steps a decade (the CLIP paper's range), by CLIP_benchmark's
search: 7 points a hundredfold apart, then the peak and its neighbours at 8, 4, 2 and 1 steps;
the final fit uses every training image.

--train and --test are each a prepared dataset, an image folder root/<class>/<images>, or an
IDX image file with its label file in --train-labels/--test-labels. A prepared --train is read
from --train-split (default train), a prepared --test from --test-split (default: zeroshot,
test, val or train, the first present). Every image must be labelled.

Writes CLIP_benchmark's JSON to --out (task linear_probe; lp_acc1, lp_acc5 with at least 5
classes, lp_mean_per_class_recall, and C), <out>.details.json (per-class recall, confusion
matrix, the sweep) and <out>.confusion.png, and prints the metrics, the sweep and the
per-class table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Report, opts.Log, opts.Progress = cmd.OutOrStdout(), logger(), os.Stderr
			_, err := eval.Probe(cmd.Context(), opts)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", checkpointHelp)
	f.BoolVar(&opts.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&opts.Train, "train", "", "labelled training images: prepared dataset, image folder, or IDX image file (with --train-labels)")
	f.StringVar(&opts.TrainLabels, "train-labels", "", "IDX label file, when --train is an IDX image file")
	f.StringVar(&opts.TrainSplit, "train-split", "", "split of a prepared --train (default train)")
	f.StringVar(&opts.Test, "test", "", "labelled test images: prepared dataset, image folder, or IDX image file (with --test-labels)")
	f.StringVar(&opts.TestLabels, "test-labels", "", "IDX label file, when --test is an IDX image file")
	f.StringVar(&opts.TestSplit, "test-split", "", "split of a prepared --test (default: zeroshot, test, val or train, the first present)")
	f.StringVar(&opts.Out, "out", "", "result JSON (details and confusion PNG beside it)")
	f.StringVar(&opts.Dataset, "dataset", "", "dataset name in the result (default: from --test and its split)")
	f.Float64Var(&opts.C, "C", 0, "inverse L2 strength, as scikit-learn's C (0: choose it on --val-fraction of the training images)")
	f.Float64Var(&opts.ValFraction, "val-fraction", opts.ValFraction, "share of the training images held out to choose C")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed of the hold-out's shuffle")
	f.IntVar(&opts.MaxIter, "max-iter", 1000, "L-BFGS iterations per fit")
	f.IntVar(&opts.Batch, "batch", opts.Batch, "images per model call")
	f.IntVar(&opts.Workers, "workers", 0, "image decode goroutines (default: all CPUs)")
	for _, name := range []string{"checkpoint", "train", "test", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
