package runlog

import (
	"bytes"
	"io"
	"math"
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
				if last.Loss != tc.lastLoss || math.IsNaN(last.SamplesPerS) != tc.missingRate {
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
