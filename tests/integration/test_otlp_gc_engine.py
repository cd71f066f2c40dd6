"""OTLP log bodies that are all plain gc lines are parsed by the engine (pipeline/normalize/plain_gc.py,
sql/fastpath/otlp_gc_insert.sql); every other resource goes through the Python normalizer, the reference. This
proves the two give identical rows in EVERY output table and identical answers, over every real capture in
tests/data (Go 1.19 and 1.27, storms, forced cycles, gctrace=2, interleaved output, the Go 1.26 leak-check form)
and tests/data/plumbing.txt (prefixes, trailing blanks, torn and broken lines), cut into requests of consecutive
lines, plus the same gc lines behind shipper prefixes; and that a request retried with its token lands once.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from pipeline.config import Settings
from pipeline.normalize.otlp import normalize_request
from pipeline.normalize.plain_gc import GC_LINES_TABLE
from pipeline.normalize.rows import Rows
from pipeline.sink import BatchingWriter, EngineGcLines, Sink
from pipeline.sqlfiles import RenderContext
from pipeline.store.client import Store

pytestmark = [pytest.mark.integration]

DATA = Path(__file__).resolve().parents[1] / "data"
CAPTURES = [*sorted((DATA / "go-runtime").glob("*.txt")), DATA / "plumbing.txt"]
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "cancel_events",
          "quarantine")
BASE_NS = 1_796_119_200_000_000_000  # 2026-12-01T10:00:00Z
RECEIVED = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
PREFIXES = ("", "2026-12-01T10:00:00.123Z node-3 ", "[pod-7] ", "stderr F ")


def _request(lines: list[str], instance: str, first: int, *, attributed: bool = False) -> ExportLogsServiceRequest:
    """One resource of consecutive lines, one record each, 50 ms apart. `attributed` gives every record an
    attribute, which keeps the resource out of the bulk check (pipeline/normalize/otlp_logs._all_plain_resource):
    its plain lines are found by the per-record loop."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend([
        KeyValue(key="service.name", value=AnyValue(string_value="eq")),
        KeyValue(key="service.instance.id", value=AnyValue(string_value=instance)),
    ])
    records = resource_logs.scope_logs.add().log_records
    for i, line in enumerate(lines):
        record = records.add()
        record.time_unix_nano = BASE_NS + (first + i) * 50_000_000
        record.body.string_value = line
        if attributed:
            record.attributes.add(key="log.iostream", value=AnyValue(string_value="stderr"))
    return request


def _variants(lines: list[str]) -> list[str]:
    """The Go 1.19 gc lines in forms the captures lack: Go 1.6-1.17 (no stacks and globals), trailing blanks and
    carriage returns, numbers too large for their columns (the reference quarantines them), a runtime head inside
    the prefix, and a torn line's head."""
    out = []
    for i, line in enumerate(line for line in lines if line.startswith("gc ")):
        old = re.sub(r", \d+ MB stacks, \d+ MB globals", "", line)
        out += [old, old + " \t\r", line + "  "]
        if i % 25 == 0:
            out += [line.replace(" MB goal", "0000000000000000000 MB goal"), "scvg: gc " + line[3:],
                    re.sub(r" \d+%:", " 300%:", line), line[:60]]
    return out


def requests(capture: Path) -> Iterator[ExportLogsServiceRequest]:
    """A capture cut into requests of 40 consecutive lines (most mixed, some all gc lines), then its gc lines alone
    in requests of 200 (all plain), once per prefix."""
    lines = capture.read_text(encoding="utf-8").splitlines()
    if capture.name.startswith("go1.19.8-storm."):
        lines += _variants(lines)
    for start in range(0, len(lines), 40):
        yield _request(lines[start:start + 40], capture.stem, start)
    gc_lines = [line for line in lines if line.startswith("gc ")]
    for p, prefix in enumerate(PREFIXES):
        for start in range(0, len(gc_lines), 200):
            chunk = [prefix + line for line in gc_lines[start:start + 200]]
            yield _request(chunk, f"{capture.stem}-p{p}", start, attributed=start % 400 == 0)
    yield from _joined_shapes(gc_lines[:400], capture.stem)


def _joined_shapes(gc_lines: list[str], stem: str) -> Iterator[ExportLogsServiceRequest]:
    """Plain gc lines in the shapes the bulk check reads joined (pipeline/normalize/plain_gc.plain_text): two lines
    in one body (a line end of its own: the bulk check must refuse it, the per-record loop splits it), a body ending
    in a line end, and a resource of several scopes, each all plain."""
    if len(gc_lines) < 40:
        return
    pairs = [f"{a}\n{b}" for a, b in zip(gc_lines[0:40:2], gc_lines[1:40:2], strict=True)]
    yield _request(gc_lines[40:60] + pairs[:1] + gc_lines[60:80], f"{stem}-pair1", 0)
    yield _request(pairs, f"{stem}-pairs", 100)
    yield _request([line + "\n" for line in gc_lines[80:100]], f"{stem}-ended", 200)
    request = _request(gc_lines[100:150], f"{stem}-scopes", 300)
    more = request.resource_logs[0].scope_logs.add()
    more.scope.name = "second"
    for i, line in enumerate(gc_lines[150:200]):
        record = more.log_records.add()
        record.time_unix_nano = BASE_NS + (350 + i) * 50_000_000
        record.body.string_value = line
    yield request


