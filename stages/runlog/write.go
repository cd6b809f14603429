package runlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/clipgo/clipgo/internal/fileinput"

	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/tbevents"
)

// Writer appends JSON lines to a log of steps: the metrics log, or the sample log.
type Writer struct {
	f      *os.File
	enc    *json.Encoder
	events *tbevents.Writer // OpenMetrics: the run's TensorBoard event file
}

// Open opens a JSON-lines log of steps for appending; it first drops the records of steps
// after step (written by an interrupted run past its last checkpoint, or, at step 0, by an
// attempt killed before its first checkpoint), so that the log reads as one uninterrupted
// run.
func Open(path string, step int64) (*Writer, error) {
	if err := truncate(path, step); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, enc: json.NewEncoder(f)}, nil
}

// WriteTrain appends a training record (and its scalars to the event file, if any).
func (w *Writer) WriteTrain(r Train) error {
	if err := w.encode(r); err != nil {
		return err
	}
	return w.writeEvents(r.Step, trainScalars(r))
}

// WriteSamples appends sample-log records in one write: a kill tears at most their last line.
func (w *Writer) WriteSamples(recs []Sample) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if _, err := w.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("sample log %s: %w", w.f.Name(), err)
	}
	return nil
}

// AppendChanges appends config changes to a run's config-history.jsonl (path) and syncs it.
func AppendChanges(path string, changes []Change) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, c := range changes {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("config history: %w", err)
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("config history %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("config history %s: %w", path, err)
	}
	return f.Close()
}

// WriteVal appends a validation record (and its scalars to the event file, if any).
func (w *Writer) WriteVal(v Val) error {
	if err := w.encode(v); err != nil {
		return err
	}
	return w.writeEvents(v.Step, valScalars(v))
}

func (w *Writer) encode(rec any) error {
	if err := w.enc.Encode(rec); err != nil {
		return fmt.Errorf("metrics %s: %w", w.f.Name(), err)
	}
	return nil
}

// Write appends lines already encoded, in one write: a kill tears at most their last line.
func (w *Writer) Write(p []byte) (int, error) { return w.f.Write(p) }

// Close closes the log (and the event file, if any).
func (w *Writer) Close() error {
	err := w.f.Close()
	if w.events != nil {
		err = errors.Join(err, w.events.Close())
	}
	return err
}

// truncate rewrites a log of steps without the records of steps after step, and without
// torn lines.
func truncate(path string, step int64) error {
	raw, err := fileinput.ReadFile(path, MaxBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err // names the path
	}
	var kept bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Step *int64 `json:"step"`
		}
		// A line that does not parse was torn by a killed process: dropped with the steps
		// after the checkpoint, so that the log stays one JSON object per line.
		if json.Unmarshal(sc.Bytes(), &rec) != nil || (rec.Step != nil && *rec.Step > step) {
			continue
		}
		kept.Write(sc.Bytes())
		kept.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, kept.Bytes())
}
