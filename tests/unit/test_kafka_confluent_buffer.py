"""A fetch's records into the partitions' buffers (ConfluentWorker._buffer_messages): kept as librdkafka's Messages,
stretch by stretch, and read back as a batch (`FetchedRecords`: its `KafkaMessage`s and its columns), they must be
what the record-by-record loop built, whatever the fetch holds:
partitions and topics interleaved, re-fetched records before a partition's next offset, offsets out of order,
headers on some records, tombstones, partition ends and fetch errors, partitions not (or no longer) assigned."""

from __future__ import annotations

import random
from collections.abc import Callable

from confluent_kafka import KafkaError, Message
from kafka import TopicPartition

from pipeline.config import KafkaSettings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.sink import Sink
from pipeline.sources.kafka.columns import MessageColumns
from pipeline.sources.kafka.confluent import ConfluentWorker
from pipeline.sources.kafka.consumer import PartitionState
from pipeline.telemetry import Telemetry

TOPICS = ("gctrace", "cancel-events")


def _by_loop(states: dict[TopicPartition, PartitionState], messages: list[Message]) -> None:
    """The record-by-record loop the bulk build replaced: the reference."""
    for m in messages:
        if m.error() is not None:
            continue
        st = states.get(TopicPartition(m.topic(), m.partition()))
        if st is None or st.needs_seek or m.offset() < st.next_offset:
            continue
        headers = m.headers()
        st.add(KafkaMessage(m.topic(), m.partition(), m.offset(), m.timestamp()[1], m.key(), m.value(),
                            tuple(headers) if headers else ()), 0.0)


def _states(rng: random.Random, new_state: Callable[[TopicPartition, Kind], PartitionState] = PartitionState,
            ) -> dict[TopicPartition, PartitionState]:
    states = {}
    for topic in TOPICS:
        for partition in range(3):
            tp = TopicPartition(topic, partition)
            if rng.random() < 0.8:  # some partitions are not assigned here
                st = new_state(tp, Kind.gctrace if topic == "gctrace" else Kind.cancel_events)
                st.committed = rng.randint(0, 5)
                st.needs_seek = rng.random() < 0.1
                states[tp] = st
    return states


def _fetch(rng: random.Random) -> list[Message]:
    """A fetch as consume() returns it: stretches of one partition, offsets mostly ascending from about the
    committed offset, sometimes a re-fetch from an earlier offset, partition ends, errors."""
    out: list[Message] = []
    offsets = {(t, p): rng.randint(0, 8) for t in TOPICS for p in range(3)}
    for _ in range(rng.randint(0, 8)):
        topic, partition = rng.choice(TOPICS), rng.randrange(3)
        if rng.random() < 0.1:
            code = KafkaError._PARTITION_EOF if rng.random() < 0.5 else KafkaError._MSG_TIMED_OUT
            out.append(Message(topic=topic, partition=partition, offset=offsets[(topic, partition)],
                               error=KafkaError(code)))
            continue
        if rng.random() < 0.15:
            offsets[(topic, partition)] = max(0, offsets[(topic, partition)] - rng.randint(1, 6))  # a re-fetch
        for _ in range(rng.randint(1, 30)):
            offset = offsets[(topic, partition)]
            offsets[(topic, partition)] += 1
            with_headers = rng.random() < 0.2
            out.append(Message(
                topic=topic, partition=partition, offset=offset, timestamp=(1, 1_796_119_200_000 + rng.randint(0, 9)),
                key=rng.choice([None, b"api/a", b"api/b"]),
                value=None if rng.random() < 0.05 else f"line {offset}".encode(),
                headers=[("service", b"api"), ("instance", None)] if with_headers else None))
    return out


def test_the_bulk_build_gives_the_record_by_record_buffers() -> None:
    rng = random.Random(32)
    telemetry = Telemetry()
    try:
        worker = ConfluentWorker(KafkaSettings(), Sink(None, telemetry), None, telemetry)  # type: ignore[arg-type]
        for _ in range(300):
            seed = rng.random()
            worker.states = _states(random.Random(seed), worker.new_state)
            expected = _states(random.Random(seed))
            for _ in range(3):  # several fetches into the same buffers
                fetch = _fetch(rng)
                worker._buffer_messages(fetch)
                _by_loop(expected, fetch)
            assert all(type(m) is Message for st in worker.states.values() for m in st.buffer)  # no copy
            batches = {tp: worker._batch(list(st.buffer)) for tp, st in worker.states.items()}
            assert {tp: list(batch) for tp, batch in batches.items()} == \
                {tp: list(st.buffer) for tp, st in expected.items()}
            assert {tp: st.bytes for tp, st in worker.states.items()} == {tp: st.bytes for tp, st in expected.items()}
            assert {tp: st.next_offset for tp, st in worker.states.items()} == \
                {tp: st.next_offset for tp, st in expected.items()}
            assert all(type(m) is KafkaMessage for batch in batches.values() for m in batch)
            for tp in batches:  # the columns the engine's fast path reads are the messages' fields
                fresh = worker._batch(list(worker.states[tp].buffer))
                reference = MessageColumns(list(expected[tp].buffer))
                assert (fresh.values(), fresh.keys(), fresh.headers(), fresh.timestamps_ms(), len(fresh)) == \
                    (reference.values(), reference.keys(), reference.headers(), reference.timestamps_ms(),
                     len(reference)), tp
    finally:
        telemetry.shutdown()
