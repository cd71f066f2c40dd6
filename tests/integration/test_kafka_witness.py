"""A replayed Kafka batch stores its rows exactly once even when the engine knows its token and lacks its rows.

The state a process killed inside one insert leaves on the embedded engine (the token in the table's
deduplication log, the part never committed) is made here deterministically on the real engine: the batch is
written with its tokens, then its rows of one table are deleted by their witness, which leaves the token recorded.
A write on the tokens alone then stores nothing (the loss the witness closes, checked first, so the state is the
gap's), and a replay with the witness check stores the rows again, once; a second replay changes nothing. The same
holds for an insert cut short (some of its rows stored), for each way a batch is written (columns from Python:
`Store.insert_columns`; an engine `INSERT ... SELECT`: the one-statement path and the stage path), and through the
consumer on the real broker, with both clients.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from pipeline.config import Settings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind, normalize_messages
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources.kafka.delivery import BatchLedger, BatchResult, batch_token, write_batch
from pipeline.sources.kafka.gctrace_engine import KafkaGctraceEngine
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, context_from_settings
from pipeline.witness import ReplayWitness
from tests.plugins.kafka_pipeline import create_topics, gctrace_line, kafka_settings, run_worker

pytestmark = [pytest.mark.integration]

RECEIVED = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC)
BASE_MS = 1_796_119_200_000
MAX_BYTES = 1 << 20
N = 60


def _messages(values: list[str], topic: str = "gctrace") -> list[KafkaMessage]:
    return [KafkaMessage(topic=topic, partition=0, offset=i, timestamp_ms=BASE_MS + 500 * i, key=b"svc/p0",
                         value=v.encode()) for i, v in enumerate(values)]


def _plain(n: int = N) -> list[str]:
    return [gctrace_line(i) for i in range(1, n + 1)]


def _mixed(n: int = N) -> list[str]:
    return [f"{gctrace_line(i)}\napplication line {i}" for i in range(1, n + 1)]


def _engine(settings: Settings, store: Store) -> KafkaGctraceEngine:
    return KafkaGctraceEngine(store, settings.sql_dir, RenderContext(store.database, settings.retention_days),
                              min_lines=1)


def _gc(store: Store) -> dict[str, int]:
    return store.dicts(f"SELECT count() AS rows, uniqExact(instance, gc_num) AS cycles FROM {store.database}.gc_events"
                       )[0]


def _count(store: Store, table: str) -> int:
    return int(store.scalar(f"SELECT count() FROM {store.database}.{table}"))


def _lose(store: Store, table: str, witness: str, where: str = "1") -> None:
    """Delete a stored insert's rows (all, or those matching `where`) and keep its token recorded: the gap's state."""
    store.command(f"DELETE FROM {store.database}.{table} WHERE ingest_batch = {{w:String}} AND {where}",
                  parameters={"w": witness})


# How a batch is written: (its values, whether the gctrace engine path writes it).
PATHS = {
    "insert_columns": (_mixed, False),  # Python rows: gc_events and otel_logs through Store.insert_columns
    "one_statement": (_plain, True),  # observed_batch.sql: the batch's gc rows in one INSERT ... SELECT
    "stage": (_mixed, True),  # stage path: gc rows by observed_insert_staged.sql, otel_logs by insert_columns
}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("lost", ["whole", "partial"])
def test_a_replay_restores_an_insert_whose_token_the_engine_kept(path, lost, settings: Settings,
                                                                  store: Store) -> None:
    values, through_engine = PATHS[path]
    messages = _messages(values())
    token = batch_token("g", "gctrace", 0, 0, len(messages))
    engine = _engine(settings, store) if through_engine else None
    sink = Sink(store)
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))

    def write(replay: ReplayWitness | None) -> BatchResult:
        return write_batch(sink, Kind.gctrace, messages, token, received_at=RECEIVED, otlp_encoding="otlp_proto",
                           max_message_bytes=MAX_BYTES, gctrace_engine=engine, replay=replay)

    first = write(None)
    assert first.rows["gc_events"] == N
    if path == "one_statement":
        assert engine is not None and engine.clean_batches == 1
    logs = _count(store, "otel_logs")
    assert logs == (0 if path == "one_statement" else N)
    gc_witness = f"{token}/gc_events"
    assert witness.stored("gc_events", gc_witness) == N  # every row carries its insert's token

    _lose(store, "gc_events", gc_witness, "gc_num % 2 = 0" if lost == "partial" else "1")
    kept = N // 2 if lost == "partial" else 0
    write(None)  # on the tokens alone: the engine drops the insert, the rows stay lost
    assert _gc(store) == {"rows": kept, "cycles": kept}

    write(witness)
    assert _gc(store) == {"rows": N, "cycles": N}
    assert witness.restored == 1
    assert _count(store, "otel_logs") == logs  # the tables that were stored are not written twice

    write(witness)  # a later replay of the same batch: everything is there, nothing is added
    assert _gc(store) == {"rows": N, "cycles": N}
    assert witness.restored == 1


def test_a_replay_restores_every_table_kind_once(settings: Settings, store: Store) -> None:
    """Both tables of a Python-written batch lost at once (as when neither part landed), and a replay whose own
    retry was lost the same way: the next replay repairs it again."""
    messages = _messages(_mixed())
    token = batch_token("g", "gctrace", 0, 0, N)
    sink = Sink(store)
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))

    def write(replay: ReplayWitness | None) -> None:
        write_batch(sink, Kind.gctrace, messages, token, received_at=RECEIVED, otlp_encoding="otlp_proto",
                    max_message_bytes=MAX_BYTES, replay=replay)

    write(None)
    for table in ("gc_events", "otel_logs"):
        _lose(store, table, f"{token}/{table}")
    write(witness)
    assert (_gc(store)["cycles"], _count(store, "gc_events"), _count(store, "otel_logs")) == (N, N, N)
    for table in ("gc_events", "otel_logs"):
        _lose(store, table, f"{token}/{table}")  # the retry's rows lost as well: its token is kept too
    write(witness)
    assert (_gc(store)["cycles"], _count(store, "gc_events"), _count(store, "otel_logs")) == (N, N, N)
    assert witness.restored == 4  # per table: once in each replay


def test_a_replay_restores_cancel_events_and_quarantine(settings: Settings, store: Store) -> None:
    """Another topic's tables: cancel-events and the quarantine rows of the batch's invalid ones."""
    events = [json.dumps({"trace_id": f"{i:032x}", "span_id": f"{i:016x}", "cancel_at": BASE_MS * 1_000_000 + i,
                          "cause": "timeout", "stack_depth": 3, "service": "svc", "instance": "p0"})
              for i in range(1, N + 1)] + ["{not json"] * 3
    messages = _messages(events, "cancel-events")
    token = batch_token("g", "cancel-events", 0, 0, len(messages))
    sink = Sink(store)
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))

    def write(replay: ReplayWitness | None) -> None:
        write_batch(sink, Kind.cancel_events, messages, token, received_at=RECEIVED, otlp_encoding="otlp_proto",
                    max_message_bytes=MAX_BYTES, replay=replay)

    write(None)
    assert (_count(store, "cancel_events"), _count(store, "quarantine")) == (N, 3)
    for table in ("cancel_events", "quarantine"):
        _lose(store, table, f"{token}/{table}")
    write(None)
    assert (_count(store, "cancel_events"), _count(store, "quarantine")) == (0, 0)
    write(witness)
    write(witness)
    assert (_count(store, "cancel_events"), _count(store, "quarantine")) == (N, 3)
    assert store.scalar(f"SELECT uniqExact(trace_id) FROM {store.database}.cancel_events") == N
    assert witness.restored == 2


def test_a_replay_of_a_stored_insert_inserts_nothing(settings: Settings, store: Store) -> None:
    """Rows found by their witness are not inserted again, so the replay does not depend on the engine still
    knowing the token (a replay past the deduplication window lands once too)."""
    messages = _messages(_mixed())
    token = batch_token("g", "gctrace", 0, 0, N)
    write_batch(Sink(store), Kind.gctrace, messages, token, received_at=RECEIVED, otlp_encoding="otlp_proto",
                max_message_bytes=MAX_BYTES)
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))
    inserts: list[str] = []
    for table in ("gc_events", "otel_logs"):
        assert witness.ensure(table, f"{token}/{table}", N, lambda dedup: inserts.append(dedup) or 0) == N
    assert inserts == []
    assert witness.restored == 0


def test_a_replay_of_rows_beyond_the_retention_ends(settings: Settings, store: Store) -> None:
    """Rows older than the retention are dropped by the TTL at insert, so their witness never shows: the replay
    inserts once more and moves on instead of retrying for ever."""
    old = [KafkaMessage(topic="gctrace", partition=0, offset=i, timestamp_ms=1_600_000_000_000 + 500 * i,
                        key=b"svc/p0", value=v.encode()) for i, v in enumerate(_mixed(5))]
    token = batch_token("g", "gctrace", 0, 0, 5)
    witness = ReplayWitness(store, settings.sql_dir, context_from_settings(settings))
    for replay in (None, witness):
        write_batch(Sink(store), Kind.gctrace, old, token, received_at=RECEIVED, otlp_encoding="otlp_proto",
                    max_message_bytes=MAX_BYTES, replay=replay)
    assert _count(store, "gc_events") == 0  # its TTL drops them at insert
    assert witness.restored >= 1  # gc_events was inserted once more, then the replay moved on
    # otel_logs drops expired parts whole in the background (ttl_only_drop_parts): there or not, never twice
    assert _count(store, "otel_logs") in (0, 5)


def test_other_sources_leave_the_witness_empty(settings: Settings, store: Store) -> None:
    messages = _messages(_mixed(5))
    Sink(store).write(_python_rows(messages), token="files/some-batch")
    assert store.scalar(f"SELECT groupUniqArray(ingest_batch) FROM {store.database}.gc_events") == [""]


def _python_rows(messages: list[KafkaMessage]) -> Rows:
    rows = Rows()
    normalize_messages(Kind.gctrace, messages, rows=rows, received_at=RECEIVED)
    return rows


def _owner_died_inside_an_insert(store: Store, settings: Settings, kafka_bootstrap: str, group: str, topic: str,
                                 values: list[str], end: int, through_engine: bool) -> None:
    """The footprint of an owner that planned [0, end), wrote it, and whose gc_events part never landed: committed
    offset 0, the plan (witnessed), the batch's other rows, and its gc_events token recorded with no rows."""
    tp = TopicPartition(topic, 0)
    owner = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    owner.assign([tp])
    owner.commit({tp: OffsetAndMetadata(0, "", -1)})
    owner.close(autocommit=False)
    ledger = BatchLedger(store, group, settings.sql_dir, context_from_settings(settings))
    plan = ledger.claim(topic, 0, 0, end, end, gctrace_engine=through_engine, witnessed=True)
    assert plan.end == end
    token = batch_token(group, topic, 0, 0, end)
    messages = _messages(values[:end], topic)
    write_batch(Sink(store), Kind.gctrace, messages, token, received_at=plan.planned_at, otlp_encoding="otlp_proto",
                max_message_bytes=MAX_BYTES, gctrace_engine=_engine(settings, store) if through_engine else None)
    _lose(store, "gc_events", f"{token}/gc_events")


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_consumer_replays_a_batch_lost_inside_its_insert(
    path, settings, store, kafka_bootstrap, kafka_names, producer, kafka_client
) -> None:
    make_values, through_engine = PATHS[path]
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 1})
    values = make_values(150)
    for message in _messages(values, topic):  # the record times the dead owner's rows were made from
        producer.send(topic, message.value, key=message.key, partition=0, timestamp_ms=message.timestamp_ms)
    producer.flush()
    _owner_died_inside_an_insert(store, settings, kafka_bootstrap, kafka_names.group, topic, values, 37,
                                 through_engine)
    assert _gc(store)["rows"] == 0
    ks = kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_messages=100, batch_max_seconds=30.0,
                        client=kafka_client, gctrace_engine_min_lines=1)

    run_worker(ks, store)

    assert _gc(store) == {"rows": 150, "cycles": 150}
    assert _count(store, "otel_logs") == (0 if path == "one_statement" else 150)
    plans = store.rows(f"SELECT start_offset, end_offset FROM {store.database}.kafka_batches ORDER BY start_offset")
    assert plans == [(0, 37), (37, 137), (137, 150)]
    assert store.scalar(f"SELECT min(witnessed) FROM {store.database}.kafka_batches") == 1

