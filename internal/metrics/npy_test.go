package metrics

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
)

// writeNPY writes a little-endian NumPy .npy file (format version 1.0) holding data with
// the given shape; data is []float32 ('<f4') or []int64 ('<i8').
func writeNPY(t *testing.T, path string, data any, shape ...int) {
	t.Helper()
	var descr string
	switch data.(type) {
	case []float32:
		descr = "<f4"
	case []int64:
		descr = "<i8"
	default:
		t.Fatalf("writeNPY: unsupported type %T", data)
	}
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = fmt.Sprint(s)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, tuple)
	// magic (6) + version (2) + header length (2) + header + '\n' is padded to 64 bytes.
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&buf, binary.LittleEndian, uint16(len(header)))
	buf.WriteString(header)
	if err := binary.Write(&buf, binary.LittleEndian, data); err != nil {
		t.Fatalf("writeNPY %s: %v", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
