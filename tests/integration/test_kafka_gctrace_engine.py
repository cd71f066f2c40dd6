"""Kafka gctrace batches through the engine (pipeline/sources/kafka/gctrace_engine.py) against the Python
normalizer, the reference: the same planned batch is written by `write_batch` with and without the engine, each
into a database of its own on the real engine, and every row of every table (quarantine included) must be
identical.

Batches are built to be hard: every capture in tests/data/go-runtime and the plumbing capture, one line per
message and many lines per message, identities interleaved (so runs begin and end everywhere), JSON envelopes,
tombstones, values that are not UTF-8 or too large between them, runtime lines torn across messages, restarts,
out-of-range numbers, Unicode digits and shipper prefixes. A replayed batch must land once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.config import Settings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.sink import Sink
from pipeline.sources.kafka.delivery import write_batch
from pipeline.sources.kafka.gctrace_engine import KafkaGctraceEngine
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
MAX_BYTES = 64 * 1024


def _messages(values: list[tuple[bytes | None, bytes]]) -> list[KafkaMessage]:
    """(value, key) pairs -> messages of one partition, each with its own time (a few ms apart)."""
    return [KafkaMessage(topic="gctrace", partition=0, offset=i, timestamp_ms=BASE_MS + 7 * i, key=key, value=value)
            for i, (value, key) in enumerate(values)]


def _table(store: Store, table: str) -> list[tuple]:
    return sorted(store.rows(f"SELECT * FROM {store.database}.{table}"), key=repr)


def _both(settings: Settings, ref: Store, fast: Store, batches: list[list[KafkaMessage]], *, min_lines: int = 1,
          replay: bool = False) -> tuple[KafkaGctraceEngine, dict[str, int]]:
    engine = KafkaGctraceEngine(fast, settings.sql_dir, RenderContext(fast.database, settings.retention_days),
                                min_lines=min_lines)
    counts: dict[str, int] = {}
    try:
        for n, batch in enumerate(batches):
            token = f"kafka/g/gctrace/0/{n}"
            ref_result = write_batch(Sink(ref), Kind.gctrace, batch, token, received_at=RECEIVED, otlp_encoding="",
                                     max_message_bytes=MAX_BYTES)
            for _ in range(2 if replay else 1):
                fast_result = write_batch(Sink(fast), Kind.gctrace, batch, token, received_at=RECEIVED,
                                          otlp_encoding="", max_message_bytes=MAX_BYTES, gctrace_engine=engine)
                assert fast_result.poisoned == ref_result.poisoned
                assert fast_result.rows == ref_result.rows
            for table, k in ref_result.rows.items():
                counts[table] = counts.get(table, 0) + k
    finally:
        engine.close()
    for table in TABLES:
        assert _table(fast, table) == _table(ref, table), table
    assert fast.scalar("SELECT count() FROM system.tables WHERE database = {db:String} AND name LIKE 'kafka_gctrace_%'",
                       {"db": fast.database}) == 0  # the stage table is dropped
    return engine, counts


def _captures() -> dict[str, list[str]]:
    found = {p.stem: p.read_text(encoding="utf-8").split("\n") for p in sorted(SAMPLES.glob("*.txt"))}
    found["plumbing"] = (DATA / "plumbing.txt").read_text(encoding="utf-8").split("\n")
    return found


def _interleaved(streams: dict[str, list[str]], per_message: int, stride: int) -> list[tuple[bytes | None, bytes]]:
    """Every stream's lines, `per_message` lines per value, streams taking turns every `stride` messages."""
    queues = {name: [("\n".join(lines[i:i + per_message])).encode() for i in range(0, len(lines), per_message)]
              for name, lines in streams.items()}
    out: list[tuple[bytes | None, bytes]] = []
    while any(queues.values()):
        for name, queue in queues.items():
            out += [(value, f"api/{name}".encode()) for value in queue[:stride]]
            del queue[:stride]
    return out


@pytest.mark.parametrize(("per_message", "stride", "batch"), [(1, 37, 20_000), (1, 1, 3_001), (250, 3, 40)])
def test_every_capture_gives_identical_rows(settings, store, second_store, per_message, stride, batch) -> None:
    values = _interleaved(_captures(), per_message, stride)
    messages = _messages(values)
    batches = [messages[i:i + batch] for i in range(0, len(messages), batch)]
    engine, counts = _both(settings, store, second_store, batches)
    assert counts["gc_events"] > 3000 and counts["otel_logs"] > 0 and counts["quarantine"] > 0
    assert counts["scavenger_events"] > 0 and counts["pacer_events"] > 0
    assert engine.engine_lines > counts["gc_events"] * 9 // 10  # the engine stored almost every gc line


