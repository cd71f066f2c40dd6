"""Kafka gctrace batches through the engine: many messages become one insert, no Python per plain gc line.

Why: the reference normalizer costs several microseconds per gc line in Python, and with one line per message
it ran once per run of messages on top of that. ClickHouse parses the same lines in bulk. So every raw-text line
of a partition batch is staged, with its observed time (the record timestamp) and its run (consecutive messages
of one (service, instance): the lines of one reference call), in one Memory table per worker
(sql/fastpath/observed_stage.sql). The engine answers which lines it does not recognise as plain gc lines; those
stretches, and every message the reference handles whole (JSON envelopes, tombstones, not UTF-8, too large), go
through the Python normalizer, the reference. The recognised lines go to gc_events in one `INSERT ... SELECT`
(sql/fastpath/observed_insert.sql).

The observed-time clock needs no window functions: a gc row's time is its record's time minus the cycle's
duration, whatever came before. What the reference carries from line to line (the last gc line's process start,
for scavenger/pacer/notice rows, and its number, for `after_gc_num`) is set before each Python stretch from the
recognised gc line just before it (`ObservedRanges.gc_stored_at`). Rows and quarantine are therefore the
reference's (tests/integration/test_kafka_gctrace_engine.py, tests/integration/test_transport_equivalence.py).

Exactly-once is kept as for every batch (docs/kafka.md): the other tables' rows are written with the batch's
per-table tokens first; then every gc row of the batch (the engine's, and the few the Python normalizer made) is
gathered as one block of a Memory table and inserted from there under `<batch token>/gc_events`. The engine
deduplicates an `INSERT ... SELECT` block by block of its source, so a one-block source is what makes a replay
the same block under the same token. Which path writes a batch is recorded in its plan (`kafka_batches`,
migration 092) and a replay follows the plan, so a batch is never written one way and replayed the other (the
Python path's insert is cut into blocks by the client, which the engine's cannot match).

Most batches are nothing but plain gc lines, and for those the stage path's work (split every value in Python,
stage the lines by column, query the unrecognised ones, insert, gather, insert again) is four engine passes and a
Python string per line for what one statement does: `write_clean` hands the batch's messages to the engine as
they came off the wire, one RowBinary row per message (record time, identity, value; a batch of one line per
message as one row of arrays and joined lines, sql/fastpath/observed_one_line.sql), and
sql/fastpath/observed_batch.sql splits, recognises, parses and stores them in gc_events under the batch's token,
or refuses the whole batch (nothing stored) when a line is not one it takes; the batch then takes the stage path.
Both write the batch's gc rows as one block under `<batch token>/gc_events`, so a batch written one way and
replayed the other lands once (tests/integration/test_kafka_gctrace_engine.py).
"""

from __future__ import annotations

import bisect
import logging
import re
import struct
import sys
import threading
import uuid
from array import array
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Final, NamedTuple

from pipeline.config import Settings
from pipeline.normalize.gctrace import GC_TABLE, ObservedRanges
from pipeline.normalize.kafka_messages import (
    SOURCE,
    GctraceRun,
    KafkaMessage,
    Kind,
    gctrace_runs,
    identity_from_transport,
    normalize_message,
    redo_run,
    run_lines,
)
from pipeline.normalize.rows import Rows
from pipeline.sink import InsertGuard, Sink
from pipeline.sources.kafka.columns import columns_of
from pipeline.sources.kafka.one_line import OneLineBatch, one_line_batch
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store, StoreError
from pipeline.store.migrate import RenderContext, context_from_settings
from pipeline.store.row_binary import uvarint

log = logging.getLogger(__name__)

# A batch with fewer lines than this is planned for Python: the engine's statements cost more than a few lines.
MIN_LINES: Final = 256
# The stage's insert as one block. The INSERT ... SELECTs of store_gc (one block, read in one block, on one thread,
# exact float parsing) set theirs in their SETTINGS clauses.
_ONE_BLOCK: Final = {"min_insert_block_size_rows": 1 << 30, "min_insert_block_size_bytes": 1 << 40,
                     "max_insert_block_size": 1 << 30}
