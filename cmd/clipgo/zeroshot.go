package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/eval"
)

func newZeroShotCmd() *cobra.Command {
	opts := eval.ZeroShotOptions{Batch: eval.DefaultBatch}
	cmd := &cobra.Command{
		Use:   "zeroshot --checkpoint C --data D --task T --out metrics.json [--split S] [--labels L] [--batch N]",
		Short: "zero-shot classification of a labelled image set with prompt-ensembled class weights",
		Long: `zeroshot classifies every image of a labelled set the CLIP way: each class's weight is the
normalised mean of the embeddings of its prompts (every template of the task with the class
name filled in), each image goes to the class of largest cosine similarity.

--checkpoint is a checkpoint file or a run directory (its latest checkpoint). --data is a
prepared dataset (split: --split, else the first of zeroshot, test, val, train it has), an
image folder root/<class>/<images> (classes sorted by name), or an IDX image file with its
label file in --labels (MNIST, Fashion-MNIST; gzipped or not). --task is a built-in task
(synthetic, mnist, cifar10, fashion-mnist) or a YAML file with classnames (in label order)
and templates (each with {} once); the data's class count must match it.

Writes CLIP_benchmark's JSON to --out (acc1, acc5 with at least 5 classes,
mean_per_class_recall), <out>.details.json (per-class recall, most confused class, confusion
matrix) and <out>.confusion.png, and prints the metrics and the per-class table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Report, opts.Log, opts.Progress = cmd.OutOrStdout(), logger(), os.Stderr
			_, err := eval.ZeroShot(cmd.Context(), opts)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", checkpointHelp)
	f.BoolVar(&opts.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&opts.Data, "data", "", "prepared dataset, image folder, or IDX image file (with --labels)")
	f.StringVar(&opts.Labels, "labels", "", "IDX label file, when --data is an IDX image file")
	f.StringVar(&opts.Split, "split", "", "split of a prepared dataset (default: zeroshot, test, val or train, the first present)")
	f.StringVar(&opts.Task, "task", "", "built-in task (synthetic, mnist, cifar10, fashion-mnist) or a task YAML file")
	f.StringVar(&opts.Out, "out", "", "result JSON (details and confusion PNG beside it)")
	f.StringVar(&opts.Dataset, "dataset", "", "dataset name in the result (default: from --data and the split)")
	f.IntVar(&opts.Batch, "batch", opts.Batch, "images per model call")
	f.IntVar(&opts.Workers, "workers", 0, "image decode goroutines (default: all CPUs)")
	for _, name := range []string{"checkpoint", "data", "task", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
