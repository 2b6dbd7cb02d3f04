"""A minimal TensorBoard event-file writer for scalars, without TensorFlow or tensorboard.

An event file is a TFRecord stream of `Event` protocol buffers. Each record is
    uint64 length | uint32 masked_crc32c(length) | bytes data | uint32 masked_crc32c(data)
and the first event carries `file_version = "brain.Event:2"`. We encode the three messages we
need by hand (field numbers from tensorflow/core/util/event.proto and summary.proto):
    Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
    Summary { repeated Value value = 1; }
    Value   { string tag = 1; float simple_value = 2; }
"""

from __future__ import annotations

import os
import socket
import struct
import time


def _crc32c_table():
    poly = 0x82F63B78   # Castagnoli, reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1   # negative int64 -> two's complement, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None, values=()) -> bytes:
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    if values:
        summary = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(v)))
            for tag, v in values)
        msg += _field_bytes(5, summary)
    return msg


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked(crc32c(header))) + data + struct.pack("<I", _masked(crc32c(data)))


class EventWriter:
    """Appends scalar summaries to `logdir/events.out.tfevents.<time>.<host>` (a new file per
    writer, as TensorBoard expects; it merges all files in the directory)."""

    def __init__(self, logdir: str | os.PathLike):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(os.fspath(logdir), name)
        self._f = open(self.path, "ab")
        self._f.write(_record(_event(time.time(), 0, file_version="brain.Event:2")))
        self._f.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        items = [(k, v) for k, v in values.items() if isinstance(v, (int, float))]
        if items:
            self._f.write(_record(_event(time.time(), step, values=items)))
            self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_scalars(path: str | os.PathLike) -> list[tuple[int, str, float]]:
    """Decode (step, tag, value) triples from an event file written by `EventWriter`; checks
    both CRCs of every record. For tests and quick inspection."""
    out = []
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (n,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != _masked(crc32c(header)):
            raise ValueError(f"{path}: corrupt record length at byte {pos}")
        body = data[pos + 12:pos + 12 + n]
        if struct.unpack("<I", data[pos + 12 + n:pos + 16 + n])[0] != _masked(crc32c(body)):
            raise ValueError(f"{path}: corrupt record at byte {pos}")
        pos += 16 + n
        out.extend(_decode_event(body))
    return out


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def _fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _read_varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield num, v


def _decode_event(body: bytes):
    step, summaries = 0, []
    for num, v in _fields(body):
        if num == 2:
            step = v
        elif num == 5:
            summaries.append(v)
    for s in summaries:
        for num, value in _fields(s):
            if num != 1:
                continue
            tag, val = None, None
            for n2, v2 in _fields(value):
                if n2 == 1:
                    tag = v2.decode()
                elif n2 == 2:
                    val = struct.unpack("<f", v2)[0]
            if tag is not None and val is not None:
                yield step, tag, val
