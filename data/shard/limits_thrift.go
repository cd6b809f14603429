package shard

import (
	"errors"
	"fmt"
	"io"
)

// MaxThriftDepth bounds the nesting of Thrift structs and containers in a page header or a
// footer. parquet-go's Thrift decoder recurses without a bound, and a few megabytes of
// nested structs overflow the goroutine stack: a fatal error that recover cannot catch.
const MaxThriftDepth = 32

// errThriftEnd marks Thrift data that runs past the end of its region.
var errThriftEnd = errors.New("thrift data runs past the end of its region")

// Thrift compact protocol types (the low nibble of a field header).
const (
	tStop   = 0
	tTrue   = 1
	tFalse  = 2
	tByte   = 3
	tI16    = 4
	tI32    = 5
	tI64    = 6
	tDouble = 7
	tBinary = 8
	tList   = 9
	tSet    = 10
	tMap    = 11
	tStruct = 12
	tUUID   = 13
)

// thriftReader reads Thrift compact protocol from the region [off, end) of r through a
// small window, so that walking a structure costs a few small reads and no allocation
// that depends on the data: binary values are skipped by offset, not read.
type thriftReader struct {
	r      io.ReaderAt
	off    int64 // next byte to read
	end    int64 // first byte past the region
	win    []byte
	winOff int64 // file offset of win[0]
	buf    [4096]byte
}

func newThriftReader(r io.ReaderAt, off, end int64) *thriftReader {
	return &thriftReader{r: r, off: off, end: end}
}

// left is the number of bytes left in the region.
func (t *thriftReader) left() int64 { return t.end - t.off }

func (t *thriftReader) byte() (byte, error) {
	if t.off >= t.end {
		return 0, errThriftEnd
	}
	if i := t.off - t.winOff; t.win == nil || i < 0 || i >= int64(len(t.win)) {
		n := int(min(int64(len(t.buf)), t.end-t.off))
		k, err := t.r.ReadAt(t.buf[:n], t.off)
		if k == 0 {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		t.win, t.winOff = t.buf[:k], t.off
	}
	b := t.win[t.off-t.winOff]
	t.off++
	return b, nil
}

// read fills p from the region.
func (t *thriftReader) read(p []byte) error {
	for i := range p {
		b, err := t.byte()
		if err != nil {
			return err
		}
		p[i] = b
	}
	return nil
}

// skip moves past n bytes of the region.
func (t *thriftReader) skip(n uint64) error {
	if n > uint64(t.left()) {
		return errThriftEnd
	}
	t.off += int64(n)
	return nil
}

func (t *thriftReader) uvarint() (uint64, error) {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := t.byte()
		if err != nil {
			return 0, err
		}
		if shift == 63 && b > 1 {
			break
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("thrift varint overflows 64 bits")
}

// varint reads a zigzag varint that must lie in [lo, hi].
func (t *thriftReader) varint(lo, hi int64) (int64, error) {
	u, err := t.uvarint()
	if err != nil {
		return 0, err
	}
	x := int64(u>>1) ^ -int64(u&1)
	if x < lo || x > hi {
		return 0, fmt.Errorf("thrift integer %d outside [%d, %d]", x, lo, hi)
	}
	return x, nil
}

func (t *thriftReader) i32() (int32, error) {
	x, err := t.varint(-1<<31, 1<<31-1)
	return int32(x), err
}

// field reads a field header of a struct whose previous field id is *last; typ 0 (stop)
// ends the struct.
func (t *thriftReader) field(last *int16) (id int16, typ byte, err error) {
	b, err := t.byte()
	if err != nil || b == tStop {
		return 0, tStop, err
	}
	typ = b & 0x0f
	if delta := int16(b >> 4); delta != 0 {
		id = *last + delta
	} else {
		x, err := t.varint(-1<<15, 1<<15-1)
		if err != nil {
			return 0, 0, err
		}
		id = int16(x)
	}
	*last = id
	return id, typ, nil
}

// skipValue moves past one value of type typ; depth is the nesting of the value, and
// elem says it is a container element (where a bool takes one byte, not zero).
func (t *thriftReader) skipValue(typ byte, depth int, elem bool) error {
	if depth > MaxThriftDepth {
		return fmt.Errorf("thrift data nested deeper than %d", MaxThriftDepth)
	}
	switch typ {
	case tTrue, tFalse:
		if elem {
			return t.skip(1)
		}
		return nil
	case tByte:
		return t.skip(1)
	case tI16, tI32, tI64:
		_, err := t.uvarint()
		return err
	case tDouble:
		return t.skip(8)
	case tUUID:
		return t.skip(16)
	case tBinary:
		n, err := t.uvarint()
		if err != nil {
			return err
		}
		return t.skip(n)
	case tList, tSet:
		b, err := t.byte()
		if err != nil {
			return err
		}
		n, et := uint64(b>>4), b&0x0f
		if n == 15 {
			if n, err = t.uvarint(); err != nil {
				return err
			}
		}
		return t.skipElems(n, depth, et)
	case tMap:
		n, err := t.uvarint()
		if err != nil || n == 0 {
			return err
		}
		b, err := t.byte()
		if err != nil {
			return err
		}
		return t.skipElems(n, depth, b>>4, b&0x0f)
	case tStruct:
		var last int16
		for {
			_, ft, err := t.field(&last)
			if err != nil || ft == tStop {
				return err
			}
			if err := t.skipValue(ft, depth+1, false); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown thrift type %d", typ)
}

// skipElems moves past n container elements, each a value of every type in types (one
// for a list or set, key and value for a map).
func (t *thriftReader) skipElems(n uint64, depth int, types ...byte) error {
	if n > uint64(t.left()) { // every element takes at least one byte
		return fmt.Errorf("thrift container of %d elements in %d bytes: %w", n, t.left(), errThriftEnd)
	}
	for range n {
		for _, typ := range types {
			if err := t.skipValue(typ, depth+1, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkThriftStruct walks the Thrift struct that fills [off, end) of r (a file footer),
// refusing nesting deeper than MaxThriftDepth and lengths that run past the end, so that
// parquet-go's unbounded recursive decoder never sees them.
func checkThriftStruct(r io.ReaderAt, off, end int64) error {
	t := newThriftReader(r, off, end)
	return t.skipValue(tStruct, 0, false)
}
