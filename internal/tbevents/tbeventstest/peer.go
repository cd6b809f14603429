// Package tbeventstest reads TensorBoard event files with the independent reader
// scripts/peers/tfevents.py, for the tests of the writer and of the runs that use it.
package tbeventstest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// Events is what scripts/peers/tfevents.py prints for a directory.
type Events struct {
	Files []struct {
		Name        string `json:"name"`
		Records     int    `json:"records"`
		FileVersion string `json:"file_version"`
		Torn        int    `json:"torn"`
	} `json:"files"`
	Scalars    map[string][][3]float64 `json:"scalars"` // step, value, wall time
	Duplicates [][2]any                `json:"duplicates"`
}

// Read reads dir's event files with the independent reader: its own TFRecord framing and
// CRC-32C checks, events decoded by Debian's python3-protobuf from TensorBoard's
// event.proto/summary.proto field layout. A missing python3-protobuf is testenv.Missing.
func Read(t testing.TB, dir string) Events {
	t.Helper()
	const py = "/usr/bin/python3" // the system Python that has python3-protobuf, not a pyenv shim
	if out, err := exec.Command(py, "-c", "import google.protobuf").CombinedOutput(); err != nil {
		testenv.Missing(t, py+" cannot import google.protobuf (make test-deps: apt-get install python3-protobuf): "+string(out))
	}
	cmd := exec.Command(py, filepath.Join(testenv.RepoRoot(t), "scripts/peers/tfevents.py"), dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tfevents.py %s: %v\n%s", dir, err, stderr.String())
	}
	var ev Events
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatalf("tfevents.py output: %v\n%s", err, out)
	}
	return ev
}
