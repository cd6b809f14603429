//go:build !unix

package runlock

import (
	"errors"
	"os"
)

var errUnsupported = errors.New("directory locks need flock(2), which this platform lacks")

func openLockFile(string) (*os.File, error) { return nil, errUnsupported }
func openExisting(string) (*os.File, error) { return nil, errUnsupported }
func tryLock(*os.File) (bool, error)        { return false, errUnsupported }
func stillAt(*os.File, string) (bool, error) {
	return false, errUnsupported
}
