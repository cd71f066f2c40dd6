"""A plain file of one batch read by the embedded engine in place (`FastGctraceStream.feed_file`), on the real engine.

The engine counts the file's lines and its " ms clock, " lines and, when they make a clean batch, the chunk statement
reads the file itself; every other file (application lines, a restart the statement refuses, more lines than a
batch, gzip, a last line without its line end) must still give the reference normalizer's rows in every table, and
the counters say which way each file went.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.normalize.gctrace import GctraceStream
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources import files
from pipeline.sources.gctrace_fast import FastGctraceStream, GctraceFastPath, raw_lines
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings
from tests.conftest import DATA
from tests.fast_streams import keep_fast_streams

SAMPLES = DATA / "go-runtime"
START_NS = int((datetime.now(UTC) - timedelta(hours=2)).timestamp()) * 10**9
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "quarantine")
RECEIVED = datetime(2026, 12, 6, tzinfo=UTC)


def _gc_lines(name: str) -> list[bytes]:
    return [line for line in (SAMPLES / name).read_bytes().splitlines() if line.startswith(b"gc ")]


def _rows(store: Store) -> dict[str, list[tuple]]:
    # the times a stream was received and observed are the wall clock when it started: left out
    out = {}
    for table in TABLES:
        columns = [name for (name,) in store.rows(
            f"SELECT name FROM system.columns WHERE database = '{store.database}' AND table = '{table}' "
            f"AND NOT match(lower(name), 'received|observed') ORDER BY position")]
        out[table] = sorted(store.rows(f"SELECT {', '.join(columns)} FROM {store.database}.{table}"), key=repr)
    return out


def _reference(store: Store, name: str, data: bytes) -> None:
    stream = GctraceStream(service="api", instance=name, source="file", received_at=RECEIVED, start_ns=START_NS,
                           name=name)
    rows = Rows()
    stream.feed(raw_lines(data), rows, terminated=False)
    stream.finish(rows)
    Sink(store).write(rows)


def _ingest(settings, store: Store, path: Path, monkeypatch, *, batch: int = 1_000) -> FastGctraceStream:
    """`files.ingest_stream` as the command runs it; returns the fast stream it used."""
    streams = keep_fast_streams(monkeypatch)
    monkeypatch.setattr(files, "FAST_BATCH_LINES", batch)
    fast = GctraceFastPath(store, settings.sql_dir, context_from_settings(settings), min_chunk=16)
    stats = files.ingest_stream(store, files.Input(name=str(path), instance=path.name), service="api",
                                start_ns=START_NS, batch_lines=batch, fast=fast)
    (stream,) = streams
    assert stats.lines == stream.stats.lines
    return stream


def _same(store: Store, second_store: Store) -> dict[str, list[tuple]]:
    got, want = _rows(store), _rows(second_store)
    for table in TABLES:
        assert got[table] == want[table], table
    return got


def test_a_clean_file_is_one_statement_reading_it_in_place(settings, store, second_store, tmp_path, monkeypatch
                                                           ) -> None:
    lines = _gc_lines("go1.27.3-storm.txt")[:300]
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / "clean.log"
    path.write_bytes(data)
    _reference(second_store, path.name, data)
    stream = _ingest(settings, store, path, monkeypatch)
    assert (stream.file_statements, stream.clean_chunks, stream.span_batches, stream.engine_lines) == (1, 1, 0, 300)
    assert stream.stats.lines == 300 and stream.stats.events == 300
    assert len(_same(store, second_store)["gc_events"]) == 300


def test_a_last_line_without_its_line_end(settings, store, second_store, tmp_path, monkeypatch) -> None:
    data = b"\n".join(_gc_lines("go1.27.3-storm.txt")[:120])
    path = tmp_path / "unterminated.log"
    path.write_bytes(data)
    _reference(second_store, path.name, data)
    stream = _ingest(settings, store, path, monkeypatch)
    assert stream.file_statements == 1 and stream.stats.lines == 120
    assert len(_same(store, second_store)["gc_events"]) == 120


def test_application_lines_are_counted_by_the_engine_and_read_as_before(settings, store, second_store, tmp_path,
                                                                        monkeypatch) -> None:
    """The engine's clock-line count keeps a file with an application line away from the statement (nothing
    refused), and the file takes the reader's path."""
    storm = _gc_lines("go1.27.3-storm.txt")
    data = b"\n".join([*storm[:150], b"app: hello", *storm[150:300]]) + b"\n"
    path = tmp_path / "mixed.log"
    path.write_bytes(data)
    _reference(second_store, path.name, data)
    stream = _ingest(settings, store, path, monkeypatch)
    assert (stream.file_statements, stream.refused_chunks) == (0, 0) and stream.span_batches == 1
    got = _same(store, second_store)
    assert len(got["gc_events"]) == 300 and len(got["otel_logs"]) == 1


