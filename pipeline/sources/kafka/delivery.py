"""Exactly-once writes of Kafka partition batches: batch plans, dedup tokens, and the poison fallback.

The rule that makes a crash at any instant harmless: a batch of one partition covers the offsets
[start, end); `start` is the group's committed offset; its rows are written with the token
`kafka/<group>/<topic>/<partition>/<start>-<end>`; and its boundaries are recorded in the store (the
`kafka_batches` plan) BEFORE any of its rows are. Whoever owns the partition next reads the committed
offset, finds the plan that starts there, and replays exactly [start, end) with the same token, so
ClickHouse drops every table insert that had already landed. Kafka commit metadata would be the natural
place for the plan, but not every broker keeps it (Tansu returns it empty), and a plan in the store can be
claimed atomically: it is inserted with its own token, so the first plan for a start offset is the only
one kept, and two workers that both believe they own the partition agree on one range.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.normalize.gctrace import GC_TABLE
from pipeline.normalize.kafka_messages import SOURCE, KafkaMessage, Kind, normalize_messages
from pipeline.normalize.pprof import PprofLimits
from pipeline.normalize.rows import QUARANTINE, Rows
from pipeline.sink import InsertGuard, Sink
from pipeline.sources.kafka.gctrace_engine import KafkaGctraceEngine
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store, StoreError
from pipeline.store.migrate import RenderContext
from pipeline.witness import ReplayWitness

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def batch_token(group_id: str, topic: str, partition: int, start: int, end: int) -> str:
    return f"kafka/{group_id}/{topic}/{partition}/{start}-{end}"


class BatchLedger:
    """The recorded boundaries of partition batches, in the store next to the rows they protect."""

    def __init__(self, store: Store, group_id: str, sql_dir: Path, render: RenderContext) -> None:
        self.store = store
        self.group_id = group_id
        self._lookup_sql = load_statement(sql_dir, "queries/kafka_batch_plan.sql", render)
        self._claim_sql = load_statement(sql_dir, "queries/kafka_batch_claim.sql", render)
        self._who = worker_name()
        # What a replayed batch checks its inserts with (witness.py): the rows of the batches these plans protect.
        self.witness = ReplayWitness(store, sql_dir, render)

    def plan(self, topic: str, partition: int, start: int) -> Plan | None:
        """The plan starting at `start` (its end, and how its gc rows are written), or None."""
        rows = self.store.dicts(
            self._lookup_sql,
            {"group_id": self.group_id, "topic": topic, "partition": partition, "start_offset": start},
        )
        if not rows or not rows[0]["plans"]:
            return None
        found = rows[0]
        planned_at: datetime = found["first_planned_at"]
        return Plan(end=int(found["end_offset"]), gctrace_engine=bool(found["gctrace_engine"]),
                    witnessed=bool(found["witnessed"]),
                    planned_at=planned_at if planned_at.tzinfo else planned_at.replace(tzinfo=UTC))

    def claim(self, topic: str, partition: int, start: int, end: int, messages: int, *,
              gctrace_engine: bool = False, witnessed: bool = False) -> Plan:
        """Record the plan [start, end) unless one exists; returns the plan that stands (its end may differ).
        `gctrace_engine`: the batch's gc rows are written by the engine path (whoever replays it does the same).
        `witnessed`: its rows carry their witness, so a replay checks its inserts by it (witness.py)."""
        self.store.command(
            self._claim_sql,
            parameters={
                "group_id": self.group_id, "topic": topic, "partition": partition, "start_offset": start,
                "end_offset": end, "messages": messages, "planned_by": self._who,
                "gctrace_engine": int(gctrace_engine), "witnessed": int(witnessed),
                "dedup_token": f"plan/{self.group_id}/{topic}/{partition}/{start}",
            },
        )
        stored = self.plan(topic, partition, start)
        if stored is None:  # the insert returned, so the plan must be readable; anything else is a store bug
            raise StoreError(f"batch plan {topic}/{partition}@{start} not readable after insert")
        return stored


@dataclass(frozen=True)
class Plan:
    """A recorded partition batch: every write of it, first or replay, follows this exactly."""

    end: int
    gctrace_engine: bool  # its gc rows are written by the engine path
    witnessed: bool  # its rows carry their witness (every plan recorded since migration 107)
    # When it was recorded: the received_at of all its rows. Tables are partitioned by day and ClickHouse keeps
    # deduplication tokens per partition, so a replay stamped with its own clock on a later day would store again.
    planned_at: datetime


@dataclass
class BatchResult:
    rows: dict[str, int]
    poisoned: int


def _by_table(rows: Rows) -> list[tuple[str, Rows]]:
    """One `Rows` per table, in the order `Sink.write` uses (quarantine last), so tokens match it."""
    tables = sorted((t for t in rows.tables if rows.count(t)), key=lambda t: (t == QUARANTINE, t))
    return [(t, Rows(tables={t: rows.tables[t]})) for t in tables]


def write_batch(
    sink: Sink,
    kind: Kind,
    messages: Sequence[KafkaMessage],
    token: str,
    *,
    received_at: datetime,
    otlp_encoding: str,
    max_message_bytes: int,
    pprof_limits: PprofLimits | None = None,
    gctrace_engine: KafkaGctraceEngine | None = None,
    replay: ReplayWitness | None = None,
) -> BatchResult:
    """Normalize and store one planned batch; idempotent for the same messages and token.

    With `gctrace_engine` (when the batch's plan says so), a gctrace batch of plain gc lines only is stored by one
    engine statement; any other gctrace batch has its gc rows stored by the engine in one insert, after every
    other table (gctrace_engine.py); the rest is as below.

    Raises `StoreUnavailable` (retry the same batch later). When the store rejects a table's insert
    outright (`StoreError`: a value the column cannot hold), the batch falls back to one write per message
    for that table and the ones after it, and a message the store still rejects is quarantined with the
    store's reason. The fallback is as deterministic as the batch, so a replay takes the same path with
    the same tokens.

    Every row carries its insert's token as its witness (`ingest_batch`). With `replay` (a batch replayed from its
    plan), each insert is then checked by that witness, and stored again under a new token when the engine
    dropped it as a duplicate of an insert whose rows never landed (witness.py).
    """
    guard = replay.ensure if replay is not None else None
    engine = None
    if kind is Kind.gctrace and gctrace_engine is not None:
        clean = gctrace_engine.write_clean(messages, sink, token, received_at=received_at,
                                           max_message_bytes=max_message_bytes, guard=guard)
        if clean is not None:  # plain gc lines only: one statement stored them all
            return BatchResult({GC_TABLE: clean}, 0)
        engine = gctrace_engine.prepare(messages, received_at=received_at, max_message_bytes=max_message_bytes)
        rows, poisoned = engine.rows, engine.poisoned
    else:
        rows = Rows()
        poisoned = normalize_messages(kind, messages, rows=rows, received_at=received_at,
                                      otlp_encoding=otlp_encoding, max_message_bytes=max_message_bytes,
                                      pprof_limits=pprof_limits)
    written: dict[str, int] = {}
    parts = _by_table(rows)
    for index, (table, part) in enumerate(parts):
        try:
            written.update(sink.write(part, token=token, witness=True, guard=guard))
        except StoreError as exc:
            log.warning("store rejected %s of batch %s (%s); writing message by message", table, token, exc)
            remaining = {t for t, _ in parts[index:]}
            poisoned += _write_one_by_one(sink, kind, messages, token, remaining, written, received_at=received_at,
                                          otlp_encoding=otlp_encoding, max_message_bytes=max_message_bytes,
                                          pprof_limits=pprof_limits, guard=guard)
            break
    if engine is not None:
        stored = engine.store_gc(sink, token, guard)
        if stored:
            written[GC_TABLE] = written.get(GC_TABLE, 0) + stored
    return BatchResult(written, poisoned)


def _write_one_by_one(
    sink: Sink,
    kind: Kind,
    messages: Sequence[KafkaMessage],
    token: str,
    tables: set[str],
    written: dict[str, int],
    *,
    received_at: datetime,
    otlp_encoding: str,
    max_message_bytes: int,
    pprof_limits: PprofLimits | None = None,
    guard: InsertGuard | None = None,
) -> int:
    poisoned = 0
    for msg in messages:
        own = Rows()
        normalize_messages(kind, [msg], rows=own, received_at=received_at, otlp_encoding=otlp_encoding,
                           max_message_bytes=max_message_bytes, pprof_limits=pprof_limits)
        own = Rows(tables={t: c for t, c in own.tables.items() if t in tables})
        if not own:
            continue
        try:
            counts = sink.write(own, token=f"{token}/m{msg.offset}", witness=True, guard=guard)
        except StoreError as exc:
            reject = Rows()
            reject.quarantine(source=SOURCE, signal=kind.value, reason=f"store rejected the rows: {exc}"[:2000],
                              raw=msg.value or b"", received_at=received_at, **msg.where)
            counts = sink.write(reject, token=f"{token}/m{msg.offset}/rejected", witness=True, guard=guard)
            poisoned += 1
        for table, n in counts.items():
            written[table] = written.get(table, 0) + n
    return poisoned
