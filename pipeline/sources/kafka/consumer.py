"""The Kafka consumer loop: poll, buffer per partition, write planned batches, then commit.

One thread owns the KafkaConsumer (kafka-python clients are not thread-safe) and does everything in
order: apply rebalance events, initialize newly assigned partitions, buffer fetched records, hand the
batches that are due to the write threads (writes.py: plan and rows, at most one batch per partition at a
time) and commit those that were stored, pause or resume partitions, report lag. The loop never blocks on
a slow or absent store: a failed write sets a backoff, pauses fetching and is retried on a later turn, while
`poll()` keeps the group membership alive.

Offsets move only here and only forward, to the end of a batch whose rows are stored. Everything else
(buffers, uncommitted batches of a revoked partition) may be dropped at any time, because the next owner
starts at the committed offset and replays the recorded plan (see delivery.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from operator import attrgetter
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from pipeline.config import KafkaSettings
from pipeline.normalize.kafka_messages import KafkaMessage, Kind
from pipeline.normalize.pprof import PprofLimits
from pipeline.sink import Sink
from pipeline.sources.kafka.columns import Buffered, summed_size
from pipeline.sources.kafka.delivery import BatchLedger, BatchResult, Plan, batch_token, write_batch
from pipeline.sources.kafka.gctrace_engine import KafkaGctraceEngine
from pipeline.sources.kafka.progress import GroupProgress
from pipeline.sources.kafka.writes import PartitionWrites, Write
from pipeline.store.client import StoreError, StoreUnavailable
from pipeline.telemetry import Telemetry
from pipeline.witness import ReplayWitness

log = logging.getLogger(__name__)

_POLL_MS = 100
_POLL_WRITING_MS = 10  # while batches are being written: notice a finished write soon, to commit and go on
_LAG_EVERY_S = 1.0


def topic_kinds(settings: KafkaSettings) -> dict[str, Kind]:
    """Configured topic name -> what it carries. An empty name turns that topic off."""
    pairs = [
        (settings.topic_gctrace, Kind.gctrace),
        (settings.topic_cancel_events, Kind.cancel_events),
        (settings.topic_otlp_logs, Kind.otlp_logs),
        (settings.topic_otlp_spans, Kind.otlp_spans),
        (settings.topic_otlp_metrics, Kind.otlp_metrics),
        (settings.topic_pprof, Kind.pprof),
    ]
    return {name: kind for name, kind in pairs if name}


def consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    """KafkaConsumer keyword arguments: our fixed choices, the security settings, then `client_options`."""
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.bootstrap.split(",") if s.strip()],
        "group_id": settings.group_id,
        "client_id": settings.client_id,
        "enable_auto_commit": False,  # offsets move only after the rows are stored
        "auto_offset_reset": settings.auto_offset_reset,
        "allow_auto_create_topics": False,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "max_poll_records": settings.max_poll_records,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if getattr(settings, name):
            config[name] = getattr(settings, name)
    if settings.security_protocol.upper().endswith("SSL"):
        config["ssl_check_hostname"] = settings.ssl_check_hostname
    config.update(settings.client_options)
    return config


def bytes_of(messages: list[KafkaMessage]) -> int:
    """The summed `KafkaMessage.size` of `messages`."""
    return summed_size(map(attrgetter("value"), messages), map(attrgetter("key"), messages))


_offset: Callable[[Buffered], int] = attrgetter("offset")


def _batch_count(st: PartitionState, settings: KafkaSettings) -> int:
    """How many of the buffered messages make the next batch: as many as `batch_max_messages` and
    `batch_max_bytes` allow, and at least one. The common cases (the buffer or its first `batch_max_messages`
    within the byte limit) are counted without a Python step per message."""
    if len(st.buffer) <= settings.batch_max_messages and st.bytes <= settings.batch_max_bytes:
        return len(st.buffer)
    if len(st.buffer) > settings.batch_max_messages and \
            st.record_bytes(list(islice(st.buffer, settings.batch_max_messages))) <= settings.batch_max_bytes:
        return settings.batch_max_messages
    count, size = 0, 0
    for m in st.buffer:
        m_size = st.record_bytes([m])
        if count and (count >= settings.batch_max_messages or size + m_size > settings.batch_max_bytes):
            break
        count += 1
        size += m_size
    return count


def early_due(buffered_bytes: int, running_writes: int, settings: KafkaSettings) -> bool:
    """Whether a partition's buffer is written before its batch is full or old: `batch_early_bytes` wait and a write
    thread is free. Why: a freshly assigned partition used to wait `batch_max_seconds` with its first batch fetched
    and both cores idle, then write it while the rest of the backlog waited behind it. Here the first write starts
    as soon as a useful amount is buffered, and the next batch is what gathered meanwhile; while the writes keep
    the threads busy the rule does not apply, so a steady backlog still goes in full batches. Off with no write
    threads: a write on the consumer's thread stops the fetch, so the buffer would never grow past the threshold."""
    return (settings.batch_early_bytes > 0 and settings.write_threads > 0
            and buffered_bytes >= settings.batch_early_bytes and running_writes < settings.write_threads)


