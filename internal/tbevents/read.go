package tbevents

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clipgo/clipgo/internal/atomicfile"
	"github.com/clipgo/clipgo/internal/fileinput"
)

// MaxRecord is the largest record ReadRecord takes: the events Writer writes are a few hundred
// bytes, and an event file in a run directory is outside input.
const MaxRecord = 1 << 20

// ErrCorrupt is wrapped by the errors of a record whose checksum does not match or whose
// length is over MaxRecord, and of an event that is not a valid protobuf message.
var ErrCorrupt = errors.New("corrupt TensorBoard event record")

// ReadRecord reads the next TFRecord from r and returns its data, which may reuse buf. At the
// end of r it returns io.EOF; for a record cut short (its writer was killed mid-write, or is
// still writing) io.ErrUnexpectedEOF; for a damaged one an error wrapping ErrCorrupt.
func ReadRecord(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if got, want := binary.LittleEndian.Uint32(hdr[8:]), maskedCRC(hdr[:8]); got != want {
		return nil, fmt.Errorf("%w: length checksum %#08x, want %#08x", ErrCorrupt, got, want)
	}
	n := binary.LittleEndian.Uint64(hdr[:8])
	if n > MaxRecord {
		return nil, fmt.Errorf("%w: a record of %d bytes, over the %d-byte limit", ErrCorrupt, n, MaxRecord)
	}
	data := slices.Grow(buf[:0], int(n)+4)[:n+4]
	if _, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if got, want := binary.LittleEndian.Uint32(data[n:]), maskedCRC(data[:n]); got != want {
		return nil, fmt.Errorf("%w: data checksum %#08x, want %#08x", ErrCorrupt, got, want)
	}
	return data[:n], nil
}

// Event is what Decode reads of a tensorflow.Event: its wall time, step, and file version or
// simple-value scalars. Other kinds of events and values (graphs, images, tensors) show only
// their wall time and step.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Scalars     []Scalar
}

// Decode decodes a tensorflow.Event. Fields it does not know, or whose wire type is not the
// one event.proto gives them, are skipped, as protobuf parsers skip unknown fields.
func Decode(data []byte) (Event, error) {
	var ev Event
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			ev.WallTime = math.Float64frombits(x)
		case num == eventStep && typ == protowire.VarintType:
			ev.Step = int64(x)
		case num == eventFileVersion && typ == protowire.BytesType:
			ev.FileVersion = string(v)
		case num == eventSummary && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != summaryValue || typ != protowire.BytesType {
					return nil
				}
				var s Scalar
				simple := false
				err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					switch {
					case num == valueTag && typ == protowire.BytesType:
						s.Tag = string(v)
					case num == valueSimple && typ == protowire.Fixed32Type:
						s.Value, simple = math.Float32frombits(uint32(x)), true
					}
					return nil
				})
				if err == nil && simple {
					ev.Scalars = append(ev.Scalars, s)
				}
				return err
			})
		}
		return nil
	})
	return ev, err
}

// fields calls f with each field of the message b: its number, wire type, and its bytes
// (BytesType) or number (the others; a group is skipped).
func fields(b []byte, f func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrCorrupt, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b)
			x = uint64(x32)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrCorrupt, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// Truncate drops from the event files in dir (the names that start with FilePrefix) the
// events of steps after step, and any damaged or torn tail, so that a run resumed from its
// checkpoint at step shows each step once: TensorBoard would plot both the values an
// interrupted run logged past its last checkpoint and the resumed run's values for the same
// steps. It mirrors what the metrics log does on a resume. A file left with no scalars is
// removed; a file with nothing to drop is not rewritten. The caller is the directory's one
// writer (a run directory is locked), so temporary files of a killed rewrite are removed.
func Truncate(dir string, step int64) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("TensorBoard event files: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "."+FilePrefix) && strings.Contains(e.Name(), ".tmp-") {
			os.Remove(filepath.Join(dir, e.Name())) // a rewrite's temporary file, left by a kill
			continue
		}
		if !strings.HasPrefix(e.Name(), FilePrefix) || !e.Type().IsRegular() {
			continue
		}
		if err := truncateFile(filepath.Join(dir, e.Name()), step); err != nil {
			return fmt.Errorf("TensorBoard event file: %w", err)
		}
	}
	return nil
}

func truncateFile(path string, step int64) error {
	changed, scalars, err := filter(path, step, nil)
	if err != nil {
		return err
	}
	if !scalars {
		return os.Remove(path)
	}
	if !changed {
		return nil
	}
	out, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	var rec []byte
	if _, _, err := filter(path, step, func(data []byte) error {
		rec = appendRecord(rec[:0], data)
		_, err := out.Write(rec)
		return err
	}); err != nil {
		out.Abort()
		return err
	}
	return out.Commit()
}

// filter reads the event file at path and calls keep, when not nil, with each event of a step
// at or before step, until the end of the file or its first damaged or torn record. It
// reports whether it left anything out, and whether the events it kept hold any scalars.
func filter(path string, step int64, keep func([]byte) error) (changed, scalars bool, err error) {
	f, err := fileinput.OpenRegular(path)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var buf []byte
	for {
		data, err := ReadRecord(r, buf)
		if errors.Is(err, io.EOF) {
			return changed, scalars, nil
		}
		if errors.Is(err, ErrCorrupt) || errors.Is(err, io.ErrUnexpectedEOF) {
			return true, scalars, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("%s: %w", path, err)
		}
		buf = data
		ev, err := Decode(data)
		if err != nil {
			return true, scalars, nil
		}
		if ev.Step > step {
			changed = true
			continue
		}
		scalars = scalars || len(ev.Scalars) > 0
		if keep != nil {
			if err := keep(data); err != nil {
				return false, false, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
}
