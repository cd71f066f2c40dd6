"""`--until-caught-up` over the whole topic, not over what this member happens to be assigned.

A worker started right after another was killed joins a group that may still count the dead member until
its session times out, and be handed only part of the partitions. Draining those and leaving would skip
the rest of the topic. So "caught up" is asked of the group, partition by partition: every partition of
every subscribed topic must have nothing past the group's committed offset. Until then the worker keeps
polling, which keeps it in the group: once the dead member's session expires (or a live member commits),
the group rebalances, this worker is handed the orphaned partitions and drains them.

The partitions this worker is assigned are judged by the consumer loop itself (the high watermark of its
own fetches). The others are probed by a second consumer that never joins the group: it reads the group's
committed offset (OffsetFetch) and fetches from there, and the fetch answer's high watermark says whether
anything is left. A fetch rather than ListOffsets because some Kafka-protocol brokers answer ListOffsets
with the end of the last record *batch*, not of the last record; and a second consumer rather than the
group member's own, so the probe never interleaves with a rebalance in progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

log = logging.getLogger(__name__)

# How often the group-wide check may run, and how often it says what it is waiting for.
CHECK_EVERY_S = 1.0
EXPLAIN_EVERY_S = 5.0
_PROBE_WAIT_S = 5.0
_TIMEOUT_MS = 5_000


def lagging(
    starts: Mapping[TopicPartition, int], highs: Mapping[TopicPartition, int | None]
) -> dict[TopicPartition, tuple[int, int | None]]:
    """Partitions with records past where the group stands: tp -> (group offset, high watermark).

    A partition whose high watermark is unknown (the probe got no answer) counts as behind.
    """
    return {tp: (start, highs.get(tp)) for tp, start in starts.items()
            if highs.get(tp) is None or start < (highs.get(tp) or 0)}


class GroupProgress:
    """Answers "has the group committed every partition of these topics up to its end?"."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        # Same brokers, security and group; never subscribes, so it is no member of the group.
        self.probe = KafkaConsumer(**{**config, "enable_auto_commit": False, "client_id": "fleetwatch-progress"})
        self._checked_at = 0.0
        self._explained_at = 0.0
        self.last_behind: dict[TopicPartition, tuple[int, int | None]] = {}

    def close(self) -> None:
        self.probe.close(autocommit=False)

    def partitions(self, topics: Iterable[str]) -> set[TopicPartition]:
        out: set[TopicPartition] = set()
        for topic in topics:
            numbers = self.probe.partitions_for_topic(topic)
            if not numbers:
                raise KafkaError(f"no partition metadata for topic {topic!r} yet")
            out.update(TopicPartition(topic, p) for p in numbers)
        return out

    def caught_up(self, topics: Iterable[str], assigned: Iterable[TopicPartition]) -> bool:
        """True when no partition of `topics` outside `assigned` (which the caller has judged) has records
        past the group's committed offset. Rate-limited: between checks it answers False."""
        now = time.monotonic()
        if now - self._checked_at < CHECK_EVERY_S:
            return False
        self._checked_at = now
        try:
            others = sorted(self.partitions(topics) - set(assigned))
            starts = self._group_offsets(others)
            highs = self._high_watermarks(starts)
        except KafkaError as exc:
            log.info("kafka: cannot read the group's progress yet: %s", exc)
            return False
        self.last_behind = lagging(starts, highs)
        if not self.last_behind:
            return True
        if now - self._explained_at >= EXPLAIN_EVERY_S:
            self._explained_at = now
            log.info("kafka: caught up on this member's partitions; waiting for the group to hand over or commit "
                     "the rest (a dead member's session may have to expire first): %s",
                     ", ".join(f"{tp.topic}/{tp.partition} at {a} of {b if b is not None else '?'}"
                               for tp, (a, b) in sorted(self.last_behind.items())))
        return False

    def _group_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offset of each partition; the beginning for partitions never committed."""
        starts: dict[TopicPartition, int] = {}
        never: list[TopicPartition] = []
        for tp in tps:
            offset = self.probe.committed(tp, timeout_ms=_TIMEOUT_MS)
            if offset is None or offset < 0:
                never.append(tp)
            else:
                starts[tp] = offset
        if never:
            starts.update(self.probe.beginning_offsets(never, timeout_ms=_TIMEOUT_MS))
        return starts

    def _high_watermarks(self, starts: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | None]:
        """Fetch once from each start; the fetch answer carries the partition's high watermark."""
        if not starts:
            return {}
        self.probe.assign(list(starts))
        for tp, start in starts.items():
            self.probe.seek(tp, start)
        deadline = time.monotonic() + _PROBE_WAIT_S
        highs: dict[TopicPartition, int | None] = {tp: None for tp in starts}
        while time.monotonic() < deadline:
            fetched = self.probe.poll(timeout_ms=100, max_records=1)
            for tp in starts:
                high = self.probe.highwater(tp)
                if fetched.get(tp):  # a record at or past the start: behind, whatever the watermark says
                    high = max(high or 0, fetched[tp][-1].offset + 1)
                if high is not None:
                    highs[tp] = high if highs[tp] is None else max(highs[tp] or 0, high)
            if all(h is not None for h in highs.values()):
                break
        self.probe.assign([])
        return highs
