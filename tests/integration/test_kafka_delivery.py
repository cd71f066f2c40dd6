"""Delivery through the real broker and the real engine: every row exactly once across crashes, kills and
rebalances, and `fleetwatch run --until-caught-up` as a user runs it.

Exactly once is checked the same way everywhere: each produced gctrace line has a unique (instance, gc_num),
so the stored count must equal the produced count and no (instance, gc_num) may appear twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient

from pipeline.normalize.kafka_messages import KafkaMessage, Kind, normalize_messages
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.sources.kafka.delivery import BatchLedger, batch_token
from pipeline.store.client import StoreUnavailable
from pipeline.store.migrate import context_from_settings
from tests.plugins.kafka_pipeline import (
    FLEETWATCH,
    create_topics,
    fleetwatch_env,
    gctrace_line,
    kafka_settings,
    make_worker,
    run_worker,
    send,
    start_worker_thread,
    store_query,
)
from tests.waiting import wait_for

EXACTLY_ONCE_SQL = "SELECT count(), uniqExact(instance, gc_num) FROM {db}.gc_events"


def stored(store) -> tuple[int, int]:
    return tuple(store.rows(EXACTLY_ONCE_SQL.replace("{db}", store.database))[0])


def message(topic: str, offset: int, value: str) -> KafkaMessage:
    return KafkaMessage(topic=topic, partition=0, offset=offset, timestamp_ms=int(time.time() * 1000), key=b"svc/p0",
                        value=value.encode())


@pytest.mark.parametrize("crashed_after", ["plan", "first_table", "all_tables"])
def test_a_batch_interrupted_at_each_step_is_replayed_exactly(
    crashed_after, settings, store, kafka_bootstrap, kafka_names, producer, kafka_client
) -> None:
    """A previous owner planned [0, 37), wrote some or all of its tables, and died before committing 37.

    The worker's own batches would be [0, 100) and up, so only by following the recorded plan (same range,
    same token) can it avoid storing the first 37 cycles twice.
    """
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 1})
    values = [f"{gctrace_line(i)}\napplication line {i}" for i in range(1, 151)]
    for v in values:
        send(producer, topic, v, key=b"svc/p0")
    producer.flush()
    ks = kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_messages=100, batch_max_seconds=30.0,
                        client=kafka_client)

    # The crashed owner's footprint: committed offset 0, the plan, and some of the batch's rows.
    tp = TopicPartition(topic, 0)
    owner = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=kafka_names.group, enable_auto_commit=False)
    owner.assign([tp])
    owner.commit({tp: OffsetAndMetadata(0, "", -1)})
    owner.close(autocommit=False)
    ledger = BatchLedger(store, kafka_names.group, settings.sql_dir, context_from_settings(settings))
    plan = ledger.claim(topic, 0, 0, 37, 37)
    assert plan.end == 37
    rows = Rows()
    normalize_messages(Kind.gctrace, [message(topic, i, values[i]) for i in range(37)], rows=rows,
                       received_at=plan.planned_at)
    assert set(rows.counts()) == {"gc_events", "otel_logs"}
    token = batch_token(kafka_names.group, topic, 0, 0, 37)
    if crashed_after == "first_table":
        Sink(store).write(Rows(tables={"gc_events": rows.tables["gc_events"]}), token=token)
    elif crashed_after == "all_tables":
        Sink(store).write(rows, token=token)

    run_worker(ks, store)

    assert stored(store) == (150, 150)
    db = store.database
    assert store.scalar(f"SELECT count() FROM {db}.otel_logs") == 150
    plans = store.rows(f"SELECT start_offset, end_offset FROM {db}.kafka_batches ORDER BY start_offset")
    assert plans == [(0, 37), (37, 137), (137, 150)]


class _Feeder(threading.Thread):
    """Produces chunks of unique gctrace lines to every partition until told to stop, so the group's
    rebalances happen while data is flowing."""

    def __init__(self, producer, topic: str, partitions: int, chunk: int = 10, pause: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.producer, self.topic, self.partitions, self.chunk, self.pause = producer, topic, partitions, chunk, pause
        self.enough = threading.Event()
        self.per_partition = 0

    def run(self) -> None:
        for _ in range(300):  # bounded: at most 300 chunks
            for p in range(self.partitions):
                for n in range(self.per_partition + 1, self.per_partition + self.chunk + 1):
                    send(self.producer, self.topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
            self.producer.flush()
            self.per_partition += self.chunk
            if self.enough.wait(self.pause):
                return


def test_two_workers_with_a_rebalance_midway_store_every_row_once(
    settings, store, kafka_bootstrap, kafka_names, producer, kafka_client
) -> None:
    topic = kafka_names.topic("gctrace")
    partitions = 4
    create_topics(kafka_bootstrap, {topic: partitions})
    ks = kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_messages=40, client=kafka_client,
                        write_threads=2)  # partitions written side by side while the group rebalances
    feeder = _Feeder(producer, topic, partitions)
    feeder.start()

    a, a_thread = start_worker_thread(ks, store)
    b = b_thread = None
    try:
        wait_for(lambda: stored(store)[0] >= 100, 60, "worker A to store rows")
        b, b_thread = start_worker_thread(ks, store)  # joins: the group rebalances under load
        wait_for(lambda: b.states and a.states, 60, "both workers to own partitions")
        assert len(a.states) + len(b.states) == partitions
        wait_for(lambda: stored(store)[0] >= 4 * feeder.per_partition * partitions // 5, 60, "both to make progress")
        a.stop_requested.set()  # A leaves midway: B takes over everything A had
        a_thread.join(30)
        assert not a_thread.is_alive()
        wait_for(lambda: len(b.states) == partitions, 60, "worker B to own all partitions")
        assert feeder.is_alive(), "the feed ended before the second rebalance; the test proved nothing"
        time.sleep(0.5)
        feeder.enough.set()
        feeder.join(30)
        total = feeder.per_partition * partitions
        wait_for(lambda: stored(store)[0] >= total, 60, "every row to be stored")
        time.sleep(1.0)  # anything duplicated would land within the next batches
    finally:
        feeder.enough.set()
        a.stop_requested.set()
        if b is not None:
            b.stop_requested.set()
            b_thread.join(30)
        a_thread.join(30)
    assert not a.errors and not (b and b.errors)
    assert stored(store) == (total, total)


def _logged(log_path: Path, what: str) -> int:
    try:
        return log_path.read_text(errors="replace").count(what)
    except FileNotFoundError:
        return 0


def test_a_worker_killed_at_random_points_loses_and_duplicates_nothing(
    tmp_path, kafka_bootstrap, kafka_names, producer, default_kafka_client
) -> None:
    topic = kafka_names.topic("gctrace")
    partitions, per_partition = 3, 1500
    create_topics(kafka_bootstrap, {topic: partitions})
    for p in range(partitions):
        for n in range(1, per_partition + 1):
            send(producer, topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
    producer.flush()
    store_path = tmp_path / "store"
    env = fleetwatch_env(store_path, kafka_names, kafka_bootstrap, client=default_kafka_client)
    env["FLEETWATCH_KAFKA__BATCH_MAX_MESSAGES"] = "60"
    rng = random.Random()
    kills = []
    for attempt in range(2):
        log_path = tmp_path / f"run{attempt}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen([FLEETWATCH, "run", "--log-level", "DEBUG"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=log_file, start_new_session=True)
            try:
                target = rng.randint(1, 12)

                # Committed batches, and at least one batch planned by this process: its first commits may be
                # replays of the plans the previous process left in flight (one per partition being written).
                def progressed(lp: Path = log_path, t: int = target, p: subprocess.Popen = proc) -> bool:
                    return ((_logged(lp, "kafka: committed batch") >= t and _logged(lp, "kafka: planned batch") >= 1)
                            or p.poll() is not None)

                wait_for(progressed, 60, "batches to be committed")
                time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
            finally:
                proc.wait(10)
        kills.append(proc.pid)
        assert proc.returncode == -signal.SIGKILL

    final_log = tmp_path / "final.log"
    with open(final_log, "wb") as log_file:
        final = subprocess.Popen([FLEETWATCH, "run", "--until-caught-up"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=log_file, start_new_session=True)
        try:
            final.wait(90)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait(10)
            pytest.fail(f"the restarted worker did not catch up; log in {final_log}")
    assert final.returncode == 0, final_log.read_text(errors="replace")[-3000:]

    total = partitions * per_partition
    assert store_query(store_path, EXACTLY_ONCE_SQL.replace("{db}", "fleetwatch")) == [[str(total), str(total)]]
    # Every process planned batches: the kills landed mid-stream, not before or after the work.
    planners = store_query(store_path, "SELECT planned_by, count() FROM fleetwatch.kafka_batches GROUP BY planned_by")
    pids = {int(who.rsplit(":", 1)[1]) for who, _ in planners}
    assert set(kills) <= pids and len(pids) == 3, planners


def test_until_caught_up_as_a_user_runs_it(tmp_path, kafka_bootstrap, kafka_names, producer, kafka_client) -> None:
    """Backfill: `fleetwatch run --until-caught-up` exits 0 with everything stored; a configured topic that does
    not exist is neither an error nor created."""
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 2})
    for n in range(1, 101):
        send(producer, topic, gctrace_line(n), headers={"service": "api", "instance": f"api-{n % 2}"},
             partition=n % 2)
    producer.flush()
    store_path = tmp_path / "store"
    env = fleetwatch_env(store_path, kafka_names, kafka_bootstrap, client=kafka_client)
    proc = subprocess.run([FLEETWATCH, "run", "--until-caught-up"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fleetwatch stopped" in proc.stdout
    assert store_query(store_path, "SELECT service, count() FROM fleetwatch.gc_events GROUP BY service") == \
        [["api", "100"]]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert kafka_names.topic("cancel-events") not in admin.list_topics()
    finally:
        admin.close()
    # a second run has nothing to do and still exits 0 at once: the offsets were committed
    again = subprocess.run([FLEETWATCH, "run", "--until-caught-up"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert store_query(store_path, "SELECT count() FROM fleetwatch.gc_events") == [["100"]]



def test_backpressure_pauses_partitions_and_loses_nothing(settings, store, kafka_bootstrap, kafka_names,
                                                          producer, kafka_client) -> None:
    """Buffers far over `max_buffered_bytes`: fetching pauses and resumes many times; every row lands once."""
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 3})
    for p in range(3):
        for n in range(1, 401):
            send(producer, topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
    producer.flush()
    ks = kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_messages=25, max_buffered_bytes=4_000,
                        client=kafka_client)
    worker = run_worker(ks, store)
    assert stored(store) == (1200, 1200)
    assert worker.pauses > 0


class _FlakySink(Sink):
    """The real sink, except that the first `failures` writes (columnar, or the gctrace engine's INSERT ... SELECT)
    find the store unavailable."""

    def __init__(self, store, failures: int) -> None:
        super().__init__(store)
        self.failures = failures

    def _fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("store unavailable (injected)")

    def write(self, rows, **how):
        self._fail()
        return super().write(rows, **how)

    def write_select(self, table, sql, **kw):
        self._fail()
        return super().write_select(table, sql, **kw)


def test_store_unavailable_keeps_the_batch_and_retries(settings, store, kafka_bootstrap, kafka_names,
                                                       producer, kafka_client) -> None:
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 2})
    for p in range(2):
        for n in range(1, 201):
            send(producer, topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
    producer.flush()
    ks = kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_messages=50, retry_initial_seconds=0.05,
                        client=kafka_client)
    worker = make_worker(ks, store, until_caught_up=True)
    worker.sink = _FlakySink(store, failures=4)
    timer = threading.Timer(60, worker.stop_requested.set)
    timer.start()
    try:
        worker.run()
    finally:
        timer.cancel()
    assert worker.caught_up.is_set()
    assert worker.sink.failures == 0
    assert stored(store) == (400, 400)
