"""The Kafka worker on confluent-kafka (librdkafka, a C client): `kafka.client = "confluent"`.

Why a second client: kafka-python decodes every record in Python (10-18 CPU µs per record on this project's
bench machine), which alone keeps one-line messages under 100k records/s; librdkafka decodes them in C at
about 2 µs. Why not a second loop: the guarantees (batch plans, commits after the store has the rows,
rebalances, backpressure, `--until-caught-up`) are the loop in consumer.py, written once; this class only
answers the loop's questions about the client (`KafkaWorker._open_client` ... `_assignment`) the librdkafka way:

* rebalances: confluent-kafka calls `on_assign` / `on_revoke` from inside `consume()` on this thread (and then
  assigns or unassigns itself); they record the same events the kafka-python listener records, and the loop
  applies them right after the fetch, as it does for kafka-python;
* the high watermark: `get_watermark_offsets(cached=True)`, which librdkafka updates from every fetch answer
  (not a ListOffsets request, which some brokers answer with the end of the last record batch);
* `seek` is refused until librdkafka has started fetching a newly assigned partition; assigned partitions
  already fetch from the committed offset, so a seek is only made when the position is known to differ, and a
  refused seek is retried on a later turn;
* `pause` drops what librdkafka prefetched for the partition and `resume` fetches again from the position (no
  parked records, unlike kafka-python 3.0);
* commit errors carry codes: the ones a rebalance causes (rebalance in progress, illegal generation, unknown
  member, fenced) mean "re-read the partition", as kafka-python's CommitFailedError does.

Records are read in bulk (`consume(num_messages=max_poll_records)`) and buffered as librdkafka handed them out:
no copy per record on the consumer's thread. A batch is written as `FetchedRecords`, whose columns are read with
`map` over the Message methods (no Python bytecode per record): the engine's one-statement path for one line per
message needs nothing more, and the `KafkaMessage`s the general path iterates are built only then, on the write
thread. The `--until-caught-up` probe (progress.py) stays on kafka-python: it asks the group's offsets a few times
a second and never joins, so its client is not a cost.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from itertools import compress, islice, pairwise, repeat
from operator import is_, itemgetter, lt, ne, or_
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import TopicPartition

from pipeline.config import KafkaSettings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.sources.kafka.columns import ColumnarBatch, Headers, summed_size
from pipeline.sources.kafka.consumer import (
    CommitRefused,
    KafkaWorker,
    PartitionState,
    consumer_config,
)

log = logging.getLogger(__name__)

_TIMEOUT_S = 10.0
_new_message = tuple.__new__
# The fields of a fetched record, read with `map` over a fetch (C calls, no Python frame per record).
_error, _topic, _partition, _offset = Message.error, Message.topic, Message.partition, Message.offset
_timestamp, _key, _value, _headers = Message.timestamp, Message.key, Message.value, Message.headers
_time_ms = itemgetter(1)  # Message.timestamp() is (type, milliseconds)
# Commit errors that mean the group moved on (a rebalance): the partition is re-read from the committed offset.
_REBALANCE_CODES = frozenset({
    KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.FENCED_INSTANCE_ID, KafkaError._ASSIGNMENT_LOST, KafkaError._STATE,
})


def confluent_config(settings: KafkaSettings) -> dict[str, Any]:
    """librdkafka properties: our fixed choices, the security settings, then `client_options` (librdkafka's
    own property names when this client is selected)."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(s.strip() for s in settings.bootstrap.split(",") if s.strip()),
        "group.id": settings.group_id,
        "client.id": settings.client_id,
        "enable.auto.commit": False,  # offsets move only after the rows are stored
        "enable.auto.offset.store": False,
        "auto.offset.reset": settings.auto_offset_reset,
        "allow.auto.create.topics": False,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "fetch.wait.max.ms": settings.fetch_max_wait_ms,
        # What kafka-python does by default: every fetched batch's CRC is checked (in C here), uncommitted
        # transactional records are read as any other.
        "check.crcs": True,
        "isolation.level": "read_uncommitted",
        # librdkafka prefetches up to this per partition; bounded like one batch, so memory stays bounded.
        "queued.max.messages.kbytes": max(1024, settings.batch_max_bytes // 1024),
        # When that prefetch queue is over its bounds, librdkafka waits this long before fetching the partition
        # again (1,000 ms by default): with a fast consumer the queue is drained within milliseconds, and a second
        # without fetching was most of the time before a partition's first batch was stored (docs/benchmarks.md).
        "fetch.queue.backoff.ms": 10,
        "fetch.message.max.bytes": max(1 << 20, settings.max_message_bytes + (64 << 10)),
        "security.protocol": settings.security_protocol.lower(),
    }
    if settings.sasl_mechanism:
        config["sasl.mechanism"] = settings.sasl_mechanism
        if settings.sasl_username is not None:
            config["sasl.username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl.password"] = settings.sasl_password.get_secret_value()
    for name, prop in (("ssl_cafile", "ssl.ca.location"), ("ssl_certfile", "ssl.certificate.location"),
                       ("ssl_keyfile", "ssl.key.location")):
        if getattr(settings, name):
            config[prop] = getattr(settings, name)
    if settings.security_protocol.upper().endswith("SSL"):
        config["ssl.endpoint.identification.algorithm"] = "https" if settings.ssl_check_hostname else "none"
    config.update(settings.client_options)
    return config


