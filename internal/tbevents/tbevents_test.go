package tbevents

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clipgo/clipgo/internal/tbevents/tbeventstest"
)

// readFile returns the events of an event file, failing t on any damage.
func readFile(t testing.TB, path string) []Event {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	r := bytes.NewReader(raw)
	for {
		data, err := ReadRecord(r, nil)
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("%s: record %d: %v", path, len(evs), err)
		}
		ev, err := Decode(data)
		if err != nil {
			t.Fatalf("%s: event %d: %v", path, len(evs), err)
		}
		evs = append(evs, ev)
	}
}

// writeSteps writes an event file in dir with one event of scalars "a" = step and "b" = -step
// at each of steps, stamped now + step milliseconds, and returns its path.
func writeSteps(t testing.TB, dir string, now time.Time, steps ...int64) string {
	t.Helper()
	w := New(dir)
	for _, s := range steps {
		if err := w.WriteScalars(s, now.Add(time.Duration(s)*time.Millisecond), []Scalar{{"a", float32(s)}, {"b", -float32(s)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Path()
}

func TestMaskedCRC(t *testing.T) {
	// The CRC-32C check value (RFC 3720, B.4), then TFRecord's mask of it.
	if c := crc32.Checksum([]byte("123456789"), castagnoli); c != 0xe3069283 {
		t.Fatalf("CRC-32C(123456789) = %#x, want 0xe3069283", c)
	}
	// Rotated right by 15 bits: 0xe3069283 -> 0x2507c60d; plus 0xa282ead8 (mod 2^32).
	if got, want := maskedCRC([]byte("123456789")), uint32(0x2507c60d+0xa282ead8); got != want {
		t.Errorf("masked %#x, want %#x", got, want)
	}
}

func TestWriteThenRead(t *testing.T) {
	dir := t.TempDir()
	w := New(dir)
	nan := []Scalar{{"train/nan", float32(math.NaN())}}
	if err := w.WriteScalars(6, time.Unix(1, 0), nan); err != nil { // nothing to write: no event, no file
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 || w.Path() != "" {
		t.Fatalf("a file (%q) before the first event: %v", w.Path(), entries)
	}
	stamp := time.Unix(1700000000, 250_000_000)
	if err := w.WriteScalars(7, stamp, []Scalar{{"train/loss", 2.5}, nan[0], {"train/inf", float32(math.Inf(1))}, {"train/lr", 1e-4}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteScalars(8, stamp, nan); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if want := filepath.Join(dir, "events.out.tfevents.1700000000."+host); host != "" && w.Path() != want {
		t.Errorf("file %s, want %s", w.Path(), want)
	}
	evs := readFile(t, w.Path())
	if len(evs) != 2 {
		t.Fatalf("%d events, want the file version and one of scalars: %+v", len(evs), evs)
	}
	if v := evs[0]; v.FileVersion != FileVersion || v.Step != 0 || v.WallTime != 1700000000.25 || len(v.Scalars) != 0 {
		t.Errorf("first event %+v, want the file version at step 0 stamped 1700000000.25", v)
	}
	want := []Scalar{{"train/loss", 2.5}, {"train/lr", 1e-4}}
	if v := evs[1]; v.Step != 7 || v.WallTime != 1700000000.25 || len(v.Scalars) != 2 || v.Scalars[0] != want[0] || v.Scalars[1] != want[1] {
		t.Errorf("second event %+v, want step 7 with %v (NaN and Inf left out)", v, want)
	}
	// A second file started in the same second gets its own name.
	other := writeSteps(t, dir, stamp, 9)
	if other == w.Path() || !strings.HasPrefix(filepath.Base(other), FilePrefix) {
		t.Errorf("second file %s beside %s", other, w.Path())
	}
	if err := New(dir).Close(); err != nil {
		t.Errorf("closing a writer that wrote nothing: %v", err)
	}
}

func TestReadRecordDamage(t *testing.T) {
	path := writeSteps(t, t.TempDir(), time.Unix(1, 0), 1)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first := 12 + int(raw[0]) + 4 // the file-version record
	for _, c := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"length checksum", flip(raw, first+9), ErrCorrupt},
		{"data checksum", flip(raw, first+14), ErrCorrupt},
		{"header cut", raw[:first+5], io.ErrUnexpectedEOF},
		{"data cut", raw[:len(raw)-1], io.ErrUnexpectedEOF},
		{"over the limit", overLimit(), ErrCorrupt},
	} {
		r := bytes.NewReader(c.raw)
		var err error
		for err == nil {
			_, err = ReadRecord(r, nil)
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func flip(raw []byte, i int) []byte {
	out := bytes.Clone(raw)
	out[i] ^= 0x10
	return out
}

// overLimit is a record header announcing MaxRecord+1 bytes, with a valid checksum.
func overLimit() []byte {
	b := binary.LittleEndian.AppendUint64(nil, MaxRecord+1)
	return binary.LittleEndian.AppendUint32(b, maskedCRC(b))
}

// steps returns the steps of the scalar events of a file.
func steps(t *testing.T, path string) []int64 {
	var out []int64
	for _, ev := range readFile(t, path) {
		if len(ev.Scalars) > 0 {
			out = append(out, ev.Step)
		}
	}
	return out
}

func TestTruncate(t *testing.T) {
	dir := t.TempDir()
	early := writeSteps(t, dir, time.Unix(100, 0), 1, 2, 3)    // all kept: not rewritten
	mixed := writeSteps(t, dir, time.Unix(200, 0), 4, 5, 6, 7) // steps after 5 dropped
	late := writeSteps(t, dir, time.Unix(300, 0), 6, 7)        // nothing kept: removed
	torn := writeSteps(t, dir, time.Unix(400, 0), 2, 3)        // a torn last record: dropped
	raw, _ := os.ReadFile(torn)
	if err := os.WriteFile(torn, raw[:len(raw)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "metrics.jsonl")
	if err := os.WriteFile(other, []byte("not an event file"), 0o644); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "."+filepath.Base(mixed)+".tmp-123")
	if err := os.WriteFile(stale, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(early)
	if err := Truncate(dir, 5); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(early); !os.SameFile(before, after) {
		t.Error("a file with nothing to drop was rewritten")
	}
	for path, want := range map[string][]int64{early: {1, 2, 3}, mixed: {4, 5}, torn: {2}} {
		if got := steps(t, path); !equal(got, want) {
			t.Errorf("%s: steps %v after Truncate(5), want %v", filepath.Base(path), got, want)
		}
		if ev := readFile(t, path)[0]; ev.FileVersion != FileVersion {
			t.Errorf("%s: first event %+v, want the file version kept", filepath.Base(path), ev)
		}
	}
	if _, err := os.Stat(late); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file with only later steps was kept: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a killed rewrite's temporary file was kept: %v", err)
	}
	if raw, _ := os.ReadFile(other); string(raw) != "not an event file" {
		t.Error("a file that is not an event file was touched")
	}
	if err := Truncate(filepath.Join(dir, "missing"), 0); err != nil {
		t.Errorf("a missing directory: %v", err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPythonReader reads a file this package wrote with the independent reader
// (scripts/peers/tfevents.py: its own framing and CRC checks, protobuf's decoding).
func TestPythonReader(t *testing.T) {
	dir := t.TempDir()
	writeSteps(t, dir, time.Unix(1700000000, 0), 1, 2, 300000000000)
	got := tbeventstest.Read(t, dir)
	if len(got.Files) != 1 || got.Files[0].FileVersion != FileVersion || got.Files[0].Records != 4 || got.Files[0].Torn != 0 {
		t.Errorf("files %+v, want one of 4 records starting with %s", got.Files, FileVersion)
	}
	for tag, sign := range map[string]float64{"a": 1, "b": -1} {
		pts := got.Scalars[tag]
		if len(pts) != 3 {
			t.Fatalf("%s: %v, want 3 points", tag, pts)
		}
		for i, s := range []int64{1, 2, 300000000000} {
			wall := float64(1700000000+s/1000) + float64(s%1000*1e6)/1e9
			if int64(pts[i][0]) != s || float32(pts[i][1]) != float32(sign*float64(s)) || pts[i][2] != wall {
				t.Errorf("%s point %d = %v, want step %d value %v at %v", tag, i, pts[i], s, float32(sign*float64(s)), wall)
			}
		}
	}
}

func FuzzTruncate(f *testing.F) {
	dir := f.TempDir()
	seed, _ := os.ReadFile(writeSteps(f, dir, time.Unix(1, 0), 1, 2, 3))
	f.Add(seed, int64(2))
	f.Add(seed[:len(seed)-2], int64(5))
	f.Add(flip(seed, 30), int64(0))
	f.Add(overLimit(), int64(1))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, raw []byte, step int64) {
		// Any record sequence reads without a panic, within MaxRecord.
		r := bytes.NewReader(raw)
		for {
			data, err := ReadRecord(r, nil)
			if err != nil {
				break
			}
			if len(data) > MaxRecord {
				t.Fatalf("a record of %d bytes", len(data))
			}
			Decode(data)
		}
		// Truncate leaves either no file or a file that reads whole, with no step after step.
		dir := t.TempDir()
		path := filepath.Join(dir, FilePrefix+"1.fuzz")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Truncate(dir, step); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return
		}
		for _, ev := range readFile(t, path) {
			if ev.Step > step {
				t.Fatalf("step %d kept after Truncate(%d)", ev.Step, step)
			}
		}
	})
}
