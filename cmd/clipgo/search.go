package main

import (
	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/index"
)

func newSearchCmd() *cobra.Command {
	var opt index.SearchOptions
	cmd := &cobra.Command{
		Use:   `search --checkpoint CKPT --index INDEX.parquet (--query "TEXT" | --image FILE) [-k 8] [--html out.html]`,
		Short: "find the images (or captions) of an embedding index closest to a text or an image",
		Long: `search embeds a query with the model of CKPT and ranks the rows of an index written by
clipgo embed by cosine similarity: a text query (--query) against the image embeddings
(text→image), an image query (--image: decoded, resized and centre-cropped as in evaluation)
against the caption embeddings (image→text); --over images|captions chooses otherwise. The
index must come from the same model: its embedding width and model config are checked, and
the SHA-256 of the checkpoint file it was made with (recorded by embed) must be CKPT's: other
weights of the same architecture are refused unless --force. An index that records no hash
(an older one, or rewritten by another tool) is searched with a warning.

A text query is tokenized with the CLIP tokenizer at the model's context length; a longer one
is truncated, keeping the end-of-text token last (the rest of the text is ignored).

It prints one line per result, best first: rank key score caption. With --html it also
writes one self-contained page with the results' images (from the index), scores and captions.

When clipgo embed --index ivf built INDEX.parquet.ivf, search probes its --nprobe nearest lists
instead of scanning every row (approximate: a true neighbour in an unprobed list is missed);
--exact scans every row. Scores are the same cosine similarities either way.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Log = logger()
			_, err := index.Search(cmd.Context(), opt, cmd.OutOrStdout())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Checkpoint, "checkpoint", "", checkpointHelp)
	f.BoolVar(&opt.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&opt.Index, "index", "", "embedding index written by clipgo embed")
	f.StringVar(&opt.Query, "query", "", "text query")
	f.StringVar(&opt.Image, "image", "", "image file as the query")
	f.StringVar(&opt.Over, "over", "", "rank against images or captions (default: images for --query, captions for --image)")
	f.IntVarP(&opt.K, "k", "k", 8, "results to show")
	f.StringVar(&opt.HTML, "html", "", "also write the results as a self-contained HTML page here")
	f.BoolVar(&opt.Exact, "exact", false, "scan every row even when an IVF index (INDEX.parquet.ivf) lies beside the index")
	f.IntVar(&opt.NProbe, "nprobe", index.DefaultNProbe, "IVF lists to probe (more: slower, closer to the exact ranking)")
	f.BoolVar(&opt.Force, "force", false, "search an index made with another checkpoint (its recorded SHA-256 differs); results are meaningless unless the weights are the same")
	return cmd
}