# observed_batch.sql's refusal: the batch is not made of plain gc lines only (nothing was stored).
NOT_CLEAN: Final = "fleetwatch-fastpath: not a clean batch"
# After a refusal the next batch skips the statement, after two in a row the next two, ... up to this many: a
# stream that is never clean (Go 1.5 lines hold " ms clock, " but are not taken) wastes it on few batches.
MAX_SKIP: Final = 64
# What str.lstrip() strips from ASCII text: a value starting with "{" or "[" after it is a JSON envelope.
_ASCII_WHITESPACE: Final = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_CLOCK: Final = b" ms clock, "
# A value (after str.lstrip's ASCII whitespace) that starts a JSON envelope, for values without a line break
# joined by line breaks.
_JSON_START: Final = re.compile(rb"^[ \t\r\x0b\x0c\x1c-\x1f]*[{\[]", re.MULTILINE)
_ROW_HEAD: Final = struct.Struct("<qI")  # observed_batch.sql's input: observed_us Int64, ident UInt32, then value


def engine_from_settings(settings: Settings, store: Store) -> KafkaGctraceEngine:
    """The worker's engine path. With `kafka.gctrace_engine` off it plans no new batch for the engine, but still
    replays the batches whose plan says the engine wrote them."""
    return KafkaGctraceEngine(store, settings.sql_dir, context_from_settings(settings),
                              min_lines=settings.kafka.gctrace_engine_min_lines, enabled=settings.kafka.gctrace_engine)


