"""Coverage-guided fuzzing of the gctrace normalizer (both modes) with atheris.

    python tests/fuzz/fuzz_gctrace.py -runs=100000            # or -max_total_time=600
    python tests/fuzz/fuzz_gctrace.py tests/fuzz/corpus/gctrace -max_total_time=3600   # keep a corpus

Any exception, or a line not accounted for as row / log / quarantine / blank, is a crash that atheris
reports with the input that caused it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports():
    from pipeline.normalize.gctrace import GctraceStream, normalize_lines
    from pipeline.normalize.rows import QUARANTINE, Rows

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOW_NS = int(NOW.timestamp()) * 10**9
OTHER = ("scavenger_events", "pacer_events", "runtime_notices")


def _accounted(stats, rows: Rows, n: int) -> None:
    assert stats.lines == n, (stats, n)
    assert n == stats.events + stats.other_runtime + stats.logs + stats.quarantined + stats.blank, stats
    assert rows.count("gc_events") == stats.events
    assert sum(rows.count(t) for t in OTHER) == stats.other_runtime
    assert rows.count("otel_logs") == stats.logs
    assert rows.count(QUARANTINE) == stats.quarantined


def check(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cut = fdp.ConsumeIntInRange(0, 16)
    text = fdp.ConsumeUnicodeNoSurrogates(len(data))
    lines = text.split("\n")
    rows = Rows()
    stats = normalize_lines(lines, observed_ns=NOW_NS, service="svc", instance="i", source="fuzz",
                            received_at=NOW, rows=rows)
    _accounted(stats, rows, len(lines))
    rows = Rows()
    stream = GctraceStream(service="svc", instance="i", source="fuzz", received_at=NOW, start_ns=None,
                           now_ns=lambda: NOW_NS)
    stream.feed(lines[:cut], rows, terminated=False)
    stream.feed(lines[cut:], rows, terminated=False)
    stream.finish(rows)
    _accounted(stream.stats, rows, len(lines))


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
