"""Helpers for Kafka source tests: unique topics on the session broker, producers, and workers.

Every test gets topics and a consumer group of its own (`kafka_names`), created with their partition
counts up front (the broker cannot add partitions later and would auto-create 4). Workers run either in
this process on the test's database (`run_worker`) or as a `fleetwatch run` subprocess with a store path
of its own (`fleetwatch_env`, `store_query`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from pipeline.config import KafkaSettings, Settings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.sink import Sink
from pipeline.sources.kafka import worker_class
from pipeline.sources.kafka.consumer import KafkaWorker
from pipeline.sources.kafka.delivery import BatchLedger, Plan, batch_token, write_batch
from pipeline.sources.kafka.gctrace_engine import KafkaGctraceEngine, engine_from_settings
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, context_from_settings
from pipeline.telemetry import Telemetry
from tests.net import FLEETWATCH

GCTRACE_TAIL = "0.015+0.51+0.003 ms clock, 0.12+0.20/0.41/0.10+0.024 ms cpu, 4->4->1 MB, 5 MB goal, 0 MB stacks, " \
               "0 MB globals, 8 P"
# Test-speed consumer settings: Tansu holds a JoinGroup for session_timeout/2, so keep it short.
FAST_KAFKA = {
    "session_timeout_ms": 3000, "heartbeat_interval_ms": 1000, "fetch_max_wait_ms": 50,
    "batch_max_seconds": 0.2, "topic_refresh_seconds": 1.0,
    # Every gctrace batch, however small, goes through the engine path (the production default keeps small
    # batches in Python), so the delivery and crash tests cover it.
    "gctrace_engine_min_lines": 1,
}


def gctrace_line(gc_num: int) -> str:
    """A Go 1.18+ gctrace summary line for cycle `gc_num` (half a second apart)."""
    return f"gc {gc_num} @{gc_num * 0.5:.3f}s 2%: {GCTRACE_TAIL}"


@dataclass
class KafkaNames:
    """Unique names for one test: `topic(kind)` and the group id."""

    prefix: str
    group: str

    def topic(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def topic_settings(self) -> dict[str, str]:
        return {
            "topic_gctrace": self.topic("gctrace"),
            "topic_cancel_events": self.topic("cancel-events"),
            "topic_otlp_logs": self.topic("otlp_logs"),
            "topic_otlp_spans": self.topic("otlp_spans"),
            "topic_otlp_metrics": self.topic("otlp_metrics"),
            "topic_pprof": self.topic("pprof"),
        }


# Both Kafka clients the source can run on (`kafka.client`); tests of delivery guarantees run against each.
KAFKA_CLIENTS = ("kafka-python", "confluent")


@pytest.fixture(params=KAFKA_CLIENTS)
def kafka_client(request: pytest.FixtureRequest) -> str:
    """The `kafka.client` setting a parametrized test runs with."""
    return str(request.param)


@pytest.fixture
def default_kafka_client() -> str:
    """The default `kafka.client`: the whole-process crash tests (SIGKILL, SIGTERM, a dead member) run on it alone,
    since the loop they exercise is the same for both clients and each client's calls (commit, seek, rebalance,
    replay after a crash) are covered for both by the in-process tests."""
    return str(KafkaSettings().client)


@pytest.fixture
def kafka_names() -> KafkaNames:
    tag = uuid.uuid4().hex[:10]
    return KafkaNames(prefix=f"t{tag}", group=f"g{tag}")


def create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, n, 1) for name, n in partitions.items()])
    finally:
        admin.close()


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    p = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5, batch_size=1 << 20)
    yield p
    p.close(timeout=5)


def send(p: KafkaProducer, topic: str, value: bytes | str | dict | list, *, partition: int = 0,
         key: bytes | None = None, headers: dict[str, str] | None = None) -> None:
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    if isinstance(value, str):
        value = value.encode()
    hdrs = [(k, v.encode()) for k, v in (headers or {}).items()]
    p.send(topic, value, key=key, partition=partition, headers=hdrs)


def kafka_settings(settings: Settings, bootstrap: str, names: KafkaNames, **extra: object) -> Settings:
    """A copy of the test's settings pointing the Kafka source at this test's topics and group."""
    kafka = settings.kafka.model_copy(
        update={"bootstrap": bootstrap, "group_id": names.group, **names.topic_settings(), **FAST_KAFKA, **extra}
    )
    return settings.model_copy(update={"kafka": kafka})


def make_worker(settings: Settings, store: Store, *, until_caught_up: bool) -> KafkaWorker:
    telemetry = Telemetry()
    ledger = BatchLedger(store, settings.kafka.group_id, settings.sql_dir, context_from_settings(settings))
    worker = worker_class(settings.kafka)(settings.kafka, Sink(store, telemetry), ledger, telemetry,
                                          until_caught_up=until_caught_up)
    worker.gctrace_engine = engine_from_settings(settings, store)  # as `fleetwatch run` starts it
    return worker


def run_worker(settings: Settings, store: Store, *, timeout: float = 60.0) -> KafkaWorker:
    """Run one worker in this process until it has caught up (or `timeout`, which fails the test)."""
    worker = make_worker(settings, store, until_caught_up=True)
    timer = threading.Timer(timeout, worker.stop_requested.set)
    timer.start()
    try:
        worker.run()
    finally:
        timer.cancel()
    assert worker.caught_up.is_set(), f"worker did not catch up within {timeout}s"
    return worker


def start_worker_thread(settings: Settings, store: Store) -> tuple[KafkaWorker, threading.Thread]:
    worker = make_worker(settings, store, until_caught_up=False)
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # reported by the test through worker.errors
            errors.append(exc)

    thread = threading.Thread(target=_run, daemon=True)
    worker.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return worker, thread


def fleetwatch_env(store_path: Path, names: KafkaNames, bootstrap: str, *, client: str | None = None
                   ) -> dict[str, str]:
    """Environment for a `fleetwatch run` subprocess: its own store, this test's topics, nothing else on;
    `client`: the Kafka client (else the default)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
    env.update({
        "FLEETWATCH_CLICKHOUSE_DSN": f"chdb://{store_path}",
        "FLEETWATCH_KAFKA_BOOTSTRAP": bootstrap,
        "FLEETWATCH_KAFKA__GROUP_ID": names.group,
        "FLEETWATCH_QUERY_HTTP": "", "FLEETWATCH_OTLP_GRPC": "", "FLEETWATCH_OTLP_HTTP": "",
        "FLEETWATCH_JOBS_ENABLED": "false",
    })
    for key, value in {**names.topic_settings(), **FAST_KAFKA}.items():
        env[f"FLEETWATCH_KAFKA__{key.upper()}"] = str(value)
    if client is not None:
        env["FLEETWATCH_KAFKA__CLIENT"] = client
    return env