class KafkaGctraceEngine:
    """One Kafka worker's gctrace fast path: its SQL, and for each thread that writes batches three Memory tables
    (created on first use, emptied per batch, dropped by `close`): the staged lines, the batch's gc rows, and those
    rows gathered as one block. Safe to use from several threads at once (one batch per thread)."""

    def __init__(self, store: Store, sql_dir: Path, ctx: RenderContext, *, min_lines: int = MIN_LINES,
                 enabled: bool = True) -> None:
        self.store = store
        self.min_lines = min_lines
        self.enabled = enabled
        self.database = ctx.database
        self.stage_sql = load_statement(sql_dir, "fastpath/observed_stage.sql", ctx)
        self.python_stage_sql = load_statement(sql_dir, "fastpath/observed_python_stage.sql", ctx)
        self.unrecognised_sql = load_statement(sql_dir, "fastpath/observed_unrecognised.sql", ctx)
        self.insert_sql = load_statement(sql_dir, "fastpath/observed_insert.sql", ctx)
        self.insert_staged_sql = load_statement(sql_dir, "fastpath/observed_insert_staged.sql", ctx)
        self.gather_sql = load_statement(sql_dir, "fastpath/observed_gather.sql", ctx)
        self.clear_sql = load_statement(sql_dir, "fastpath/observed_clear.sql", ctx)
        self.drop_sql = load_statement(sql_dir, "fastpath/observed_drop.sql", ctx)
        self._local = threading.local()  # this thread's stage tables: batches are written on several threads
        self._all_stages: list[_Stages] = []
        self.batch_sql = load_statement(sql_dir, "fastpath/observed_batch.sql", ctx)
        self.one_line_sql = load_statement(sql_dir, "fastpath/observed_one_line.sql", ctx)
        self.engine_lines = 0  # gc lines handed to the engine so far, replays included (the rest went to Python)
        self.clean_batches = 0  # batches stored by observed_batch.sql alone
        self.refused_batches = 0  # batches observed_batch.sql refused (then written by the stage path)
        self.one_statement = True  # try observed_batch.sql first (off: every batch takes the stage path)
        self._skip = 0
        self._backoff = 1
        self._lock = threading.Lock()

    def close(self) -> None:
        """Drop every thread's stage tables (after the writes on those threads have returned)."""
        with self._lock:
            created = [stages for stages in self._all_stages if stages.created]
        for stages in created:
            for stage in stages.names:
                self.store.command(self.drop_sql, parameters={"stage": stage})
            stages.created = False

    def _stages(self) -> _Stages:
        """This thread's three stage tables (named on first use, created by the first batch that needs them)."""
        stages = getattr(self._local, "stages", None)
        if stages is None:
            stages = self._local.stages = _Stages(f"kafka_gctrace_{uuid.uuid4().hex}")
            with self._lock:
                self._all_stages.append(stages)
        return stages

    def wants(self, messages: Sequence[KafkaMessage]) -> bool:
        """Whether a new gctrace batch is planned for the engine: on, and enough lines to be worth its statements.
        The answer is recorded in the batch plan, and a replay follows the plan, not this."""
        if not self.enabled:
            return False
        if len(messages) >= self.min_lines:  # a line or more per message, unless tombstones (rare: counted)
            values = columns_of(messages).values()
            return len(values) - values.count(None) >= self.min_lines or _lines(values) >= self.min_lines
        return _lines(columns_of(messages).values()) >= self.min_lines

    def statement(self, encoded: CleanInput) -> str:
        """The statement that reads `encoded`: observed_one_line.sql or observed_batch.sql."""
        return self.one_line_sql if encoded.one_line else self.batch_sql

    def write_clean(self, messages: Sequence[KafkaMessage], sink: Sink, token: str, *, received_at: datetime,
                    max_message_bytes: int, guard: InsertGuard | None = None) -> int | None:
        """Store a batch made of plain gc lines only with one statement (observed_batch.sql; observed_one_line.sql
        for a batch of one line per message), its rows under `<token>/gc_events`; returns how many. None, with
        nothing stored, when the batch is not such a batch (a cheap byte test, or the statement's refusal): then it
        takes the stage path (`prepare`)."""
        if not self.one_statement:
            return None
        with self._lock:
            if self._skip:
                self._skip -= 1
                return None
        encoded = clean_input(messages, max_message_bytes)
        if encoded is None:
            return None
        lines = encoded.lines
        params: dict[str, object] = {
            "services": [s for s, _ in encoded.identities], "instances": [i for _, i in encoded.identities],
            "source": SOURCE, "received_ms": int(received_at.timestamp() * 1000)}
        try:
            sink.write_select(GC_TABLE, self.statement(encoded), rows=lines, parameters=params, token=token,
                              data=encoded.data, guard=guard)
        except StoreError as exc:
            if NOT_CLEAN not in str(exc):
                raise
            with self._lock:
                self.refused_batches += 1
                self._skip, self._backoff = self._backoff, min(self._backoff * 2, MAX_SKIP)
            return None
        with self._lock:
            self._backoff = 1
            self.clean_batches += 1
            self.engine_lines += lines
        return lines

    def prepare(self, messages: Sequence[KafkaMessage], *, received_at: datetime,
                max_message_bytes: int) -> EngineBatch:
        """Normalize a gctrace batch: the rows of every table but gc_events in `EngineBatch.rows`, its gc rows
        staged for `EngineBatch.store_gc`."""
        plain = one_line_batch(messages, max_message_bytes)
        if plain is not None:  # one plain line per message: the columns in bulk (one_line.py)
            return self._prepare_one_line(plain, received_at, max_message_bytes)
        items = list(gctrace_runs(messages, max_message_bytes))
        runs = [item for item in items if isinstance(item, GctraceRun)]
        total = sum(len(lines) for run in runs for lines in run.lines)
        seq_of_run: list[int] = []  # first line of every run, in stage order
        identities: dict[tuple[str, str], int] = {}  # (service, instance) -> its index in the insert's arrays
        line_col: list[str] = []
        observed_col: list[int] = []
        identity_col: list[int] = []
        for run in runs:
            seq_of_run.append(len(line_col))
            for msg, lines in zip(run.messages, run.lines, strict=True):
                line_col += lines
                observed_col += [msg.timestamp_ms * 1000] * len(lines)
            identity = identities.setdefault(run.identity, len(identities))
            identity_col += [identity] * (len(line_col) - seq_of_run[-1])
        stages = self._stages()
        self._stage(stages, {"seq": range(len(line_col)), "ident": identity_col, "observed_us": observed_col,
                             "line": line_col})
        found = self.store.query(self.unrecognised_sql, parameters={"stage": stages.stage}) if total else None
        unrecognised = [seq for (seq,) in found.result_rows] if found is not None else []

        rows = Rows()
        poisoned = 0
        skipped: list[int] = []
        # Python's share, in batch order: whole messages, and the unrecognised stretches of each run.
        stretches = _stretches_by_run(unrecognised, seq_of_run)
        run_index = 0
        for item in items:
            if isinstance(item, KafkaMessage):
                poisoned += normalize_message(Kind.gctrace, item, rows, received_at, max_bytes=max_message_bytes)
                continue
            own_stretches = stretches.get(run_index, [])
            if own_stretches and not _run_stretches(item, own_stretches, seq_of_run[run_index], rows, received_at):
                # The reference failed on this run: it redoes the run message by message, gc rows included.
                skipped.append(run_index)
                poisoned += redo_run(item, rows, received_at, max_message_bytes)
            run_index += 1
        # gc rows the engine stores: the lines of every run it keeps, less their unrecognised stretches.
        ends = [*seq_of_run[1:], total]
        kept = set(range(len(runs))) - set(skipped)
        recognised = sum(ends[i] - seq_of_run[i] - sum(e - s for s, e in stretches.get(i, [])) for i in kept)
        python_gc = rows.tables.pop(GC_TABLE, None)
        if rows_in(python_gc):
            assert python_gc is not None
            self.store.insert_columns(f"{self.database}.{stages.python_stage}", python_gc)
        skipped_seqs = [(seq_of_run[i], ends[i] - 1) for i in skipped]
        return EngineBatch(self, stages, rows, poisoned, list(identities), skipped_seqs, recognised,
                           rows_in(python_gc), received_at)

    def _prepare_one_line(self, plain: OneLineBatch, received_at: datetime, max_message_bytes: int) -> EngineBatch:
        """`prepare` for a plain one-line batch: the same stage, rows and skips, with Python only for the runs that
        hold a line the engine does not recognise (in batch order, as `prepare` visits them)."""
        total = len(plain.values)
        stages = self._stages()
        self._stage(stages, {"seq": range(total), "ident": plain.ident, "observed_us": plain.observed_us,
                             "line": plain.values})
        found = self.store.query(self.unrecognised_sql, parameters={"stage": stages.stage})
        stretches = _stretches_by_run([seq for (seq,) in found.result_rows], plain.run_starts)
        rows = Rows()
        poisoned = 0
        skipped: list[tuple[int, int]] = []
        python_lines = 0
        for index in sorted(stretches):
            run = plain.run(index)
            first = plain.run_starts[index]
            if _run_stretches(run, stretches[index], first, rows, received_at):
                python_lines += sum(end - start for start, end in stretches[index])
            else:
                skipped.append((first, first + len(run.messages) - 1))
                python_lines += len(run.messages)
                poisoned += redo_run(run, rows, received_at, max_message_bytes)
        python_gc = rows.tables.pop(GC_TABLE, None)
        if rows_in(python_gc):
            assert python_gc is not None
            self.store.insert_columns(f"{self.database}.{stages.python_stage}", python_gc)
        return EngineBatch(self, stages, rows, poisoned, plain.identities, skipped, total - python_lines,
                           rows_in(python_gc), received_at)

    def _stage(self, stages: _Stages, columns: dict[str, Sequence[object]]) -> None:
        if not stages.created:
            self.store.command(self.stage_sql, parameters={"stage": stages.stage})
            for stage in (stages.python_stage, stages.gathered):
                self.store.command(self.python_stage_sql, parameters={"stage": stage})
            stages.created = True
        else:
            for stage in stages.names:
                self.store.command(self.clear_sql, parameters={"stage": stage})
        # As few blocks as the client's insert allows (store_gc gathers the result into one anyway).
        if next(iter(columns.values())):
            self.store.insert_columns(f"{self.database}.{stages.stage}", columns, settings=_ONE_BLOCK)


