package safetensors

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clipgo/clipgo/internal/testenv"
)

// reference returns the path of the PyTorch reference script and a python3 that can import it
// (it needs torch and numpy), handling their absence with testenv.Missing.
func reference(t *testing.T) (python, script string) {
	t.Helper()
	script = testenv.SharedFile(t, "peers/clip_step.py")
	python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		python = testenv.Command(t, "python3", "apt-get install python3")
	}
	if out, err := exec.Command(python, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 cannot import torch and numpy (apt-get install python3-torch): "+string(out))
	}
	return python, script
}

// runPython runs code with the reference module imported as c.
func runPython(t *testing.T, code string, args ...string) {
	t.Helper()
	python, script := reference(t)
	prog := "import sys; sys.path.insert(0, " + pyQuote(filepath.Dir(script)) + "); import clip_step as c\n" + code
	cmd := exec.Command(python, append([]string{"-c", prog}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
}

func pyQuote(s string) string { return string(appendString(nil, s)) } // a JSON string is a Python literal

// TestReferenceExportRandom reads the reference's exported model and batch and re-writes them
// byte for byte.
func TestReferenceExportRandom(t *testing.T) {
	python, script := reference(t)
	dir := t.TempDir()
	w, in := filepath.Join(dir, "w.safetensors"), filepath.Join(dir, "i.safetensors")
	cmd := exec.Command(python, script, "export-random", "--preset", "tiny", "--seed", "0", "--weights", w, "--inputs", in)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export-random: %v\n%s", err, out)
	}
	for _, path := range []string{w, in} {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if len(f.Tensors) < 2 {
			t.Fatalf("%s: %d tensors", path, len(f.Tensors))
		}
		if got := rewrite(t, f); !bytes.Equal(got, want) {
			t.Errorf("%s: re-written file differs from the reference's (%d vs %d bytes)", path, len(got), len(want))
		}
		// Re-writing from typed values, not raw bytes, gives the same file too.
		var ts []Tensor
		for _, info := range f.Tensors {
			var data any
			var err error
			switch info.DType {
			case F32:
				data, err = f.Float32s(info.Name)
			case I64:
				var v []int64
				v, err = f.Int64s(info.Name)
				data = v
			default:
				t.Fatalf("%s: unexpected dtype %s", info.Name, info.DType)
			}
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts, Tensor{info.Name, info.DType, info.Shape, data})
		}
		if got, err := Encode(ts, f.Metadata); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: typed re-write differs from the reference's (err %v)", path, err)
		}
	}
	f, err := OpenFile(w)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, ok := f.Metadata.Get("vision_heads"); !ok || v == "" {
		t.Errorf("metadata %v lacks vision_heads", f.Metadata)
	}
	if info, ok := f.Info("logit_scale"); !ok || len(info.Shape) != 0 {
		t.Errorf("logit_scale: %+v, want a scalar", info)
	}
}

// TestReferenceReadsOurs has the reference read a file written here (every dtype it knows,
// awkward names and metadata) and write it back: the bytes must be the same.
func TestReferenceReadsOurs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ours.safetensors")
	ts := []Tensor{
		{"z.f32", F32, []int{2, 3}, []float32{1, 2, 3, 4, 5, float32(math.Inf(-1))}},
		{"a.f64", F64, []int{}, []float64{math.Pi}},
		{"i32 \"quoted\"\n", I32, []int{2}, []int32{-7, 7}},
		{"é<>&\u2028\x01", I64, []int{1, 1}, []int64{math.MinInt64}},
		{"h", F16, []int{2}, []byte{0x00, 0x3c, 0x01, 0x80}},
		{"empty", F32, []int{0, 4}, []float32{}},
		{"flags", BOOL, []int{3}, []byte{1, 0, 1}},
	}
	b, err := Encode(ts, Metadata{{"z", "1"}, {"a", "tab\there \x7f ünï"}, {"\\", "\""}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	runPython(t, `
p = sys.argv[1]
buf = open(p, "rb").read()
t, m = c.st_loads(buf)
assert c.st_dumps(t, m) == buf, "re-serialised bytes differ"
`, path)
}

// TestReferenceF16 compares the F16 conversion with numpy's over all 65536 bit patterns.
func TestReferenceF16(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f16.safetensors")
	runPython(t, `
import numpy as np
h = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
c.st_save(sys.argv[1], {"h": h, "f": h.astype(np.float32)})
`, path)
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := f.Float32s("h")
	if err != nil {
		t.Fatal(err)
	}
	want, err := f.Float32s("f")
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(h[i]) != math.Float32bits(want[i]) {
			t.Fatalf("F16 %#04x: %v (%#08x), numpy %v (%#08x)", i, h[i], math.Float32bits(h[i]), want[i], math.Float32bits(want[i]))
		}
	}
}
