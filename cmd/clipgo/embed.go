package main

import (
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/index"
)

func newEmbedCmd() *cobra.Command {
	opt := index.EmbedOptions{Batch: 64, Workers: runtime.NumCPU()}
	cmd := &cobra.Command{
		Use:   "embed --checkpoint CKPT --data DIR --out INDEX.parquet [--split S] [--batch N] [--no-images] [--index ivf]",
		Short: "export image and caption embeddings of a prepared dataset as one Parquet file",
		Long: `embed runs a trained model over a prepared dataset (every split, or --split) and writes
an embedding index: one row per image with key, split, caption (the first) and captions, label
and class_name (null when unlabelled), image_embedding and text_embedding (L2-normalised,
Arrow fixed_size_list<float32>[E]; text_embedding is the first caption's) and jpg (the image's
bytes, left out with --no-images). The model config, checkpoint path and E are in the file's
metadata (clipgo.model_config, clipgo.checkpoint, clipgo.embed_dim). pandas, polars and DuckDB
read it directly; clipgo search queries it. The file is written atomically.

With --index ivf it also writes INDEX.parquet.ivf, an inverted-file index of both embedding
columns (k-means lists; README "Search at scale"), which clipgo search then probes instead of
scanning every row.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Log, opt.Progress = logger(), os.Stderr
			sum, err := index.Embed(cmd.Context(), opt)
			if err != nil {
				return err
			}
			sum.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Checkpoint, "checkpoint", "", checkpointHelp)
	f.BoolVar(&opt.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&opt.Data, "data", "", "prepared dataset directory")
	f.StringVar(&opt.Split, "split", "", "split to embed (default: all splits)")
	f.StringVar(&opt.Out, "out", "", "index file to write (.parquet)")
	f.IntVar(&opt.Batch, "batch", opt.Batch, "images per model batch")
	f.IntVar(&opt.Workers, "workers", opt.Workers, "image decode goroutines")
	f.BoolVar(&opt.NoImages, "no-images", false, "leave the images' bytes out of the index (search then shows no pictures)")
	f.StringVar(&opt.Index, "index", index.IndexExact, "also build an approximate index beside INDEX.parquet: exact (none: search scans every row) or ivf (INDEX.parquet.ivf, probed by search)")
	f.IntVar(&opt.IVF.Lists, "ivf-lists", 0, "IVF lists (default 2·√rows)")
	return cmd
}
