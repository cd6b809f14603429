package safetensors

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// TestOpenFileFIFO: a checkpoint path that is a FIFO nobody writes is refused at once.
func TestOpenFileFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := OpenFile(path); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, fileinput.ErrNotRegular) || !strings.Contains(err.Error(), path+" is a named pipe (FIFO)") {
			t.Fatalf("OpenFile(fifo) = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OpenFile blocked on a FIFO")
	}
	if _, err := OpenFile(dir); !errors.Is(err, fileinput.ErrNotRegular) {
		t.Fatalf("OpenFile(directory) = %v", err)
	}
}
