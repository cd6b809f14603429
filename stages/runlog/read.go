// Package runlog is a training run's record in its run directory: the names of its files and
// the records of its metrics log (metrics.jsonl), which train writes and report reads.
package runlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Files of a run directory besides its checkpoints.
const (
	MetricsName = "metrics.jsonl" // one JSON object per line: training and validation records
	ConfigName  = "config.yaml"   // the resolved config of the run
)

// Limits on what Read takes: a run directory is outside input.
const (
	// MaxBytes is the largest metrics log Read reads.
	MaxBytes = 256 << 20
	// MaxLine is the longest line of a metrics log Read parses.
	MaxLine = 64 << 10
)

// Train is one training record of metrics.jsonl; a field the log lacks is NaN.
type Train struct {
	Step                                        int64
	Loss, LogitScale, LR, GradNorm, SamplesPerS float64
	StallS, ElapsedS                            float64
}

// Val is one validation record of metrics.jsonl: the mean loss and in-batch top-1
// accuracies over Batches validation batches.
type Val struct {
	Step           int64
	Loss, I2T, T2I float64
	Batches        int
}

// Log is what Read found in a run's metrics.jsonl, in file order.
type Log struct {
	Train []Train
	Val   []Val
	Notes []string // lines left out, and why
}

// line holds the keys pretrain writes; pointers tell a missing key from a zero.
type line struct {
	Step        *int64   `json:"step"`
	Loss        *float64 `json:"loss"`
	LogitScale  *float64 `json:"logit_scale"`
	LR          *float64 `json:"lr"`
	GradNorm    *float64 `json:"grad_norm"`
	SamplesPerS *float64 `json:"samples_per_s"`
	StallS      *float64 `json:"stall_s"`
	ElapsedS    *float64 `json:"elapsed_s"`
	ValLoss     *float64 `json:"val_loss"`
	ValI2T      *float64 `json:"val_i2t_acc"`
	ValT2I      *float64 `json:"val_t2i_acc"`
	ValBatches  *int     `json:"val_batches"`
}

// Read reads a run's metrics.jsonl. A line that does not parse, or has no step, is left out
// and noted (a run killed mid-write leaves half a last line); a missing file, one over
// MaxBytes or a line over MaxLine is an error.
func Read(path string) (Log, error) {
	f, err := os.Open(path)
	if err != nil {
		return Log{}, fmt.Errorf("metrics log: %w", err)
	}
	defer f.Close()
	log, err := Parse(f)
	if err != nil {
		return log, fmt.Errorf("metrics log %s: %w", path, err)
	}
	return log, nil
}

// Parse is Read over a reader.
func Parse(r io.Reader) (Log, error) {
	return parse(r, MaxBytes)
}

func parse(r io.Reader, maxBytes int64) (Log, error) {
	var log Log
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	n := 0
	var bad []int
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var m line
		if err := json.Unmarshal(raw, &m); err != nil || m.Step == nil {
			bad = append(bad, n)
			continue
		}
		switch {
		case m.ValLoss != nil:
			v := Val{Step: *m.Step, Loss: *m.ValLoss, I2T: or(m.ValI2T), T2I: or(m.ValT2I)}
			if m.ValBatches != nil {
				v.Batches = *m.ValBatches
			}
			log.Val = append(log.Val, v)
		case m.Loss != nil:
			log.Train = append(log.Train, Train{Step: *m.Step, Loss: *m.Loss, LogitScale: or(m.LogitScale),
				LR: or(m.LR), GradNorm: or(m.GradNorm), SamplesPerS: or(m.SamplesPerS), StallS: or(m.StallS),
				ElapsedS: or(m.ElapsedS)})
		default:
			bad = append(bad, n)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return log, fmt.Errorf("line %d: longer than %d bytes", n+1, MaxLine)
		}
		return log, err
	}
	if lr.N == 0 {
		return log, fmt.Errorf("larger than %d bytes", maxBytes)
	}
	switch {
	case len(bad) == 1 && bad[0] == n:
		log.Notes = append(log.Notes, fmt.Sprintf("last line (%d) is incomplete or not a record; left out", n))
	case len(bad) > 0:
		shown := bad[:min(len(bad), 10)]
		log.Notes = append(log.Notes, fmt.Sprintf("%d lines are not records and were left out (lines %s)",
			len(bad), strings.Trim(fmt.Sprint(shown), "[]")))
	}
	return log, nil
}

func or(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
