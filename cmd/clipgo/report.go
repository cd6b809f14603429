package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/clipgo/clipgo/stages/report"
)

func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report RUN_DIR [--out DIR]",
		Short: "write a self-contained HTML report (and PNG figures) of a training run and its evaluations",
		Long: `report reads RUN_DIR/metrics.jsonl, RUN_DIR/config.yaml and every evaluation result in
RUN_DIR/eval/*.json (with its .details.json) and writes PNG figures (loss, validation accuracy,
logit scale, SigLIP's logit bias, learning rate, throughput, gradient norm, confusion matrices) and one report.html
with every figure inlined, so the file can be mailed or opened anywhere on its own.
The output goes to RUN_DIR/report unless --out says otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := report.Write(report.Options{RunDir: args[0], Out: out})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "report:", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output directory (default RUN_DIR/report)")
	return cmd
}