def store_query(store_path: Path, sql: str) -> list[list[str]]:
    """Run a query on a subprocess-held store after that process exited (this process holds another path)."""
    proc = subprocess.run([FLEETWATCH, "sql", "--clickhouse-dsn", f"chdb://{store_path}", "--format", "csv", sql],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = list(csv.reader(io.StringIO(proc.stdout.strip())))
    return lines[1:]  # without the header


def committed_total(bootstrap: str, group: str, tps: list[TopicPartition]) -> int:
    """The group's committed offsets, summed, read without joining the group."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return sum(max(reader.committed(tp) or 0, 0) for tp in tps)
    finally:
        reader.close(autocommit=False)


def fill_partitions(producer: KafkaProducer, bootstrap: str, topic: str, partitions: int,
                    per_partition: int) -> list[TopicPartition]:
    """Create `topic` and put gc lines 1..per_partition of one service in each partition; its partitions."""
    create_topics(bootstrap, {topic: partitions})
    for p in range(partitions):
        for n in range(1, per_partition + 1):
            send(producer, topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
    producer.flush()
    return [TopicPartition(topic, p) for p in range(partitions)]


def engine_batch_stored_then_owner_died(settings: Settings, store: Store, bootstrap: str, group: str,
                                        producer: KafkaProducer, topic: str, values: list[str], *, key: bytes,
                                        timestamp_ms: int, planned_at: datetime,
                                        max_message_bytes: int) -> KafkaGctraceEngine:
    """The state a worker leaves when it planned a batch of all of partition 0 for the engine path at `planned_at`,
    stored its rows with the engine and died before committing: the values produced, offset 0 committed, the plan
    recorded, the rows written under the batch's token and stamped with the plan's time, as a worker stamps them.
    Returns the (closed) engine that wrote them, for its counters."""
    for value in values:
        producer.send(topic, value.encode(), key=key, partition=0, timestamp_ms=timestamp_ms)
    producer.flush()
    owner = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    owner.assign([tp])
    owner.commit({tp: OffsetAndMetadata(0, "", -1)})
    owner.close(autocommit=False)
    # No witness: the replay relies on the batch's tokens alone (a witness would find the rows whatever their day).
    plan = plan_recorded_at(settings, store, group, topic, len(values), planned_at, gctrace_engine=True,
                            witnessed=False)
    messages = [KafkaMessage(topic=topic, partition=0, offset=i, timestamp_ms=timestamp_ms, key=key,
                             value=v.encode()) for i, v in enumerate(values)]
    engine = KafkaGctraceEngine(store, settings.sql_dir, RenderContext(store.database, settings.retention_days))
    try:
        write_batch(Sink(store), Kind.gctrace, messages, batch_token(group, topic, 0, 0, len(values)),
                    received_at=plan.planned_at, otlp_encoding="", max_message_bytes=max_message_bytes,
                    gctrace_engine=engine)
    finally:
        engine.close()
    return engine


def plan_recorded_at(settings: Settings, store: Store, group: str, topic: str, end: int, planned_at: datetime, *,
                     gctrace_engine: bool, witnessed: bool) -> Plan:
    """Record the plan [0, end) of partition 0 as a worker would have at `planned_at` (a claim stamps the engine's
    clock, so an earlier plan, one to be replayed on a later day, is written with its time given), and read it
    back as a replaying worker does."""
    store.insert_columns("kafka_batches", {
        "group_id": [group], "topic": [topic], "partition": [0], "start_offset": [0], "end_offset": [end],
        "messages": [end], "planned_by": ["dead-worker"], "planned_at": [planned_at],
        "gctrace_engine": [int(gctrace_engine)], "witnessed": [int(witnessed)]})
    plan = BatchLedger(store, group, settings.sql_dir, context_from_settings(settings)).plan(topic, 0, 0)
    assert plan is not None and plan.end == end and plan.planned_at == planned_at
    return plan
