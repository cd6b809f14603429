// Package tbevents writes TensorBoard event files: TFRecord files of tensorflow.Event protos
// holding scalar summaries, which `tensorboard --logdir` plots. No maintained Go library
// writes them (the Go packages that do are unmaintained forks that need TensorFlow's own Go
// API to build the summaries), and the part needed for scalars is small: the TFRecord framing
// (a length, a masked CRC-32C of it, the data, a masked CRC-32C of the data) and three
// messages of TensorBoard's published event.proto and summary.proto, encoded here with
// protowire, protobuf's own wire-format package, without generated code. The reader in
// read.go exists to rewrite a resumed run's files (Truncate); it is bounded and fuzzed.
package tbevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FilePrefix starts the name of every event file; TensorBoard reads the files whose names
// contain "tfevents", in name order.
const FilePrefix = "events.out.tfevents."

// FileVersion is the version the first event of a file announces; TensorBoard reads
// "brain.Event:2" files with the SessionLog-based, not the step-order-based, purge rules,
// so that a step lower than an earlier one is not taken for a restart.
const FileVersion = "brain.Event:2"

// Field numbers of TensorBoard's tensorboard/compat/proto/event.proto and summary.proto.
const (
	eventWallTime    = 1 // double
	eventStep        = 2 // int64
	eventFileVersion = 3 // string (oneof what)
	eventSummary     = 5 // Summary (oneof what)
	summaryValue     = 1 // repeated Summary.Value
	valueTag         = 1 // string
	valueSimple      = 2 // float (oneof value)
)

// Scalar is one named value of an event; TensorBoard stores it as a float32 (simple_value).
type Scalar struct {
	Tag   string
	Value float32
}

// Writer appends events to one event file, which it creates at its first event, so that an
// invocation that logs nothing (a resume refused, or of a finished run) leaves no file. Each
// event goes to the file in one write, with no buffering, so that a run killed at any point
// leaves every earlier event readable.
type Writer struct {
	dir string
	f   *os.File
	buf []byte
}

// New returns a Writer of a new event file in dir. Earlier files stay: TensorBoard merges the
// files of a directory.
func New(dir string) *Writer { return &Writer{dir: dir} }

// create creates the event file, named FilePrefix<unix seconds>.<host name> (with a ".<n>"
// suffix when a file of that name exists: a run resumed within the same second), and writes
// its file_version event, stamped now.
func (w *Writer) create(now time.Time) error {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host = strings.Map(func(r rune) rune { // a file name, not a path
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, host)
	base := filepath.Join(w.dir, FilePrefix+strconv.FormatInt(now.Unix(), 10)+"."+host)
	for n := 0; ; n++ {
		path := base
		if n > 0 {
			path += "." + strconv.Itoa(n)
		}
		w.f, err = os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
		if errors.Is(err, fs.ErrExist) && n < 1000 {
			continue
		}
		if err != nil {
			return fmt.Errorf("TensorBoard event file: %w", err)
		}
		break
	}
	ev := appendHeader(nil, now, 0)
	ev = protowire.AppendTag(ev, eventFileVersion, protowire.BytesType)
	ev = protowire.AppendString(ev, FileVersion)
	return w.write(ev)
}

// Path returns the file's path; "" before the first event.
func (w *Writer) Path() string {
	if w.f == nil {
		return ""
	}
	return w.f.Name()
}

// WriteScalars appends one event holding scalars at step, stamped wall (the first one creates
// the file). Scalars that are NaN or infinite are left out, as the metrics log leaves them
// out; an event left with none is not written.
func (w *Writer) WriteScalars(step int64, wall time.Time, scalars []Scalar) error {
	var summary []byte
	for _, s := range scalars {
		if math.IsNaN(float64(s.Value)) || math.IsInf(float64(s.Value), 0) {
			continue
		}
		var v []byte
		v = protowire.AppendTag(v, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, s.Tag)
		v = protowire.AppendTag(v, valueSimple, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(s.Value))
		summary = protowire.AppendTag(summary, summaryValue, protowire.BytesType)
		summary = protowire.AppendBytes(summary, v)
	}
	if len(summary) == 0 {
		return nil
	}
	if w.f == nil {
		if err := w.create(wall); err != nil {
			return err
		}
	}
	ev := appendHeader(nil, wall, step)
	ev = protowire.AppendTag(ev, eventSummary, protowire.BytesType)
	ev = protowire.AppendBytes(ev, summary)
	return w.write(ev)
}

// Close closes the file, if there is one.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	return w.f.Close()
}

// write frames an event as a TFRecord and appends it in one write.
func (w *Writer) write(event []byte) error {
	w.buf = appendRecord(w.buf[:0], event)
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("TensorBoard event file %s: %w", w.f.Name(), err)
	}
	return nil
}

// appendHeader appends an Event's wall_time (seconds since the epoch) and step, the fields
// every event has; proto3 leaves out a zero step.
func appendHeader(b []byte, wall time.Time, step int64) []byte {
	b = protowire.AppendTag(b, eventWallTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(float64(wall.Unix())+float64(wall.Nanosecond())/1e9))
	if step != 0 {
		b = protowire.AppendTag(b, eventStep, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(step))
	}
	return b
}

// headerLen is the size of a TFRecord's header: the data's length (uint64, little endian)
// and the masked CRC of those 8 bytes; a masked CRC of the data follows the data.
const headerLen = 12

// appendRecord appends data framed as one TFRecord.
func appendRecord(b, data []byte) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, maskedCRC(b[start:]))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, maskedCRC(data))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's checksum: CRC-32C, rotated right by 15 bits and offset by a
// constant, so that a CRC computed over data that holds CRCs stays well distributed.
func maskedCRC(p []byte) uint32 {
	c := crc32.Checksum(p, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}
