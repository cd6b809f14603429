// Package simd holds the AVX2+FMA assembly behind package nn's float32 GELU and layer-norm
// kernels. It is a package of its own because nn uses cgo (OpenBLAS), and the go command does
// not assemble Go assembly in a cgo package. Its functions exist on amd64 without the purego
// tag only; nn calls them when Enabled, for lengths that are multiples of 4, and does the
// tails, the other CPUs and the purego build with its own Go loops, which define the results:
// these compute the same float64 expressions, four lanes at a time.
package simd
