"""The next batch's size is what the byte and message limits allow, whichever way it is counted.

`_batch_count` skips the per-message loop when the buffer (or its first `batch_max_messages`) is within the byte
limit; every other buffer is counted message by message. The answer must be the loop's on every buffer."""

from __future__ import annotations

import random

from kafka import TopicPartition

from pipeline.config import KafkaSettings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.sources.kafka.consumer import PartitionState, _batch_count


def _by_loop(messages: list[KafkaMessage], settings: KafkaSettings) -> int:
    count, size = 0, 0
    for m in messages:
        if count and (count >= settings.batch_max_messages or size + m.size > settings.batch_max_bytes):
            break
        count += 1
        size += m.size
    return count


def test_the_count_is_the_loops_on_every_buffer() -> None:
    rng = random.Random(16)
    for _ in range(400):
        settings = KafkaSettings(batch_max_messages=rng.randint(1, 40), batch_max_bytes=rng.randint(1, 2000))
        st = PartitionState(TopicPartition("t", 0), Kind.gctrace)
        for offset in range(rng.randint(1, 80)):
            value = None if rng.random() < 0.05 else b"x" * rng.choice([0, 1, 10, 100, 1000, 3000])
            key = None if rng.random() < 0.3 else b"api/pod"
            st.add(KafkaMessage("t", 0, offset, 0, key, value), 0.0)
        assert _batch_count(st, settings) == _by_loop(list(st.buffer), settings)


def test_taking_a_batch_leaves_the_rest_and_its_bytes() -> None:
    rng = random.Random(32)
    for _ in range(200):
        st = PartitionState(TopicPartition("t", 0), Kind.gctrace)
        messages = [KafkaMessage("t", 0, offset, 0, None if rng.random() < 0.3 else b"api/pod",
                                 None if rng.random() < 0.05 else b"x" * rng.randint(0, 300))
                    for offset in range(rng.randint(1, 60))]
        for m in messages:
            st.add(m, 0.0)
        count = rng.randint(1, len(messages) + 2)
        st.take(count)
        rest = messages[count:]
        assert list(st.buffer) == rest and st.bytes == sum(m.size for m in rest)
        assert st.next_offset == (rest[-1].offset + 1 if rest else st.committed)
        assert (st.first_at is None) == (not rest)


def test_librdkafkas_buffers_count_and_take_as_the_messages_do() -> None:
    """The confluent-kafka worker buffers librdkafka's own Messages: the count, the bytes, the offsets and what a
    take (with the batch's bytes known at its cut, or summed) leaves are those of the same records as KafkaMessages."""
    from confluent_kafka import Message

    from pipeline.sources.kafka.confluent import ConfluentWorker

    rng = random.Random(48)
    worker = ConfluentWorker.__new__(ConfluentWorker)  # new_state reads nothing of the worker
    for _ in range(300):
        settings = KafkaSettings(batch_max_messages=rng.randint(1, 40), batch_max_bytes=rng.randint(1, 2000))
        st = worker.new_state(TopicPartition("t", 0), Kind.gctrace)
        reference = PartitionState(TopicPartition("t", 0), Kind.gctrace)
        for offset in range(rng.randint(1, 60)):
            value = None if rng.random() < 0.05 else b"x" * rng.choice([0, 1, 10, 100, 300])
            key = None if rng.random() < 0.3 else b"api/pod"
            m = Message(topic="t", partition=0, offset=offset, timestamp=(1, 0), key=key, value=value)
            st.buffer.append(m)
            st.bytes += len(value or b"") + len(key or b"")
            reference.add(KafkaMessage("t", 0, offset, 0, key, value), 0.0)
        assert st.bytes == reference.bytes and st.next_offset == reference.next_offset
        count = _batch_count(st, settings)
        assert count == _batch_count(reference, settings)
        size = sum(m.size for m in list(reference.buffer)[:count]) if rng.random() < 0.5 else None
        st.take(count, size)
        reference.take(count)
        assert (st.bytes, st.next_offset, st.first_offset, len(st.buffer)) == \
            (reference.bytes, reference.next_offset, reference.first_offset, len(reference.buffer))