def _table(store: Store, table: str) -> list[tuple]:
    return store.rows(f"SELECT * FROM {store.database}.{table} ORDER BY ALL")


def test_engine_path_equals_reference_in_every_table(two_stores: tuple[Store, Store]) -> None:
    ref_store, eng_store = two_stores
    ref_sink, eng_sink = Sink(ref_store), Sink(eng_store)
    engine_lines = 0
    for capture in CAPTURES:  # the requests of one capture merged into one write, as the OTLP writer merges them
        ref_merged, eng_merged = Rows(), Rows()
        for request in requests(capture):
            ref_rows, eng_rows = Rows(), Rows()
            ref = normalize_request("logs", request, rows=ref_rows, source="otlp_http", received_at=RECEIVED)
            eng = normalize_request("logs", request, rows=eng_rows, source="otlp_http", received_at=RECEIVED,
                                    plain_gc=True)
            assert (eng.accepted, eng.rejected, eng.error_message) == (ref.accepted, ref.rejected, ref.error_message)
            assert eng_rows.total() == ref_rows.total()
            engine_lines += eng_rows.count(GC_LINES_TABLE)
            ref_merged.extend(ref_rows)
            eng_merged.extend(eng_rows)
        ref_sink.write(ref_merged)
        eng_sink.write(eng_merged)
    # The engine path was taken for most gc lines, in every form.
    assert engine_lines > 10_000
    formats = eng_store.rows(f"SELECT groupUniqArray(format), countIf(forced = 1), countIf(line_prefix != '') "
                             f"FROM {eng_store.database}.gc_events")[0]
    assert set(formats[0]) >= {"go1.6", "go1.18", "go1.26"} and formats[1] > 0 and formats[2] > 0
    for table in TABLES:
        ref_rows_t, eng_rows_t = _table(ref_store, table), _table(eng_store, table)
        assert len(eng_rows_t) == len(ref_rows_t), table
        assert eng_rows_t == ref_rows_t, table


def test_a_retried_request_is_stored_once_merged_or_alone(two_stores: tuple[Store, Store]) -> None:
    """The engine path keeps the writer's dedup: a request written alone carries its token into the engine's
    insert (a replay of the same write lands once); merged requests are recognised by the writer's tokens."""
    _, store = two_stores
    lines = [line for line in (DATA / "go-runtime" / "go1.27.3-storm.txt").read_text().splitlines()
             if line.startswith("gc ")][:300]
    first, second = _request(lines[:150], "a", 0), _request(lines[150:], "b", 150)

    def rows_of(request: ExportLogsServiceRequest) -> Rows:
        rows = Rows()
        normalize_request("logs", request, rows=rows, source="otlp_grpc", received_at=RECEIVED, plain_gc=True)
        assert rows.count(GC_LINES_TABLE) == len(request.resource_logs[0].scope_logs[0].log_records)
        return rows

    sink = Sink(store)
    assert sink.write(rows_of(first), token="otlp/logs/first") == {GC_LINES_TABLE: 150}
    sink.write(rows_of(first), token="otlp/logs/first")  # a replay of the same write, after a lost answer
    writer = BatchingWriter(sink, max_delay=0.2).start()
    try:
        futures = [writer.submit(rows_of(second), token="otlp/logs/second"),
                   writer.submit(rows_of(second), token="otlp/logs/second")]
        for future in futures:
            future.result(timeout=60)
    finally:
        writer.stop()
    counts = store.rows(f"SELECT instance, count() FROM {store.database}.gc_events GROUP BY instance ORDER BY instance")
    assert counts == [("a", 150), ("b", 150)]


def test_lines_the_engine_refuses_are_stored_by_the_reference(two_stores: tuple[Store, Store], tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Should the engine refuse the statement, the lines are normalized in Python and stored, not lost: here the
    statement of a copy of sql/ fails in the engine (a real error: throwIf on every line)."""
    caplog.set_level(logging.WARNING, logger="pipeline.sink")
    ref_store, eng_store = two_stores
    sql_dir = tmp_path / "sql"
    shutil.copytree(Settings.model_fields["sql_dir"].default, sql_dir)
    statement = sql_dir / "fastpath" / "otlp_gc_insert.sql"
    text = statement.read_text()
    refused = text.replace(" AS pair\n", " AS pair WHERE NOT throwIf(length(text) > 0, 'refused')\n", 1)
    assert refused != text
    statement.write_text(refused)
    eng_sink = Sink(eng_store, gc_lines=EngineGcLines(eng_store, sql_dir, RenderContext(eng_store.database, 30)))
    lines = (DATA / "go-runtime" / "go1.27.3-storm.txt").read_text().splitlines()
    request = _request([line for line in lines if line.startswith("gc ")][:40], "refused", 0)
    for sink, plain in ((Sink(ref_store), False), (eng_sink, True)):
        rows = Rows()
        normalize_request("logs", request, rows=rows, source="otlp_http", received_at=RECEIVED, plain_gc=plain)
        assert rows.count(GC_LINES_TABLE) == (40 if plain else 0)
        sink.write(rows, token="otlp/logs/refused")
        sink.write(rows, token="otlp/logs/refused")  # replayed: still once
    assert caplog.text.count("the engine refused 40 plain gc lines") == 2
    for table in TABLES:
        assert _table(eng_store, table) == _table(ref_store, table), table
    assert len(_table(eng_store, "gc_events")) == 40
