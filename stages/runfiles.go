package stages

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/clipgo/clipgo/internal/atomicfile"
)

// writeFileAtomic writes data to path whole or not at all (internal/atomicfile).
func writeFileAtomic(path string, data []byte) error { return atomicfile.WriteFile(path, data) }

// removeStaleTemps deletes the temporary files (".<name>.tmp-*") that a killed process left
// beside the named files of dir: one process writes a run directory, so none is in use.
func removeStaleTemps(dir string, names ...string) {
	for _, name := range names {
		stale, _ := filepath.Glob(filepath.Join(dir, "."+name+".tmp-*"))
		for _, p := range stale {
			os.Remove(p)
		}
	}
}

// truncateMetrics rewrites a log of steps (metrics, sample log) without the records of steps
// after step, and without torn lines.
func truncateMetrics(path string, step int64) error {
	raw, err := os.ReadFile(path)
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
	return writeFileAtomic(path, kept.Bytes())
}
