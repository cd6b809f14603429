package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Open and reads every tensor of whatever it accepts. Nothing
// may panic, and an accepted file must re-write to bytes that read back to the same tensors and
// re-write identically again.
func FuzzRead(f *testing.F) {
	valid, err := Encode([]Tensor{
		{"a", F32, []int{2, 2}, []float32{1, 2, 3, 4}}, {"b", I64, []int{}, []int64{-3}},
		{"c", F16, []int{1}, []byte{0, 0x3c}}, {"d", BF16, []int{1}, []byte{0x80, 0x3f}},
		{"e", F64, []int{0}, []float64{}}, {"f", I32, []int{1, 1}, []int32{9}},
	}, Metadata{{"k", "v"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, n := range []int{0, 7, 8, 20, len(valid) - 1} {
		f.Add(valid[:n]) // truncated
	}
	f.Add(append(bytes.Clone(valid), 0)) // trailing byte
	for _, c := range malformed {
		f.Add(c.file)
	}
	lying := hdr(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 0, make([]byte, 8))
	f.Add(lying)
	f.Add(binary.LittleEndian.AppendUint64(nil, math.MaxUint64))
	f.Add(hdr(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,16]}}`, 0, make([]byte, 16)))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		for _, info := range file.Tensors {
			file.Float32s(info.Name)
			file.Int64s(info.Name)
		}
		once := rewrite(t, file)
		again, err := Open(bytes.NewReader(once), int64(len(once)))
		if err != nil {
			t.Fatalf("re-written file refused: %v", err)
		}
		if len(again.Tensors) != len(file.Tensors) || len(again.Metadata) != len(file.Metadata) {
			t.Fatalf("re-written file has %d tensors and %d metadata entries, want %d and %d",
				len(again.Tensors), len(again.Metadata), len(file.Tensors), len(file.Metadata))
		}
		if twice := rewrite(t, again); !bytes.Equal(once, twice) {
			t.Fatal("re-writing is not stable")
		}
	})
}
