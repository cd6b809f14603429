package main

import (
	"bufio"
	"os"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/prepare"
	"github.com/clipgo/clipgo/text/tokenizer"
)

func newTokenizeCmd() *cobra.Command {
	var contextLength int
	cmd := &cobra.Command{
		Use:   "tokenize [--context-length N] < texts.txt",
		Short: "CLIP-tokenize one text per line of stdin; print one JSON array of ids per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := bufio.NewWriter(cmd.OutOrStdout())
			if err := prepare.Tokenize(os.Stdin, out, contextLength); err != nil {
				return err
			}
			return out.Flush()
		},
	}
	cmd.Flags().IntVar(&contextLength, "context-length", tokenizer.DefaultContextLength, "ids per line: SOT, BPE ids, EOT, zero padding")
	return cmd
}
