package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/clipgo/clipgo/internal/fileinput"
)

// TensorInfo describes one tensor of a file: its element type, shape (row-major, [] for a
// scalar) and byte range [Begin, End) within the data section.
type TensorInfo struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int64
}

// Elems returns the number of elements (1 for a scalar).
func (t TensorInfo) Elems() int64 { return (t.End - t.Begin) / int64(t.DType.Size()) }

// File is a validated safetensors file whose tensor data is read on demand, one tensor at a
// time, so that no tensor is read twice and the file is never held in memory whole.
type File struct {
	// Tensors in data order (by Begin).
	Tensors  []TensorInfo
	Metadata Metadata

	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	index     map[string]int
}

// Open reads and validates the header of a safetensors file of size bytes held by r.
func Open(r io.ReaderAt, size int64) (*File, error) {
	var pre [8]byte
	if size < 8 {
		return nil, fmt.Errorf("only %d bytes, no header length", size)
	}
	if _, err := r.ReadAt(pre[:], 0); err != nil {
		return nil, fmt.Errorf("reading the header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(pre[:])
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("header length %d exceeds the limit of %d bytes", n, MaxHeaderBytes)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("header length %d exceeds the file (%d bytes)", n, size)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size-8) {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	tensors, meta, err := parseHeader(header)
	if err != nil {
		return nil, err
	}
	f := &File{Tensors: tensors, Metadata: meta, r: r, dataStart: 8 + int64(n)}
	if err := f.validate(size - f.dataStart); err != nil {
		return nil, err
	}
	return f, nil
}

// OpenFile opens and validates the safetensors file at path; Close releases it. A path that
// is not a regular file (a FIFO, a device, a directory) is refused by name, without blocking.
func OpenFile(path string) (*File, error) {
	fd, err := fileinput.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	st, err := fd.Stat()
	if err != nil {
		fd.Close()
		return nil, err
	}
	f, err := Open(fd, st.Size())
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.closer = fd
	return f, nil
}

// Close releases the file opened by OpenFile; it does nothing for a File made by Open.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// validate checks every tensor's size against its dtype and shape, and that the byte ranges
// tile the data section of dataLen bytes exactly.
func (f *File) validate(dataLen int64) error {
	for _, t := range f.Tensors {
		if t.DType.Size() == 0 {
			return fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		want, err := nbytes(t.DType, t.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if t.End < t.Begin || t.End-t.Begin != want {
			return fmt.Errorf("tensor %q: %s%v takes %d bytes, data_offsets [%d, %d] give %d",
				t.Name, t.DType, t.Shape, want, t.Begin, t.End, t.End-t.Begin)
		}
	}
	slices.SortFunc(f.Tensors, func(a, b TensorInfo) int {
		return cmp.Or(cmp.Compare(a.Begin, b.Begin), cmp.Compare(a.End, b.End), cmp.Compare(a.Name, b.Name))
	})
	var pos int64
	f.index = make(map[string]int, len(f.Tensors))
	for i, t := range f.Tensors {
		if t.Begin != pos {
			return fmt.Errorf("tensor %q: data starts at byte %d, expected %d (hole or overlap)", t.Name, t.Begin, pos)
		}
		pos = t.End
		f.index[t.Name] = i
	}
	if pos != dataLen {
		return fmt.Errorf("tensors cover %d data bytes, the file holds %d (truncated or trailing bytes)", pos, dataLen)
	}
	return nil
}

// Info returns the description of tensor name.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Raw returns the little-endian bytes of tensor name.
func (f *File) Raw(name string) ([]byte, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("tensor %q: not in the file", name)
	}
	buf := make([]byte, t.End-t.Begin)
	if err := f.readAt(t, buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// readAt fills buf with t's bytes from offset off within the tensor.
func (f *File) readAt(t TensorInfo, buf []byte, off int64) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := f.r.ReadAt(buf, f.dataStart+t.Begin+off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("tensor %q: reading data: %w", t.Name, err)
}

// parseHeader decodes the JSON header, refusing anything but an object of tensor entries and
// one optional "__metadata__" object of strings, with unique keys throughout.
func parseHeader(h []byte) ([]TensorInfo, Metadata, error) {
	if !utf8.Valid(h) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	if !json.Valid(h) {
		var raw json.RawMessage
		err := json.Unmarshal(h, &raw)
		return nil, nil, fmt.Errorf("header is not valid JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(h))
	dec.UseNumber()
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, nil, errors.New("header is not a JSON object")
	}
	var (
		tensors []TensorInfo
		meta    Metadata
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("header: %w", err)
		}
		name := tok.(string) // object keys are strings in valid JSON
		if seen[name] {
			return nil, nil, fmt.Errorf("tensor %q: duplicate name in the header", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if meta, err = parseMetadata(dec); err != nil {
				return nil, nil, fmt.Errorf("__metadata__: %w", err)
			}
			continue
		}
		if len(tensors) == MaxTensors {
			return nil, nil, fmt.Errorf("more than %d tensors", MaxTensors)
		}
		t, err := parseEntry(dec)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: malformed header entry: %w", name, err)
		}
		t.Name = name
		tensors = append(tensors, t)
	}
	return tensors, meta, nil
}

// parseMetadata decodes a JSON object of strings (or null).
func parseMetadata(dec *json.Decoder) (Metadata, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, errors.New("must map strings to strings")
	}
	meta := Metadata{}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := k.(string)
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		if len(meta) == MaxMetadata {
			return nil, fmt.Errorf("more than %d entries", MaxMetadata)
		}
		v, err := dec.Token()
		if err != nil {
			return nil, err
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("value of %q is not a string", key)
		}
		meta = append(meta, Pair{key, s})
	}
	_, err = dec.Token() // '}'
	return meta, err
}

// parseEntry decodes {"dtype": string, "shape": [int...], "data_offsets": [int, int]}, each
// field exactly once and no other.
func parseEntry(dec *json.Decoder) (TensorInfo, error) {
	var t TensorInfo
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return t, errors.New("not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return t, err
		}
		key := k.(string)
		if seen[key] {
			return t, fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		switch key {
		case "dtype":
			v, err := dec.Token()
			if err != nil {
				return t, err
			}
			s, ok := v.(string)
			if !ok {
				return t, errors.New("dtype is not a string")
			}
			t.DType = DType(s)
		case "shape":
			dims, err := parseInts(dec, "shape", MaxRank)
			if err != nil {
				return t, err
			}
			t.Shape = make([]int, len(dims))
			for i, d := range dims {
				t.Shape[i] = int(d)
			}
		case "data_offsets":
			offs, err := parseInts(dec, "data_offsets", 2)
			if err != nil {
				return t, err
			}
			if len(offs) != 2 {
				return t, fmt.Errorf("data_offsets has %d values, want 2", len(offs))
			}
			t.Begin, t.End = offs[0], offs[1]
		default:
			return t, fmt.Errorf("unknown field %q", key)
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return t, err
	}
	for _, k := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[k] {
			return t, fmt.Errorf("missing field %q", k)
		}
	}
	return t, nil
}

// parseInts decodes a JSON array of at most max non-negative integers that fit in an int64.
func parseInts(dec *json.Decoder, what string, max int) ([]int64, error) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("%s is not an array", what)
	}
	var out []int64
	for dec.More() {
		if len(out) == max {
			return nil, fmt.Errorf("%s has more than %d values", what, max)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s holds %v, not an integer", what, tok)
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s holds %s, not a non-negative 64-bit integer", what, num)
		}
		out = append(out, v)
	}
	_, err := dec.Token() // ']'
	return out, err
}
