package checkpoint

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// tempFile is what atomicWrite needs of the temporary file; tests substitute one that fails
// as a full disk does. That seam is why checkpoints keep their own atomic write instead of
// internal/atomicfile, which the other writers share.
type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// createTemp creates the temporary file beside the destination.
var createTemp = func(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }

// atomicWrite writes path through write so that path holds either its old content or all of
// the new, even across a crash: a temporary file ".<name>.tmp-*" in the same directory is
// written, fsynced and renamed over path, then the directory is fsynced so that the rename
// is durable. On error the temporary file is removed and path is untouched.
func atomicWrite(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := createTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync: %w", err)
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o644); err != nil { // as every other result file (CreateTemp makes 0600)
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs directory dir, making renames and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
