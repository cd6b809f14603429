package tests

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipgo/clipgo/stages/runlog"
)

// TestPretrainLosses trains the demo recipe end to end under each loss of issue 15 item 1
// (model.loss siglip; triplet with a margin and the hardest negative; clip plus half the
// triplet loss), all set from the command line: every logged loss is finite, the metrics
// record carries SigLIP's logit_bias and no logit_scale for triplet alone (a model without a
// temperature), the report reads the log, and each run's checkpoint loads in zeroshot.
func TestPretrainLosses(t *testing.T) {
	bin := buildCLI(t)
	data := prepareSynthetic(t, 300)
	for _, tc := range []struct {
		name       string
		sets       []string
		scale, bia bool // logit_scale, logit_bias expected in the metrics
	}{
		{"siglip", []string{"model.loss=siglip"}, true, true},
		{"triplet", []string{"model.loss=triplet", "model.triplet.margin=0.2", "model.triplet.hardest=true"}, false, false},
		{"clip+triplet", []string{"model.triplet.weight=0.5", "model.triplet.margin=0.2"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := filepath.Join(t.TempDir(), "run")
			args := []string{"pretrain", "--config", "demo", "--out", runDir, "--set", "data.train=" + data, "--set", "data.val=" + data,
				"--set", "data.workers=2", "--set", "train.steps=6", "--set", "train.batch_size=16", "--set", "train.warmup=1",
				"--set", "train.log_every=1", "--set", "train.val_batches=1"}
			for _, s := range tc.sets {
				args = append(args, "--set", s)
			}
			if out, err := run(t, bin, "", args...); err != nil {
				t.Fatalf("pretrain: %v\n%s", err, out)
			}
			losses := readLosses(t, runDir)
			if len(losses) != 6 {
				t.Errorf("%d training records, want 6", len(losses))
			}
			for step, l := range losses {
				if math.IsNaN(l) || math.IsInf(l, 0) || l < 0 {
					t.Errorf("step %d: loss %g", step, l)
				}
			}
			raw := readFile(filepath.Join(runDir, runlog.MetricsName))
			first, _, _ := strings.Cut(string(raw), "\n")
			var rec map[string]any
			if err := json.Unmarshal([]byte(first), &rec); err != nil {
				t.Fatal(err)
			}
			_, scale := rec["logit_scale"]
			_, bias := rec["logit_bias"]
			if scale != tc.scale || bias != tc.bia {
				t.Errorf("metrics record %s: logit_scale %v, logit_bias %v; want %v, %v", first, scale, bias, tc.scale, tc.bia)
			}
			if b, ok := rec["logit_bias"].(float64); tc.bia && (!ok || b > -9 || b < -11) {
				t.Errorf("logit_bias %v: want about SigLIP's initial -10", rec["logit_bias"])
			}
			log, err := runlog.Read(filepath.Join(runDir, runlog.MetricsName))
			if err != nil || len(log.Train) != 6 || len(log.Notes) > 0 {
				t.Errorf("runlog.Read: %d records, notes %v, %v", len(log.Train), log.Notes, err)
			}
			if out, err := run(t, bin, "", "report", runDir); err != nil {
				t.Errorf("report: %v\n%s", err, out)
			} else if _, err := os.Stat(filepath.Join(runDir, "report", "logit_bias.png")); (err == nil) != tc.bia {
				t.Errorf("report: logit_bias.png there: %v, want %v", err == nil, tc.bia)
			}
			evalOut := filepath.Join(runDir, "zeroshot.json")
			if out, err := run(t, bin, "", "zeroshot", "--checkpoint", runDir, "--data", data, "--split", "zeroshot",
				"--task", "synthetic", "--out", evalOut); err != nil {
				t.Fatalf("zeroshot: %v\n%s", err, out)
			}
			var res map[string]any
			if err := json.Unmarshal(readFile(evalOut), &res); err != nil {
				t.Fatalf("zeroshot result: %v", err)
			}
		})
	}
}
