package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// chunkBytes is the read size of the converting readers: large enough to amortise ReadAt,
// small enough that converting a tensor costs no second copy of it.
const chunkBytes = 1 << 20

// ReadFloat32 converts tensor name into dst, which must hold exactly its elements. F32 is
// copied; F16, BF16 and F64 are converted (F64 rounds to nearest, beyond ±MaxFloat32 to ±Inf).
func (f *File) ReadFloat32(name string, dst []float32) error {
	t, ok := f.Info(name)
	if !ok {
		return fmt.Errorf("tensor %q: not in the file", name)
	}
	var conv func(b []byte, dst []float32)
	switch t.DType {
	case F32:
		conv = func(b []byte, dst []float32) {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
	case F64:
		conv = func(b []byte, dst []float32) {
			for i := range dst {
				dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
			}
		}
	case F16:
		conv = func(b []byte, dst []float32) {
			for i := range dst {
				dst[i] = F16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
			}
		}
	case BF16:
		conv = func(b []byte, dst []float32) {
			for i := range dst {
				dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
			}
		}
	default:
		return fmt.Errorf("tensor %q: dtype %s is not a float type", name, t.DType)
	}
	return f.convert(t, len(dst), func(b []byte, lo int) { conv(b, dst[lo:lo+len(b)/t.DType.Size()]) })
}

// Float32s returns tensor name as float32 (see ReadFloat32).
func (f *File) Float32s(name string) ([]float32, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("tensor %q: not in the file", name)
	}
	dst := make([]float32, t.Elems())
	return dst, f.ReadFloat32(name, dst)
}

// Int64s returns integer tensor name (I8, U8, I16, U16, I32, U32, I64; BOOL as 0/1) as int64.
func (f *File) Int64s(name string) ([]int64, error) {
	t, ok := f.Info(name)
	if !ok {
		return nil, fmt.Errorf("tensor %q: not in the file", name)
	}
	le := binary.LittleEndian
	var get func(b []byte) int64
	switch t.DType {
	case BOOL, U8:
		get = func(b []byte) int64 { return int64(b[0]) }
	case I8:
		get = func(b []byte) int64 { return int64(int8(b[0])) }
	case I16:
		get = func(b []byte) int64 { return int64(int16(le.Uint16(b))) }
	case U16:
		get = func(b []byte) int64 { return int64(le.Uint16(b)) }
	case I32:
		get = func(b []byte) int64 { return int64(int32(le.Uint32(b))) }
	case U32:
		get = func(b []byte) int64 { return int64(le.Uint32(b)) }
	case I64:
		get = func(b []byte) int64 { return int64(le.Uint64(b)) }
	default:
		return nil, fmt.Errorf("tensor %q: dtype %s is not a signed-representable integer type", name, t.DType)
	}
	size := t.DType.Size()
	dst := make([]int64, t.Elems())
	err := f.convert(t, len(dst), func(b []byte, lo int) {
		for i := range len(b) / size {
			dst[lo+i] = get(b[i*size:])
		}
	})
	return dst, err
}

// convert reads t in chunks of whole elements and hands each chunk, with the index of its first
// element, to use. n must equal t's element count.
func (f *File) convert(t TensorInfo, n int, use func(b []byte, lo int)) error {
	if int64(n) != t.Elems() {
		return fmt.Errorf("tensor %q: %s%v has %d elements, the destination holds %d", t.Name, t.DType, t.Shape, t.Elems(), n)
	}
	size := t.DType.Size()
	buf := make([]byte, min(int64(chunkBytes/size*size), t.End-t.Begin))
	for lo := 0; lo < n; {
		b := buf[:min(len(buf), (n-lo)*size)]
		if err := f.readAt(t, b, int64(lo*size)); err != nil {
			return err
		}
		use(b, lo)
		lo += len(b) / size
	}
	return nil
}

// F16ToFloat32 converts IEEE 754 half-precision bits to float32 exactly (subnormals, ±Inf and
// NaN payloads included).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		v := float32(mant) / (1 << 24) // subnormal: mant × 2^-24, exact
		return math.Float32frombits(sign | math.Float32bits(v))
	default:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	}
}

// Float32ToF16 rounds f to IEEE 754 half precision, to nearest with ties to even, as torch's
// Tensor.half() does: too large gives ±Inf, too small ±0 or a subnormal, NaN the quiet NaN
// 0x7E00 with f's sign.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // the half's biased exponent
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e < -10: // below half the smallest subnormal
		return sign
	case e <= 0: // a subnormal half: the 24-bit significand shifted into 10 bits
		m := mant | 0x800000
		shift := uint32(14 - e)
		h := m >> shift
		rem, half := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || rem == half && h&1 == 1 {
			h++ // may carry into the smallest normal, whose bits follow on
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	if rem := mant & 0x1fff; rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to Inf
	}
	return sign | uint16(h)
}

// Float32ToBF16 rounds f to bfloat16, to nearest with ties to even, as torch's
// Tensor.bfloat16() does (NaN becomes 0x7FC0).
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return 0x7fc0
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
