package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/clipgo/clipgo/internal/safetensors"
	"github.com/clipgo/clipgo/nn"
)

// model returns a small model's params (a matrix, a vector, a scalar) filled from seed.
func model(seed float32) []*nn.Param {
	ps := []*nn.Param{
		{Name: "visual.conv1.weight", Shape: []int{4, 3, 2, 2}},
		{Name: "ln_final.bias", Shape: []int{4}},
		{Name: "logit_scale", Shape: []int{}},
		{Name: "text_projection", Shape: []int{4, 2}},
	}
	for _, p := range ps {
		p.Value = make([]float32, p.Size())
		for i := range p.Value {
			p.Value[i] = seed + float32(i)*0.25
		}
	}
	return ps
}

// adamState is optimiser state in the layout nn/optim's AdamW.State uses.
func adamState(ps []*nn.Param, seed float32) map[string][]float32 {
	s := map[string][]float32{"step": {seed}}
	for _, p := range ps {
		m, v := make([]float32, p.Size()), make([]float32, p.Size())
		for i := range m {
			m[i], v[i] = seed-float32(i), seed*float32(i)
		}
		s["exp_avg."+p.Name], s["exp_avg_sq."+p.Name] = m, v
	}
	return s
}

var testMeta = Meta{Config: `{"embed_dim":2}`, Epoch: 3, Sample: 1234, Seed: 42, RNG: "pcg:0123abcd"}

func save(t *testing.T, run string, step int64) string {
	t.Helper()
	ps := model(float32(step))
	path, err := Save(run, step, ps, adamState(ps, float32(step)), testMeta)
	if err != nil {
		t.Fatalf("Save step %d: %v", step, err)
	}
	return path
}

