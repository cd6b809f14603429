#!/usr/bin/python3
"""Reads the TensorBoard event files of a directory as TensorBoard would, independently of
clipgo's writer (internal/tbevents): its own TFRecord framing and masked-CRC-32C checks, and
the events decoded by protobuf (Debian's python3-protobuf) from message descriptors that
transcribe the field layout of TensorBoard's published protos
(tensorboard/compat/proto/event.proto and summary.proto; no tensorboard package is needed).

Usage: tfevents.py DIR

Prints one JSON object: "files" (per event file, in the order TensorBoard reads them: name,
records, file_version of its first event, torn: bytes of a cut-short last record), "scalars"
({tag: [[step, value, wall_time], ...]} over all files, in reading order) and "duplicates"
([tag, step] logged more than once: TensorBoard would plot every one of them).
Exits 1 on a checksum mismatch or an event that does not parse.
"""
import json
import os
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _field(msg, name, number, ftype, type_name=None, label=F.LABEL_OPTIONAL, oneof=None):
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof
    return f


def event_class():
    """tensorflow.Event with the fields of event.proto and summary.proto a scalar needs (the
    others, such as images and histograms, stay unknown fields)."""
    fd = descriptor_pb2.FileDescriptorProto(name="clipgo_tfevents.proto", package="tensorflow", syntax="proto3")

    summary = fd.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    _field(value, "node_name", 7, F.TYPE_STRING)
    _field(value, "tag", 1, F.TYPE_STRING)
    _field(value, "simple_value", 2, F.TYPE_FLOAT, oneof=0)
    _field(value, "obsolete_old_style_histogram", 3, F.TYPE_BYTES, oneof=0)
    _field(summary, "value", 1, F.TYPE_MESSAGE, ".tensorflow.Summary.Value", F.LABEL_REPEATED)

    session_log = fd.message_type.add(name="SessionLog")
    status = session_log.enum_type.add(name="SessionStatus")
    for i, n in enumerate(["STATUS_UNSPECIFIED", "START", "STOP", "CHECKPOINT"]):
        status.value.add(name=n, number=i)
    _field(session_log, "status", 1, F.TYPE_ENUM, ".tensorflow.SessionLog.SessionStatus")
    _field(session_log, "checkpoint_path", 2, F.TYPE_STRING)
    _field(session_log, "msg", 3, F.TYPE_STRING)

    event = fd.message_type.add(name="Event")
    event.oneof_decl.add(name="what")
    _field(event, "wall_time", 1, F.TYPE_DOUBLE)
    _field(event, "step", 2, F.TYPE_INT64)
    _field(event, "file_version", 3, F.TYPE_STRING, oneof=0)
    _field(event, "graph_def", 4, F.TYPE_BYTES, oneof=0)
    _field(event, "summary", 5, F.TYPE_MESSAGE, ".tensorflow.Summary", oneof=0)
    _field(event, "session_log", 7, F.TYPE_MESSAGE, ".tensorflow.SessionLog", oneof=0)
    _field(event, "meta_graph_def", 9, F.TYPE_BYTES, oneof=0)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    desc = pool.FindMessageTypeByName("tensorflow.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def records(path):
    """Yields each record's data; returns the number of bytes of a cut-short last record."""
    with open(path, "rb") as f:
        raw = f.read()
    pos = 0
    while pos < len(raw):
        if len(raw) - pos < 12:
            return len(raw) - pos
        header = raw[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", raw[pos + 8:pos + 12])
        if crc != masked_crc(header):
            raise ValueError(f"{path}: offset {pos}: length checksum {crc:#010x}, want {masked_crc(header):#010x}")
        if len(raw) - pos < 12 + length + 4:
            return len(raw) - pos
        data = raw[pos + 12:pos + 12 + length]
        (crc,) = struct.unpack("<I", raw[pos + 12 + length:pos + 16 + length])
        if crc != masked_crc(data):
            raise ValueError(f"{path}: offset {pos}: data checksum {crc:#010x}, want {masked_crc(data):#010x}")
        yield data
        pos += 16 + length
    return 0


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    logdir = sys.argv[1]
    Event = event_class()
    # TensorBoard reads the files whose names hold "tfevents", in name order.
    names = sorted(n for n in os.listdir(logdir) if "tfevents" in n and not n.startswith("."))
    files, scalars, seen, duplicates = [], {}, set(), []
    try:
        for name in names:
            info = {"name": name, "records": 0, "file_version": None, "torn": 0}
            it = records(os.path.join(logdir, name))
            while True:
                try:
                    data = next(it)
                except StopIteration as stop:
                    info["torn"] = stop.value or 0
                    break
                ev = Event()
                ev.ParseFromString(data)
                if info["records"] == 0:
                    info["file_version"] = ev.file_version if ev.WhichOneof("what") == "file_version" else None
                info["records"] += 1
                if ev.WhichOneof("what") != "summary":
                    continue
                for v in ev.summary.value:
                    if v.WhichOneof("value") != "simple_value":
                        continue
                    if (v.tag, ev.step) in seen:
                        duplicates.append([v.tag, ev.step])
                    seen.add((v.tag, ev.step))
                    scalars.setdefault(v.tag, []).append([ev.step, v.simple_value, ev.wall_time])
            files.append(info)
    except Exception as e:  # a checksum or protobuf decode error: the file is not what TensorBoard reads
        print(f"tfevents.py: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump({"files": files, "scalars": scalars, "duplicates": duplicates}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