def test_torn_restarted_odd_and_whole_message_failures_give_identical_rows(settings, store, second_store) -> None:
    storm = (SAMPLES / "go1.27.3-storm.txt").read_text().splitlines()
    scav = [line for line in (SAMPLES / "go1.19.8-storm.txt").read_text().splitlines() if not line.startswith("gc ")]
    gc_lines = [line for line in storm if line.startswith("gc ")]
    lines = gc_lines[:150] + gc_lines[:80] + scav[:20] + gc_lines[40:200]  # restarts: observed time, incarnation 0
    lines[10] = lines[10][:25]                                   # torn, never completed
    lines[20] = lines[20][:30] + "app: hello"                    # split by foreign output...
    lines.insert(21, gc_lines[19][30:])                          # ...with the wrong tail
    lines[40] = lines[40].replace(" P", "0000000 P")             # P count out of range for the column
    lines[50] = lines[50].replace("gc 51 ", "gc 99999999999 ")   # gc number out of range
    lines[60] = lines[60].replace("gc 61 ", "gc ٦١ ")            # Unicode digits: Python's \d takes them
    lines[70] = "2026-12-06T05:00:00Z stderr F " + lines[70]    # a shipper prefix
    lines[72] = "2026-12-06 05:00:01\t" + lines[72]                # a prefix ending in a tab
    lines[74] = "név\u00a0" + lines[74]                          # non-ASCII, a no-break space
    lines[76] = lines[76] + "  \t"                               # trailing blanks
    lines[78] = "pacer: x " + lines[78]                           # another runtime head in the prefix
    lines[80] = lines[80] + "\r"
    lines[90] = lines[90][:70]                                   # a gc line cut in two messages...
    lines.insert(91, "2026/12/06 app log between the pieces")
    lines.insert(92, gc_lines[89][70:])                          # ...completed two messages later
    values: list[tuple[bytes | None, bytes]] = [(line.encode(), b"api/odd") for line in lines]
    values[5:5] = [(b"\xff\xfe " + gc_lines[3].encode(), b"api/odd")]    # not UTF-8: quarantined whole
    values[30:30] = [(None, b"api/odd")]                                  # a tombstone between lines of one run
    values[45:45] = [(json.dumps({"service": "api", "instance": "odd", "lines": gc_lines[5:8]}).encode(),
                      b"api/odd")]                                        # a JSON envelope in the middle
    values[55:55] = [(b"gc 1 " + b"x" * MAX_BYTES, b"api/odd")]          # too large
    values[100:100] = [(f"{gc_lines[1]}\n{gc_lines[2]}\n\nnot runtime\n".encode(), b"api/other")]
    values[101:101] = [(line.encode(), b"api/odd") for line in gc_lines[:5]]  # back to the first identity
    engine, counts = _both(settings, store, second_store, [_messages(values)])
    assert counts["quarantine"] >= 5 and engine.engine_lines > 300
    assert store.scalar(f"SELECT max(incarnation) FROM {store.database}.gc_events") == 0


def test_only_batches_with_enough_lines_are_planned_for_the_engine(settings, store) -> None:
    gc_lines = (SAMPLES / "go1.27.3-steady.txt").read_text().splitlines()[:300]
    messages = _messages([(line.encode(), b"api/small") for line in gc_lines])
    ctx = RenderContext(store.database, settings.retention_days)
    engine = KafkaGctraceEngine(store, settings.sql_dir, ctx, min_lines=64)
    assert not engine.wants(messages[:63]) and engine.wants(messages[:64])
    assert engine.wants(_messages([("\n".join(gc_lines[:64]).encode(), b"api/one")]))
    assert not KafkaGctraceEngine(store, settings.sql_dir, ctx, enabled=False).wants(messages)


def test_a_replayed_batch_lands_once(settings, store, second_store) -> None:
    values = _interleaved({name: lines[:400] for name, lines in _captures().items()}, 1, 5)
    messages = _messages(values)
    engine, counts = _both(settings, store, second_store, [messages[:2000], messages[2000:]], replay=True)
    assert engine.engine_lines > 0 and counts["gc_events"] > 500


def test_a_replay_follows_the_path_its_plan_recorded(settings, store, kafka_bootstrap, kafka_names, producer,
                                                     kafka_client) -> None:
    """A worker planned a batch for the engine, wrote its rows and died before committing; the next owner runs with
    `kafka.gctrace_engine` off (or an older setting) and must still write that batch the engine's way: the plan says
    so. The batch is far larger than one client insert block, so the Python path's insert of the same rows would
    not be recognised as a repeat."""
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 1})
    gc_lines = [line for p in sorted(SAMPLES.glob("*.txt")) for line in p.read_text().splitlines()
                if line.startswith("gc ")]
    lines = (gc_lines * (30_000 // len(gc_lines) + 1))[:30_000]
    lines[5] = lines[5][:50]  # one torn line: quarantined
    values = ["\n".join(lines[i:i + 100]) for i in range(0, len(lines), 100)]
    # The plan was recorded yesterday and is replayed today. Its rows are partitioned by their receive day, and
    # ClickHouse keeps tokens per partition: the replay must stamp them with the plan's time, as the first write did.
    engine_batch_stored_then_owner_died(settings, store, kafka_bootstrap, kafka_names.group, producer, topic, values,
                                        key=b"api/big", timestamp_ms=BASE_MS,
                                        planned_at=datetime.now(UTC) - timedelta(days=1),
                                        max_message_bytes=MAX_BYTES)
    counts_sql = (f"SELECT (SELECT count() FROM {store.database}.gc_events), "
                  f"(SELECT count() FROM {store.database}.quarantine)")
    before = store.rows(counts_sql)[0]
    assert before[0] > len(lines) * 9 // 10 and before[1] >= 1

    worker = run_worker(kafka_settings(settings, kafka_bootstrap, kafka_names, gctrace_engine=False,
                                       batch_max_seconds=30.0, client=kafka_client), store)
    assert store.rows(counts_sql)[0] == before
    assert worker.gctrace_engine is not None and worker.gctrace_engine.engine_lines > len(lines) * 9 // 10
