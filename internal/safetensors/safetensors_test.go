package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// hdr is a file of header j, padded with pad spaces (to a multiple of 8 when pad < 0), and data.
func hdr(j string, pad int, data []byte) []byte {
	if pad < 0 {
		pad = -len(j) & 7
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(j)+pad))
	b = append(b, j...)
	b = append(b, strings.Repeat(" ", pad)...)
	return append(b, data...)
}

func open(t *testing.T, b []byte) *File {
	t.Helper()
	f, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return f
}

// TestWriteReferenceLayouts checks the byte layouts the reference's self-test pins
// (../shared/peers/clip_step.py selftest-parity, check 1).
func TestWriteReferenceLayouts(t *testing.T) {
	const ti32 = `{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}`
	arange := make([]float32, 6)
	for i := range arange {
		arange[i] = float32(i)
	}
	araw, _ := Encode([]Tensor{{Name: "x", DType: F32, Shape: []int{6}, Data: arange}}, nil)
	cases := []struct {
		name    string
		tensors []Tensor
		meta    Metadata
		want    []byte
	}{
		{"one I32", []Tensor{{"test", I32, []int{2, 2}, make([]int32, 4)}}, nil,
			hdr(`{"test":`+ti32+`}`, 4, make([]byte, 16))},
		{"descending dtype", []Tensor{{"test2", F16, []int{2, 2}, make([]byte, 8)}, {"test1", I32, []int{2, 2}, make([]int32, 4)}}, nil,
			hdr(`{"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"test2":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]}}`, 6, make([]byte, 24))},
		{"metadata", []Tensor{{"test1", I32, []int{2, 2}, make([]int32, 4)}}, Metadata{{"framework", "pt"}},
			hdr(`{"__metadata__":{"framework":"pt"},"test1":`+ti32+`}`, 1, make([]byte, 16))},
		{"no padding", []Tensor{{"attn.0", F32, []int{1, 2, 3}, arange}}, nil,
			hdr(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, 0, araw[len(araw)-24:])},
		{"dtype before name", []Tensor{{"a", F32, []int{1}, []float32{1}}, {"b", I64, []int{}, []int64{-1}}, {"c", F64, nil, []float64{2}}}, nil,
			hdr(`{"b":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"c":{"dtype":"F64","shape":[],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}}`, -1,
				slices.Concat(bytes.Repeat([]byte{0xff}, 8), binary.LittleEndian.AppendUint64(nil, math.Float64bits(2)), binary.LittleEndian.AppendUint32(nil, math.Float32bits(1))))},
		{"escapes as json.dumps", []Tensor{{"q\"\\\n\x01<>&é\u2028", U8, []int{0}, []byte{}}}, Metadata{{"k\t", "v\x1f\x7f"}},
			hdr(`{"__metadata__":{"k\t":"v\u001f`+"\x7f"+`"},"q\"\\\n\u0001<>&é`+"\u2028"+`":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, -1, nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(c.tensors, c.meta)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("bytes differ\n got %q\nwant %q", got, c.want)
			}
			f := open(t, got) // and it reads back, re-writing identically
			if again := rewrite(t, f); !bytes.Equal(again, got) {
				t.Fatalf("re-written bytes differ\n got %q\nwant %q", again, got)
			}
		})
	}
}

// rewrite writes f's tensors and metadata again, in data order, as raw bytes.
func rewrite(t testing.TB, f *File) []byte {
	t.Helper()
	var ts []Tensor
	for _, info := range f.Tensors {
		raw, err := f.Raw(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, Tensor{info.Name, info.DType, info.Shape, raw})
	}
	b, err := Encode(ts, f.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadUnpaddedAndNullMetadata(t *testing.T) {
	f := open(t, hdr(`{"__metadata__":null,"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`, 0, make([]byte, 16)))
	if len(f.Tensors) != 1 || f.Tensors[0].Name != "test" || len(f.Metadata) != 0 {
		t.Fatalf("got %+v, metadata %v", f.Tensors, f.Metadata)
	}
}

func TestRoundTrip(t *testing.T) {
	f32 := []float32{1.5, -2, float32(math.Inf(1)), 3e-41, 0}
	f64 := []float64{math.Pi, -1e300, 5e-324}
	i32 := []int32{math.MinInt32, -1, 0, math.MaxInt32}
	i64 := []int64{math.MinInt64, 7, math.MaxInt64}
	f16 := []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b} // 1, -2, 65504
	bf16 := []byte{0x80, 0x3f, 0x49, 0x40}            // 1, 3.140625
	in := []Tensor{
		{"f32", F32, []int{5}, f32}, {"f64", F64, []int{3, 1}, f64}, {"i32", I32, []int{2, 2}, i32},
		{"i64", I64, []int{3}, i64}, {"f16", F16, []int{3}, f16}, {"bf16", BF16, []int{1, 2}, bf16},
		{"scalar", F32, []int{}, []float32{2.5}}, {"empty", F32, []int{0, 3}, []float32{}},
		{"u8", U8, []int{2}, []byte{0, 255}}, {"bool", BOOL, []int{2}, []byte{1, 0}},
	}
	meta := Metadata{{"z", "last key first"}, {"a", "ünïcode"}, {"config", `{"embed_dim": 64}`}}
	b, err := Encode(in, meta)
	if err != nil {
		t.Fatal(err)
	}
	f := open(t, b)
	if !slices.Equal(f.Metadata, meta) {
		t.Errorf("metadata %v, want %v (in order)", f.Metadata, meta)
	}
	wantF := map[string][]float32{
		"f32": f32, "f64": {math.Pi, float32(math.Inf(-1)), 0}, "f16": {1, -2, 65504}, "bf16": {1, 3.140625},
		"scalar": {2.5}, "empty": {},
	}
	for name, want := range wantF {
		got, err := f.Float32s(name)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	wantI := map[string][]int64{"i32": {math.MinInt32, -1, 0, math.MaxInt32}, "i64": i64, "u8": {0, 255}, "bool": {1, 0}}
	for name, want := range wantI {
		got, err := f.Int64s(name)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	if info, _ := f.Info("f64"); !slices.Equal(info.Shape, []int{3, 1}) || info.DType != F64 {
		t.Errorf("f64 info %+v", info)
	}
	if _, err := f.Float32s("i32"); err == nil || !strings.Contains(err.Error(), `"i32"`) {
		t.Errorf("Float32s of an I32 tensor: %v", err)
	}
	if _, err := f.Int64s("f32"); err == nil {
		t.Error("Int64s of an F32 tensor: no error")
	}
	if _, err := f.Raw("absent"); err == nil || !strings.Contains(err.Error(), `"absent"`) {
		t.Errorf("Raw of a missing tensor: %v", err)
	}
	if err := f.ReadFloat32("f32", make([]float32, 4)); err == nil {
		t.Error("ReadFloat32 into a short destination: no error")
	}
	if again := rewrite(t, f); !bytes.Equal(again, b) {
		t.Error("re-written file differs")
	}
}

// TestReadFloat32Chunks converts a tensor larger than one read chunk.
func TestReadFloat32Chunks(t *testing.T) {
	n := chunkBytes/8*2 + 3 // F64: two full chunks and a partial one
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(i) * 0.5
	}
	b, err := Encode([]Tensor{{"big", F64, []int{n}, v}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := open(t, b).Float32s("big")
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range got {
		if x != float32(v[i]) {
			t.Fatalf("element %d: %v, want %v", i, x, v[i])
		}
	}
}

func TestF16ToFloat32(t *testing.T) {
	cases := []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x3555, 0.333251953125},
		{0x0001, 1.0 / (1 << 24)}, {0x03ff, 1023.0 / (1 << 24)}, {0x0400, 1.0 / (1 << 14)},
		{0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := F16ToFloat32(c.h); got != c.want {
			t.Errorf("F16ToFloat32(%#04x) = %v, want %v", c.h, got, c.want)
		}
	}
	if got := F16ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("F16ToFloat32(0x8000) = %v, want -0", got)
	}
	if got := F16ToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("F16ToFloat32(0x7e00) = %v, want NaN", got)
	}
}

// malformed are files the reader must refuse, with a piece of the error each must give.
var malformed = []struct {
	name, want string
	file       []byte
}{
	{"empty", "no header length", nil},
	{"short", "no header length", []byte{1, 0, 0}},
	{"truncated", `truncated`, hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 0, make([]byte, 7))},
	{"trailing bytes", `trailing`, hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 0, make([]byte, 9))},
	{"hole", `tensor "b": data starts at byte 12, expected 8`,
		hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`, 0, make([]byte, 16))},
	{"overlap", `tensor "b": data starts at byte 4, expected 8`,
		hdr(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 0, make([]byte, 12))},
	{"lying size", `tensor "a": F32[3] takes 12 bytes, data_offsets [0, 8] give 8`,
		hdr(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 0, make([]byte, 8))},
	{"reversed offsets", `tensor "a"`, hdr(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, 0, make([]byte, 8))},
	{"unknown dtype", `tensor "a": unknown dtype "F7"`, hdr(`{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}`, 0, make([]byte, 8))},
	{"not json", "not valid JSON", hdr(`{no}`, 0, nil)},
	{"not utf-8", "not valid UTF-8", hdr("{\"\xff\":1}", 0, nil)},
	{"not an object", "not a JSON object", hdr(`[1,2]`, 0, nil)},
	{"header over the limit", "exceeds the limit", binary.LittleEndian.AppendUint64(nil, MaxHeaderBytes+1)},
	{"header over the file", "exceeds the file", append(binary.LittleEndian.AppendUint64(nil, 1_000_000), "{}"...)},
	{"header length 2^64-1", "exceeds the limit", binary.LittleEndian.AppendUint64(nil, math.MaxUint64)},
	{"duplicate name", `tensor "a": duplicate name`,
		hdr(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, 0, nil)},
	{"negative dim", `tensor "a"`, hdr(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0, nil)},
	{"float dim", `tensor "a"`, hdr(`{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, 0, make([]byte, 4))},
	{"dim over int64", `tensor "a"`, hdr(`{"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,0]}}`, 0, nil)},
	{"overflowing shape", `tensor "a": F32[4294967296 4294967296] overflows`,
		hdr(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0, nil)},
	{"overflow by dtype size", `tensor "a": F64[4611686018427387904] overflows`,
		hdr(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}`, 0, nil)},
	{"rank over the limit", `tensor "a": malformed header entry: shape has more than 64`,
		hdr(`{"a":{"dtype":"U8","shape":[`+strings.Repeat("1,", 64)+`1],"data_offsets":[0,1]}}`, 0, []byte{0})},
	{"missing field", `tensor "a": malformed header entry: missing field "data_offsets"`, hdr(`{"a":{"dtype":"U8","shape":[]}}`, 0, nil)},
	{"unknown field", `tensor "a": malformed header entry: unknown field "x"`,
		hdr(`{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1],"x":1}}`, 0, []byte{0})},
	{"duplicate field", `tensor "a": malformed header entry: duplicate field "shape"`,
		hdr(`{"a":{"dtype":"U8","shape":[],"shape":[],"data_offsets":[0,1]}}`, 0, []byte{0})},
	{"three offsets", `tensor "a": malformed header entry: data_offsets has more than 2`,
		hdr(`{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1,2]}}`, 0, []byte{0})},
	{"entry not an object", `tensor "a": malformed header entry`, hdr(`{"a":3}`, 0, nil)},
	{"dtype not a string", `tensor "a": malformed header entry: dtype is not a string`, hdr(`{"a":{"dtype":4}}`, 0, nil)},
	{"metadata not strings", "__metadata__: value of \"k\" is not a string", hdr(`{"__metadata__":{"k":1}}`, 0, nil)},
	{"metadata not an object", "__metadata__: must map strings to strings", hdr(`{"__metadata__":[]}`, 0, nil)},
	{"metadata duplicate key", `__metadata__: duplicate key "k"`, hdr(`{"__metadata__":{"k":"1","k":"2"}}`, 0, nil)},
	{"trailing JSON", "not valid JSON", hdr(`{} {}`, 0, nil)},
}

func TestReadRejects(t *testing.T) {
	for _, c := range malformed {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(c.file), int64(len(c.file)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestWriteRejects(t *testing.T) {
	cases := []struct {
		name, want string
		tensors    []Tensor
		meta       Metadata
	}{
		{"duplicate name", `tensor "a": duplicate name`, []Tensor{{"a", F32, nil, []float32{1}}, {"a", F32, nil, []float32{1}}}, nil},
		{"duplicate name across dtypes", `tensor "a": duplicate name`, []Tensor{{"a", F32, nil, []float32{1}}, {"b", I64, nil, []int64{1}}, {"a", I64, nil, []int64{1}}}, nil},
		{"short data", `tensor "a": F32[2 2] takes 16 bytes, the data holds 12`, []Tensor{{"a", F32, []int{2, 2}, []float32{1, 2, 3}}}, nil},
		{"type mismatch", `tensor "a": []float32 data for dtype F64`, []Tensor{{"a", F64, nil, []float32{1}}}, nil},
		{"unsupported data", `tensor "a": unsupported data type []int`, []Tensor{{"a", I64, nil, []int{1}}}, nil},
		{"unknown dtype", `tensor "a": unknown dtype "X"`, []Tensor{{"a", "X", nil, []byte{1}}}, nil},
		{"negative dim", `tensor "a": negative dimension`, []Tensor{{"a", U8, []int{-1}, []byte{}}}, nil},
		{"reserved name", `"__metadata__": the name is reserved`, []Tensor{{"__metadata__", U8, nil, []byte{1}}}, nil},
		{"invalid UTF-8", "not valid UTF-8", []Tensor{{"\xff", U8, nil, []byte{1}}}, nil},
		{"duplicate metadata", `metadata: duplicate key "k"`, nil, Metadata{{"k", "1"}, {"k", "2"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w bytes.Buffer
			err := Write(&w, c.tensors, c.meta)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if w.Len() != 0 {
				t.Errorf("wrote %d bytes before refusing", w.Len())
			}
		})
	}
}

// failingWriter accepts n bytes, then fails as a full disk does.
type failingWriter struct{ n int }

var errFull = errors.New("no space left on device")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errFull
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	big := make([]float32, 1<<18) // 1 MiB: more than the writer's buffer
	for _, limit := range []int{0, 10, 1 << 19} {
		err := Write(&failingWriter{limit}, []Tensor{{"w", F32, []int{len(big)}, big}}, nil)
		if !errors.Is(err, errFull) {
			t.Errorf("limit %d: error %v, want %v", limit, err, errFull)
		}
	}
}

// shortReaderAt serves only the first n bytes of b, then fails.
type shortReaderAt struct {
	b []byte
	n int64
}

func (r shortReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.n {
		return 0, io.ErrUnexpectedEOF
	}
	k := copy(p, r.b[off:r.n])
	if k < len(p) {
		return k, fmt.Errorf("disk error at byte %d", r.n)
	}
	return k, nil
}

func TestReadErrorNamesTensor(t *testing.T) {
	b, err := Encode([]Tensor{{"weights", F32, []int{4}, []float32{1, 2, 3, 4}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(shortReaderAt{b, int64(len(b) - 2)}, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Float32s("weights"); err == nil || !strings.Contains(err.Error(), `tensor "weights"`) {
		t.Errorf("error %v, want one naming the tensor", err)
	}
}

func BenchmarkWriteF32(b *testing.B) {
	v := make([]float32, 4<<20) // 16 MiB
	ts := []Tensor{{"w", F32, []int{len(v)}, v}}
	b.SetBytes(int64(4 * len(v)))
	for b.Loop() {
		if err := Write(io.Discard, ts, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadFloat32(b *testing.B) {
	v := make([]float32, 4<<20)
	raw, err := Encode([]Tensor{{"w", F32, []int{len(v)}, v}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	f, err := Open(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(4 * len(v)))
	for b.Loop() {
		if err := f.ReadFloat32("w", v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadCountLimits builds headers one entry past MaxTensors and MaxMetadata (a 60 MB
// header for the tensors) and checks that Open refuses each by its limit.
func TestReadCountLimits(t *testing.T) {
	entries := func(n int, entry func(i int) string) string {
		var b strings.Builder
		b.WriteByte('{')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(entry(i))
		}
		b.WriteByte('}')
		return b.String()
	}
	for _, c := range []struct {
		name, want, header string
	}{
		{"tensors", "more than 1048576 tensors", entries(MaxTensors+1, func(i int) string {
			return `"` + strconv.Itoa(i) + `":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`
		})},
		{"metadata", "more than 65536 entries", `{"__metadata__":` + entries(MaxMetadata+1, func(i int) string {
			return `"` + strconv.Itoa(i) + `":""`
		}) + `}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "tensors" && testing.Short() {
				t.Skip("a 60 MB header takes ~7 s to read; skipped with -short")
			}
			file := hdr(c.header, 0, nil)
			_, err := Open(bytes.NewReader(file), int64(len(file)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestHalfConversions: every half and bfloat16 value goes through float32 and back unchanged,
// and values between two halves round to the nearer one, ties to the even one.
func TestHalfConversions(t *testing.T) {
	for h := range 1 << 16 {
		f := F16ToFloat32(uint16(h))
		if f != f {
			continue // NaN: payloads are not kept
		}
		if got := Float32ToF16(f); got != uint16(h) {
			t.Fatalf("F16 %#04x -> %g -> %#04x", h, f, got)
		}
		bf := math.Float32frombits(uint32(h) << 16)
		if bf != bf {
			continue
		}
		if got := Float32ToBF16(bf); got != uint16(h) {
			t.Fatalf("BF16 %#04x -> %g -> %#04x", h, bf, got)
		}
	}
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{1 + 1.0/2048, 0x3c00},                                 // halfway between 1 and its successor: to even 1
		{1 + 3.0/2048, 0x3c02},                                 // halfway, odd below: up
		{1 + 1.0/2048 + 1.0/65536, 0x3c01},                     // past halfway
		{65520, 0x7c00},                                        // rounds past the largest half: Inf
		{65519, 0x7bff},                                        // stays the largest
		{float32(math.Ldexp(1, -25)), 0x0000},                  // half the smallest subnormal: to even 0
		{float32(math.Ldexp(1.5, -25)), 0x0001},                // past it
		{float32(math.Ldexp(1, -14) * (1 - 1.0/4096)), 0x0400}, // carries into the smallest normal
		{float32(math.Inf(-1)), 0xfc00},
		{float32(math.NaN()), 0x7e00},
	} {
		if got := Float32ToF16(c.f); got != c.want {
			t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	if got := Float32ToBF16(math.Float32frombits(0x3f808000)); got != 0x3f80 { // tie, even below
		t.Errorf("BF16 tie: %#04x", got)
	}
	if got := Float32ToBF16(math.Float32frombits(0x3f818000)); got != 0x3f82 { // tie, odd below
		t.Errorf("BF16 tie up: %#04x", got)
	}
}
