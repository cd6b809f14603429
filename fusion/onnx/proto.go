package onnx

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX protobuf is written by hand with protowire rather than through types generated from
// onnx.proto: clipgo writes a handful of messages and never reads one, protoc-gen-go is not a
// dependency the build can count on, and streaming the weights (a ViT-L/14 tower is over a
// gigabyte) needs control over how the message is laid out anyway. The field numbers below are
// onnx.proto's (onnx 1.12, IR version 8), checked against Debian's python3-onnx copy of it.
const (
	// ModelProto
	modelIRVersion    protowire.Number = 1
	modelProducerName protowire.Number = 2
	modelProducerVer  protowire.Number = 3
	modelDocString    protowire.Number = 6
	modelGraph        protowire.Number = 7
	modelOpsetImport  protowire.Number = 8
	// OperatorSetIdProto
	opsetDomain  protowire.Number = 1
	opsetVersion protowire.Number = 2
	// GraphProto
	graphNode        protowire.Number = 1
	graphName        protowire.Number = 2
	graphInitializer protowire.Number = 5
	graphInput       protowire.Number = 11
	graphOutput      protowire.Number = 12
	// NodeProto
	nodeInput     protowire.Number = 1
	nodeOutput    protowire.Number = 2
	nodeName      protowire.Number = 3
	nodeOpType    protowire.Number = 4
	nodeAttribute protowire.Number = 5
	// AttributeProto
	attrName  protowire.Number = 1
	attrF     protowire.Number = 2
	attrI     protowire.Number = 3
	attrInts  protowire.Number = 8
	attrType  protowire.Number = 20
	attrFLOAT                  = 1 // AttributeProto.AttributeType
	attrINT                    = 2
	attrINTS                   = 7
	// TensorProto
	tensorDims     protowire.Number = 1
	tensorDataType protowire.Number = 2
	tensorName     protowire.Number = 8
	tensorRawData  protowire.Number = 9
	// TensorProto's external data: StringStringEntryProto{key, value} entries and the location
	tensorExternalData   protowire.Number = 13
	tensorDataLocation   protowire.Number = 14
	entryKey             protowire.Number = 1
	entryValue           protowire.Number = 2
	dataLocationExternal                  = 1 // TensorProto.DataLocation EXTERNAL
	// ValueInfoProto, TypeProto, TypeProto.Tensor, TensorShapeProto, its Dimension
	valueName      protowire.Number = 1
	valueType      protowire.Number = 2
	typeTensor     protowire.Number = 1
	tensorElemType protowire.Number = 1
	tensorShape    protowire.Number = 2
	shapeDim       protowire.Number = 1
	dimValue       protowire.Number = 1
	dimParam       protowire.Number = 2
)

// Element types (TensorProto.DataType).
const (
	Float32 = 1
	Int64   = 7
)

// IRVersion and Opset are what the written models declare: IR 8 and the default domain's
// opset 17, the newest that Debian's onnx 1.12 checker knows (onnxruntime runs it too). Opset 17
// has LayerNormalization; GELU is written out with Erf, as the Gelu op needs opset 20.
const (
	IRVersion = 8
	Opset     = 17
)

// MaxModelBytes is protobuf's limit on one message, 2 GiB − 1: onnx and onnxruntime refuse a
// larger model file (a tower over it is written with WriteExternal).
const MaxModelBytes = math.MaxInt32

// Dim is one dimension of a graph input or output: a fixed size, or a named symbolic one
// (Param, e.g. "batch") when Value is 0.
type Dim struct {
	Value int64
	Param string
}

// Attr is a node attribute: a float, an int or a list of ints.
type Attr struct {
	Name string
	kind int
	f    float32
	i    int64
	ints []int64
}

// AttrFloat, AttrInt and AttrInts make attributes.
func AttrFloat(name string, f float32) Attr    { return Attr{Name: name, kind: attrFLOAT, f: f} }
func AttrInt(name string, i int64) Attr        { return Attr{Name: name, kind: attrINT, i: i} }
func AttrInts(name string, ints ...int64) Attr { return Attr{Name: name, kind: attrINTS, ints: ints} }

// initializer is a weight or constant of the graph, kept as the caller's slice until written.
type initializer struct {
	name string
	dims []int64
	f32  []float32
	i64  []int64
}

