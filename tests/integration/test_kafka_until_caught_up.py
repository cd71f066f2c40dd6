"""`fleetwatch run --until-caught-up` drains the whole topic, even when it joins a group that still counts a
member that was just killed (and is handed only part of the partitions until that member's session expires).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from pipeline.sources.kafka.progress import lagging
from tests.plugins.kafka_broker import GROUP_KW
from tests.plugins.kafka_pipeline import (
    FLEETWATCH,
    committed_total,
    create_topics,
    fill_partitions,
    fleetwatch_env,
    gctrace_line,
    kafka_settings,
    make_worker,
    send,
    store_query,
)
from tests.waiting import wait_for

EXACTLY_ONCE_SQL = "SELECT count(), uniqExact(instance, gc_num) FROM fleetwatch.gc_events"


def test_lagging_compares_the_group_offset_with_the_high_watermark() -> None:
    a, b, c = (TopicPartition("t", p) for p in range(3))
    # a is done, b is behind, c's watermark is unknown (no answer yet), so it counts as behind
    assert lagging({a: 10, b: 4, c: 0}, {a: 10, b: 10, c: None}) == {b: (4, 10), c: (0, None)}


def test_until_caught_up_after_a_member_was_killed_drains_every_partition(
    tmp_path: Path, kafka_bootstrap, kafka_names, producer, default_kafka_client
) -> None:
    topic = kafka_names.topic("gctrace")
    partitions, per_partition = 4, 2500
    tps = fill_partitions(producer, kafka_bootstrap, topic, partitions, per_partition)
    total = partitions * per_partition

    env = fleetwatch_env(tmp_path / "store", kafka_names, kafka_bootstrap, client=default_kafka_client)
    env["FLEETWATCH_KAFKA__BATCH_MAX_MESSAGES"] = "50"
    # The killed member keeps its place in the group for its whole session: long enough that the next member
    # joins while it is still counted, and is handed only part of the partitions.
    first_env = {**env, "FLEETWATCH_KAFKA__SESSION_TIMEOUT_MS": "12000"}
    first_log = tmp_path / "first.log"
    with open(first_log, "wb") as log_file:
        first = subprocess.Popen([FLEETWATCH, "run"], env=first_env, stdout=subprocess.DEVNULL, stderr=log_file,
                                 start_new_session=True)
        try:
            def some_committed() -> bool:
                return committed_total(kafka_bootstrap, kafka_names.group, tps) >= 200 or first.poll() is not None

            wait_for(some_committed, 90, "the first worker to commit some batches", interval=0.05)
            first.send_signal(signal.SIGKILL)
        finally:
            first.wait(10)
    assert first.returncode == -signal.SIGKILL, first_log.read_text(errors="replace")[-3000:]
    done_before = committed_total(kafka_bootstrap, kafka_names.group, tps)
    assert done_before < total, "the kill must land mid-consumption"

    final_log = tmp_path / "final.log"
    with open(final_log, "wb") as log_file:
        final = subprocess.Popen([FLEETWATCH, "run", "--until-caught-up"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=log_file, start_new_session=True)
        try:
            final.wait(120)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait(10)
            pytest.fail(f"--until-caught-up did not finish:\n{final_log.read_text(errors='replace')[-3000:]}")
    assert final.returncode == 0, final_log.read_text(errors="replace")[-3000:]
    assert committed_total(kafka_bootstrap, kafka_names.group, tps) == total
    assert store_query(tmp_path / "store", EXACTLY_ONCE_SQL) == [[str(total), str(total)]]


class Squatter:
    """A live group member that polls (so it keeps its partitions through rebalances) and never commits."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                      **GROUP_KW)
        self.assigned: set[TopicPartition] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.consumer.poll(timeout_ms=100)
            self.assigned = set(self.consumer.assignment())
        self.consumer.close(autocommit=False)  # leaves the group: its partitions move to the others

    def leave(self) -> None:
        self.stop.set()
        self.thread.join(30)


def test_until_caught_up_waits_for_partitions_assigned_to_another_member(
    settings, store, kafka_bootstrap, kafka_names, producer, kafka_client
) -> None:
    """Caught up on its own partitions is not caught up: the worker keeps polling until the group has
    committed every partition, and drains the others' partitions once they are handed over."""
    topic = kafka_names.topic("gctrace")
    partitions, per_partition = 4, 300
    create_topics(kafka_bootstrap, {topic: partitions})
    for p in range(partitions):
        for n in range(1, per_partition + 1):
            send(producer, topic, gctrace_line(n), key=f"svc/p{p}".encode(), partition=p)
    producer.flush()
    squatter = Squatter(kafka_bootstrap, kafka_names.group, topic)
    squatter.thread.start()
    worker_thread = None
    try:
        wait_for(lambda: len(squatter.assigned) == partitions, 60, "the squatter to hold every partition")
        worker = make_worker(kafka_settings(settings, kafka_bootstrap, kafka_names, client=kafka_client), store,
                             until_caught_up=True)
        worker_thread = threading.Thread(target=worker.run, daemon=True)
        worker_thread.start()

        def own_share_drained() -> bool:
            states = list(worker.states.values())
            return bool(states) and len(squatter.assigned) < partitions and all(
                st.ready and st.committed >= per_partition for st in states)

        wait_for(own_share_drained, 60, "the worker to drain the partitions the group gave it")
        assert len(worker.states) < partitions  # it holds only a share while the squatter is in the group
    finally:
        squatter.leave()
    worker_thread.join(90)
    assert worker.caught_up.is_set(), "the worker did not catch up after the other member left"
    assert stored(store) == (partitions * per_partition, partitions * per_partition)


def stored(store) -> tuple[int, int]:
    return tuple(store.rows(f"SELECT count(), uniqExact(instance, gc_num) FROM {store.database}.gc_events")[0])
