//go:build unix

package runlock

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// openLockFile opens or creates the lock file without following a symbolic link and without
// blocking on whatever else might sit at path, and refuses anything but a regular file.
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link; remove it", path)
		}
		return nil, err
	}
	return regular(f, path)
}

// openExisting opens the lock file at path for reading, as openLockFile does.
func openExisting(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return regular(f, path)
}

// regular is fileinput.CheckOpened, with what to do about it.
func regular(f *os.File, path string) (*os.File, error) {
	f, err := fileinput.CheckOpened(f, path)
	if errors.Is(err, fileinput.ErrNotRegular) {
		return nil, fmt.Errorf("%w; remove it", err)
	}
	return f, err
}

// tryLock takes an exclusive flock on f without waiting; held reports that someone else has it.
func tryLock(f *os.File) (held bool, err error) {
	conn, err := f.SyscallConn()
	if err != nil {
		return false, err
	}
	var ferr error
	if err := conn.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return false, err
	}
	if errors.Is(ferr, syscall.EWOULDBLOCK) || errors.Is(ferr, syscall.EAGAIN) {
		return true, nil
	}
	return false, ferr
}

// stillAt reports whether the open file f is still the file at path: the previous holder
// removes the file as it releases it.
func stillAt(f *os.File, path string) (bool, error) {
	fst, err := f.Stat()
	if err != nil {
		return false, err
	}
	pst, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fst, pst), nil
}
