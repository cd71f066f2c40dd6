"""The Kafka path under faults the delivery tests do not cover: the store away for a while (the worker pauses
fetching, keeps its group membership, retries with backoff and resumes) and a broker SIGKILLed and restarted
on durable storage (Tansu on S3). Worker kills and rebalances are in test_kafka_delivery.py.

Invariant, exactly: stored count == produced count == distinct (instance, gc_num) count.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest
from kafka import KafkaProducer

from pipeline.sink import Sink
from pipeline.sources.kafka import worker_class
from pipeline.sources.kafka.delivery import BatchLedger
from pipeline.store.client import StoreUnavailable
from pipeline.store.migrate import context_from_settings
from pipeline.telemetry import Telemetry
from tests.plugins.kafka_pipeline import (
    create_topics,
    gctrace_line,
    kafka_settings,
    send,
    start_worker_thread,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

EXACTLY_ONCE_SQL = "SELECT count(), uniqExact(instance, gc_num) FROM {db}.gc_events"


def stored(store) -> tuple[int, int]:
    return tuple(store.rows(EXACTLY_ONCE_SQL.replace("{db}", store.database))[0])


class OutageSink(Sink):
    """The real sink, refusing every write while the outage lasts (as a store that went away would)."""

    def __init__(self, store, telemetry) -> None:
        super().__init__(store, telemetry)
        self.until = 0.0
        self.refused = 0

    def write(self, rows, **how):
        if time.monotonic() < self.until:
            self.refused += 1
            raise StoreUnavailable("injected outage: connection refused")
        return super().write(rows, **how)


@pytest.mark.parametrize("outage_seconds", [1.5, 4.0])
def test_store_outage_pauses_and_resumes_without_loss(settings, store, kafka_bootstrap, kafka_names, producer,
                                                      outage_seconds, kafka_client) -> None:
    topic = kafka_names.topic("gctrace")
    partitions, per_partition = 2, 200
    create_topics(kafka_bootstrap, {topic: partitions})
    ks = kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_messages=50, retry_initial_seconds=0.2,
                        retry_max_seconds=1.0, client=kafka_client)
    telemetry = Telemetry()
    sink = OutageSink(store, telemetry)
    ledger = BatchLedger(store, ks.kafka.group_id, ks.sql_dir, context_from_settings(ks))
    worker = worker_class(ks.kafka)(ks.kafka, sink, ledger, telemetry)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            errors.append(exc)

    sink.until = time.monotonic() + 3600  # down from the start, until the worker has met it
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    paused_seen = False
    try:
        for n in range(1, per_partition + 1):
            for p in range(partitions):
                send(producer, topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
        producer.flush()
        deadline = time.monotonic() + 60
        while not (sink.refused >= 2 and worker._paused) and time.monotonic() < deadline:
            time.sleep(0.05)
        paused_seen = bool(worker._paused)
        assert stored(store) == (0, 0)
        sink.until = time.monotonic() + outage_seconds  # the store comes back after this
        wait_for(lambda: stored(store)[0] >= partitions * per_partition, 90, "every row after the outage")
        time.sleep(0.5)  # a duplicate would land with the next batches
    finally:
        worker.stop_requested.set()
        thread.join(30)
        recorded = telemetry.snapshot()
        telemetry.shutdown()
    assert not errors, errors
    # the source reported what it received, its lag and its queue while it worked
    assert recorded["fleetwatch.records.received{signal=gctrace,source=kafka}"] == partitions * per_partition
    assert any(k.startswith("fleetwatch.kafka.lag{") for k in recorded), sorted(recorded)
    assert "fleetwatch.kafka.buffered" in recorded, sorted(recorded)
    assert paused_seen, "fetching was never paused during the outage"
    assert sink.refused >= 2
    assert not worker._paused
    assert stored(store) == (partitions * per_partition, partitions * per_partition)


def test_broker_restart_on_durable_storage_loses_and_duplicates_nothing(settings, store, durable_broker,
                                                                        kafka_names, kafka_client) -> None:
    bootstrap = durable_broker.bootstrap
    topic = kafka_names.topic("gctrace")
    partitions, first, second = 2, 150, 150
    create_topics(bootstrap, {topic: partitions})

    def produce(numbers: range) -> None:
        # A new producer each time: an idempotent producer does not survive a broker restart.
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, batch_size=1 << 20)
        try:
            for n in numbers:
                for p in range(partitions):
                    send(producer, topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
            producer.flush(30)
        finally:
            producer.close(timeout=5)

    produce(range(1, first + 1))
    ks = kafka_settings(settings, bootstrap, kafka_names, batch_max_messages=40, retry_max_seconds=1.0,
                        client=kafka_client)
    worker, thread = start_worker_thread(ks, store)
    try:
        wait_for(lambda: stored(store)[0] >= 80, 60, "the worker to store the first rows")
        durable_broker.restart(signal.SIGKILL)
        produce(range(first + 1, first + second + 1))
        total = partitions * (first + second)
        wait_for(lambda: stored(store)[0] >= total, 120, "every row after the broker restart")
        time.sleep(0.5)
    finally:
        worker.stop_requested.set()
        thread.join(30)
    assert not worker.errors, worker.errors
    assert stored(store) == (total, total)