def _ours(tp: TopicPartition) -> ConfluentPartition:
    return ConfluentPartition(tp.topic, tp.partition)


def _theirs(partitions: list[ConfluentPartition]) -> set[TopicPartition]:
    return {TopicPartition(p.topic, p.partition) for p in partitions}


def _raise_partition_error(partitions: list[ConfluentPartition] | None) -> None:
    for p in partitions or ():
        if p.error is not None:
            raise KafkaException(p.error)


def _records(stretch: list[Message], next_offset: int) -> tuple[list[Message], int]:
    """A stretch of one partition's fetched records, those before `next_offset` left out, as they are (no copy per
    record: `FetchedRecords` reads them by column when a batch is written), and their summed `KafkaMessage.size`.
    Offsets ascend within a partition's stretch, so the records to skip are a prefix; if they do not, record by
    record."""
    offsets = list(map(_offset, stretch))
    if not all(map(lt, offsets, islice(offsets, 1, None))):
        kept: list[Message] = []
        for m, offset in zip(stretch, offsets, strict=True):
            if offset >= next_offset:
                kept.append(m)
                next_offset = offset + 1
        stretch = kept
    else:
        skip = bisect_left(offsets, next_offset)
        if skip:
            stretch = stretch[skip:]
    return stretch, _record_bytes(stretch)


def _record_bytes(records: list[Message]) -> int:
    """The summed `KafkaMessage.size` of fetched records."""
    return summed_size(map(_value, records), map(_key, records))


def _header_tuple(headers: list[tuple[str, bytes | None]] | None) -> tuple[tuple[str, bytes | None], ...]:
    return tuple(headers) if headers else ()


class FetchedRecords(ColumnarBatch):
    """A batch of fetched records as librdkafka handed them out: its columns are read with `map` over the Message
    methods (the engine's one-statement path needs nothing else), and its `KafkaMessage`s are built only when the
    batch is iterated (the general path), on the write thread that does so."""

    def __init__(self, records: list[Message]) -> None:
        self.records = records
        self._messages: list[KafkaMessage] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def messages(self) -> list[KafkaMessage]:
        if self._messages is None:
            records = self.records
            headers = self.headers()
            # tuple.__new__ builds each named tuple without its generated Python __new__ (no frame per record).
            self._messages = list(map(_new_message, repeat(KafkaMessage), zip(
                map(_topic, records), map(_partition, records), map(_offset, records), self.timestamps_ms(),
                self.keys(), self.values(), headers if headers is not None else [()] * len(records), strict=True)))
        return self._messages

    def values(self) -> list[bytes | None]:
        return list(map(_value, self.records))

    def keys(self) -> list[bytes | None]:
        return list(map(_key, self.records))

    def headers(self) -> list[Headers] | None:
        headers = list(map(_headers, self.records))
        return list(map(_header_tuple, headers)) if any(headers) else None

    def timestamps_ms(self) -> list[int]:
        return list(map(_time_ms, map(_timestamp, self.records)))


def _extend(st: PartitionState, taken: list[Message], size: int, now: float) -> int:
    """`PartitionState.add` for many records at once (`size`: their summed `KafkaMessage.size`); returns how many."""
    if st.first_at is None:
        st.first_at = now
    st.buffer.extend(taken)
    st.bytes += size
    return len(taken)


