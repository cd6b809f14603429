//go:build unix

package fileinput

import "syscall"

// nonblock makes open(2) of a FIFO return at once instead of waiting for a writer.
const nonblock = syscall.O_NONBLOCK