@dataclass
class PartitionState:
    """What the loop knows about one assigned partition. The buffer holds the records as the client hands them out
    (`KafkaMessage`s with kafka-python, librdkafka's own `Message`s with confluent-kafka: no copy per record);
    `offset_of` and `record_bytes` read them (the client's `KafkaWorker.new_state` sets both)."""

    tp: TopicPartition
    kind: Kind
    buffer: deque[Buffered] = field(default_factory=deque)
    bytes: int = 0
    first_at: float | None = None  # monotonic time the oldest buffered message arrived
    ready: bool = False  # committed offset and plan are known
    needs_seek: bool = False  # after a failed commit: fetch again from the committed offset
    committed: int = -1  # the start of the next batch: the group's committed offset
    plan: Plan | None = None  # a recorded plan from `committed` that must be replayed exactly
    pending_commit: int | None = None  # rows stored up to here; the commit is still to do
    # The bytes of the batch being written when it was the whole buffer at its cut (the common case), so that
    # `take` need not sum them again once the buffer has grown; None: summed then.
    cut_bytes: int | None = None
    offset_of: Callable[[Buffered], int] = _offset  # a buffered record's offset
    record_bytes: Callable[[list[Buffered]], int] = bytes_of  # the summed `KafkaMessage.size` of buffered records

    @property
    def next_offset(self) -> int:
        return self.offset_of(self.buffer[-1]) + 1 if self.buffer else self.committed

    @property
    def first_offset(self) -> int | None:
        """The offset of the oldest buffered record (None: the buffer is empty)."""
        return self.offset_of(self.buffer[0]) if self.buffer else None

    def add(self, msg: KafkaMessage, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        self.buffer.append(msg)
        self.bytes += msg.size

    def take(self, count: int, size: int | None = None) -> None:
        """Drop the oldest `count` records (`size`: their summed bytes, when known: not summed again)."""
        if count >= len(self.buffer):
            self.buffer.clear()
            self.bytes = 0
        else:  # the rest as a new deque: C-speed, where popping `count` records is a Python step each
            self.bytes -= self.record_bytes(list(islice(self.buffer, count))) if size is None else size
            self.buffer = deque(islice(self.buffer, count, None))
        self.first_at = time.monotonic() if self.buffer else None

    def reset(self) -> None:
        self.buffer.clear()
        self.bytes = 0
        self.first_at = None
        self.ready = False
        self.plan = None
        self.pending_commit = None


@dataclass(frozen=True)
class _Outcome:
    """What a write thread hands back: the stored batch (None: another worker's plan stands for this start, to be
    followed), and the plan the partition is on now."""

    result: BatchResult | None
    plan: Plan


class _Listener(ConsumerRebalanceListener):
    """Records rebalance events for the loop. kafka-python calls it on its IO thread, where blocking
    consumer calls are not allowed, so the work happens in the loop right after `poll()` returns."""

    def __init__(self) -> None:
        self.events: list[tuple[str, set[TopicPartition]]] = []
        self.lock = threading.Lock()
        self.joined = threading.Event()
        # time.monotonic() of the first assignment that gave this worker partitions: the end of the group join
        # (with some brokers most of a short run's wall time), which a running worker pays once (bench/worker.py).
        self.first_assigned_at: float | None = None

    def on_partitions_revoked(self, revoked: Any) -> None:
        with self.lock:
            self.events.append(("revoked", set(revoked)))

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self.lock:
            self.events.append(("assigned", set(assigned)))
            if assigned and self.first_assigned_at is None:
                self.first_assigned_at = time.monotonic()
        self.joined.set()

    def take(self) -> list[tuple[str, set[TopicPartition]]]:
        with self.lock:
            events, self.events = self.events, []
        return events


class KafkaWorker:
    """One consumer in the group, run on its own thread by `KafkaSource`."""

    def __init__(
        self,
        settings: KafkaSettings,
        sink: Sink,
        ledger: BatchLedger,
        telemetry: Telemetry,
        *,
        until_caught_up: bool = False,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.ledger = ledger
        self.telemetry = telemetry
        self.until_caught_up = until_caught_up
        self.kinds = topic_kinds(settings)
        self.stop_requested = threading.Event()
        self.caught_up = threading.Event()
        self.states: dict[TopicPartition, PartitionState] = {}
        self.consumer: KafkaConsumer | None = None
        self._listener = _Listener()
        self._subscribed: tuple[str, ...] | None = None
        self._topics_checked = 0.0
        self._retry_at = 0.0
        self._backoff = settings.retry_initial_seconds
        # Partitions paused in the client and not resumed since, assigned or not: both clients keep a partition
        # paused across a rebalance that gives it back (see _apply_rebalance_events).
        self._paused: set[TopicPartition] = set()
        self._lag_at = 0.0
        self.pauses = 0  # partitions paused so far (for tests and health pages)
        # Limits for the pprof topic's profiles (the [pprof] section; set by the component that starts us).
        self.pprof_limits: PprofLimits | None = None
        # The gctrace engine path (set by the component that starts us; None: the Python normalizer handles every
        # line). Each batch's plan records whether the engine writes it, so a replay writes it the same way.
        self.gctrace_engine: KafkaGctraceEngine | None = None
        # Batches being written on other threads, at most one per partition (writes.py).
        self.writes: PartitionWrites[TopicPartition, _Outcome] = PartitionWrites(settings.write_threads)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def run(self) -> None:
        self._open_client()
        progress = GroupProgress(self._progress_config()) if self.until_caught_up else None
        try:
            while not self.stop_requested.is_set():
                self._refresh_subscription()
                if self._subscribed:
                    # rebalance events applied, then records buffered; while batches are being written, a short
                    # wait, so a finished write is committed soon
                    self._poll(_POLL_WRITING_MS if self.writes.running() else _POLL_MS)
                else:
                    self.stop_requested.wait(_POLL_MS / 1000)
                    self._apply_rebalance_events()
                self._initialize_partitions()
                self._flush(force=False)
                self._apply_backpressure()
                self._report_lag()
                if progress is not None and self._is_caught_up() and self._group_caught_up(progress):
                    log.info("kafka: the group has committed every partition of %s to its high watermark",
                             ", ".join(self._subscribed or ()))
                    self.caught_up.set()
                    return
            self.writes.wait_all(None)  # the batches being written are committed before the last ones are cut
            self._flush(force=True, once=True)
            self.writes.wait_all(None)
            self._collect()
        finally:
            self.writes.close()  # the write threads return before the client goes (they never call it)
            self._close_client()
            if progress is not None:
                progress.close()
            if self.gctrace_engine is not None:
                try:
                    self.gctrace_engine.close()
                except (StoreUnavailable, StoreError) as exc:
                    log.warning("kafka: cannot drop the gctrace stage table: %s", exc)

    @property
    def first_assigned_at(self) -> float | None:
        """time.monotonic() when the group first gave this worker partitions (None: not yet)."""
        return self._listener.first_assigned_at

    # -- subscription and rebalances -----------------------------------------------------------------------
    def _refresh_subscription(self) -> None:
        """Subscribe to the configured topics that exist. A missing topic is skipped, not created (a consumer
        asking for it would auto-create it on many brokers with the wrong partition count) and is picked
        up once it exists."""
        now = time.monotonic()
        if self._subscribed is not None and now - self._topics_checked < self.settings.topic_refresh_seconds:
            return
        self._topics_checked = now
        try:
            existing = self._list_topics()
        except self.client_errors as exc:
            log.warning("kafka: cannot list topics: %s", exc)
            return
        wanted = tuple(sorted(t for t in self.kinds if t in existing))
        if wanted == self._subscribed:
            return
        missing = sorted(set(self.kinds) - set(wanted))
        if missing:
            log.info("kafka: topics %s do not exist (yet); consuming %s", missing, list(wanted))
        if wanted:
            self._subscribe(list(wanted))
        elif self._subscribed:
            self._unsubscribe()
            self.states.clear()
        self._subscribed = wanted

    def _apply_rebalance_events(self) -> None:
        for event, partitions in self._listener.take():
            if event == "revoked":
                # Dropping is always safe: nothing past the committed offset is lost, and a batch whose
                # rows are stored but not committed is replayed from its plan by the next owner.
                for tp in partitions:
                    self.states.pop(tp, None)
                if partitions:
                    log.info("kafka: partitions revoked: %s", _names(partitions))
            else:
                for tp in partitions:
                    if tp not in self.states and tp.topic in self.kinds:
                        self.states[tp] = self.new_state(tp, self.kinds[tp.topic])
                if partitions:
                    log.info("kafka: partitions assigned: %s", _names(partitions))
                    # The client keeps a partition paused across a rebalance that gives it back (kafka-python if
                    # it stays assigned, librdkafka even after it was away), while its state here starts afresh
                    # (not paused): resume it, or it is never fetched again. Both then fetch from the committed
                    # offset. This runs on the consumer's thread, right after the fetch that brought the event.
                    stale = set(partitions) & self._paused & self._assignment()  # (a later event may revoke it)
                    if stale:
                        self._resume(stale)
                        self._paused -= stale

    def _initialize_partitions(self) -> None:
        """Read the committed offset and any recorded plan of partitions that are new to this worker."""
        for st in self.states.values():
            if st.ready:
                continue
            try:
                start = self._start_offset(st)
                plan = self.ledger.plan(st.tp.topic, st.tp.partition, start)
            except (*self.client_errors, StoreUnavailable, StoreError) as exc:
                log.info("kafka: %s not ready yet: %s", _name(st.tp), exc)
                continue
            while st.buffer and st.offset_of(st.buffer[0]) < start:
                st.take(1)
            if self._must_seek(st, start):
                # The client may keep a fetch position from before a rebalance (past records this worker
                # buffered and dropped); fetch again from exactly the committed offset.
                st.reset()
                try:
                    self._seek(st.tp, start)
                except self.client_errors as exc:
                    log.info("kafka: %s cannot be positioned yet: %s", _name(st.tp), exc)
                    st.needs_seek = True
                    continue
                st.needs_seek = False
            st.committed = start
            st.plan = plan if plan is not None and plan.end > start else None
            st.ready = True
            if st.plan is not None:
                log.info("kafka: %s resumes the recorded batch [%d, %d)", _name(st.tp), start, st.plan.end)

    # -- buffering -----------------------------------------------------------------------------------------
    def _buffer(self, records: dict[TopicPartition, list[Any]]) -> None:
        now = time.monotonic()
        for tp, batch in records.items():
            st = self.states.get(tp)
            if st is None or st.needs_seek:
                continue
            accepted = 0
            for rec in batch:
                if rec.offset < st.next_offset:
                    continue  # already buffered or committed (a re-fetch after a seek)
                st.add(
                    KafkaMessage(
                        topic=rec.topic, partition=rec.partition, offset=rec.offset,
                        timestamp_ms=rec.timestamp, key=rec.key, value=rec.value,
                        headers=tuple((k, v) for k, v in (rec.headers or ())),
                    ),
                    now,
                )
                accepted += 1
            if accepted:
                self.telemetry.records_in.add(accepted, {"source": "kafka", "signal": st.kind.value})

    # -- writing and committing ----------------------------------------------------------------------------
    def _flush(self, *, force: bool, once: bool = False) -> None:
        """Write and commit every batch that is due. `force`: also partial batches (stop, caught up)."""
        self._collect()
        for st in list(self.states.values()):
            if time.monotonic() < self._retry_at and not once:
                return
            if self.states.get(st.tp) is not st or self.writes.busy(st.tp):
                continue
            if st.pending_commit is not None and not self._commit(st):
                continue
            # A partition may hold several batches' worth (after a pause or a slow write).
            for _ in range(8):
                if not st.ready or st.pending_commit is not None or not self._flush_one(st, force):
                    break

    def _due(self, st: PartitionState, force: bool) -> bool:
        if not st.buffer:
            return False
        s = self.settings
        if force or len(st.buffer) >= s.batch_max_messages or st.bytes >= s.batch_max_bytes:
            return True
        if st.first_at is not None and time.monotonic() - st.first_at >= s.batch_max_seconds:
            return True
        if early_due(st.bytes, self.writes.running(), s):
            return True
        if self.until_caught_up:
            high = self._highwater(st.tp)
            return high is not None and st.next_offset >= high
        return False

    def _flush_one(self, st: PartitionState, force: bool) -> bool:
        """Start writing one batch of `st` if one is due and complete (on a write thread, or here with none);
        True when a batch was stored and committed by the time this returns."""
        if self.writes.busy(st.tp):
            return False
        start = st.committed
        plan = st.plan
        if plan is not None:
            end = plan.end
            position = self._position(st.tp)
            if st.next_offset < end and (position is None or position < end):
                return False  # the recorded range is not fully fetched yet
            count = sum(1 for m in st.buffer if st.offset_of(m) < end)
        else:
            if not self._due(st, force):
                return False
            count = _batch_count(st, self.settings)
            end = st.offset_of(st.buffer[count - 1]) + 1
        messages = self._batch(list(islice(st.buffer, count)))  # a deque indexes its middle in O(n)
        engine = plan.gctrace_engine if plan is not None else (
            st.kind is Kind.gctrace and self.gctrace_engine is not None and self.gctrace_engine.wants(messages))
        job = partial(self._write, st.tp, st.kind, messages, start, end, plan=plan, engine=engine)
        self.writes.submit(st.tp, st, start, end, count, job)
        st.cut_bytes = st.bytes if count == len(st.buffer) else None
        return self._collect(st)

    def _write(self, tp: TopicPartition, kind: Kind, messages: Sequence[KafkaMessage], start: int, end: int, *,
               plan: Plan | None, engine: bool) -> _Outcome:
        """Claim the plan of [start, end) unless `plan` is the recorded one being replayed, then store the batch:
        on a write thread (no consumer call here; the consumer commits once this returned). Its rows are stamped
        with the plan's time, whichever write this is."""
        replay: ReplayWitness | None = None
        if plan is None:
            plan = self.ledger.claim(tp.topic, tp.partition, start, end, len(messages), gctrace_engine=engine,
                                     witnessed=True)
            if plan.end != end:  # someone planned this range first: follow their plan
                return _Outcome(None, plan)
            log.debug("kafka: planned batch %s [%d, %d)", _name(tp), start, end)
        elif plan.witnessed:
            # A replay checks each insert by its rows' witness (witness.py); plans of workers that wrote no
            # witness are replayed on their tokens alone.
            replay = self.ledger.witness
        token = batch_token(self.settings.group_id, tp.topic, tp.partition, start, end)
        if engine and self.gctrace_engine is None:
            raise StoreError(f"batch plan {_name(tp)}@{start} is for the gctrace engine path, which is missing")
        result = write_batch(
            self.sink, kind, messages, token, received_at=plan.planned_at,
            otlp_encoding=self.settings.otlp_encoding, max_message_bytes=self.settings.max_message_bytes,
            pprof_limits=self.pprof_limits, gctrace_engine=self.gctrace_engine if engine else None,
            replay=replay,
        )
        return _Outcome(result, plan)

    def _collect(self, own: PartitionState | None = None) -> bool:
        """Finish the writes that returned: commit what was stored, back off from what failed. True when `own`'s
        batch was stored and committed."""
        committed = False
        for tp, write in self.writes.finished():
            if self._finish(tp, write) and write.owner is own:
                committed = True
        return committed

    def _finish(self, tp: TopicPartition, write: Write[_Outcome]) -> bool:
        st = self.states.get(tp)
        if st is not write.owner or st.first_offset != write.start:
            return False  # revoked or re-read meanwhile: the next owner replays the plan
        start, end = write.start, write.end
        try:
            outcome = write.future.result()
        except (StoreUnavailable, StoreError) as exc:
            self._retry_at = time.monotonic() + self._backoff
            log.warning("kafka: store unavailable for %s [%d, %d), retry in %.1fs: %s",
                        _name(tp), start, end, self._backoff, exc)
            self._backoff = min(self._backoff * 2, self.settings.retry_max_seconds)
            return False
        st.plan = outcome.plan
        if outcome.result is None:
            log.info("kafka: %s follows the batch plan [%d, %d)", _name(tp), start, outcome.plan.end)
            return False
        self._backoff = self.settings.retry_initial_seconds
        if outcome.result.poisoned:
            log.warning("kafka: %d message(s) of %s [%d, %d) quarantined", outcome.result.poisoned, _name(tp),
                        start, end)
        st.take(write.count, st.cut_bytes)
        st.cut_bytes = None
        st.pending_commit = end
        return self._commit(st)

    def _commit(self, st: PartitionState) -> bool:
        """Commit the end of the stored batch. On a rebalance the partition is re-read from the group's
        committed offset; the stored rows are safe either way (the plan makes their replay a no-op)."""
        assert st.pending_commit is not None
        end = st.pending_commit
        try:
            self._commit_offset(st.tp, end)
        except CommitRefused as exc:
            log.info("kafka: commit of %s@%d refused during a rebalance (%s); re-reading the partition",
                     _name(st.tp), end, exc)
            st.reset()
            st.needs_seek = True
            return False
        except self.client_errors as exc:
            log.warning("kafka: commit of %s@%d failed, will retry: %s", _name(st.tp), end, exc)
            return False
        log.debug("kafka: committed batch %s [%d, %d)", _name(st.tp), st.committed, end)
        st.committed = end
        st.plan = None
        st.pending_commit = None
        return True

    # -- backpressure, lag, completion ---------------------------------------------------------------------
    def _apply_backpressure(self) -> None:
        """Pause fetching instead of growing memory: all partitions while the store is failing or the
        buffers are over `max_buffered_bytes`, single partitions holding two batches' worth."""
        s = self.settings
        total = sum(st.bytes for st in self.states.values())
        store_down = time.monotonic() < self._retry_at
        paused_here = self._paused & self.states.keys()
        over = total > s.max_buffered_bytes or (paused_here and total > s.max_buffered_bytes // 2)
        wanted = set()
        for tp, st in self.states.items():
            full = st.bytes >= 2 * s.batch_max_bytes or len(st.buffer) >= 2 * s.batch_max_messages
            if store_down or over or full:
                wanted.add(tp)
        # The client's assignment only when something may be resumed: librdkafka answers it through its main
        # thread, and this runs on every turn of the loop.
        to_pause, to_resume = wanted - self._paused, paused_here - wanted
        if to_resume:
            to_resume &= self._assignment()
        if to_pause:
            self.pauses += len(to_pause)
            self._pause(to_pause)
            self._paused |= to_pause
            log.info("kafka: paused %d partition(s) (%d bytes buffered, store %s)",
                     len(to_pause), total, "unavailable" if store_down else "ok")
        if to_resume:
            self._resume(to_resume)
            self._paused -= to_resume

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < _LAG_EVERY_S:
            return
        self._lag_at = now
        for tp, st in self.states.items():
            high = self._highwater(tp)
            if high is not None and st.ready:
                self.telemetry.consumer_lag.record(max(high - st.committed, 0),
                                                   {"topic": tp.topic, "partition": tp.partition})
        self.telemetry.kafka_buffered.record(sum(len(st.buffer) for st in self.states.values()))

    def _group_caught_up(self, progress: GroupProgress) -> bool:
        """Every partition of the subscribed topics, assigned here or not, is committed to its end offset."""
        if not self._subscribed:
            return True  # none of the topics exists: nothing to consume
        return progress.caught_up(self._subscribed, self._assignment())

    def _is_caught_up(self) -> bool:
        """Joined, and every assigned partition has committed up to the high watermark of its last fetch."""
        if not self._subscribed:
            return self._subscribed is not None
        if not self._listener.joined.is_set() or self._listener.events:
            return False
        for tp, st in self.states.items():
            high = self._highwater(tp)
            if not st.ready or st.pending_commit is not None or st.buffer or high is None or st.committed < high:
                return False
        return True

    # -- the client (kafka-python here; confluent.py implements the same for librdkafka) --------------------
    # Errors of the client that mean "not now": the loop logs them and tries again on a later turn.
    client_errors: tuple[type[Exception], ...] = (KafkaError,)

    def new_state(self, tp: TopicPartition, kind: Kind) -> PartitionState:
        """A newly assigned partition's state, its buffer read the way this client's records are."""
        return PartitionState(tp, kind)

    def _batch(self, records: list[Buffered]) -> Sequence[KafkaMessage]:
        """A batch of buffered records as the write takes it (kafka-python buffers `KafkaMessage`s already)."""
        return records

    def _progress_config(self) -> dict[str, Any]:
        """kafka-python options of the `--until-caught-up` probe (progress.py), which never joins the group."""
        return consumer_config(self.settings)

    def _open_client(self) -> None:
        self.consumer = KafkaConsumer(**consumer_config(self.settings))

    def _close_client(self) -> None:
        if self.consumer is not None:
            self.consumer.close(autocommit=False)

    def _poll(self, timeout_ms: int) -> None:
        """Fetch (waiting up to `timeout_ms`), apply the rebalance events the fetch brought, then buffer the
        records (a first batch may arrive with the assignment)."""
        assert self.consumer is not None
        records = self.consumer.poll(timeout_ms=timeout_ms)
        self._apply_rebalance_events()
        self._buffer(records)

    def _list_topics(self) -> set[str]:
        assert self.consumer is not None
        return set(self.consumer.topics())

    def _subscribe(self, topics: list[str]) -> None:
        assert self.consumer is not None
        self.consumer.subscribe(topics, listener=self._listener)

    def _unsubscribe(self) -> None:
        assert self.consumer is not None
        self.consumer.unsubscribe()

    def _start_offset(self, st: PartitionState) -> int:
        """The group's committed offset; a partition never committed is pinned where auto_offset_reset started,
        so the first batch's plan is keyed on an offset the next owner will also start from."""
        assert self.consumer is not None
        committed = self.consumer.committed(st.tp)
        if committed is not None and committed >= 0:
            return committed
        start = st.buffer[0].offset if st.buffer else self.consumer.position(st.tp)
        self.consumer.commit({st.tp: OffsetAndMetadata(start, "", -1)})
        return start

    def _must_seek(self, st: PartitionState, start: int) -> bool:
        """Whether the fetch position must be set to `start` before the partition's records can be used."""
        return st.needs_seek or not st.buffer or st.buffer[0].offset != start

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        assert self.consumer is not None
        self.consumer.seek(tp, offset)

    def _position(self, tp: TopicPartition) -> int | None:
        return self.consumer.position(tp) if self.consumer is not None else None

    def _highwater(self, tp: TopicPartition) -> int | None:
        """The partition's high watermark as of its last fetch (None before one)."""
        return self.consumer.highwater(tp) if self.consumer is not None else None

    def _commit_offset(self, tp: TopicPartition, end: int) -> None:
        """Commit `end`; `CommitRefused` when the group is rebalancing (re-read the partition)."""
        assert self.consumer is not None
        try:
            self.consumer.commit({tp: OffsetAndMetadata(end, "", -1)})
        except (CommitFailedError, RebalanceInProgressError) as exc:
            raise CommitRefused(type(exc).__name__) from exc

    def _pause(self, tps: set[TopicPartition]) -> None:
        assert self.consumer is not None
        self.consumer.pause(*tps)

    def _resume(self, tps: set[TopicPartition]) -> None:
        assert self.consumer is not None
        self.consumer.resume(*tps)
        _release_parked_records(self.consumer)

    def _assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()


class CommitRefused(Exception):
    """The group coordinator refused a commit because of a rebalance: the rows are stored and planned, the
    partition is re-read from the committed offset and the replay is dropped by the store."""


def _release_parked_records(consumer: KafkaConsumer) -> None:
    """Work around kafka-python 3.0.x losing a resumed partition (resumed, or assigned again after a rebalance).

    Records fetched for a partition that is then paused are parked in the fetcher; on resume they are
    handed back only when the fetcher's in-line slot is None, but a drained slot keeps its (empty) record
    set, so the parked partition is never returned nor fetched again. Clearing a drained slot lets the
    fetcher pick the parked records up on the next poll. Without the private attribute this does nothing.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not getattr(fetcher, "_paused_partition_records", None):
        return
    current = getattr(fetcher, "_next_partition_records", None)
    if current is not None and not current:
        fetcher._next_partition_records = None


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


def _names(tps: set[TopicPartition]) -> str:
    return ", ".join(sorted(_name(tp) for tp in tps))