class ConfluentWorker(KafkaWorker):
    """One consumer in the group on librdkafka; the loop, plans and writes are `KafkaWorker`'s."""

    client_errors = (KafkaException,)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client: Consumer | None = None

    def new_state(self, tp: TopicPartition, kind: Kind) -> PartitionState:
        # The buffers hold librdkafka's Messages as consume() returned them.
        return PartitionState(tp, kind, offset_of=_offset, record_bytes=_record_bytes)

    def _batch(self, records: list[Message]) -> FetchedRecords:
        return FetchedRecords(records)

    def _progress_config(self) -> dict[str, Any]:
        # client_options name librdkafka properties here; the kafka-python probe gets the mapped settings only.
        return consumer_config(self.settings.model_copy(update={"client_options": {}}))

    def _open_client(self) -> None:
        self.client = Consumer(confluent_config(self.settings), logger=log)

    def _close_client(self) -> None:
        if self.client is not None:
            self.client.close()  # leaves the group; nothing is committed (auto commit is off)
            self.client = None

    def _consumer(self) -> Consumer:
        assert self.client is not None, "the client is opened by run()"
        return self.client

    # -- rebalance callbacks: called by confluent-kafka inside consume(), on this thread --------------------
    def _on_assign(self, _consumer: Consumer, partitions: list[ConfluentPartition]) -> None:
        self._listener.on_partitions_assigned(_theirs(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[ConfluentPartition]) -> None:
        self._listener.on_partitions_revoked(_theirs(partitions))

    # -- the loop's questions ------------------------------------------------------------------------------
    def _poll(self, timeout_ms: int) -> None:
        messages = self._consumer().consume(num_messages=self.settings.max_poll_records, timeout=timeout_ms / 1000)
        self._apply_rebalance_events()
        if messages:
            self._buffer_messages(messages)

    def _buffer_messages(self, messages: list[Message]) -> None:
        """Append fetched records to their partitions' buffers (records before a partition's next offset are
        re-fetches after a seek and are skipped). A fetch holds long stretches of one partition: each stretch's
        fields are read with `map` over the Message methods and its records built in one step (`_records`), so
        no Python bytecode runs per record."""
        now = time.monotonic()
        errors = list(map(_error, messages))
        if any(errors):  # partition ends (not errors) and fetch errors: rare, dropped from the fetch here
            for m, error in zip(messages, errors, strict=True):
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: fetch error on %s/%s: %s", m.topic(), m.partition(), error)
            messages = list(compress(messages, map(is_, errors, repeat(None))))
        if not messages:
            return
        partitions = list(map(_partition, messages))
        topics = list(map(_topic, messages))
        if partitions.count(partitions[0]) == len(partitions) and topics.count(topics[0]) == len(topics):
            cuts = [0, len(messages)]  # the common fetch: one partition's stretch (two C-speed counts)
        else:
            cuts = [0, *compress(range(1, len(messages)), map(or_, map(ne, partitions[1:], partitions[:-1]),
                                                              map(ne, topics[1:], topics[:-1]))), len(messages)]
        accepted: dict[str, int] = {}
        for first, end in pairwise(cuts):
            st = self.states.get(TopicPartition(topics[first], partitions[first]))
            if st is None or st.needs_seek:
                continue
            taken, size = _records(messages[first:end], st.next_offset)
            if taken:
                accepted[st.kind.value] = accepted.get(st.kind.value, 0) + _extend(st, taken, size, now)
        for signal, count in accepted.items():
            self.telemetry.records_in.add(count, {"source": "kafka", "signal": signal})

    def _list_topics(self) -> set[str]:
        meta = self._consumer().list_topics(timeout=_TIMEOUT_S)
        return {name for name, topic in meta.topics.items() if topic.error is None}

    def _subscribe(self, topics: list[str]) -> None:
        self._consumer().subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                   on_lost=self._on_revoke)

    def _unsubscribe(self) -> None:
        self._consumer().unsubscribe()

    def _start_offset(self, st: PartitionState) -> int:
        consumer = self._consumer()
        (committed,) = consumer.committed([_ours(st.tp)], timeout=_TIMEOUT_S)
        _raise_partition_error([committed])
        if committed.offset >= 0:
            return int(committed.offset)
        # Never committed: pin where auto_offset_reset starts, so the first plan is keyed on an offset the
        # next owner also starts from.
        if st.buffer:
            start = _offset(st.buffer[0])
        else:
            position = self._position(st.tp)
            start = position if position is not None else -1
            if start < 0:
                low, high = consumer.get_watermark_offsets(_ours(st.tp), timeout=_TIMEOUT_S, cached=False)
                start = low if self.settings.auto_offset_reset == "earliest" else high
        _raise_partition_error(consumer.commit(offsets=[ConfluentPartition(st.tp.topic, st.tp.partition, start)],
                                               asynchronous=False))
        return int(start)

    def _must_seek(self, st: PartitionState, start: int) -> bool:
        # An assigned partition fetches from the committed offset already, and librdkafka refuses a seek until
        # it has started fetching: seek only when the position is known to be elsewhere.
        if st.needs_seek:
            return True
        if st.buffer:
            return _offset(st.buffer[0]) != start
        position = self._position(st.tp)
        return position is not None and position != start

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        self._consumer().seek(ConfluentPartition(tp.topic, tp.partition, offset))

    def _position(self, tp: TopicPartition) -> int | None:
        if self.client is None:
            return None
        (position,) = self.client.position([_ours(tp)])
        return int(position.offset) if position.offset >= 0 else None

    def _highwater(self, tp: TopicPartition) -> int | None:
        if self.client is None:
            return None
        marks = self.client.get_watermark_offsets(_ours(tp), cached=True)
        if marks is None or marks[1] < 0:
            return None
        return int(marks[1])

    def _commit_offset(self, tp: TopicPartition, end: int) -> None:
        try:
            result = self._consumer().commit(offsets=[ConfluentPartition(tp.topic, tp.partition, end)],
                                             asynchronous=False)
            _raise_partition_error(result)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if error is not None and error.code() in _REBALANCE_CODES:
                raise CommitRefused(error.name()) from exc
            raise

    def _pause(self, tps: set[TopicPartition]) -> None:
        self._consumer().pause([_ours(tp) for tp in tps])

    def _resume(self, tps: set[TopicPartition]) -> None:
        if tps:
            self._consumer().resume([_ours(tp) for tp in tps])

    def _assignment(self) -> set[TopicPartition]:
        return _theirs(self.client.assignment()) if self.client is not None else set()
