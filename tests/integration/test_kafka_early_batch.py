"""A partition's backlog reaches the store long before `batch_max_seconds` once `batch_early_bytes` wait and a
write thread is free (consumer.early_due), on both clients, with every row stored exactly once."""

from __future__ import annotations

from itertools import pairwise

from tests.plugins.kafka_pipeline import create_topics, gctrace_line, kafka_settings, send, start_worker_thread
from tests.waiting import wait_for

LINES = 4_000
OLD = 600.0  # batch_max_seconds: far beyond the test's waits, so only the early rule can write these rows


def test_the_backlog_is_written_before_its_batch_is_old(settings, store, kafka_bootstrap, kafka_names, producer,
                                                          kafka_client) -> None:
    topic = kafka_names.topic("gctrace")
    create_topics(kafka_bootstrap, {topic: 1})
    for n in range(1, LINES + 1):
        send(producer, topic, gctrace_line(n), key=b"svc/p0")
    producer.flush()
    ks = kafka_settings(settings, kafka_bootstrap, kafka_names, batch_max_seconds=OLD, batch_max_messages=100_000,
                        batch_early_bytes=100_000, write_threads=2, client=kafka_client)
    db = store.database
    worker, thread = start_worker_thread(ks, store)
    try:
        wait_for(lambda: store.scalar(f"SELECT count() FROM {db}.gc_events") >= LINES, 60, "the backlog's rows")
        wait_for(lambda: store.scalar(f"SELECT max(end_offset) FROM {db}.kafka_batches") == LINES, 30,
                 "the last batch's plan")
    finally:
        worker.stop_requested.set()
        thread.join(30)
    assert not thread.is_alive() and not worker.errors
    assert store.rows(f"SELECT count(), uniqExact(gc_num) FROM {db}.gc_events") == [(LINES, LINES)]
    plans = store.rows(f"SELECT start_offset, end_offset FROM {db}.kafka_batches ORDER BY start_offset")
    assert plans[0][0] == 0 and all(a[1] == b[0] for a, b in pairwise(plans))
    # each batch cut early held at least the threshold's bytes (the last one may be a remainder)
    sizes = [len(gctrace_line(n)) + len(b"svc/p0") for n in range(1, LINES + 1)]  # offset i holds line i + 1
    assert all(sum(sizes[start:end]) >= 100_000 for start, end in plans[:-1])
