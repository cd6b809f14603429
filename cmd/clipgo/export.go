package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/stages/export"
)

func newExportCmd() *cobra.Command {
	var c export.Config
	cmd := &cobra.Command{
		Use:   "export --format onnx --checkpoint CKPT --out DIR",
		Short: "write a model's image and text encoders as ONNX graphs for serving",
		Long: `export reads a model as zeroshot and embed do (a checkpoint, a run directory's latest, an open_clip
or OpenAI state dict, a Hugging Face CLIPModel) and writes DIR/image_encoder.onnx
and DIR/text_encoder.onnx (ONNX IR 8, opset 17; ViT or ModifiedResNet image towers):
  image_encoder.onnx  pixel_values float32 [batch, 3, S, S], CLIP-normalised as clipgo's encoder
                      takes them -> image_embeds float32 [batch, E]
  text_encoder.onnx   input_ids int64 [batch, context], the CLIP tokenizer's ids (clipgo tokenize)
                      -> text_embeds float32 [batch, E]
Both outputs are L2-normalised, as clipgo embed writes them: a dot product is the cosine
similarity. A graph whose weights pass protobuf's 2 GiB limit (ViT-H/14's image tower and
larger) keeps them in NAME.onnx.data beside it, as --external-data does for any. --quick-gelu says the input uses QuickGELU where its file cannot say so (state dicts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Producer = cmd.Root().Version
			c.Progress, c.Log = cmd.ErrOrStderr(), logger()
			r, err := export.Run(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "export: a %s model -> %s (%d bytes), %s (%d bytes)\n",
				fusion.Describe(r.Model), r.ImageFile, r.ImageBytes, r.TextFile, r.TextBytes)
			for _, d := range []string{r.ImageData, r.TextData} {
				if d != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "export: weights in %s (keep it beside its graph)\n", d)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Format, "format", export.FormatONNX, fmt.Sprintf("format to write: one of %v", export.Formats))
	f.StringVar(&c.Checkpoint, "checkpoint", "", checkpointHelp+" (required)")
	f.BoolVar(&c.QuickGELU, "quick-gelu", false, quickGELUHelp)
	f.StringVar(&c.Out, "out", "", "directory to write image_encoder.onnx and text_encoder.onnx into (required)")
	f.BoolVar(&c.ExternalData, "external-data", false, "write each graph's weights beside it (NAME.onnx.data, ONNX external data; always done for a graph over protobuf's 2 GiB limit)")
	for _, name := range []string{"checkpoint", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
