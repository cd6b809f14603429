//go:build !unix

package fileinput

const nonblock = 0
