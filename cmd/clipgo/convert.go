package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/fusion"
	"github.com/clipgo/clipgo/fusion/weights"
	"github.com/clipgo/clipgo/stages/convert"
)

func newConvertCmd() *cobra.Command {
	var c convert.Config
	var format string
	cmd := &cobra.Command{
		Use:   "convert --checkpoint WEIGHTS --to clipgo|open_clip|huggingface --out PATH [--dtype f32|f16|bf16]",
		Short: "write a model's weights in clipgo's, open_clip's or Hugging Face's naming",
		Long: `convert reads a model from any weights file clipgo reads (a clipgo checkpoint, an open_clip or
OpenAI state dict with or without "module.", F32/F16/BF16, or a Hugging Face CLIPModel's
model.safetensors with its config.json beside it) and writes it in the naming --to asks for:
  clipgo       a clipgo checkpoint (the model config in its metadata)
  open_clip    open_clip's state dict as safetensors: load it with
               open_clip.create_model(name) and model.load_state_dict(safetensors.torch.load_file(PATH));
               pick the "-quickgelu" model name when the model uses QuickGELU
  huggingface  a directory with model.safetensors and config.json for transformers'
               CLIPModel.from_pretrained(PATH) (ViT models; CLIP loss)
--quick-gelu says the input uses QuickGELU where its file cannot say so (state dicts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c.Format = weights.Format(format)
			r, err := convert.Run(c)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "convert: %d tensors of a %s model -> %s (%s)\n", r.Tensors, fusion.Describe(r.Model), r.Out, format)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.In, "checkpoint", "", "weights to convert (required)")
	f.BoolVar(&c.QuickGELU, "quick-gelu", false, "the input model uses QuickGELU (OpenAI's models do; a state dict does not record it)")
	f.StringVar(&format, "to", "", fmt.Sprintf("naming to write: one of %v (required)", weights.Formats))
	f.StringVar(&c.Out, "out", "", "output .safetensors file, or directory for huggingface (required)")
	f.StringVar(&c.DType, "dtype", "f32", "float type of the written tensors: f32, f16 or bf16 (rounded to nearest even, as torch does)")
	for _, name := range []string{"checkpoint", "to", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