func TestSaveLoadRoundTrip(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	src := model(7)
	state := adamState(src, 7)
	path, err := Save(run, 123, src, state, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(run, "step-000123.safetensors"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	if _, err := os.Stat(filepath.Join(run, "step-000123.optim.safetensors")); err != nil {
		t.Error(err)
	}
	dst := model(0)
	meta, gotState, err := Load(path, dst)
	if err != nil {
		t.Fatal(err)
	}
	want := testMeta
	want.Version, want.Step = FormatVersion, 123
	if !reflect.DeepEqual(meta, want) {
		t.Errorf("meta %+v, want %+v", meta, want)
	}
	for i, p := range dst {
		if !slices.Equal(p.Value, src[i].Value) {
			t.Errorf("%s: %v, want %v", p.Name, p.Value, src[i].Value)
		}
	}
	if len(gotState) != len(state) {
		t.Errorf("%d optimiser tensors, want %d", len(gotState), len(state))
	}
	for k, v := range state {
		if !slices.Equal(gotState[k], v) {
			t.Errorf("optimiser %s: %v, want %v", k, gotState[k], v)
		}
	}
	// The model file is a plain state_dict: open_clip names, F32, the params' shapes.
	f, err := safetensors.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range src {
		if info, ok := f.Info(p.Name); !ok || info.DType != safetensors.F32 || !slices.Equal(info.Shape, p.Shape) {
			t.Errorf("%s in the file: %+v", p.Name, info)
		}
	}
	of, err := safetensors.OpenFile(OptimPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	if info, _ := of.Info("exp_avg_sq.visual.conv1.weight"); !slices.Equal(info.Shape, []int{4, 3, 2, 2}) {
		t.Errorf("exp_avg_sq shape %v, want the param's", info.Shape)
	}
	if info, _ := of.Info("step"); !slices.Equal(info.Shape, []int{1}) {
		t.Errorf("step shape %v, want [1]", info.Shape)
	}
}

// TestStreamsRoundTrip: a data-parallel run's stream positions come back as saved, and a
// checkpoint with bad ones is refused.
func TestStreamsRoundTrip(t *testing.T) {
	run := t.TempDir()
	src := model(3)
	meta := testMeta
	meta.Streams = []StreamPos{{Epoch: 3, Sample: 1234}, {Epoch: 2, Sample: 88}}
	path, err := Save(run, 5, src, adamState(src, 3), meta)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Load(path, model(0))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Streams, meta.Streams) {
		t.Errorf("streams %+v, want %+v", got.Streams, meta.Streams)
	}
	for _, raw := range []string{`[]`, `[{"epoch":-1,"sample":0}]`, `[{"epoch":1}, 7]`, `{"epoch":1}`, `[{"epoch":1,"x":2}]`} {
		if _, err := parseStreams(raw); err == nil {
			t.Errorf("parseStreams(%s) accepted", raw)
		}
	}
}

func TestLoadMismatch(t *testing.T) {
	run := t.TempDir()
	path := save(t, run, 1)
	ps := model(0)
	ps[1] = &nn.Param{Name: "ln_final.bias", Shape: []int{5}, Value: make([]float32, 5)}          // mis-shaped
	ps = append(ps[:3], &nn.Param{Name: "extra.weight", Shape: []int{2}, Value: []float32{9, 9}}) // text_projection unexpected
	before := slices.Clone(ps[0].Value)
	_, _, err := Load(path, ps)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"missing extra.weight", "mis-shaped ln_final.bias: F32[4], want F32[5]", "unexpected text_projection", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !slices.Equal(ps[0].Value, before) {
		t.Error("params changed by a refused load")
	}
}

func TestLatest(t *testing.T) {
	run := t.TempDir()
	if _, err := Latest(run); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty run: %v, want fs.ErrNotExist", err)
	}
	if _, err := Latest(filepath.Join(run, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent run: %v, want fs.ErrNotExist", err)
	}
	for _, s := range []int64{1, 2, 10} {
		save(t, run, s)
	}
	// Newer but broken: each must be passed over.
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(run, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(step int64, optim bool) []byte {
		p := ModelPath(run, step)
		if optim {
			p = OptimPath(p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write(".step-000011.safetensors.tmp-123", read(10, false)[:100]) // half-written temp file: not a checkpoint
	save(t, run, 15)
	os.Remove(ModelPath(run, 15)) // optimiser without model: a crash inside Save, not a checkpoint
	if got, err := Latest(run); err != nil || got != ModelPath(run, 10) {
		t.Fatalf("Latest = %s, %v; want %s (temp files and a lone optimiser file are passed over)", got, err, ModelPath(run, 10))
	}

	// A damaged newest checkpoint is an error naming the damaged file, never a fallback.
	other := t.TempDir() // the same step saved with other values
	for _, c := range []struct {
		name   string
		damage func(step int64)
		optim  bool // the optimiser file is the one named
	}{
		{"model without optimiser", func(s int64) { os.Remove(OptimPath(ModelPath(run, s))) }, true},
		{"truncated model", func(s int64) { write(filepath.Base(ModelPath(run, s)), read(s, false)[:200]) }, false},
		{"optimiser of another save", func(s int64) {
			if _, err := Save(other, s, model(99), adamState(model(99), 99), testMeta); err != nil {
				t.Fatal(err)
			}
			write(filepath.Base(OptimPath(ModelPath(run, s))), mustRead(t, OptimPath(ModelPath(other, s))))
		}, true},
		{"truncated optimiser", func(s int64) { write(filepath.Base(OptimPath(ModelPath(run, s))), read(s, true)[:300]) }, true},
		{"optimiser of another step", func(s int64) {
			write(filepath.Base(OptimPath(ModelPath(run, s))), read(10, true))
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			step := int64(20)
			save(t, run, step)
			defer func() {
				os.Remove(ModelPath(run, step))
				os.Remove(OptimPath(ModelPath(run, step)))
			}()
			c.damage(step)
			got, err := Latest(run)
			var de *DamagedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
				t.Fatalf("Latest = %s, %v; want a DamagedError", got, err)
			}
			want := ModelPath(run, step)
			if c.optim {
				want = OptimPath(want)
			}
			if de.File != want || de.Step != step || de.Older != ModelPath(run, 10) || !strings.Contains(err.Error(), want) {
				t.Errorf("DamagedError %+v (%v); want file %s, step %d, older %s", de, err, want, step, ModelPath(run, 10))
			}
		})
	}
	if _, _, err := Load(ModelPath(other, 20), model(0)); err != nil {
		t.Fatal(err)
	}
}

// rewriteHeader replaces old with new in the JSON header of safetensors file b.
func rewriteHeader(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(b)
	h := string(b[8 : 8+n])
	if !strings.Contains(h, old) {
		t.Fatalf("header lacks %q", old)
	}
	h = strings.Replace(h, old, new, 1)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), b[8+n:]...)
}

func TestLoadCorrupt(t *testing.T) {
	run := t.TempDir()
	path := save(t, run, 5)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	goodOpt, err := os.ReadFile(OptimPath(path))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		model      []byte
	}{
		{"truncated", "truncated", good[:len(good)-3]},
		{"lying offsets", `tensor "ln_final.bias": data starts at byte 4, expected 0`,
			rewriteHeader(t, good, `"data_offsets":[0,16]`, `"data_offsets":[4,20]`)},
		{"lying size", `tensor "ln_final.bias": F32[5] takes 20 bytes`, rewriteHeader(t, good, `"ln_final.bias":{"dtype":"F32","shape":[4]`, `"ln_final.bias":{"dtype":"F32","shape":[5]`)},
		{"not a checkpoint", "not a clipgo-checkpoint file", rewriteHeader(t, good, `"format":"clipgo-checkpoint"`, `"format":"something-else"`)},
		{"newer version", "format version 2, this build reads 1 to 1", rewriteHeader(t, good, `"format_version":"1"`, `"format_version":"2"`)},
		{"bad step", `metadata "step" = "x" is not an integer`, rewriteHeader(t, good, `"step":"5"`, `"step":"x"`)},
		{"other step", "optimiser file is of step 5", rewriteHeader(t, good, `"step":"5"`, `"step":"6"`)},
		{"empty", "no header length", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(path, c.model, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := Load(path, model(0))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	os.WriteFile(path, good, 0o644)
	os.WriteFile(OptimPath(path), goodOpt[:len(goodOpt)-1], 0o644)
	if _, _, err := Load(path, model(0)); err == nil || !strings.Contains(err.Error(), "optim.safetensors") {
		t.Errorf("truncated optimiser file: %v", err)
	}
}

// fullDisk is a temporary file that takes limit bytes, then fails with ENOSPC.
type fullDisk struct {
	*os.File
	limit int
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.File.Write(p[:f.limit])
		f.limit = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.limit -= len(p)
	return f.File.Write(p)
}

func TestDiskFull(t *testing.T) {
	// The first file fails (optimiser) or the second (model), early or late.
	for _, fail := range []struct{ file, limit int }{{0, 0}, {0, 100}, {1, 0}, {1, 200}} {
		t.Run(fmt.Sprintf("file%d-after%d", fail.file, fail.limit), func(t *testing.T) {
			run := t.TempDir()
			prev := save(t, run, 1)
			prevBytes, _ := os.ReadFile(prev)
			created := 0
			createTemp = func(dir, pattern string) (tempFile, error) {
				f, err := os.CreateTemp(dir, pattern)
				created++
				if err != nil || created-1 != fail.file {
					return f, err
				}
				return &fullDisk{f, fail.limit}, nil
			}
			defer func() {
				createTemp = func(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
			}()
			ps := model(2)
			_, err := Save(run, 2, ps, adamState(ps, 2), testMeta)
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "step-000002") {
				t.Fatalf("error %v, want ENOSPC naming the checkpoint", err)
			}
			entries, _ := os.ReadDir(run)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if want := []string{"step-000001.optim.safetensors", "step-000001.safetensors"}; !slices.Equal(names, want) {
				t.Errorf("run holds %v, want only %v", names, want)
			}
			if got, err := Latest(run); err != nil || got != prev {
				t.Errorf("Latest = %s, %v; want %s", got, err, prev)
			}
			if b, _ := os.ReadFile(prev); !bytes.Equal(b, prevBytes) {
				t.Error("previous checkpoint changed")
			}
			if _, _, err := Load(prev, model(0)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	run := t.TempDir()
	for s := int64(1); s <= 5; s++ {
		save(t, run, s)
	}
	os.WriteFile(filepath.Join(run, ".step-000002.optim.safetensors.tmp-9"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(run, "step-000006.safetensors"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(run, "notes.txt"), []byte("mine"), 0o644)
	if err := Prune(run, 0, 100); err == nil {
		t.Error("Prune(keep 0): no error")
	}
	// Steps after upTo are left alone: a run resumed from step 3 keeps 4 and 5 and counts
	// only 1..3.
	if err := Prune(run, 1, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ModelPath(run, 2)); err == nil {
		t.Error("Prune(1, up to 3) kept step 2")
	}
	for _, s := range []int64{3, 4, 5} {
		if _, err := os.Stat(ModelPath(run, s)); err != nil {
			t.Errorf("Prune(1, up to 3) removed step %d: %v", s, err)
		}
	}
	if err := Prune(run, 2, 100); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(run)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"notes.txt", "step-000004.optim.safetensors", "step-000004.safetensors",
		"step-000005.optim.safetensors", "step-000005.safetensors", "step-000006.safetensors"}
	if !slices.Equal(names, want) {
		t.Errorf("after Prune(2): %v, want %v", names, want)
	}
	if err := Prune(run, 5, 100); err != nil {
		t.Error(err)
	}
}

func TestSaveRejects(t *testing.T) {
	dup := model(1)
	dup[1].Name = dup[0].Name
	short := model(1)
	short[0].Value = short[0].Value[:3]
	cases := []struct {
		name, want string
		step       int64
		params     []*nn.Param
		meta       Meta
	}{
		{"duplicate param", "appears twice", 1, dup, testMeta},
		{"short value", "3 values for shape", 1, short, testMeta},
		{"nil param", "param 0 is nil", 1, []*nn.Param{nil}, testMeta},
		{"bad config", "not valid JSON", 1, model(1), Meta{Config: "{"}},
		{"negative step", "negative step", -1, model(1), testMeta},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := t.TempDir()
			if _, err := Save(run, c.step, c.params, nil, c.meta); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if entries, _ := os.ReadDir(run); len(entries) != 0 {
				t.Errorf("refused save left %d files", len(entries))
			}
		})
	}
}

// FuzzLoad loads arbitrary bytes as a model file beside a valid optimiser file: nothing may
// panic, and whatever loads must match the params.
func FuzzLoad(f *testing.F) {
	run := f.TempDir()
	ps := model(1)
	path, err := Save(run, 1, ps, adamState(ps, 1), testMeta)
	if err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:9])
	f.Add([]byte{})
	p := ModelPath(f.TempDir(), 1) // one per fuzzing process, beside a copy of the optimiser file
	if err := os.WriteFile(OptimPath(p), mustRead(f, OptimPath(path)), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		dst := model(0)
		if _, _, err := Load(p, dst); err != nil {
			return
		}
		for i, q := range dst {
			if len(q.Value) != ps[i].Size() {
				t.Fatalf("%s: %d values", q.Name, len(q.Value))
			}
		}
	})
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSaveNeverOverwrites: a step whose model file exists (whole or damaged) is not written
// again, and its files stay as they were; a lone optimiser file (a crash inside Save) is.
func TestSaveNeverOverwrites(t *testing.T) {
	run := t.TempDir()
	path := save(t, run, 3)
	before, beforeOpt := mustRead(t, path), mustRead(t, OptimPath(path))
	ps := model(9)
	if _, err := Save(run, 3, ps, adamState(ps, 9), testMeta); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Save over step 3: %v, want ErrExists naming %s", err, path)
	}
	if !bytes.Equal(mustRead(t, path), before) || !bytes.Equal(mustRead(t, OptimPath(path)), beforeOpt) {
		t.Error("the refused Save changed the checkpoint")
	}
	os.Remove(ModelPath(run, 4))
	if err := os.WriteFile(OptimPath(ModelPath(run, 4)), []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Save(run, 4, ps, adamState(ps, 9), testMeta); err != nil {
		t.Fatalf("Save over a lone optimiser file: %v", err)
	}
}