class _Stages:
    """One thread's Memory tables: the staged lines, the batch's gc rows, and those rows gathered as one block."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.python_stage = f"{stage}_python"
        self.gathered = f"{stage}_gathered"
        self.names = (self.stage, self.python_stage, self.gathered)
        self.created = False


class EngineBatch:
    """A prepared batch: the rows of every table but gc_events (`rows`, `poisoned`), and its gc rows staged in
    the store, inserted by `store_gc`."""

    def __init__(self, engine: KafkaGctraceEngine, stages: _Stages, rows: Rows, poisoned: int,
                 identities: list[tuple[str, str]], skipped: list[tuple[int, int]], recognised: int, python_gc: int,
                 received_at: datetime) -> None:
        self.engine = engine
        self.stages = stages
        self.rows = rows
        self.poisoned = poisoned
        self.identities = identities
        self.skipped = skipped  # [first, last] seq of every run the reference normalized whole
        self.recognised = recognised  # gc rows the engine parses
        self.python_gc = python_gc  # gc rows the Python normalizer made, in the engine's python stage
        self.gc_rows = recognised + python_gc
        self.received_ms = int(received_at.timestamp() * 1000)

    def store_gc(self, sink: Sink, token: str, guard: InsertGuard | None = None) -> int:
        """Insert every gc row of the batch into gc_events, as one insert under `<token>/gc_events`; returns how
        many rows that is. `guard`: a replay's check of the insert by its witness (witness.py)."""
        if self.gc_rows <= 0:
            return 0
        engine, stages = self.engine, self.stages
        params: dict[str, object] = {
            "stage": stages.stage, "python_stage": stages.python_stage, "services": [s for s, _ in self.identities],
            "instances": [i for _, i in self.identities], "skip_first": [f for f, _ in self.skipped],
            "skip_last": [last for _, last in self.skipped], "source": SOURCE, "received_ms": self.received_ms}
        # All gc rows are gathered as ONE block of a Memory table, and that block is inserted: the engine deduplicates
        # an INSERT ... SELECT block by block of its source, so only a one-block source gives a replay the same
        # block under the same token (the stage's insert, or two inserts into one table, may leave several).
        # The three statements carry their settings in their SETTINGS clauses, and the last its token too:
        # per-call settings cost the embedded client extra statements.
        if self.recognised:
            engine.store.command(engine.insert_sql, parameters={**params, "target": stages.python_stage})
        engine.store.command(engine.gather_sql, parameters={"source": stages.python_stage, "target": stages.gathered})
        sink.write_select(GC_TABLE, engine.insert_staged_sql, rows=self.gc_rows,
                          parameters={"gathered": stages.gathered}, token=token, guard=guard)
        with engine._lock:
            engine.engine_lines += self.recognised
        return self.gc_rows


