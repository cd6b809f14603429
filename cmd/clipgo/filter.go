package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/filter"
)

func newFilterCmd() *cobra.Command {
	opts := filter.Options{Batch: 64, Workers: 2, AgainstThreshold: filter.DefaultAgainstThreshold}
	var minScore float64
	var basic bool
	cmd := &cobra.Command{
		Use:   "filter --checkpoint C --data D --out D2 [--top-fraction f | --min-score s] [--basic] [--dedup t] [--against E[:split]]",
		Short: "score every image–caption pair of a prepared dataset with a model and write a filtered copy",
		Long: `filter scores every image–caption pair of a split of a prepared dataset (--split, default
train) with a model — the CLIP score, the cosine of the image and caption embeddings — and
writes a new prepared dataset to --out (same schema; the other splits copied unchanged) with
what DataComp's filters keep:

  --top-fraction f   the share f of the pairs of highest score (DataComp's CLIP-score top x%);
  --min-score s      or the pairs scoring at least s;
  --basic            DataComp's basic filter: captions of at least 3 words and 6 characters,
                     images of at least 200 px on the smaller side and aspect ratio at most 3
                     (--min-words, --min-chars, --min-side, --max-aspect change them; DataComp's
                     English-language check is not done);
  --dedup t          near-duplicate images: visited best score first, an image whose cosine
                     with one kept before it reaches t goes (one kept per group);
  --against E[:S]    evaluation sets (prepared datasets; all splits, or split S): a training
                     image whose cosine with one of theirs reaches --against-threshold goes,
                     and is listed.

A record keeps the captions that pass; one with none left goes. --out gets filter.json (the
counts kept and dropped by reason, the score threshold and quantiles, the eval duplicates),
dropped.jsonl (every pair or image dropped, why, its score, its match), scores.jsonl (every
pair's score) and scores.png (their histogram with the threshold).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("min-score") {
				opts.MinScore = &minScore
			}
			if b := filter.DataCompBasic; basic { // its thresholds, where no flag overrides them
				if !f.Changed("min-words") {
					opts.Basic.MinWords = b.MinWords
				}
				if !f.Changed("min-chars") {
					opts.Basic.MinChars = b.MinChars
				}
				if !f.Changed("min-side") {
					opts.Basic.MinSide = b.MinSide
				}
				if !f.Changed("max-aspect") {
					opts.Basic.MaxAspect = b.MaxAspect
				}
			}
			opts.Log, opts.Progress = logger(), os.Stderr
			sum, err := filter.Run(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "filter: kept %d of %d images, %d of %d pairs into %s\n", sum.ImagesKept, sum.ImagesIn, sum.PairsKept, sum.PairsIn, opts.Out)
			for r, n := range sum.PairsBy {
				fmt.Fprintf(cmd.OutOrStdout(), "  pairs dropped  %-22s %d\n", r, n)
			}
			for r, n := range sum.ImagesBy {
				fmt.Fprintf(cmd.OutOrStdout(), "  images dropped %-22s %d\n", r, n)
			}
			if sum.Threshold != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "  score threshold %.4f\n", *sum.Threshold)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", checkpointHelp)
	f.BoolVar(&opts.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&opts.Data, "data", "", "prepared dataset to filter")
	f.StringVar(&opts.Split, "split", filter.DefaultSplit, "split to filter (the others are copied)")
	f.StringVar(&opts.Out, "out", "", "new dataset directory (must not exist)")
	f.Float64Var(&minScore, "min-score", 0, "drop pairs whose CLIP score (cosine) is below this")
	f.Float64Var(&opts.TopFraction, "top-fraction", 0, "keep this share of the pairs, the best scored (0: off)")
	f.BoolVar(&basic, "basic", false, "DataComp's basic filter (caption words/characters, image size, aspect ratio)")
	f.IntVar(&opts.Basic.MinWords, "min-words", 0, "drop captions of fewer words (--basic: 3)")
	f.IntVar(&opts.Basic.MinChars, "min-chars", 0, "drop captions of fewer characters (--basic: 6)")
	f.IntVar(&opts.Basic.MinSide, "min-side", 0, "drop images whose smaller original side is shorter, in pixels (--basic: 200)")
	f.Float64Var(&opts.Basic.MaxAspect, "max-aspect", 0, "drop images of a larger aspect ratio (--basic: 3)")
	f.Float64Var(&opts.Dedup, "dedup", 0, "cosine at which two training images are near duplicates (0: off)")
	f.StringArrayVar(&opts.Against, "against", nil, "evaluation set to remove near duplicates of: prepared dataset DIR or DIR:SPLIT (repeatable)")
	f.Float64Var(&opts.AgainstThreshold, "against-threshold", opts.AgainstThreshold, "cosine at which a training image duplicates an evaluation image")
	f.IntVar(&opts.Batch, "batch", opts.Batch, "images per model call")
	f.IntVar(&opts.Workers, "workers", opts.Workers, "image decode goroutines")
	for _, name := range []string{"checkpoint", "data", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