def test_a_restart_is_refused_by_the_statement_and_read_as_before(settings, store, second_store, tmp_path,
                                                                  monkeypatch) -> None:
    """Every line holds " ms clock, ", so only the statement sees the restart: it stores nothing, and the reader's
    path opens the second incarnation as the reference does."""
    storm = _gc_lines("go1.27.3-storm.txt")
    data = b"\n".join(storm[:200] + storm[:100]) + b"\n"
    path = tmp_path / "restart.log"
    path.write_bytes(data)
    _reference(second_store, path.name, data)
    stream = _ingest(settings, store, path, monkeypatch)
    assert (stream.file_statements, stream.refused_chunks) == (0, 1)
    got = _same(store, second_store)
    assert len(got["gc_events"]) == 300
    assert store.scalar(f"SELECT max(incarnation) FROM {store.database}.gc_events") == 2


@pytest.mark.parametrize("kind", ["more lines than a batch", "gzip"])
def test_files_the_engine_does_not_read_in_place(settings, store, second_store, tmp_path, monkeypatch, kind) -> None:
    data = b"\n".join(_gc_lines("go1.27.3-storm.txt")[:300]) + b"\n"
    path = tmp_path / "other.log"
    path.write_bytes(gzip.compress(data) if kind == "gzip" else data)
    _reference(second_store, path.name, data)
    stream = _ingest(settings, store, path, monkeypatch, batch=200 if kind != "gzip" else 1_000)
    assert stream.file_statements == 0 and stream.clean_chunks >= 1 and stream.stats.lines == 300
    assert len(_same(store, second_store)["gc_events"]) == 300


@pytest.mark.parametrize(("name", "in_place"), [("plain-text.gz", True), ("gc{1,2}.log", False), ("gc*.log", False)])
def test_names_are_not_read_as_codecs_or_patterns(settings, store, second_store, tmp_path, monkeypatch, name,
                                                  in_place) -> None:
    """A plain file whose name ends like a codec's is read as it is (no gunzip by name); a name file() would read as
    a pattern of names is read by Python (a neighbour matching the pattern must not be read)."""
    data = b"\n".join(_gc_lines("go1.27.3-storm.txt")[:200]) + b"\n"
    (tmp_path / "gc1.log").write_bytes(b"\n".join(_gc_lines("go1.27.3-storm.txt")[:50]) + b"\n")  # a neighbour
    path = tmp_path / name
    path.write_bytes(data)
    _reference(second_store, path.name, data)
    stream = _ingest(settings, store, path, monkeypatch)
    assert stream.file_statements == (1 if in_place else 0) and stream.stats.lines == 200
    assert len(_same(store, second_store)["gc_events"]) == 200


def test_crlf_line_ends_give_the_reference_rows(settings, store, second_store, tmp_path, monkeypatch) -> None:
    data = b"\r\n".join(_gc_lines("go1.27.3-storm.txt")[:200]) + b"\r\n"
    path = tmp_path / "crlf.log"
    path.write_bytes(data)
    _reference(second_store, path.name, data)
    stream = _ingest(settings, store, path, monkeypatch)
    assert stream.stats.lines == 200
    assert len(_same(store, second_store)["gc_events"]) == 200
