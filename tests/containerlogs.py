"""Writing real Go captures the way container runtimes store them (for tests of the file source).

CRI (kubelet with containerd / CRI-O): `<RFC 3339 nano> <stream> <P|F> <text>`, with some lines written
in pieces (`P` records closed by an `F`); Docker json-file: `{"log": ..., "stream": ..., "time": ...}`,
long lines cut into pieces without the newline. Times are fixed per line so the files are reproducible.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

BASE = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


def stamp(i: int) -> str:
    t = BASE + timedelta(microseconds=1000 * i + 7)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def cri_records(lines: list[str], *, split_every: int = 5, first_index: int = 0) -> list[str]:
    """CRI records of stderr `lines`; every `split_every`-th line is written as 3 pieces (P, P, F)."""
    out = []
    for n, line in enumerate(lines):
        i = first_index + n
        if split_every and i % split_every == 0 and len(line) >= 6:
            a, b = len(line) // 3, 2 * len(line) // 3
            out += [f"{stamp(i)} stderr P {line[:a]}", f"{stamp(i)} stderr P {line[a:b]}",
                    f"{stamp(i)} stderr F {line[b:]}"]
        else:
            out.append(f"{stamp(i)} stderr F {line}")
    return out


def docker_records(lines: list[str], *, split_every: int = 5, first_index: int = 0) -> list[str]:
    """Docker json-file records of stderr `lines`; every `split_every`-th line in 2 pieces."""
    out = []
    for n, line in enumerate(lines):
        i = first_index + n
        if split_every and i % split_every == 0 and len(line) >= 4:
            half = len(line) // 2
            out.append(json.dumps({"log": line[:half], "stream": "stderr", "time": stamp(i)}))
            out.append(json.dumps({"log": line[half:] + "\n", "stream": "stderr", "time": stamp(i)}))
        else:
            out.append(json.dumps({"log": line + "\n", "stream": "stderr", "time": stamp(i)}))
    return out
