"""Bench input: real gctrace summary lines, replicated across many instances with rising timestamps.

The templates are every gc summary line of the captures in tests/data/go-runtime (Go 1.19 and 1.27, steady
state, storms, forced GCs), so field widths and number shapes are those real runtimes print. Each instance
replays them with its own cycle numbers and `@seconds` rising by `STEP_S`, which is what a fleet in a GC
storm writes. Everything here is deterministic, so two runs compare the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from pipeline.normalize.runtime_lines import parse_gc

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "go-runtime"
STEP_S = 0.05  # 20 cycles per second per instance: a storm
_HEAD = re.compile(r"^gc \d+ @\d+\.\d+s ")


@cache
def templates() -> tuple[str, ...]:
    """The tail of every real gc summary line (after 'gc N @T.TTTs '), in capture order."""
    tails: list[str] = []
    for path in sorted(SAMPLES.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            head = _HEAD.match(line)
            if head and parse_gc(line) is not None and "ms clock" in line:
                tails.append(line[head.end():])
    if not tails:
        raise RuntimeError(f"no gctrace samples under {SAMPLES}")
    return tuple(tails)


def instance_lines(count: int, first: int = 0) -> list[str]:
    """Lines `first`..`first+count-1` of one instance's gctrace stream."""
    tails = templates()
    n = len(tails)
    return [f"gc {k + 1} @{k * STEP_S:.3f}s {tails[k % n]}" for k in range(first, first + count)]


def span_seconds(lines_per_instance: int) -> float:
    return lines_per_instance * STEP_S


def write_instance_files(directory: Path, instances: int, lines_per_instance: int) -> list[Path]:
    """One file per instance (its stderr), written in slices so memory stays small."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(instances):
        path = directory / f"inst-{i:04d}.log"
        with path.open("w", encoding="utf-8") as out:
            for first in range(0, lines_per_instance, 100_000):
                chunk = instance_lines(min(100_000, lines_per_instance - first), first)
                out.write("\n".join(chunk))
                out.write("\n")
        paths.append(path)
    return paths


def round_robin(instances: int, lines_per_instance: int, per_group: int = 1) -> Iterator[tuple[int, list[str]]]:
    """(instance, consecutive lines) groups, instances interleaved as a shared transport would see them."""
    for first in range(0, lines_per_instance, per_group):
        count = min(per_group, lines_per_instance - first)
        for i in range(instances):
            yield i, instance_lines(count, first)
