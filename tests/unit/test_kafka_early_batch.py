"""When a partition's buffer is written before its batch is full or old (consumer.early_due), and librdkafka's
refetch backoff: the two choices that get a freshly assigned partition's first batch to the store early."""

from __future__ import annotations

from pipeline.config import KafkaSettings
from pipeline.sources.kafka.confluent import confluent_config
from pipeline.sources.kafka.consumer import early_due


def test_early_when_enough_waits_and_a_write_thread_is_free() -> None:
    s = KafkaSettings(batch_early_bytes=1000, write_threads=2)
    assert early_due(1000, 0, s)
    assert early_due(5000, 1, s)
    assert not early_due(999, 0, s)  # too little: left to the batch limits


def test_not_early_while_every_write_thread_is_busy() -> None:
    """A steady backlog keeps the threads busy, so its batches still fill up to the limits."""
    s = KafkaSettings(batch_early_bytes=1000, write_threads=2)
    assert not early_due(10**6, 2, s)
    assert early_due(10**6, 1, s)


def test_off_when_disabled_or_written_on_the_consumer_thread() -> None:
    assert not early_due(10**6, 0, KafkaSettings(batch_early_bytes=0))
    # With no write threads the fetch stops during a write: every batch would be cut at the threshold.
    assert not early_due(10**6, 0, KafkaSettings(batch_early_bytes=1000, write_threads=0))


def test_the_default_is_well_below_a_full_batch() -> None:
    s = KafkaSettings()
    assert 0 < s.batch_early_bytes < s.batch_max_bytes


def test_librdkafka_refetches_a_drained_queue_soon_unless_told_otherwise() -> None:
    assert confluent_config(KafkaSettings())["fetch.queue.backoff.ms"] == 10
    mine = KafkaSettings(client_options={"fetch.queue.backoff.ms": 500})
    assert confluent_config(mine)["fetch.queue.backoff.ms"] == 500
