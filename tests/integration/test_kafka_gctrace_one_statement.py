"""A Kafka gctrace batch of plain gc lines stored by one engine statement (sql/fastpath/observed_batch.sql), against
the Python normalizer, the reference, on the real engine.

The statement takes the messages' values as they are and does the splitting, recognition, parsing and insert; a
batch with any line it does not take is refused whole, stores nothing, and goes through the stage path. Both
paths write one block under the batch's gc_events token, so a batch written one way and replayed the other, or
replayed by a worker after a crash before its commit, lands once.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import Settings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.normalize.runtime_lines import parse_gc
from pipeline.sink import Sink
from pipeline.sources.kafka.delivery import BatchResult, write_batch
from pipeline.sources.kafka.gctrace_engine import CleanInput, KafkaGctraceEngine, _one_line_input, clean_input
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext
from tests.conftest import DATA
from tests.plugins.kafka_pipeline import (
    create_topics,
    engine_batch_stored_then_owner_died,
    kafka_settings,
    run_worker,
)

pytestmark = [pytest.mark.integration]

SAMPLES = DATA / "go-runtime"
TABLES = ("gc_events", "scavenger_events", "pacer_events", "runtime_notices", "otel_logs", "quarantine")
RECEIVED = datetime(2026, 12, 6, 8, 0, 0, 123000, tzinfo=UTC)
BASE_MS = 1_796_119_200_000
MAX_BYTES = 1 << 20


def _engine(settings: Settings, store: Store) -> KafkaGctraceEngine:
    return KafkaGctraceEngine(store, settings.sql_dir, RenderContext(store.database, settings.retention_days),
                              min_lines=1)


def _gc_lines() -> list[str]:
    """Every plain gc summary line of the captures (Go 1.6 to 1.27 forms: stacks, forced, leak checks)."""
    return [line for p in sorted(SAMPLES.glob("*.txt")) for line in p.read_text(encoding="utf-8").splitlines()
            if line.startswith("gc ") and not line.startswith("gc #") and parse_gc(line) is not None
            and re.search(r" P(?: \(forced\))?$", line)]


def _messages(values: list[tuple[bytes | None, bytes]], *, headers: bool = False) -> list[KafkaMessage]:
    """(value, key) pairs -> messages of one partition, each with its own time."""
    return [KafkaMessage(topic="gctrace", partition=0, offset=i, timestamp_ms=BASE_MS + 7 * i, key=key, value=value,
                         headers=((("service", b"hdr"), ("instance", key)) if headers and i % 5 == 0 else ()))
            for i, (value, key) in enumerate(values)]


def _table(store: Store, table: str) -> list[tuple]:
    return sorted(store.rows(f"SELECT * FROM {store.database}.{table}"), key=repr)


def _plain_batch(lines: list[str], per_message: int, identities: int) -> list[KafkaMessage]:
    """Plain gc lines only, in the shapes shippers send them: identities taking turns, prefixes, CRLF line ends,
    a final newline, trailing blanks."""
    lines = list(lines)
    for i in range(0, len(lines), 97):
        lines[i] = f"2026-12-06T05:00:{i % 60:02d}Z stderr F {lines[i]}"  # a printable shipper prefix
    for i in range(13, len(lines), 89):
        lines[i] += " \t"
    values: list[tuple[bytes | None, bytes]] = []
    for n, first in enumerate(range(0, len(lines), per_message)):
        chunk = lines[first:first + per_message]
        if n % 3 == 1:
            value = "\r\n".join(chunk) + "\r\n"
        elif n % 3 == 2:
            value = "\n".join(chunk) + "\n"
        else:
            value = "\n".join(chunk)
        values.append((value.encode(), f"api/pod-{n % identities}".encode()))
    return _messages(values, headers=True)


def _reference_then_engine(engine: KafkaGctraceEngine, store: Store, second_store: Store,
                           messages: list[KafkaMessage], token: str) -> tuple[BatchResult, BatchResult]:
    """The batch written by the reference normalizer into `store`, then by the engine path into `second_store`."""
    ref = write_batch(Sink(store), Kind.gctrace, messages, token, received_at=RECEIVED, otlp_encoding="",
                      max_message_bytes=MAX_BYTES)
    fast = write_batch(Sink(second_store), Kind.gctrace, messages, token, received_at=RECEIVED, otlp_encoding="",
                       max_message_bytes=MAX_BYTES, gctrace_engine=engine)
    return ref, fast


def _assert_same_tables(store: Store, second_store: Store) -> None:
    for table in TABLES:
        assert _table(second_store, table) == _table(store, table), table


@pytest.mark.parametrize(("per_message", "identities"), [(1, 7), (100, 3), (1000, 1)])
def test_plain_batches_take_one_statement_and_give_the_reference_rows(settings, store, second_store, per_message,
                                                                      identities) -> None:
    gc_lines = _gc_lines()
    messages = _plain_batch(gc_lines, per_message, identities)
    assert clean_input(messages, MAX_BYTES) is not None
    engine = _engine(settings, second_store)
    try:
        token = "kafka/g/gctrace/0/0-1"
        ref, fast = _reference_then_engine(engine, store, second_store, messages, token)
    finally:
        engine.close()
    assert engine.clean_batches == 1 and engine.refused_batches == 0
    assert fast.rows == ref.rows == {"gc_events": len(gc_lines)} and fast.poisoned == ref.poisoned == 0
    _assert_same_tables(store, second_store)


@pytest.mark.parametrize("bad", ids=["gc number out of range", "Go 1.5", "P out of range"], argvalues=[
    "gc 99999999999 @1.000s 1%: 0.1+0.2+0.3 ms clock, 0.1+0.2/0.3/0.4+0.5 ms cpu, 4->4->2 MB, 5 MB goal, 8 P",
    "gc #7 @0.512s 2%: 0+1+0+0+0 ms clock, 0+0/0/0+0 ms cpu, 4->4->2 MB, 5 MB goal, 4 P",  # Go 1.5: not taken
    "gc 5 @1.0s 1%: 0.1+0.2+0.3 ms clock, 0.1+0.2/0.3/0.4+0.5 ms cpu, 4->4->2 MB, 5 MB goal, 0000000 P",
])
def test_a_batch_with_one_line_the_statement_does_not_take_stores_nothing_then_takes_the_stage_path(
        settings, store, second_store, bad) -> None:
    gc_lines = _gc_lines()
    lines = (gc_lines * (20_000 // len(gc_lines) + 1))[:20_000]
    lines[-2] = bad  # the next-to-last line of a 20,000-line batch
    messages = _plain_batch(lines, 1000, 2)
    assert clean_input(messages, MAX_BYTES) is not None  # the byte test lets it through: the engine decides
    _refused_then_stage_path(settings, store, second_store, messages, "kafka/g/gctrace/0/0-100")


@pytest.mark.parametrize("bad", ids=["Go 1.5", "no marker, then two"], argvalues=[
    ["gc #7 @0.512s 2%: 0+1+0+0+0 ms clock, 0+0/0/0+0 ms cpu, 4->4->2 MB, 5 MB goal, 4 P"],
    ["app log", "{line} {line}"],  # the marker counted over the batch matches its lines: the statement refuses
])
def test_a_one_line_batch_with_a_line_the_statement_does_not_take_stores_nothing_then_takes_the_stage_path(
        settings, store, second_store, bad) -> None:
    gc_lines = _gc_lines()
    lines = (gc_lines * (20_000 // len(gc_lines) + 1))[:20_000]
    for i, line in enumerate(bad):
        lines[-2 - i] = line.format(line=gc_lines[0])
    messages = _one_line_messages(lines, 3)
    encoded = clean_input(messages, MAX_BYTES)
    assert encoded is not None and encoded.one_line  # the byte test lets it through: the engine decides
    _refused_then_stage_path(settings, store, second_store, messages, "kafka/g/gctrace/0/0-20000")


def _refused_then_stage_path(settings: Settings, store: Store, second_store: Store, messages: list[KafkaMessage],
                             token: str) -> None:
    """The engine refuses `messages` whole (nothing stored); the next try takes the stage path, whose rows and
    quarantine are the reference's, table by table."""
    engine = _engine(settings, second_store)
    try:
        assert engine.write_clean(messages, Sink(second_store), token, received_at=RECEIVED,
                                  max_message_bytes=MAX_BYTES) is None
        assert engine.refused_batches == 1
        assert second_store.scalar(f"SELECT count() FROM {second_store.database}.gc_events") == 0
        engine._skip = 0  # the refusal's back-off would send the next batch to the stage path at once
        ref, fast = _reference_then_engine(engine, store, second_store, messages, token)
    finally:
        engine.close()
    assert engine.refused_batches == 2 and engine.clean_batches == 0
    assert fast.rows == ref.rows and fast.poisoned == ref.poisoned
    _assert_same_tables(store, second_store)


