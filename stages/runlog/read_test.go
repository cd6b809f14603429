package runlog

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name        string
		in          string
		train, val  int
		note        string
		lastLoss    float64
		missingRate bool
	}{
		{"empty", "", 0, 0, "", 0, false},
		{"blank lines", "\n\n  \n", 0, 0, "", 0, false},
		{"train and val", `{"step":1,"loss":2,"lr":0.1}` + "\n" + `{"step":1,"val_loss":3,"val_i2t_acc":0.5}` + "\n", 1, 1, "", 2, true},
		{"missing keys are NaN", `{"step":1,"loss":2}`, 1, 0, "", 2, true},
		{"truncated last line", `{"step":1,"loss":2}` + "\n" + `{"step":2,"lo`, 1, 0, "last line (2)", 2, true},
		{"bad lines in the middle", `{"step":1,"loss":2}` + "\nnot json\n" + `{"loss":1}` + "\n" + `{"step":3,"loss":1.5}`, 2, 0, "2 lines are not records", 1.5, true},
		{"a record of neither kind", `{"step":1,"loss":2}` + "\n" + `{"step":4}`, 1, 0, "last line (2)", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, err := Parse(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(log.Train) != tc.train || len(log.Val) != tc.val {
				t.Fatalf("%d train, %d val records", len(log.Train), len(log.Val))
			}
			if note := strings.Join(log.Notes, "; "); (tc.note == "") != (note == "") || !strings.Contains(note, tc.note) {
				t.Errorf("notes %q, want %q", note, tc.note)
			}
			if tc.train > 0 {
				last := log.Train[len(log.Train)-1]
				if float64(last.Loss) != tc.lastLoss || math.IsNaN(last.SamplesPerS) != tc.missingRate {
					t.Errorf("last record %+v", last)
				}
			}
		})
	}
	if _, err := parse(io.LimitReader(zeros{}, 1<<20+10), 1<<20); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a log over the size limit: %v", err)
	}
}

// zeros is an endless stream of newlines.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '\n'
	}
	return len(p), nil
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"step":1,"loss":2,"lr":0.1}` + "\n" + `{"step":1,"val_loss":3}` + "\n"))
	f.Add([]byte(`{"step":1,"loss":2}` + "\n" + `{"step":2,"lo`))
	f.Add([]byte("\n\nnot json\n{}\n"))
	f.Add([]byte(`{"step":-1,"loss":1e400}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		log, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(log.Train)+len(log.Val) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d records from %d lines", len(log.Train)+len(log.Val), bytes.Count(data, []byte("\n"))+1)
		}
	})
}

// TestReadOldAndNewLogitScale reads a record of a run from before logit_scale_exp, whose
// logit_scale holds exp(t), and one that WriteTrain writes: both give t and exp(t).
func TestReadOldAndNewLogitScale(t *testing.T) {
	const scale = 2.6592600345611572 // ln(1/0.07), float32 as the model holds it
	path := filepath.Join(t.TempDir(), MetricsName)
	old := `{"elapsed_s":0.5,"epoch":0,"grad_norm":1.5,"logit_scale":14.285714285714285,"loss":2.0794415,"lr":0.0001,"samples_per_s":128,"stall_s":0,"step":1}` + "\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	comm := 0.25
	written := Train{Step: 2, Loss: 2.0, LogitScale: scale, LogitScaleExp: math.Exp(scale), LR: 2e-4, GradNorm: 1.25,
		SamplesPerS: 130, StallS: 0.125, ElapsedS: 1, CommS: &comm}
	if err := w.WriteTrain(written); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteVal(Val{Step: 2, Loss: 1.5, ImageTop: 0.5, TextTop: 0.25, Batches: 3}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	log, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Train) != 2 || len(log.Val) != 1 || len(log.Notes) != 0 {
		t.Fatalf("read %d training and %d validation records, notes %q", len(log.Train), len(log.Val), log.Notes)
	}
	for _, r := range log.Train {
		if math.Abs(r.LogitScale-scale) > 1e-6 || math.Abs(r.LogitScaleExp-1/0.07) > 1e-6 {
			t.Errorf("step %d: logit scale %v, exp %v; want %v, %v", r.Step, r.LogitScale, r.LogitScaleExp, scale, 1/0.07)
		}
	}
	if first := log.Train[0]; first.Step != 1 || first.Loss != 2.0794415 || first.GradNorm != 1.5 || first.CommS != nil {
		t.Errorf("old record read as %+v", first)
	}
	if got := log.Train[1]; got.CommS == nil || *got.CommS != comm || got != (Train{Step: 2, Loss: 2.0, LogitScale: scale,
		LogitScaleExp: math.Exp(scale), LR: 2e-4, GradNorm: 1.25, SamplesPerS: 130, StallS: 0.125, ElapsedS: 1, CommS: got.CommS}) {
		t.Errorf("new record read as %+v, written %+v", got, written)
	}
	if v := log.Val[0]; v != (Val{Step: 2, Loss: 1.5, ImageTop: 0.5, TextTop: 0.25, Batches: 3}) {
		t.Errorf("validation record read as %+v", v)
	}
}

// TestTrainWithoutTemperature writes the record of a model without a logit scale (model.loss
// triplet) and one with SigLIP's bias: the NaN scale is left out (JSON has no NaN) and reads
// back as NaN; the bias is written when there is one.
func TestTrainWithoutTemperature(t *testing.T) {
	nan := math.NaN()
	bias := -9.5
	var buf bytes.Buffer
	for _, r := range []Train{
		{Step: 1, Loss: 0.5, LogitScale: nan, LogitScaleExp: nan, LR: 1e-3},
		{Step: 2, Loss: 0.4, LogitScale: math.Log(10), LogitScaleExp: 10, LogitBias: &bias, LR: 1e-3},
	} {
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("step %d: %v", r.Step, err)
		}
		buf.Write(append(raw, '\n'))
	}
	if s := buf.String(); strings.Contains(strings.Split(s, "\n")[0], "logit") || !strings.Contains(s, `"logit_bias":-9.5`) {
		t.Errorf("records:\n%s", s)
	}
	log, err := Parse(&buf)
	if err != nil || len(log.Train) != 2 {
		t.Fatalf("%+v, %v", log, err)
	}
	a, b := log.Train[0], log.Train[1]
	if !math.IsNaN(a.LogitScale) || !math.IsNaN(a.LogitScaleExp) || a.LogitBias != nil {
		t.Errorf("without a temperature: %+v", a)
	}
	if b.LogitScaleExp != 10 || math.Abs(b.LogitScale-math.Log(10)) > 1e-12 || b.LogitBias == nil || *b.LogitBias != bias {
		t.Errorf("SigLIP: %+v", b)
	}
}