class CleanInput(NamedTuple):
    """What `clean_input` hands the engine: the statement's input, the identities it indexes, its line count, and
    which statement reads it (`KafkaGctraceEngine.statement`)."""

    data: bytes
    identities: list[tuple[str, str]]
    lines: int
    one_line: bool  # observed_one_line.sql's single row; else observed_batch.sql's row per message


def clean_input(messages: Sequence[KafkaMessage], max_message_bytes: int) -> CleanInput | None:
    """The engine's input for a batch that may be plain gc lines only, its identities and its line count. None
    when a message is certainly not such: a tombstone, empty, too large, not ASCII (the reference decodes UTF-8
    and the engine's test must not differ from it on any byte), a JSON envelope, or a line without
    " ms clock, " (the count of lines and of that marker differ). ASCII whose every line holds the marker may
    still be refused by the statement.

    A batch of one line per message is encoded in bulk for observed_one_line.sql (`_one_line_input`); the rest
    message by message for observed_batch.sql: one RowBinary row per message (record time in microseconds, index
    of its identity, value)."""
    one_line = _one_line_input(messages, max_message_bytes)
    if one_line is not None:
        return None if one_line is False else one_line
    parts: list[bytes] = []
    identities: dict[tuple[str, str], int] = {}
    by_transport: dict[tuple[bytes | None, tuple], int] = {}  # identity depends only on key and headers
    lines = 0
    for msg in messages:
        value = msg.value
        if not value or len(value) > max_message_bytes or not value.isascii():
            return None
        if value.lstrip(_ASCII_WHITESPACE)[:1] in (b"{", b"["):
            return None
        count = value.count(b"\n") + (0 if value.endswith(b"\n") else 1)
        if value.count(_CLOCK) != count:
            return None
        lines += count
        transport = (msg.key, msg.headers)
        ident = by_transport.get(transport)
        if ident is None:
            ident = by_transport[transport] = identities.setdefault(identity_from_transport(msg), len(identities))
        parts += (_ROW_HEAD.pack(msg.timestamp_ms * 1000, ident), uvarint(len(value)), value)
    if not parts:
        return None
    return CleanInput(b"".join(parts), list(identities), lines, one_line=False)


