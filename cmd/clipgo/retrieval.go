package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/eval"
)

func newRetrievalCmd() *cobra.Command {
	opts := eval.RetrievalOptions{Split: "val", Batch: eval.DefaultBatch, Examples: eval.DefaultExamples}
	cmd := &cobra.Command{
		Use:   "retrieval --checkpoint C --data D --out metrics.json [--split val] [--examples 8]",
		Short: "image→text and text→image retrieval over a split whose images have captions",
		Long: `retrieval embeds every image and every caption of a split of a prepared dataset (all the
captions of each image) and ranks, for each caption, the images (text→image, CLIP_benchmark's
image_retrieval_*) and, for each image, the captions (image→text, text_retrieval_*).

--checkpoint is a checkpoint file or a run directory (its latest checkpoint). Writes
CLIP_benchmark's JSON to --out (recall@1/5/10 of both directions, mean and median rank of the
first right answer) and <out>.details.json with --examples queries of each direction, their
top 5 results and the images as JPEG data URIs; prints the metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Report, opts.Log, opts.Progress = cmd.OutOrStdout(), logger(), os.Stderr
			_, err := eval.Retrieval(cmd.Context(), opts)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", checkpointHelp)
	f.BoolVar(&opts.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&opts.Data, "data", "", "prepared dataset directory")
	f.StringVar(&opts.Split, "split", opts.Split, "split to evaluate")
	f.StringVar(&opts.Out, "out", "", "result JSON (details beside it)")
	f.StringVar(&opts.Dataset, "dataset", "", "dataset name in the result (default: <data dir>:<split>)")
	f.IntVar(&opts.Batch, "batch", opts.Batch, "images per model call")
	f.IntVar(&opts.Workers, "workers", 0, "image decode goroutines (default: all CPUs)")
	f.IntVar(&opts.Examples, "examples", opts.Examples, "example queries of each direction kept in the details (0: none)")
	for _, name := range []string{"checkpoint", "data", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
