// Package fileinput opens the files a command expects to be regular files (captions, IDX and
// Parquet inputs, images, checkpoints, configs, indexes) without ever blocking on a named
// pipe, a terminal or a device: anything that is not a regular file is refused with an error
// that names the path and what it is. The explicit standard-input stream, "-" or
// "/dev/stdin", is recognised by IsStdin for the inputs where a stream makes sense.
//
// Opening a FIFO for reading blocks until a writer appears, and a read from it blocks until
// the writer writes; a process stuck there does not even see SIGTERM through Go's signal
// handling. So OpenRegular stats the path first, opens it with O_NONBLOCK (a FIFO swapped in
// between the stat and the open then opens at once instead of hanging) and checks the opened
// file's own mode before handing it out.
package fileinput

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotRegular is wrapped by every error that refuses a path for not being a regular file.
var ErrNotRegular = errors.New("not a regular file")

// NotRegularError refuses Path: it exists but is a directory, FIFO, socket, device, ...
type NotRegularError struct {
	Path string
	Mode fs.FileMode // the type bits found
}

func (e *NotRegularError) Error() string {
	hint := ""
	if e.Mode&fs.ModeNamedPipe != 0 || e.Mode&fs.ModeCharDevice != 0 {
		hint = " (a stream is read only from standard input, named - or /dev/stdin, where a command accepts one)"
	}
	return fmt.Sprintf("%s is %s, not a regular file%s", e.Path, Describe(e.Mode), hint)
}

// Unwrap returns ErrNotRegular.
func (e *NotRegularError) Unwrap() error { return ErrNotRegular }

// Describe names the type of a file mode with its article: "a directory", "a named pipe
// (FIFO)", "a socket", "a character device", "a block device", "a symbolic link", "a regular
// file" or "an irregular file".
func Describe(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}

// IsStdin reports whether path names the standard-input stream: "-" or "/dev/stdin". Callers
// read os.Stdin for it rather than opening the path, so that it is read once, from where the
// process's standard input stands.
func IsStdin(path string) bool { return path == "-" || path == "/dev/stdin" }

// Check stats path, following symbolic links, and returns its FileInfo when it is a regular
// file; otherwise a *NotRegularError, or the stat error (which names the path). It opens
// nothing, so it suits paths another package opens itself.
func Check(path string) (fs.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: st.Mode().Type()}
	}
	return st, nil
}

// OpenRegular opens path for reading when it is a regular file (symbolic links followed),
// and refuses anything else with a *NotRegularError without blocking: see the package
// comment. The file's O_NONBLOCK flag has no effect on reads of a regular file.
func OpenRegular(path string) (*os.File, error) {
	if _, err := Check(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|nonblock, 0)
	if err != nil {
		return nil, err
	}
	return CheckOpened(f, path)
}

// OpenRegularIn is OpenRegular for name inside root: root's rules apply (no escaping it,
// symbolic links only while they stay inside), and the error names root's directory joined
// with name.
func OpenRegularIn(root *os.Root, name string) (*os.File, error) {
	path := root.Name() + string(os.PathSeparator) + name
	st, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: st.Mode().Type()}
	}
	f, err := root.OpenFile(name, os.O_RDONLY|nonblock, 0)
	if err != nil {
		return nil, err
	}
	return CheckOpened(f, path)
}

// CheckOpened returns f if the file it opened is regular, else closes it and returns a
// *NotRegularError naming path: the check after an open that a FIFO swapped in between the
// stat and the open cannot pass.
func CheckOpened(f *os.File, path string) (*os.File, error) {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, Mode: st.Mode().Type()}
	}
	return f, nil
}

// ReadFile reads the regular file at path whole, refusing one over limit bytes (limit <= 0:
// no limit) with an error that names the path, its size and the limit, before reading it.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if limit > 0 && st.Size() > limit {
		return nil, fmt.Errorf("%s has %d bytes, beyond the limit of %d", path, st.Size(), limit)
	}
	r := io.Reader(f)
	if limit > 0 {
		r = io.LimitReader(f, limit+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if limit > 0 && int64(len(b)) > limit {
		return nil, fmt.Errorf("%s grew beyond the limit of %d bytes while read", path, limit)
	}
	return b, nil
}

// Open opens an input that may be a stream: IsStdin paths return stdin (os.Stdin when nil)
// behind a Close that does not close it, any other path OpenRegular's file. name is what
// messages should call the input: "standard input", or path.
func Open(path string, stdin io.Reader) (rc io.ReadCloser, name string, err error) {
	if IsStdin(path) {
		if stdin == nil {
			stdin = os.Stdin
		}
		return io.NopCloser(stdin), "standard input", nil
	}
	f, err := OpenRegular(path)
	if err != nil {
		return nil, path, err
	}
	return f, path, nil
}