def _one_line_input(messages: Sequence[KafkaMessage], max_message_bytes: int) -> CleanInput | bool | None:
    """`clean_input` for a batch of one line per message (no value holds a line break), with no Python step per
    message: None when some value holds one (the caller encodes message by message), False when the batch is
    certainly not clean (`clean_input`'s tests, on every value at once), else observed_one_line.sql's input.

    That input is one RowBinary row for the whole batch: the record times (Array(Int64), packed by `array`), the
    identity index of each message (Array(UInt32), likewise) and the values joined by line breaks (the join the
    tests need anyway). So the only Python per message is C-level: `map` over the messages' fields, the join, the
    counts. The marker is counted once over the join: a value without it and another with two pass, and the
    statement refuses the batch (as it refuses any line it does not take). The batch's rows are one block under
    the batch's token whichever statement wrote them, so the encoding does not change what a replay deduplicates
    against."""
    columns = columns_of(messages)
    values = columns.values()
    if not values or None in values:
        return False
    if b"\n" in values[0]:  # type: ignore[operator]  # None was ruled out
        return None  # values of many lines (the common batched topic): no join of the whole batch to find out
    joined = b"\n".join(values)  # type: ignore[arg-type]  # None was ruled out
    if joined.count(b"\n") != len(values) - 1:
        return None
    if b"" in values or max(map(len, values)) > max_message_bytes or not joined.isascii():  # type: ignore[arg-type]
        return False
    if joined.count(_CLOCK) != len(values):
        return False
    if (b"{" in joined or b"[" in joined) and _JSON_START.search(joined) is not None:
        return False
    # The identity depends on the key and headers only: worked out once per distinct pair, not per record.
    headers = columns.headers()
    keys = columns.keys()
    transports: list[object] = list(zip(keys, headers, strict=True)) if headers is not None else keys
    identity_of = {t: identity_from_transport(_carrier(t)) for t in dict.fromkeys(transports)}
    number: dict[tuple[str, str], int] = {}
    for identity in identity_of.values():
        number.setdefault(identity, len(number))
    if len(number) == 1:  # one sender for the whole batch (the common case): index 0 for all, no lookup per record
        idents = array("I", bytes(4 * len(values)))
    else:
        ident_of = {t: number[identity] for t, identity in identity_of.items()}
        idents = array("I", map(ident_of.__getitem__, transports))
    times = array("q", columns.timestamps_ms())
    if sys.byteorder != "little":  # RowBinary numbers are little-endian
        times.byteswap()
        idents.byteswap()
    count = uvarint(len(values))
    data = b"".join((count, times.tobytes(), count, idents.tobytes(), uvarint(len(joined)), joined))
    return CleanInput(data, list(number), len(values), one_line=True)


def _carrier(transport: object) -> KafkaMessage:
    """A message carrying only a transport's key and headers: what identity_from_transport reads."""
    key, headers = transport if isinstance(transport, tuple) else (transport, ())
    return KafkaMessage(topic="", partition=0, offset=0, timestamp_ms=0, key=key, value=None, headers=headers)


def _lines(values: Sequence[bytes | None]) -> int:
    """The lines of the values (a value's line breaks plus one; none for a tombstone)."""
    return sum(value.count(b"\n") + 1 for value in values if value is not None)


def rows_in(columns: dict[str, list] | None) -> int:
    """Rows in one table's columns (None: no such table)."""
    return len(next(iter(columns.values()))) if columns else 0


def _stretches_by_run(unrecognised: list[int], seq_of_run: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Consecutive unrecognised lines -> [start, end) stretches in stage seq, per run (a stretch never crosses
    a run's boundary: runs are separate reference calls)."""
    by_run: dict[int, list[tuple[int, int]]] = {}
    for seq in unrecognised:
        run = bisect.bisect_right(seq_of_run, seq) - 1
        own = by_run.setdefault(run, [])
        if own and own[-1][1] == seq:
            own[-1] = (own[-1][0], seq + 1)
        else:
            own.append((seq, seq + 1))
    return by_run


def _run_stretches(run: GctraceRun, stretches: list[tuple[int, int]], first_seq: int, rows: Rows,
                   received_at: datetime) -> bool:
    """The reference over a run's unrecognised stretches, the clock set past the recognised line before each;
    the rows go to `rows` only when the whole run succeeded (False otherwise, as the reference's call fails)."""
    lines, observed, where_at = run_lines(run)
    ranges = ObservedRanges(lines, observed_ns=observed, service=run.identity[0], instance=run.identity[1],
                            source=SOURCE, received_at=received_at, where_at=where_at)
    own = Rows()
    try:
        for start, end in stretches:
            local = start - first_seq
            if local > 0:  # the line before is recognised: stretches are maximal
                ranges.gc_stored_at(local - 1)
            ranges.normalize_range(local, end - first_seq, own)
    except Exception:  # the reference's call would have failed the same way
        log.debug("run of %d messages failed in the reference normalizer", len(run.messages), exc_info=True)
        return False
    rows.extend(own)
    return True
