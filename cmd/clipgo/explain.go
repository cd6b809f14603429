package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/explain"
)

func newExplainCmd() *cobra.Command {
	var one explain.MapOptions
	opts := explain.Options{Maps: explain.DefaultMaps, Neighbours: explain.DefaultNeighbours, Points: explain.DefaultPoints}
	cmd := &cobra.Command{
		Use:   "explain --checkpoint C (--image I --text T --out map.png | --data D [--split S] --out DIR)",
		Short: "pictures of what a model does: where a text matches in an image, nearest neighbours, a 2-D map of the embeddings",
		Long: `explain draws pictures that show what a trained model does.

With --image and --text it writes one PNG to --out: the image as the model sees it (the eval
crop) and, beside it, a map of where the text matches, yellow where most, the best cell
outlined; it prints the map's range. --method occlusion (the default) blanks a window of 3×3
cells round each cell of the grid and maps how much the image's similarity with the text
falls (any image tower); --method patch-tokens compares the text with each ViT patch token
after ln_post and proj (open_clip's dense features), which CLIP does not train to localise.

With --data (a prepared dataset) it writes into the directory --out: --maps such maps of images
spread over the split (each compared with its class name in a labelled split, else its first
caption), the nearest captions of --neighbours images and the nearest images of as many
captions (and of each --query), and a 2-D map (PCA) of the image and caption embeddings of
up to --points images, coloured by class in a labelled split; explain.json indexes them.
"clipgo report" shows a run's explain/ directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.Data != "" && one.Image != "":
				return fmt.Errorf("explain: give --image (one map) or --data (a split's pictures), not both")
			case one.Image != "":
				one.Checkpoint, one.QuickGELU, one.Out, one.Method = opts.Checkpoint, opts.QuickGELU, opts.Out, opts.Method
				r, err := explain.Map(cmd.Context(), one)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", one.Out, r)
				return nil
			case opts.Data != "":
				opts.Log, opts.Progress = logger(), os.Stderr
				ex, err := explain.Run(cmd.Context(), opts)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "explain %s: %d similarity maps, %d neighbour queries, 2-D map in %s\n",
					ex.Dataset, len(ex.Maps), len(ex.Neighbours), opts.Out)
				return nil
			}
			return fmt.Errorf("explain: give --image and --text (one map) or --data (a split's pictures)")
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", checkpointHelp)
	f.BoolVar(&opts.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&opts.Out, "out", "", "the PNG (with --image) or the directory (with --data) to write")
	f.StringVar(&one.Image, "image", "", "an image file to map")
	f.StringVar(&one.Text, "text", "", "the text to find in --image")
	f.StringVar(&opts.Data, "data", "", "prepared dataset directory")
	f.StringVar(&opts.Split, "split", "", "split to explain (default: the first of zeroshot, val, test, train)")
	f.IntVar(&opts.Batch, "batch", 0, "images per model call (default 64)")
	f.IntVar(&opts.Maps, "maps", opts.Maps, fmt.Sprintf("similarity maps drawn (0 to %d)", explain.MaxMaps))
	f.IntVar(&opts.Neighbours, "neighbours", opts.Neighbours, "image queries and caption queries whose nearest neighbours are listed")
	f.IntVar(&opts.Points, "points", opts.Points, fmt.Sprintf("images (and their first captions) in the 2-D map, at most %d", explain.MaxPoints))
	f.StringVar(&opts.Method, "method", explain.Occlusion, fmt.Sprintf("how the maps are computed: %s or %s", explain.Occlusion, explain.PatchTokens))
	f.StringArrayVar(&opts.Queries, "query", nil, "a text whose nearest images are listed (repeatable)")
	for _, name := range []string{"checkpoint", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
