package safetensors

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Tensor is one tensor to write. Data holds its elements row-major: []float32 (F32),
// []float64 (F64), []int32 (I32), []int64 (I64), or []byte holding the little-endian bytes of
// any DType. Write encodes typed slices in chunks, so it makes no copy of a whole tensor.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  any
}

// dataLen returns the bytes Data encodes to, checking that its Go type fits DType.
func (t Tensor) dataLen() (int64, error) {
	var n, size int
	switch d := t.Data.(type) {
	case []byte:
		return int64(len(d)), nil
	case []float32:
		n, size = len(d), F32.Size()
		if t.DType != F32 {
			return 0, fmt.Errorf("[]float32 data for dtype %s", t.DType)
		}
	case []float64:
		n, size = len(d), F64.Size()
		if t.DType != F64 {
			return 0, fmt.Errorf("[]float64 data for dtype %s", t.DType)
		}
	case []int32:
		n, size = len(d), I32.Size()
		if t.DType != I32 {
			return 0, fmt.Errorf("[]int32 data for dtype %s", t.DType)
		}
	case []int64:
		n, size = len(d), I64.Size()
		if t.DType != I64 {
			return 0, fmt.Errorf("[]int64 data for dtype %s", t.DType)
		}
	default:
		return 0, fmt.Errorf("unsupported data type %T", t.Data)
	}
	return int64(n) * int64(size), nil
}

// Encode returns the file bytes of Write(tensors, meta).
func Encode(tensors []Tensor, meta Metadata) ([]byte, error) {
	var b bytes.Buffer
	if err := Write(&b, tensors, meta); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write writes a safetensors file laid out as the reference writer lays it out: tensors sorted
// by descending dtype then name, "__metadata__" (omitted when empty) first in the header, the
// header padded with spaces to a multiple of 8 bytes. It refuses duplicate or invalid names,
// unknown dtypes and data whose length differs from dtype × shape, before writing anything.
func Write(w io.Writer, tensors []Tensor, meta Metadata) error {
	sorted := slices.Clone(tensors)
	slices.SortStableFunc(sorted, func(a, b Tensor) int {
		return cmp.Or(cmp.Compare(b.DType.rank(), a.DType.rank()), cmp.Compare(a.Name, b.Name))
	})
	header, err := encodeHeader(sorted, meta)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<18)
	var pre [8]byte
	binary.LittleEndian.PutUint64(pre[:], uint64(len(header)))
	bw.Write(pre[:])
	bw.Write(header)
	for _, t := range sorted {
		if err := writeData(bw, t.Data); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	return bw.Flush()
}

// encodeHeader validates the sorted tensors and returns the padded JSON header, compact and
// escaped as Python's json.dumps(separators=(",", ":"), ensure_ascii=False) does.
func encodeHeader(sorted []Tensor, meta Metadata) ([]byte, error) {
	if len(sorted) > MaxTensors {
		return nil, fmt.Errorf("%d tensors, more than %d", len(sorted), MaxTensors)
	}
	if len(meta) > MaxMetadata {
		return nil, fmt.Errorf("%d metadata entries, more than %d", len(meta), MaxMetadata)
	}
	h := []byte{'{'}
	if len(meta) > 0 {
		h = append(h, `"__metadata__":{`...)
		seen := map[string]bool{}
		for i, p := range meta {
			if seen[p.Key] {
				return nil, fmt.Errorf("metadata: duplicate key %q", p.Key)
			}
			seen[p.Key] = true
			if !utf8.ValidString(p.Key) || !utf8.ValidString(p.Value) {
				return nil, fmt.Errorf("metadata %q: not valid UTF-8", p.Key)
			}
			if i > 0 {
				h = append(h, ',')
			}
			h = appendString(h, p.Key)
			h = append(h, ':')
			h = appendString(h, p.Value)
		}
		h = append(h, '}')
	}
	var off int64
	names := make(map[string]bool, len(sorted))
	for i, t := range sorted {
		switch {
		case t.Name == "__metadata__":
			return nil, errors.New(`tensor "__metadata__": the name is reserved`)
		case !utf8.ValidString(t.Name):
			return nil, fmt.Errorf("tensor %q: name is not valid UTF-8", t.Name)
		case names[t.Name]:
			return nil, fmt.Errorf("tensor %q: duplicate name", t.Name)
		case t.DType.Size() == 0:
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		case len(t.Shape) > MaxRank:
			return nil, fmt.Errorf("tensor %q: rank %d exceeds %d", t.Name, len(t.Shape), MaxRank)
		}
		names[t.Name] = true
		want, err := nbytes(t.DType, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		got, err := t.dataLen()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if got != want {
			return nil, fmt.Errorf("tensor %q: %s%v takes %d bytes, the data holds %d", t.Name, t.DType, t.Shape, want, got)
		}
		if len(meta) > 0 || i > 0 {
			h = append(h, ',')
		}
		h = appendString(h, t.Name)
		h = append(h, `:{"dtype":`...)
		h = appendString(h, string(t.DType))
		h = append(h, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, int64(d), 10)
		}
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendInt(h, off, 10)
		h = append(h, ',')
		h = strconv.AppendInt(h, off+want, 10)
		h = append(h, "]}"...)
		off += want
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	if len(h) > MaxHeaderBytes {
		return nil, fmt.Errorf("header of %d bytes exceeds the limit of %d", len(h), MaxHeaderBytes)
	}
	return h, nil
}

// appendString appends s as a JSON string escaped as Python's json.dumps with
// ensure_ascii=False: \" \\ \b \f \n \r \t, other control characters as \u00xx (lower-case
// hex), everything else, non-ASCII included, verbatim.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// writeData writes data little-endian, through a bounded scratch buffer for typed slices.
func writeData(w *bufio.Writer, data any) error {
	var scratch [4096]byte
	le := binary.LittleEndian
	flush := func(n int) error { _, err := w.Write(scratch[:n]); return err }
	switch d := data.(type) {
	case []byte:
		_, err := w.Write(d)
		return err
	case []float32:
		return encodeChunks(len(d), 4, flush, func(i, at int) { le.PutUint32(scratch[at:], math.Float32bits(d[i])) })
	case []float64:
		return encodeChunks(len(d), 8, flush, func(i, at int) { le.PutUint64(scratch[at:], math.Float64bits(d[i])) })
	case []int32:
		return encodeChunks(len(d), 4, flush, func(i, at int) { le.PutUint32(scratch[at:], uint32(d[i])) })
	case []int64:
		return encodeChunks(len(d), 8, flush, func(i, at int) { le.PutUint64(scratch[at:], uint64(d[i])) })
	}
	return fmt.Errorf("unsupported data type %T", data) // unreachable: dataLen checked it
}

// encodeChunks puts n elements of size bytes into a 4096-byte scratch buffer, flushing it
// whenever it is full.
func encodeChunks(n, size int, flush func(int) error, put func(i, at int)) error {
	per := 4096 / size
	for lo := 0; lo < n; lo += per {
		hi := min(n, lo+per)
		for i := lo; i < hi; i++ {
			put(i, (i-lo)*size)
		}
		if err := flush((hi - lo) * size); err != nil {
			return err
		}
	}
	return nil
}
