"""The gctrace fast path (engine parses runs of gc lines) against the Python normalizer, the reference.

Every capture in tests/data/go-runtime, a real Go program's stderr, and streams built to be hard (restarts
inside a run and at run boundaries, torn lines, split lines at batch boundaries, out-of-range numbers, a gc
line with Unicode digits) go through both, each into a database of its own on the real engine; every row of
every table and every quarantine row must be identical, as must the stats.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.normalize.gctrace import GctraceStream, LineStats
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources.gctrace_fast import GctraceFastPath
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, migrate
from tests.conftest import DATA

SAMPLES = DATA / "go-runtime"
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "quarantine")
START = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
RECEIVED = datetime.now(UTC).replace(microsecond=123000)


@pytest.fixture
def second_store(settings: Settings) -> Iterator[Store]:
    """Another migrated database in the session's store, for the fast path's rows."""
    db = f"t_{uuid.uuid4().hex[:12]}"
    st = Store(settings.clickhouse_dsn, db)
    migrate(st, settings.sql_dir, RenderContext(db, settings.retention_days))
    yield st
    st.command(f"DROP DATABASE IF EXISTS {db} SYNC")
    st.close()


def _stream(name: str) -> GctraceStream:
    return GctraceStream(service="api", instance=name, source="file", received_at=RECEIVED,
                         start_ns=int(START.timestamp()) * 10**9, name=name)


def _feed(stream: object, lines: list[str], sink: Sink, batch: int) -> None:
    for i in range(0, len(lines), batch):
        rows = Rows()
        stream.feed(lines[i:i + batch], rows, terminated=False)  # type: ignore[attr-defined]
        if rows:
            sink.write(rows)
    rows = Rows()
    stream.finish(rows)  # type: ignore[attr-defined]
    if rows:
        sink.write(rows)


def _table(store: Store, table: str) -> list[tuple]:
    return sorted(store.rows(f"SELECT * FROM {store.database}.{table}"), key=repr)


def _both(settings: Settings, ref: Store, fast_store: Store, streams: dict[str, list[str]], *, batch: int,
          min_run: int) -> tuple[LineStats, LineStats, int]:
    ref_stats, fast_stats, engine_lines = LineStats(), LineStats(), 0
    fast = GctraceFastPath(fast_store, settings.sql_dir, RenderContext(fast_store.database, settings.retention_days),
                           min_run=min_run)
    for name, lines in streams.items():
        reference = _stream(name)
        _feed(reference, lines, Sink(ref), batch)
        ref_stats.add(reference.stats)
        fast_stream = fast.stream(_stream(name), service="api", instance=name, source="file")
        _feed(fast_stream, lines, Sink(fast_store), batch)
        fast_stream.close()
        fast_stats.add(fast_stream.stats)
        engine_lines += fast_stream.engine_lines
    for table in TABLES:
        assert _table(fast_store, table) == _table(ref, table), table
    # Every stream dropped its stage table.
    assert fast_store.scalar("SELECT count() FROM system.tables WHERE database = {db:String} "
                             "AND name LIKE 'gctrace_fast_%'", {"db": fast_store.database}) == 0
    assert fast_stats == ref_stats
    return ref_stats, fast_stats, engine_lines


def _captures() -> dict[str, list[str]]:
    return {p.name: p.read_text(encoding="utf-8").splitlines() for p in sorted(SAMPLES.glob("*.txt"))}


@pytest.mark.parametrize(("batch", "min_run"), [(50_000, 64), (701, 8)])
def test_every_capture_gives_identical_rows(settings, store, second_store, batch, min_run) -> None:
    streams = _captures()
    stats, _, engine_lines = _both(settings, store, second_store, streams, batch=batch, min_run=min_run)
    assert stats.events > 3000 and stats.logs > 0 and stats.repaired > 0
    assert engine_lines > stats.events // 2  # the engine did most of the gc lines


def test_restarts_torn_and_out_of_range_lines_give_identical_rows(settings, store, second_store) -> None:
    storm = (SAMPLES / "go1.27.3-storm.txt").read_text().splitlines()
    steady = (SAMPLES / "go1.19.8-steady.txt").read_text().splitlines()
    gc_lines = [line for line in storm if line.startswith("gc ")]
    restarted = gc_lines[:150] + gc_lines[:80] + gc_lines[40:200] + steady[:300] + gc_lines
    torn = list(gc_lines[:100])
    torn[10] = torn[10][:25]                                   # torn, never completed
    torn[20] = torn[20][:30] + "app: hello"                    # split by foreign output...
    torn.insert(21, torn[21 - 1][:0] + gc_lines[19][30:])      # ...with the wrong tail
    torn[40] = torn[40].replace(" P", "0000000 P")             # P count out of range for the column
    torn[50] = torn[50].replace("gc 51 ", "gc 99999999999 ")   # gc number out of range
    torn[60] = torn[60].replace("gc 61 ", "gc ٦١ ")            # Unicode digits: Python's \d takes them
    torn[70] = "2026-12-06T05:00:00Z stderr F " + torn[70]    # a shipper prefix
    torn[72] = "2026-12-06 05:00:01\t" + torn[72]                # a prefix ending in a tab
    torn[74] = "név\u00a0" + torn[74]                          # non-ASCII, a no-break space
    torn[76] = torn[76] + "  \t"                               # trailing blanks
    torn[78] = "pacer: x " + torn[78]                           # another runtime head in the prefix
    torn[80] = torn[80] + "\r"
    streams = {"restarted": restarted, "torn": torn, "restart-first": gc_lines[100:200] + gc_lines[:100]}
    stats, _, engine_lines = _both(settings, store, second_store, streams, batch=211, min_run=8)
    assert stats.quarantined >= 2 and engine_lines > 0
    incarnations = store.rows(f"SELECT instance, max(incarnation) FROM {store.database}.gc_events "
                              f"GROUP BY instance ORDER BY instance")
    # gc 1..150, back to 1, back to 41, then another program's cycles from 1, then back to 1.
    assert incarnations == [("restart-first", 2), ("restarted", 5), ("torn", 1)]


def test_real_program_stderr_gives_identical_rows(build_go, settings, store, second_store, tmp_path: Path) -> None:
    binary = build_go(DATA / "go" / "gcstorm")
    proc = subprocess.run(
        [str(binary), "-n", "60000", "-logevery", "300"], capture_output=True,
        env={**os.environ, "GODEBUG": "gctrace=1,gcpacertrace=1,scavtrace=1", "GOGC": "5"}, timeout=120,
    )
    assert proc.returncode == 0
    lines = proc.stderr.decode().splitlines()
    stats, _, _ = _both(settings, store, second_store, {"gcstorm": lines}, batch=500, min_run=16)
    assert stats.events == int(proc.stdout.decode().strip())
