"""The pieces of ClickHouse's RowBinary input format that the engine statements' Python side writes and reads.

Why here: the OTLP writer (pipeline/sink.py) and the Kafka engine path (pipeline/sources/kafka/gctrace_engine.py)
both hand the store RowBinary rows read by `INSERT ... SELECT FROM input(...)`; the format is the store's, so its
encoding lives beside the store client, once. The OTLP journal (pipeline/journal.py) reads its segments back with
the decoders below: to find where a segment cut by a crash ends, and to hand the rows to the Python normalizer
should the engine refuse them.
"""

from __future__ import annotations


def uvarint(n: int) -> bytes:
    """A string's or an array's length: unsigned LEB128."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(raw: bytes) -> bytes:
    """A String value: its length, then its bytes."""
    return uvarint(len(raw)) + raw


def read_uvarint(buf: bytes | memoryview, pos: int, end: int | None = None) -> tuple[int, int]:
    """The varint (a length) at `pos` and the position after it; ValueError when the buffer (or `end`) comes
    first. Protobuf's varints are the same encoding (pipeline/serve/otlp_limits.py reads them with this)."""
    value = shift = 0
    end = len(buf) if end is None else end
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("a length cut short or too long")


def read_string(buf: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    """The String value at `pos` and the position after it; ValueError when the buffer ends inside it."""
    length, pos = read_uvarint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ValueError("a string cut short")
    return bytes(buf[pos:end]), end
