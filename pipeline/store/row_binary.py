"""The pieces of ClickHouse's RowBinary input format that the engine statements' Python side writes.

Why here: the OTLP writer (pipeline/sink.py) and the Kafka engine path (pipeline/sources/kafka/gctrace_engine.py)
both hand the store RowBinary rows read by `INSERT ... SELECT FROM input(...)`; the format is the store's, so its
encoding lives beside the store client, once.
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
