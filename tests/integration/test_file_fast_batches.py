"""How a plain file is cut into fast-path batches (`files._ingest_raw`, `gctrace_fast.RawBatch`), on the real engine.

A batch is handed to the engine as the chunks it was read in, counted once while reading and never joined; the
rows must be the reference's wherever the chunks and the held-back lines fall (one line per chunk included,
which makes the statement's cut fall outside the last chunk), and a file's last batch must be written as its
final one, so no statement is spent on the two lines a full batch holds back.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import Settings
from pipeline.normalize.gctrace import GctraceStream
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources import files
from pipeline.sources.files import iter_raw_chunks
from pipeline.sources.gctrace_fast import FastGctraceStream, GctraceFastPath, RawBatch, raw_lines
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings
from tests.conftest import DATA
from tests.fast_streams import keep_fast_streams

SAMPLES = DATA / "go-runtime"
START_NS = int((datetime.now(UTC) - timedelta(hours=2)).timestamp()) * 10**9
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "quarantine")


def _gc_lines(name: str) -> list[bytes]:
    return [line for line in (SAMPLES / name).read_bytes().splitlines() if line.startswith(b"gc ")]


def _stream(name: str) -> GctraceStream:
    return GctraceStream(service="api", instance=name, source="file", received_at=datetime(2026, 12, 6, tzinfo=UTC),
                         start_ns=START_NS, name=name)


def _fast(settings: Settings, store: Store, name: str) -> FastGctraceStream:
    fast = GctraceFastPath(store, settings.sql_dir, context_from_settings(settings), min_chunk=16)
    return fast.stream(_stream(name), service="api", instance=name, source="file")


def _rows(store: Store) -> dict[str, list[tuple]]:
    return {table: sorted(store.rows(f"SELECT * FROM {store.database}.{table}"), key=repr) for table in TABLES}


def _reference(store: Store, name: str, data: bytes) -> None:
    stream, sink, rows = _stream(name), Sink(store), Rows()
    stream.feed(raw_lines(data), rows, terminated=False)
    stream.finish(rows)
    sink.write(rows)


@pytest.mark.parametrize("chunk", [64, 4096])
def test_batches_of_counted_chunks_store_the_reference_rows(settings, store, second_store, chunk) -> None:
    """Batches given as the chunks a reader got (64-byte reads give one line per chunk), with restarts and a line
    that is not clean, against the reference normalizer fed the same bytes."""
    storm, steady = _gc_lines("go1.27.3-storm.txt"), _gc_lines("go1.19.8-steady.txt")
    data = b"\n".join(storm[:200] + steady[:150] + [b"app: hello"] + storm[:180]) + b"\n"
    name = f"parts-{chunk}"
    _reference(second_store, name, data)

    stream = _fast(settings, store, name)
    parts = list(iter_raw_chunks(io.BytesIO(data), chunk))
    sink = Sink(store)
    batches: list[list[bytes]] = [[]]
    for part in parts:  # batches of at least 60 lines, as the reader cuts them (a whole chunk at a time)
        if sum(p.count(b"\n") for p in batches[-1]) >= 60:
            batches.append([])
        batches[-1].append(part)
    for k, group in enumerate(batches):
        rows = Rows()
        stream.feed_raw(RawBatch(group, sum(p.count(b"\n") for p in group),
                                 sum(p.count(b" ms clock, ") for p in group)), rows, final=k == len(batches) - 1)
        if rows:
            sink.write(rows)
    stream.close()
    assert stream.clean_chunks >= 2 and stream.engine_lines > 300  # the engine took the clean batches

    got, want = _rows(store), _rows(second_store)
    for table in TABLES:
        assert got[table] == want[table], table
    assert len(got["gc_events"]) > 400 and len(got["otel_logs"]) == 1
    assert max(row[1] for row in store.rows(f"SELECT gc_num, incarnation FROM {store.database}.gc_events")) == 3


@pytest.mark.parametrize(("batch", "statements"), [(290, 1), (150, 2)])
def test_a_full_last_batch_is_stored_with_the_stream_end(settings, store, tmp_path, monkeypatch, batch,
                                                         statements) -> None:
    """300 lines read 4 KB at a time: with 290-line batches the batch is full only at the file's end, and is
    stored by one statement with the held-back lines (before, a full batch was written at once and the file's
    last two lines took a statement of their own); with 150-line batches, two statements."""
    lines = _gc_lines("go1.27.3-storm.txt")[:300]
    path = tmp_path / "two-batches.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    streams = keep_fast_streams(monkeypatch)
    monkeypatch.setattr(files, "FAST_BATCH_LINES", batch)
    monkeypatch.setattr(files, "CHUNK_BYTES", 4096)
    fast = GctraceFastPath(store, settings.sql_dir, context_from_settings(settings), min_chunk=16)
    stats = files.ingest_stream(store, files.Input(name=str(path), instance="two"), service="api",
                                start_ns=START_NS, batch_lines=batch, fast=fast)
    assert stats.events == 300 and stats.lines == 300
    (stream,) = streams
    assert stream.clean_chunks == statements and stream.span_batches == 0 and stream.engine_lines == 300
    assert store.scalar(f"SELECT count() FROM {store.database}.gc_events WHERE instance = 'two'") == 300


def test_an_unterminated_last_line_in_a_counted_batch(settings, store, second_store) -> None:
    lines = _gc_lines("go1.27.3-storm.txt")[:120]
    data = b"\n".join(lines)  # no line end after the last line
    _reference(second_store, "unterminated", data)
    stream = _fast(settings, store, "unterminated")
    parts = list(iter_raw_chunks(io.BytesIO(data), 4096))
    assert not parts[-1].endswith(b"\n")
    rows = Rows()
    stream.feed_raw(RawBatch(parts, data.count(b"\n"), data.count(b" ms clock, ")), rows, final=True)
    if rows:
        Sink(store).write(rows)
    stream.close()
    assert stream.clean_chunks == 1
    got, want = _rows(store), _rows(second_store)
    assert got == want and len(got["gc_events"]) == 120


def test_raw_batch_of_bytes_counts_them() -> None:
    data = b"gc 1 @0.1s 0%: 1+1+1 ms clock, x\nnot a gc line\n"
    batch = RawBatch.of(data)
    assert (batch.lines, batch.clock_lines, batch.joined()) == (2, 1, data)
    assert RawBatch.of(b"").parts == [] and RawBatch([b"a\n", b"b"], 1, 0).joined() == b"a\nb"


