"""A batch's records read column by column, whatever object the Kafka client handed out for each.

Why: with one line per message, building a `KafkaMessage` per record on the consumer's thread (and reading its
fields back on the write thread) cost more CPU than handing the engine the lines. The engine's one-statement path
needs only four columns of a batch (values, keys, headers, record times), each read with `map` over the client's
own objects (C calls, no Python frame per record). So a client may buffer its records as they came and hand the
write a `ColumnarBatch`: the columns for the fast path, and `KafkaMessage`s, built only when something iterates
the batch (the general path: Python normalizer, stage path, message-by-message fallback), on the write thread.
A plain list of `KafkaMessage`s is read through `MessageColumns`, so both clients give the same columns.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter
from typing import overload

from pipeline.normalize.kafka_messages import KafkaMessage

Headers = tuple[tuple[str, bytes | None], ...]
# A record as a client buffers it: a `KafkaMessage` (kafka-python) or librdkafka's own `Message` (confluent-kafka),
# read only through the partition state's `offset_of` / `record_bytes` and the client's `ColumnarBatch`.
Buffered = object

_values = attrgetter("value")
_keys = attrgetter("key")
_headers = attrgetter("headers")
_times = attrgetter("timestamp_ms")


def summed_size(values: Iterable[bytes | None], keys: Iterable[bytes | None]) -> int:
    """The summed `KafkaMessage.size` (value and key lengths) of records given as those two columns, whichever
    client's records they were read from: C calls only, no Python frame per record."""
    return sum(map(len, filter(None, values))) + sum(map(len, filter(None, keys)))


class ColumnarBatch(Sequence[KafkaMessage]):
    """A batch's records: as `KafkaMessage`s (built on first use) and as columns (without building them)."""

    @abstractmethod
    def messages(self) -> list[KafkaMessage]:
        """The records as `KafkaMessage`s, exactly as the client's record-by-record copy builds them."""

    @abstractmethod
    def values(self) -> list[bytes | None]:
        """Every record's value (None: a tombstone)."""

    @abstractmethod
    def keys(self) -> list[bytes | None]:
        """Every record's key."""

    @abstractmethod
    def headers(self) -> list[Headers] | None:
        """Every record's headers as `KafkaMessage.headers` holds them; None when no record has any (the common
        case, answered without a tuple per record)."""

    @abstractmethod
    def timestamps_ms(self) -> list[int]:
        """Every record's timestamp (`KafkaMessage.timestamp_ms`)."""

    def __len__(self) -> int:
        return len(self.messages())

    @overload
    def __getitem__(self, index: int) -> KafkaMessage: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[KafkaMessage]: ...

    def __getitem__(self, index: int | slice) -> KafkaMessage | Sequence[KafkaMessage]:
        return self.messages()[index]

    def __iter__(self) -> Iterator[KafkaMessage]:
        return iter(self.messages())


class MessageColumns(ColumnarBatch):
    """The columns of a list of `KafkaMessage`s (the kafka-python client's buffers, tests)."""

    def __init__(self, messages: Sequence[KafkaMessage]) -> None:
        self._messages = messages if isinstance(messages, list) else list(messages)

    def messages(self) -> list[KafkaMessage]:
        return self._messages

    def values(self) -> list[bytes | None]:
        return list(map(_values, self._messages))

    def keys(self) -> list[bytes | None]:
        return list(map(_keys, self._messages))

    def headers(self) -> list[Headers] | None:
        headers = list(map(_headers, self._messages))
        return headers if any(headers) else None

    def timestamps_ms(self) -> list[int]:
        return list(map(_times, self._messages))


def columns_of(messages: Sequence[KafkaMessage]) -> ColumnarBatch:
    """`messages` read by column: itself when it is a `ColumnarBatch`, else through `MessageColumns`."""
    return messages if isinstance(messages, ColumnarBatch) else MessageColumns(messages)
