// Package safetensors reads and writes the safetensors format: a u64 little-endian header
// length N, N bytes of JSON header ({name: {"dtype", "shape", "data_offsets": [begin, end]}}
// plus an optional "__metadata__" map of strings), then the little-endian tensor data, which the
// tensors tile exactly.
//
// It is written here rather than taken from github.com/nlpodyssey/safetensors, the Go library
// the module proxy serves, because that library is unsound for this project: it counts a
// scalar's elements (shape []) as 0, so logit_scale cannot be read or written; it marshals the
// header through a Go map, so the keys come out in alphabetical order with <, >, & escaped, and
// its files differ byte for byte from the reference writer's; it keeps the last of duplicate
// names silently; its 100 MB header limit is unexported and the tensor count is unbounded; and
// it needs the whole file in memory.
//
// The reader is as strict as the reference reader in ../shared/peers/clip_step.py: every size
// must equal dtype size × shape product, and the data offsets must tile the data section with
// no hole, overlap or trailing byte. It is also bounded (MaxHeaderBytes, MaxTensors, MaxRank),
// refuses duplicate names, shape products that overflow, and unknown or missing entry fields.
// The writer reproduces the reference layout byte for byte: "__metadata__" first, tensors
// ordered by descending dtype then by name, compact JSON escaped as Python's json.dumps
// (ensure_ascii=False) escapes it, header padded with spaces to a multiple of 8.
package safetensors

import (
	"fmt"
	"math"
	"math/bits"
)

// Limits on what Open accepts, so that a hostile header cannot make the reader allocate
// without bound. MaxHeaderBytes is the reference library's limit.
const (
	MaxHeaderBytes = 100_000_000 // bytes of JSON header
	MaxTensors     = 1 << 20     // tensors in one file
	MaxRank        = 64          // dimensions of one tensor
	MaxMetadata    = 1 << 16     // "__metadata__" entries
)

// DType is a safetensors element type, spelled as in the header ("F32").
type DType string

// The element types of the format.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// order is the format's dtype order; writers sort tensors by it, descending, then by name.
var order = []DType{BOOL, U8, I8, F8E5M2, F8E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64}

var sizes = map[DType]int{
	BOOL: 1, U8: 1, I8: 1, F8E5M2: 1, F8E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
}

// Size returns the bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int { return sizes[d] }

// rank returns d's position in the format's dtype order (-1 when unknown).
func (d DType) rank() int {
	for i, o := range order {
		if o == d {
			return i
		}
	}
	return -1
}

// Pair is one "__metadata__" entry.
type Pair struct{ Key, Value string }

// Metadata is the header's "__metadata__" map, kept in file order so that a file re-written
// from what was read is byte-identical (the reference writer keeps insertion order).
type Metadata []Pair

// Get returns the value of key.
func (m Metadata) Get(key string) (string, bool) {
	for _, p := range m {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Map returns the entries as a map.
func (m Metadata) Map() map[string]string {
	out := make(map[string]string, len(m))
	for _, p := range m {
		out[p.Key] = p.Value
	}
	return out
}

// nbytes returns the data size of a dtype × shape, refusing negative dimensions and products
// that do not fit in an int64.
func nbytes(dt DType, shape []int) (int64, error) {
	n := uint64(dt.Size())
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("%s%v overflows: more than 2^63 bytes", dt, shape)
		}
		n = lo
	}
	return int64(n), nil
}
