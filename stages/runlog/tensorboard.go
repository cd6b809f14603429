package runlog

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/clipgo/clipgo/internal/tbevents"
)

// OpenMetrics opens a run's metrics log (MetricsName in runDir) as Open does, and beside it
// a new TensorBoard event file (created at the first record), to which WriteTrain and WriteVal write the same records as
// scalars, so that `tensorboard --logdir` on the run (or on the directory of runs) plots
// them. The event files of earlier invocations stay, without their events after step (see
// tbevents.Truncate): TensorBoard merges a directory's files, and shows each step once.
func OpenMetrics(runDir string, step int64) (*Writer, error) {
	w, err := Open(filepath.Join(runDir, MetricsName), step)
	if err != nil {
		return nil, err
	}
	if err := tbevents.Truncate(runDir, step); err != nil {
		w.Close()
		return nil, err
	}
	w.events = tbevents.New(runDir)
	return w, nil
}

// TensorBoard tags of the metrics records: the metrics log's keys, under "train/" or "val/".
// logit_scale_exp is exp(t) = 1/temperature, the factor of the cosine similarities.
func trainScalars(r Train) []tbevents.Scalar {
	s := []tbevents.Scalar{
		{Tag: "train/loss", Value: r.Loss},
		{Tag: "train/logit_scale_exp", Value: float32(r.LogitScaleExp)},
		{Tag: "train/lr", Value: float32(r.LR)},
		{Tag: "train/grad_norm", Value: float32(r.GradNorm)},
		{Tag: "train/samples_per_s", Value: float32(r.SamplesPerS)},
		{Tag: "train/stall_s", Value: float32(r.StallS)},
		{Tag: "train/epoch", Value: float32(r.Epoch)},
	}
	if r.LogitBias != nil {
		s = append(s, tbevents.Scalar{Tag: "train/logit_bias", Value: float32(*r.LogitBias)})
	}
	if r.CommS != nil {
		s = append(s, tbevents.Scalar{Tag: "train/comm_s", Value: float32(*r.CommS)})
	}
	return s
}

func valScalars(v Val) []tbevents.Scalar {
	s := []tbevents.Scalar{
		{Tag: "val/loss", Value: float32(v.Loss)},
		{Tag: "val/i2t_acc", Value: float32(v.ImageTop)},
		{Tag: "val/t2i_acc", Value: float32(v.TextTop)},
	}
	if r := v.Recall; r != nil {
		for _, x := range []struct {
			tag string
			v   float64
		}{{"i2t_r1", r.I2T1}, {"i2t_r5", r.I2T5}, {"i2t_r10", r.I2T10}, {"t2i_r1", r.T2I1}, {"t2i_r5", r.T2I5}, {"t2i_r10", r.T2I10}} {
			s = append(s, tbevents.Scalar{Tag: "val/" + x.tag, Value: float32(x.v)})
		}
	}
	if v.RecallMean != nil {
		s = append(s, tbevents.Scalar{Tag: "val/recall_mean", Value: float32(*v.RecallMean)})
	}
	return s
}

// writeEvents writes scalars to the event file, when the log has one.
func (w *Writer) writeEvents(step int64, scalars []tbevents.Scalar) error {
	if w.events == nil {
		return nil
	}
	if err := w.events.WriteScalars(step, time.Now(), scalars); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
