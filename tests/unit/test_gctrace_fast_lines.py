"""The file reader and the fast path read the same lines from the same bytes, wherever a read or a batch ended.

A clean batch is never split into Python strings, but the lines it holds back for the next batch, and every
batch that falls back, are: they must be the very strings the reference is given (carriage returns, bytes that
are not UTF-8, an unterminated last line), or the rows would differ.
"""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalize.runtime_lines import parse_gc
from pipeline.sources.files import iter_raw_chunks, iter_raw_line_chunks
from pipeline.sources.gctrace_fast import parse_last, raw_lines

PIECES = [b"gc 1 @0.010s 2%: 0.1+0.2+0.3 ms clock, 0.1+0.2/0.3/0.4+0.5 ms cpu, 4->5->6 MB, 7 MB goal, 2 P",
          b"\r", b"\n", b"\r\n", b"\xff", b"\xc3\xa9", b"app: hi", b" ", b"\t", b""]


def _lines(data: bytes) -> list[str]:
    """What a line is, spelled out: split at b"\\n", decoded, a CRLF's carriage return dropped (every trailing
    one of an unterminated last line)."""
    parts = data.split(b"\n")
    tail = parts.pop()
    lines = [p[:-1] if p.endswith(b"\r") else p for p in parts]
    if tail:
        lines.append(tail.rstrip(b"\r"))
    return [line.decode("utf-8", errors="backslashreplace") for line in lines]


@given(st.lists(st.sampled_from(PIECES), max_size=40), st.sampled_from([1, 3, 7, 64, 1 << 20]))
def test_lines_do_not_depend_on_where_a_read_ended(parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    expected = _lines(data)
    assert [line for _, lines in iter_raw_line_chunks(io.BytesIO(data), chunk) for line in lines] == expected
    raw = list(iter_raw_chunks(io.BytesIO(data), chunk))
    assert b"".join(raw) == data
    assert all(piece.endswith(b"\n") for piece in raw[:-1])
    assert [line for piece in raw for line in raw_lines(piece)] == expected
    assert raw_lines(data) == expected


def test_the_last_line_of_a_batch_is_parsed_as_the_reference_parses_it() -> None:
    line = PIECES[0]
    assert parse_last(line + b"\n") == parse_gc(line.decode())
    assert parse_last(line + b"\r\n") == parse_gc(line.decode())
    assert parse_last(b"app: hi\n") is None
    assert parse_last(line + b"\n" + line + b"\n") is None  # one line only