def _one_line_messages(lines: list[str], identities: int) -> list[KafkaMessage]:
    """One line per message with no line terminator (as line shippers send), identities taking turns (some named
    by headers), record times shared by runs of messages (as a producer's batch stamps them) and out of order."""
    out = []
    for i, line in enumerate(lines):
        if i % 97 == 0:
            line = f"2026-12-06T05:00:{i % 60:02d}Z stderr F {line}"
        elif i % 89 == 13:
            line += " \t\r"
        key = f"api/pod-{i % identities}".encode()
        out.append(KafkaMessage(topic="gctrace", partition=0, offset=i,
                                timestamp_ms=BASE_MS + ((i // 40) % 9) * 1000 - (i % 3), key=key,
                                value=line.encode(),
                                headers=(("service", b"hdr"), ("instance", key)) if i % 5 == 0 else ()))
    return out


def test_one_line_batches_go_in_as_one_row_with_the_reference_rows(settings, store, second_store) -> None:
    """A batch of one line per message is encoded in bulk as one input row (times, identities, the lines joined)
    for observed_one_line.sql: the rows are the reference's all the same, record times shared by runs of messages,
    out of order, identities by key and by headers."""
    messages = _one_line_messages(_gc_lines() * 3, identities=7)
    encoded = _one_line_input(messages, MAX_BYTES)
    assert isinstance(encoded, CleanInput) and encoded.one_line
    assert encoded.lines == len(messages) and len(encoded.identities) == 14
    engine = _engine(settings, second_store)
    try:
        token = "kafka/g/gctrace/0/0-1"
        ref, fast = _reference_then_engine(engine, store, second_store, messages, token)
    finally:
        engine.close()
    assert engine.clean_batches == 1 and engine.refused_batches == 0
    assert fast.rows == ref.rows == {"gc_events": len(messages)} and fast.poisoned == ref.poisoned == 0
    _assert_same_tables(store, second_store)


def test_the_byte_test_sends_what_the_reference_reads_otherwise_to_the_stage_path() -> None:
    line = _gc_lines()[0]
    ok = [(line.encode(), b"api/a")]
    assert clean_input(_messages(ok), MAX_BYTES) is not None
    for value in (None, b"", f"[{line}".encode(), f" \x1c{{{line}".encode(), f"{line}\n\n{line}".encode(),
                  f"{line}\napp log".encode(), f"név {line}".encode(), line.encode() + b"\xff",
                  f"{line}\n".encode() * 10_000, b"app log", f"{line} {line}".encode(), f"x{line}".encode() * 500):
        assert clean_input(_messages([*ok, (value, b"api/a")]), 64 * 1024) is None, value and value[:40]
        assert clean_input(_messages([(value, b"api/a"), *ok]), 64 * 1024) is None, value and value[:40]


@pytest.mark.parametrize("one_line", [False, True], ids=["300 lines per message", "one line per message"])
@pytest.mark.parametrize("first_one_statement", [True, False])
def test_a_batch_replayed_the_other_way_lands_once(settings, store, first_one_statement, one_line) -> None:
    """One statement and the stage path write the same single block under the batch's token: whichever wrote
    first, the other's replay is dropped as a repeat (the batch is far larger than one client insert block)."""
    gc_lines = _gc_lines()
    lines = (gc_lines * (30_000 // len(gc_lines) + 1))[:30_000]
    messages = _one_line_messages(lines, 4) if one_line else _plain_batch(lines, 300, 4)
    assert (clean_input(messages, MAX_BYTES) or pytest.fail("not clean")).one_line is one_line
    engine = _engine(settings, store)
    counts = f"SELECT count(), sum(gc_num), min(ts), max(ts) FROM {store.database}.gc_events"
    try:
        token = "kafka/g/gctrace/0/0-100"
        results = []
        for one_statement in (first_one_statement, not first_one_statement, first_one_statement):
            engine.one_statement = one_statement
            results.append(write_batch(Sink(store), Kind.gctrace, messages, token, received_at=RECEIVED,
                                       otlp_encoding="", max_message_bytes=MAX_BYTES, gctrace_engine=engine))
            assert store.scalar(f"SELECT count() FROM {store.database}.gc_events") == len(lines)
        once = store.rows(counts)[0]
    finally:
        engine.close()
    assert engine.clean_batches == 2 if first_one_statement else 1
    assert all(r.rows == {"gc_events": len(lines)} for r in results)
    assert once[0] == len(lines)


def test_a_worker_replays_a_batch_stored_by_one_statement_before_the_crash(settings, store, kafka_bootstrap,
                                                                            kafka_names, producer,
                                                                            kafka_client) -> None:
    """A worker stored a planned batch with one statement and died before committing; the next owner replays the
    plan: the same rows, once."""
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 1})
    gc_lines = _gc_lines()
    lines = (gc_lines * (20_000 // len(gc_lines) + 1))[:20_000]
    values = ["\n".join(lines[i:i + 500]) for i in range(0, len(lines), 500)]
    engine = engine_batch_stored_then_owner_died(settings, store, kafka_bootstrap, kafka_names.group, producer, topic,
                                                 values, key=b"api/crash", timestamp_ms=BASE_MS,
                                                 planned_at=datetime.now(UTC) - timedelta(days=1),
                                                 max_message_bytes=MAX_BYTES)
    assert engine.clean_batches == 1
    rows_sql = (f"SELECT count(), sum(gc_num), sum(heap_live_mb), min(ts), max(ts), max(received_at) "
                f"FROM {store.database}.gc_events")
    before = store.rows(rows_sql)[0]
    assert before[0] == len(lines)

    worker = run_worker(kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_seconds=30.0,
                                       client=kafka_client), store)
    assert store.rows(rows_sql)[0] == before
    assert worker.gctrace_engine is not None and worker.gctrace_engine.clean_batches == 1
