"""Container log files -> the lines the process wrote, each with its stream and its own timestamp.

Kubernetes nodes keep a container's stdout and stderr in files written by the container runtime, in one
of two layouts, and plain files exist too; the layout is recognised per line, so a file that changes
layout (a runtime upgrade) or mixes them is still read:

* CRI (kubelet with containerd or CRI-O): `<RFC 3339 nano time> <stdout|stderr> <P|F> <text>`. A line the
  process wrote in pieces (longer than the runtime's buffer, or written in several calls) is several `P`
  records closed by an `F` record; the pieces are joined.
* Docker json-file: `{"log": "<text>\\n", "stream": "stderr", "time": "<RFC 3339 nano>"}`. A `log` value
  without the final newline is a piece of a longer line (Docker cuts at 16 KiB); the pieces are joined.
* plain: anything else, the line itself, without a timestamp.

The record's time is the time the line was observed (for a joined line, the time of its last piece).
Pieces are joined per stream, so stdout and stderr interleaved in one file do not mix.

Pure and stateless: `decode` is given raw lines from a resume point and says how many of them it fully
consumed; a partial line still waiting for its last piece is left for the next call (or emitted as it
is with `final=True`, when no more data will come). The tailing source relies on that to resume exactly
after a restart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.models import parse_timestamp_ns

CRI = "cri"
DOCKER = "docker"
PLAIN = "plain"

_CRI = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF])(?: (.*))?$", re.S
)


@dataclass(slots=True)
class Entry:
    """One complete line of the process's output."""

    text: str
    time_ns: int | None   # the record's timestamp (None for plain lines)
    stream: str           # "stdout", "stderr", or "" for plain lines
    fmt: str              # CRI, DOCKER or PLAIN
    first: int            # index of its first raw line
    last: int             # index of its last raw line


@dataclass(slots=True)
class _Piece:
    text: str
    time_ns: int | None
    stream: str
    fmt: str
    complete: bool


def parse_record(raw: str) -> _Piece:
    """One raw line of a log file -> its piece (text, time, stream, layout, whether it ends a line)."""
    if raw[:1] == "{" and '"log"' in raw:
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("log"), str):
            text: str = doc["log"]
            stream = doc.get("stream")
            time_ns = _time(doc.get("time"))
            complete = text.endswith("\n")
            if complete:
                text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
            return _Piece(text, time_ns, stream if isinstance(stream, str) else "", DOCKER, complete)
    if raw[:1].isdigit():
        m = _CRI.match(raw)
        if m is not None:
            time_ns = _time(m.group(1))
            if time_ns is not None:
                return _Piece(m.group(4) or "", time_ns, m.group(2), CRI, m.group(3) == "F")
    return _Piece(raw, None, "", PLAIN, True)


def _time(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp_ns(value)
    except ValueError:
        return None


def decode(raw: Sequence[str], *, final: bool) -> tuple[list[Entry], int]:
    """Complete lines of `raw` (file lines without terminators) and how many raw lines they consumed.

    Returns (entries, consumed): every raw line before index `consumed` belongs to a returned entry, and
    no returned entry uses a raw line at or after it. A partial line (pieces without their last one) stops
    `consumed` at its first piece, and entries that start after it wait too, so resuming at `consumed`
    gives every line exactly once. With `final` partial lines are returned as they are.
    """
    entries: list[Entry] = []
    # layout/stream -> (first raw index, pieces so far, time of the last piece)
    open_: dict[str, tuple[int, list[str], int | None]] = {}
    for i, line in enumerate(raw):
        piece = parse_record(line)
        if piece.fmt == PLAIN:
            entries.append(Entry(piece.text, None, "", PLAIN, i, i))
            continue
        key = f"{piece.fmt}/{piece.stream}"
        pending = open_.get(key)
        if pending is None:
            if piece.complete:
                entries.append(Entry(piece.text, piece.time_ns, piece.stream, piece.fmt, i, i))
            else:
                open_[key] = (i, [piece.text], piece.time_ns)
            continue
        pending[1].append(piece.text)
        if piece.complete:
            del open_[key]
            entries.append(Entry("".join(pending[1]), piece.time_ns, piece.stream, piece.fmt, pending[0], i))
        else:
            open_[key] = (pending[0], pending[1], piece.time_ns)
    if not open_:
        return entries, len(raw)
    if final:
        for key, (first, pieces, time_ns) in open_.items():
            fmt, _, stream = key.partition("/")
            entries.append(Entry("".join(pieces), time_ns, stream, fmt, first, len(raw) - 1))
        entries.sort(key=lambda e: e.first)
        return entries, len(raw)
    # Stop at the first piece of the earliest partial line; an entry that ends at or after the stop also
    # waits, and so do the raw lines from its first piece on.
    stop = min(first for first, _, _ in open_.values())
    while True:
        lower = min((e.first for e in entries if e.last >= stop), default=stop)
        if lower >= stop:
            break
        stop = lower
    return [e for e in entries if e.last < stop], stop


def detect_format(raw: Sequence[str]) -> str:
    """The layout of the first non-blank line (CRI, DOCKER or PLAIN)."""
    for line in raw:
        if line.strip():
            return parse_record(line).fmt
    return PLAIN
