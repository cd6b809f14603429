package runlog

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/clipgo/clipgo/internal/tbevents"
)

// events reads every event file of dir with tbevents' reader and returns, for each
// "tag@step", how many times it was logged and its last value.
func events(t *testing.T, dir string) (map[string]int, map[string]float32) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, tbevents.FilePrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	count, value := map[string]int{}, map[string]float32{}
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(raw)
		for {
			data, err := tbevents.ReadRecord(r, nil)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ev, err := tbevents.Decode(data)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, s := range ev.Scalars {
				key := s.Tag + "@" + strconv.FormatInt(ev.Step, 10)
				count[key]++
				value[key] = s.Value
			}
		}
	}
	return count, value
}

func TestOpenMetricsWritesTensorBoardEvents(t *testing.T) {
	dir := t.TempDir()
	bias := -10.0
	w, err := OpenMetrics(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for step := int64(1); step <= 4; step++ {
		rec := Train{Step: step, Epoch: 1, Loss: 4 - float32(step)/2, LogitScale: math.NaN(), LogitScaleExp: math.NaN(),
			LogitBias: &bias, LR: 1e-3 * float64(step), GradNorm: 1, SamplesPerS: 100, StallS: 0.5}
		if step == 1 {
			rec.LogitScale, rec.LogitScaleExp = math.Log(14.3), 14.3
		}
		if err := w.WriteTrain(rec); err != nil {
			t.Fatal(err)
		}
		if step%2 == 0 {
			if err := w.WriteVal(Val{Step: step, Loss: 3, ImageTop: 0.25, TextTop: 0.5, Batches: 2}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	count, value := events(t, dir)
	for key, want := range map[string]float32{"train/loss@1": 3.5, "train/loss@4": 2, "train/lr@3": 3e-3, "train/logit_scale_exp@1": 14.3,
		"train/logit_bias@2": -10, "train/samples_per_s@4": 100, "train/epoch@4": 1, "val/loss@2": 3, "val/i2t_acc@4": 0.25, "val/t2i_acc@2": 0.5} {
		if count[key] != 1 || value[key] != want {
			t.Errorf("%s: logged %d times, value %v; want once, %v", key, count[key], value[key], want)
		}
	}
	for _, key := range []string{"train/logit_scale_exp@2", "train/comm_s@1", "val/loss@3"} { // NaN, absent, not logged
		if count[key] != 0 {
			t.Errorf("%s logged, want it left out (NaN or absent in the record)", key)
		}
	}

	// A resume from the checkpoint at step 2 drops steps 3 and 4, as the metrics log does,
	// and logs them again once.
	w, err = OpenMetrics(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if count, _ := events(t, dir); count["train/loss@3"] != 0 || count["val/loss@4"] != 0 || count["train/loss@2"] != 1 || count["val/loss@2"] != 1 {
		t.Errorf("after the resume at step 2: %v, want steps 1 and 2 only", count)
	}
	if err := w.WriteTrain(Train{Step: 3, Loss: 1, LogitScale: math.NaN(), LogitScaleExp: math.NaN()}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	count, value = events(t, dir)
	if count["train/loss@3"] != 1 || value["train/loss@3"] != 1 {
		t.Errorf("step 3 after the resume: logged %d times, value %v; want once, 1", count["train/loss@3"], value["train/loss@3"])
	}
	log, err := Read(filepath.Join(dir, MetricsName))
	if err != nil || len(log.Train) != 3 || len(log.Val) != 1 {
		t.Errorf("metrics log after the resume: %d train, %d val records (%v), want 3 and 1", len(log.Train), len(log.Val), err)
	}
}