func (t *initializer) dataType() int {
	if t.i64 != nil {
		return Int64
	}
	return Float32
}

func (t *initializer) rawLen() int { return 4*len(t.f32) + 8*len(t.i64) }

// extRef places a tensor's values in an external data file.
type extRef struct {
	location       string
	offset, length int64
}

// header is the TensorProto up to and including raw_data's tag and length, the raw bytes to
// follow; or, with ext, the whole TensorProto, pointing at its values in ext's file.
func (t *initializer) header(ext *extRef) []byte {
	var b []byte
	for _, d := range t.dims {
		b = protowire.AppendTag(b, tensorDims, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, tensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.dataType()))
	b = appendString(b, tensorName, t.name)
	if ext != nil {
		for _, kv := range [][2]string{{"location", ext.location}, {"offset", strconv.FormatInt(ext.offset, 10)}, {"length", strconv.FormatInt(ext.length, 10)}} {
			entry := appendString(nil, entryKey, kv[0])
			entry = appendString(entry, entryValue, kv[1])
			b = appendMessage(b, tensorExternalData, entry)
		}
		return appendVarintField(b, tensorDataLocation, dataLocationExternal)
	}
	b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(t.rawLen()))
}

// writeRaw writes the values little-endian, as raw_data holds them, a chunk at a time.
func (t *initializer) writeRaw(w io.Writer) error {
	const chunk = 1 << 14
	buf := make([]byte, 0, 8*chunk)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	for i, v := range t.f32 {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if (i+1)%chunk == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	for i, v := range t.i64 {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
		if (i+1)%chunk == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func appendString(b []byte, n protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, n protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, n, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendVarintField(b []byte, n protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, n, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func encodeAttr(a Attr) []byte {
	b := appendString(nil, attrName, a.Name)
	b = appendVarintField(b, attrType, int64(a.kind))
	switch a.kind {
	case attrFLOAT:
		b = protowire.AppendTag(b, attrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrINT:
		b = appendVarintField(b, attrI, a.i)
	case attrINTS:
		for _, v := range a.ints {
			b = appendVarintField(b, attrInts, v)
		}
	}
	return b
}

func encodeNode(name, op string, inputs, outputs []string, attrs []Attr) []byte {
	var b []byte
	for _, in := range inputs {
		b = appendString(b, nodeInput, in)
	}
	for _, out := range outputs {
		b = appendString(b, nodeOutput, out)
	}
	b = appendString(b, nodeName, name)
	b = appendString(b, nodeOpType, op)
	for _, a := range attrs {
		b = appendMessage(b, nodeAttribute, encodeAttr(a))
	}
	return b
}

func encodeValueInfo(name string, elem int, dims []Dim) []byte {
	var shape []byte
	for _, d := range dims {
		var dim []byte
		if d.Param != "" {
			dim = appendString(nil, dimParam, d.Param)
		} else {
			dim = appendVarintField(nil, dimValue, d.Value)
		}
		shape = appendMessage(shape, shapeDim, dim)
	}
	tensor := appendVarintField(nil, tensorElemType, int64(elem))
	tensor = appendMessage(tensor, tensorShape, shape)
	typ := appendMessage(nil, typeTensor, tensor)
	b := appendString(nil, valueName, name)
	return appendMessage(b, valueType, typ)
}

// WriteTo writes g as an ONNX ModelProto to w, every initializer's values inside it, streamed
// (the model is never held twice in memory). It refuses a model over MaxModelBytes: see
// WriteExternal.
func (g *Graph) WriteTo(w io.Writer) (int64, error) {
	return g.writeModel(w, make([]*extRef, len(g.inits)))
}

// Bytes returns the size of the file WriteTo writes.
func (g *Graph) Bytes() int64 {
	prefix, _, _, graphLen := g.layout(make([]*extRef, len(g.inits)))
	return int64(len(prefix)) + graphLen
}

// ExternalAlign is the alignment of each tensor in an external data file: a page, as onnx.proto
// recommends, so that a runtime can map it.
const ExternalAlign = 4096

// WriteExternal writes g with the values of every initializer of at least minBytes bytes in
// data, at offsets aligned to ExternalAlign, and the model (the graph, small constants inline)
// in w: ONNX's external data, for graphs over protobuf's 2 GiB limit. location is the data
// file's path relative to the model file's directory, as the model records it. It returns the
// bytes written to each.
func (g *Graph) WriteExternal(w, data io.Writer, location string, minBytes int) (modelBytes, dataBytes int64, err error) {
	ext := make([]*extRef, len(g.inits))
	bw := bufio.NewWriterSize(data, 1<<20)
	dw := &countWriter{w: bw}
	var pad [ExternalAlign]byte
	for i, t := range g.inits {
		if t.rawLen() < minBytes {
			continue
		}
		if r := dw.n % ExternalAlign; r != 0 {
			if _, err := dw.Write(pad[:ExternalAlign-r]); err != nil {
				return 0, dw.n, err
			}
		}
		ext[i] = &extRef{location: location, offset: dw.n, length: int64(t.rawLen())}
		if err := t.writeRaw(dw); err != nil {
			return 0, dw.n, err
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, dw.n, err
	}
	modelBytes, err = g.writeModel(w, ext)
	return modelBytes, dw.n, err
}

// layout encodes the model but for the inline initializers' raw bytes: the ModelProto up to
// the graph's contents (prefix), the graph's nodes, name, inputs and outputs (head), each
// initializer's header, and the graph's length. The graph is one length-delimited field, so
// its length is summed before anything is written.
func (g *Graph) layout(ext []*extRef) (prefix, head []byte, headers [][]byte, graphLen int64) {
	for _, n := range g.nodes {
		head = appendMessage(head, graphNode, n)
	}
	head = appendString(head, graphName, g.name)
	for _, v := range g.inputs {
		head = appendMessage(head, graphInput, v)
	}
	for _, v := range g.outputs {
		head = appendMessage(head, graphOutput, v)
	}
	headers = make([][]byte, len(g.inits))
	graphLen = int64(len(head))
	for i, t := range g.inits {
		headers[i] = t.header(ext[i])
		n := int64(len(headers[i]))
		if ext[i] == nil {
			n += int64(t.rawLen())
		}
		graphLen += int64(protowire.SizeTag(graphInitializer)) + int64(protowire.SizeVarint(uint64(n))) + n
	}
	prefix = appendVarintField(prefix, modelIRVersion, IRVersion)
	prefix = appendString(prefix, modelProducerName, "clipgo")
	if g.producerVersion != "" {
		prefix = appendString(prefix, modelProducerVer, g.producerVersion)
	}
	if g.doc != "" {
		prefix = appendString(prefix, modelDocString, g.doc)
	}
	opset := appendString(nil, opsetDomain, "")
	opset = appendVarintField(opset, opsetVersion, Opset)
	prefix = appendMessage(prefix, modelOpsetImport, opset)
	prefix = protowire.AppendTag(prefix, modelGraph, protowire.BytesType)
	prefix = protowire.AppendVarint(prefix, uint64(graphLen))
	return prefix, head, headers, graphLen
}

// writeModel writes the ModelProto, each initializer inline or (ext[i] set) external.
func (g *Graph) writeModel(w io.Writer, ext []*extRef) (int64, error) {
	prefix, head, headers, graphLen := g.layout(ext)
	if total := int64(len(prefix)) + graphLen; total > MaxModelBytes {
		return 0, fmt.Errorf("onnx: graph %s would be %d bytes, over protobuf's limit of %d: write its weights as external data", g.name, total, int64(MaxModelBytes))
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &countWriter{w: bw}
	if _, err := cw.Write(prefix); err != nil {
		return cw.n, err
	}
	if _, err := cw.Write(head); err != nil {
		return cw.n, err
	}
	for i, t := range g.inits {
		n := len(headers[i])
		if ext[i] == nil {
			n += t.rawLen()
		}
		b := protowire.AppendTag(nil, graphInitializer, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = append(b, headers[i]...)
		if _, err := cw.Write(b); err != nil {
			return cw.n, err
		}
		if ext[i] == nil {
			if err := t.writeRaw(cw); err != nil {
				return cw.n, err
			}
		}
	}
	return cw.n, bw.Flush()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
