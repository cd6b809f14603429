package main

import (
	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/prepare"
)

func newInspectCmd() *cobra.Command {
	var rows int
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "describe a shard file or a prepared dataset: schema, rows, row groups, bytes, samples",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return prepare.Inspect(cmd.OutOrStdout(), args[0], rows)
		},
	}
	cmd.Flags().IntVar(&rows, "rows", 3, "sample rows to show")
	return cmd
}
