"""The sink: rows in, columnar inserts out, acknowledgement only after the store has them.

Two ways in, for two kinds of source:

* `Sink.write(rows, token=...)` inserts now and returns when every table has its rows. Sources that own
  their batching and their acknowledgement (Kafka: commit offsets after the write; files) call it
  directly. A deterministic `token` makes the write idempotent: ClickHouse drops an insert whose
  deduplication token it has already seen for that table, so a replayed batch lands once.
* Plain gc lines of OTLP log bodies arrive as the pseudo-table `GC_LINES_TABLE` (pipeline/normalize/plain_gc.py);
  `write` stores them in gc_events through the engine (`EngineGcLines`), which reads their fields, so no Python
  row is built for them. A sink with a journal (the OTLP writer's, pipeline/journal.py) appends them to it instead
  and returns once they are synced there; the journal stores them through the same statement, a segment at a time.
* `BatchingWriter.submit(rows)` queues rows from many small requests (OTLP exports) and returns a future
  that resolves once the merged batch is stored. When more rows wait than the limit allows it raises
  `Backpressure` at once, which the receivers turn into 429 / RESOURCE_EXHAUSTED, so memory stays bounded
  and the exporter, not Fleetwatch, holds the data until there is room.
"""

from __future__ import annotations

import logging
import struct
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from pipeline.config import REPO_SQL_DIR
from pipeline.journal import GcLinesJournal
from pipeline.normalize.gctrace import GC_TABLE, normalize_lines
from pipeline.normalize.plain_gc import GC_LINES_COLUMNS, GC_LINES_TABLE
from pipeline.normalize.rows import QUARANTINE, WEIGHT, Rows
from pipeline.request_ledger import RequestLedger
from pipeline.sqlfiles import RenderContext, load_statement
from pipeline.store.client import Store, StoreError, StoreUnavailable
from pipeline.store.row_binary import read_string, read_uvarint, string, uvarint
from pipeline.telemetry import Telemetry, get_telemetry

log = logging.getLogger(__name__)

# Every row a Kafka write stores carries its insert's token here (migration 106; pipeline/witness.py).
WITNESS_COLUMN: Final = "ingest_batch"
# Every `write_select` statement's SETTINGS clause takes its deduplication from these parameters: no per-call
# settings, which the embedded client applies with five extra statements per call (read, SET, SET back).
INLINE_TOKEN: Final = "{dedup_token:String}"
INLINE_DEDUPLICATE: Final = "{deduplicate:UInt8}"
# A replayed insert's check: (table, token, rows sent, insert(dedup token) -> rows) -> rows; see witness.py.
InsertGuard = Callable[[str, str, int, Callable[[str], int]], int]

# Quarantine goes last: if a data table fails, the rejects of the same batch are retried with it.
_LAST = (QUARANTINE,)


class Backpressure(Exception):
    """The writer has more rows waiting than it may hold; try again after `retry_after` seconds."""

    def __init__(self, pending: int, limit: int, retry_after: float) -> None:
        super().__init__(f"{pending} rows waiting for the store (limit {limit})")
        self.retry_after = retry_after


class EngineGcLines:
    """Writes plain gc lines (`GC_LINES_TABLE`: one row per resource, its lines joined) into gc_events with one
    `INSERT ... SELECT` per write, in which the engine splits the lines and reads their fields
    (sql/fastpath/otlp_gc_insert.sql). The rows go to the engine as RowBinary built here a resource at a time
    (the lines are already one string, the times one packed array), so nothing is serialized line by line."""

    def __init__(self, store: Store, sql_dir: Path = REPO_SQL_DIR, ctx: RenderContext | None = None) -> None:
        self.store = store
        ctx = ctx or RenderContext(database=store.database, ttl_days=1)
        self._insert_sql = load_statement(sql_dir, "fastpath/otlp_gc_insert.sql", ctx)

    def write(self, columns: dict[str, list], token: str | None, *, witness: str = "") -> int:
        """Store the lines' gc rows; returns how many. `token` is the dedup token of a request written alone.

        Should the engine refuse the statement (StoreError: a line it cannot read after all, a store without the
        function), the lines are not lost: the Python normalizer, the reference, makes their rows and they are
        inserted as any other rows (`python_rows`), under their own token."""
        lines = sum(columns[WEIGHT])
        if not lines:
            return 0
        self._insert(statement_input(columns), lambda: columns, lines, token, witness)
        return lines

    def write_segment(self, path: Path, lines: int, witness: str, guard: InsertGuard | None = None) -> int:
        """Store a journal segment's gc rows (pipeline/journal.py): the file is the statement's input as it is, read
        in place by the embedded engine. Its rows carry `witness` (the segment's name), by which `guard` checks a
        segment found on disk at start, so it is stored once whether or not its insert had landed."""
        def insert(_dedup: str) -> int:
            self._insert(path, lambda: segment_columns(path.read_bytes())[0], lines, None, witness)
            return lines

        return insert(witness) if guard is None else guard(GC_TABLE, witness, lines, insert)

    def _insert(self, data: bytes | Path, columns: Callable[[], dict[str, list]], lines: int, token: str | None,
                witness: str) -> None:
        """The engine statement over `data`; if the engine refuses it, the reference's rows of `columns()`.
        A request written alone keeps the store's deduplication, under its token; a merged write goes without.
        Both are the statement's parameters, set in its own SETTINGS clause (no per-call settings)."""
        try:
            self.store.insert_select_input(self._insert_sql, data,
                                           parameters={"deduplicate": 1 if token else 0, "dedup_token": token or "",
                                                       "witness": witness})
        except StoreError as exc:
            log.warning("the engine refused %d plain gc lines (%s); the Python normalizer stores them",
                        lines, str(exc).splitlines()[0][:200])
            rows = python_rows(columns())
            for table, table_columns in sorted(rows.tables.items()):
                if witness:  # these rows carry the write's witness too
                    count = len(next(iter(table_columns.values())))
                    table_columns = {**table_columns, WITNESS_COLUMN: [witness] * count}
                self.store.insert_columns(table, table_columns,
                                          dedup_token=f"{token}/python/{table}" if token else None)


def python_rows(columns: dict[str, list]) -> Rows:
    """The rows the reference makes of `GC_LINES_TABLE` columns: each resource's lines through `normalize_lines` in
    observed mode, with its receive time, as the OTLP mapping would have called it."""
    rows = Rows()
    for service, instance, source, received_ms, times, text in zip(
            columns["service"], columns["instance"], columns["source"], columns["received_ms"],
            columns["observed_ns"], columns["text"], strict=True):
        normalize_lines(text.split("\n"), observed_ns=times, service=service, instance=instance, source=source,
                        received_at=datetime.fromtimestamp(received_ms / 1000, UTC), rows=rows)
    return rows


def _row_binary(service: str, instance: str, source: str, received_ms: int, observed_ns: list[int],
                text: str) -> bytes:
    """One RowBinary row of otlp_gc_insert.sql's input: strings length-prefixed, Int64 little-endian, an array as
    its length then its items."""
    times = array("q", observed_ns)
    if sys.byteorder != "little":
        times.byteswap()
    return b"".join((string(service.encode()), string(instance.encode()), string(source.encode()),
                     struct.pack("<q", received_ms), uvarint(len(times)), times.tobytes(), string(text.encode())))


def statement_input(columns: dict[str, list]) -> bytes:
    """`GC_LINES_TABLE` columns as otlp_gc_insert.sql's input: RowBinary, a resource per row."""
    return b"".join(map(_row_binary, columns["service"], columns["instance"], columns["source"],
                        columns["received_ms"], columns["observed_ns"], columns["text"]))


def whole_rows(data: bytes) -> tuple[int, int]:
    """The lines in a segment's whole rows, and the bytes those rows take (the journal's `WholeRows`)."""
    columns, end = segment_columns(data)
    return sum(columns[WEIGHT]), end


def segment_columns(data: bytes) -> tuple[dict[str, list], int]:
    """The `GC_LINES_TABLE` columns of RowBinary rows made by `_row_binary` (a journal segment), and where the last
    whole row ends: a segment cut by a crash inside an append ends in part of a row, which is not read."""
    columns: dict[str, list] = {name: [] for name in GC_LINES_COLUMNS}
    view = memoryview(data)
    pos = end = 0
    try:
        while pos < len(view):
            service, pos = read_string(view, pos)
            instance, pos = read_string(view, pos)
            source, pos = read_string(view, pos)
            if pos + 8 > len(view):
                break
            (received_ms,) = struct.unpack_from("<q", view, pos)
            count, pos = read_uvarint(view, pos + 8)
            if pos + 8 * count > len(view):
                break
            times = array("q")
            times.frombytes(view[pos:pos + 8 * count])
            text, pos = read_string(view, pos + 8 * count)
            for name, value in (("service", service.decode()), ("instance", instance.decode()),
                                ("source", source.decode()), ("received_ms", received_ms), ("observed_ns", list(times)),
                                ("text", text.decode()), (WEIGHT, count)):
                columns[name].append(value)
            end = pos
    except ValueError:
        pass  # a row cut short: the segment ends at the last whole one
    return columns, end


class Sink:
    """Inserts `Rows` into the store, one columnar insert per table."""

    def __init__(self, store: Store, telemetry: Telemetry | None = None,
                 gc_lines: EngineGcLines | None = None, journal: GcLinesJournal | None = None) -> None:
        self.store = store
        self.telemetry = telemetry or get_telemetry()
        self._gc_lines = gc_lines
        # With a journal (the OTLP writer's sink), plain gc lines are safe once appended to it, and reach gc_events
        # in its large statements (pipeline/journal.py); without, each write stores them itself.
        self.journal = journal

    @property
    def gc_lines(self) -> EngineGcLines:
        """The engine path for plain gc lines, made on first use."""
        if self._gc_lines is None:
            self._gc_lines = EngineGcLines(self.store)
        return self._gc_lines

    def write(self, rows: Rows, *, token: str | None = None, witness: bool = False,
              guard: InsertGuard | None = None) -> dict[str, int]:
        """Insert all of `rows`; return rows written per table.

        Raises `StoreUnavailable` (retry later) or `StoreError` (the data or schema is wrong). With a token
        each table's insert carries `<token>/<table>`, so retrying the same call after a partial failure
        writes only the tables that are still missing. With `witness` (Kafka writes) every row also carries that
        insert token in `ingest_batch` (WITNESS_COLUMN), and a `guard` (a replayed batch) gets each insert to
        check it by that witness (pipeline/witness.py).
        """
        written: dict[str, int] = {}
        tables = sorted(rows.tables, key=lambda t: (t in _LAST, t))
        start = time.perf_counter()
        for table in tables:
            columns = rows.tables[table]
            if not columns or not next(iter(columns.values())):
                continue
            table_token = f"{token}/{table}" if token else None
            try:
                if witness and table_token:
                    n = self._witnessed(table, columns, table_token, guard)
                elif table == GC_LINES_TABLE and self.journal is not None:
                    written[table] = self._append_to_journal(self.journal, columns)
                    continue  # counted as written when the journal stores them
                elif table == GC_LINES_TABLE:
                    # Its own token: Python-made gc rows of the same request go in under `<token>/gc_events`.
                    n = self.gc_lines.write(columns, table_token)
                else:
                    n = self.store.insert_columns(table, columns, dedup_token=table_token)
            except StoreUnavailable as exc:
                self.telemetry.insert_errors.add(1, {"table": table, "kind": "unavailable"})
                exc.written_tables = dict(written)  # type: ignore[attr-defined]
                raise
            except StoreError as exc:
                self.telemetry.insert_errors.add(1, {"table": table, "kind": "rejected"})
                exc.written_tables = dict(written)  # type: ignore[attr-defined]
                raise
            written[table] = n
            self.telemetry.rows_written.add(n, {"table": GC_TABLE if table == GC_LINES_TABLE else table})
            if table == QUARANTINE:
                self.telemetry.quarantined.add(n)
        self.telemetry.batch_latency.record(time.perf_counter() - start)
        return written

    @staticmethod
    def _append_to_journal(journal: GcLinesJournal, columns: dict[str, list]) -> int:
        """The lines' statement input, appended to the journal (on disk when this returns); returns the lines."""
        lines = sum(columns[WEIGHT])
        journal.append(statement_input(columns), lines)
        return lines

    def _witnessed(self, table: str, columns: dict[str, list], table_token: str, guard: InsertGuard | None) -> int:
        """One table's insert whose rows carry `table_token` as their witness; checked by `guard` when given."""
        if table == GC_LINES_TABLE:
            def insert(dedup: str) -> int:
                return self.gc_lines.write(columns, dedup, witness=table_token)
            expected, target = sum(columns[WEIGHT]), GC_TABLE
        else:
            expected, target = len(next(iter(columns.values()))), table
            witnessed = {**columns, WITNESS_COLUMN: [table_token] * expected}

            def insert(dedup: str) -> int:
                return self.store.insert_columns(table, witnessed, dedup_token=dedup)
        return insert(table_token) if guard is None else guard(target, table_token, expected, insert)

    def write_select(self, table: str, sql: str, *, rows: int, parameters: dict[str, object],
                     token: str | None = None, data: bytes | None = None, guard: InsertGuard | None = None) -> int:
        """Run an `INSERT INTO <table> ... SELECT` whose rows the engine makes from data staged in the store (a
        fast path); `rows` is how many it inserts. The token is `<token>/<table>`, the one `write` gives the same
        table, so a batch written one way and replayed the other lands once; it is also the statement's
        `{witness}` parameter (the rows' `ingest_batch`, '' without a token). The statement's own SETTINGS clause
        takes the deduplication from `{dedup_token:String}` and `{deduplicate:UInt8}` (`INLINE_TOKEN`): per-call
        settings would cost the embedded client extra statements. With `data`, the statement reads those bytes
        through input() (`Store.insert_select_input`) instead. A `guard` (a replayed Kafka batch) checks the insert
        by its witness. Raises as `write` does, and ValueError for a statement without the two parameters."""
        if INLINE_TOKEN not in sql or INLINE_DEDUPLICATE not in sql:
            raise ValueError(f"the statement must set its deduplication from {INLINE_TOKEN} and {INLINE_DEDUPLICATE}")
        table_token = f"{token}/{table}" if token else ""
        parameters = {**parameters, "witness": table_token}

        def insert(dedup: str) -> int:
            params = {**parameters, "dedup_token": dedup, "deduplicate": int(bool(dedup))}
            if data is None:
                self.store.command(sql, parameters=params)
            else:
                self.store.insert_select_input(sql, data, parameters=params)
            return rows

        start = time.perf_counter()
        try:
            if guard is not None and table_token:
                guard(table, table_token, rows, insert)
            else:
                insert(table_token)
        except StoreUnavailable:
            self.telemetry.insert_errors.add(1, {"table": table, "kind": "unavailable"})
            raise
        except StoreError:
            self.telemetry.insert_errors.add(1, {"table": table, "kind": "rejected"})
            raise
        self.telemetry.rows_written.add(rows, {"table": table})
        self.telemetry.batch_latency.record(time.perf_counter() - start)
        return rows


@dataclass
class _Pending:
    rows: Rows
    size: int
    future: Future[dict[str, int]]
    token: str | None = None


class BatchingWriter:
    """Merges rows from concurrent callers into large inserts on one background thread.

    A batch is written when `max_rows` are waiting or the oldest has waited `max_delay` seconds. Futures
    resolve with the per-table counts of the merged write, or with the exception that failed it, so a
    caller answers its client only after the store has its rows.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        max_rows: int = 200_000,
        max_delay: float = 0.01,
        max_pending_rows: int = 2_000_000,
        retry_after: float = 1.0,
        dedup_window: int = 100_000,
        ledger: RequestLedger | None = None,
        ledger_interval: float = 1.0,
    ) -> None:
        self.sink = sink
        self.dedup_window = dedup_window
        # Tokens recorded in the store (pipeline/request_ledger.py): read back before the first write, so
        # a retry reaching a restarted process is recognised; `_stored_before` holds what was read.
        self.ledger = ledger
        self._ledger_read = ledger is None
        self._stored_before: set[str] = set()
        # Tokens are recorded together at most every `ledger_interval` seconds (and when the writer stops): an
        # insert per batch would cost the store a part per export.
        self.ledger_interval = ledger_interval
        self._unrecorded: list[str] = []
        self._recorded_at = time.monotonic()
        self._recent: OrderedDict[str, Future[dict[str, int]]] = OrderedDict()
        self.max_rows = max_rows
        self.max_delay = max_delay
        self.max_pending_rows = max_pending_rows
        self.retry_after = retry_after
        self._queue: list[_Pending] = []
        self._pending_rows = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fleetwatch-writer", daemon=True)
        self._started = False
        # Tests and fault injection can wrap the write call (for example to make the store "go away").
        self.write_fn: Callable[[Rows], dict[str, int]] = sink.write

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def start(self) -> BatchingWriter:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def submit(self, rows: Rows, token: str | None = None) -> Future[dict[str, int]]:
        """Queue rows; the future resolves when they are stored. Raises `Backpressure` when full.

        `token` identifies a request (OTLP: a hash of the signal and the decoded body). A request submitted
        again with a token that is waiting or was stored within the last `dedup_window` tokens is not queued
        again: the caller gets the first submission's future, so an export retried after a lost response is
        stored once. A token whose write failed is forgotten, so the retry is written. With a ledger, the
        tokens a previous process stored are known too (from the first write on).
        """
        future: Future[dict[str, int]] = Future()
        size = rows.total()
        if size == 0:
            future.set_result({})
            return future
        with self._cond:
            if token is not None:
                known = self._recent.get(token)
                if known is not None and not (known.done() and known.exception() is not None):
                    return known
            if self._stopping:
                raise Backpressure(self._pending_rows, self.max_pending_rows, self.retry_after)
            if self._pending_rows and self._pending_rows + size > self.max_pending_rows:
                raise Backpressure(self._pending_rows, self.max_pending_rows, self.retry_after)
            self._queue.append(_Pending(rows, size, future, token))
            if token is not None:
                self._recent[token] = future
                while len(self._recent) > self.dedup_window:
                    self._recent.popitem(last=False)
            self._pending_rows += size
            self.sink.telemetry.queue_rows.add(size)
            self._cond.notify()
        return future

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._started:
            self._thread.join(timeout)

    def _take_batch(self) -> list[_Pending] | None:
        """The next batch; [] when tokens are due to be recorded and nothing waits; None once stopped."""
        with self._cond:
            while not self._queue and not self._stopping:
                if self._unrecorded:
                    due = self._recorded_at + self.ledger_interval - time.monotonic()
                    if due <= 0:
                        return []
                    self._cond.wait(due)
                else:
                    self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self.max_delay
            while not self._stopping:
                queued = sum(p.size for p in self._queue)
                remaining = deadline - time.monotonic()
                if queued >= self.max_rows or remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[_Pending] = []
            rows = 0
            while self._queue and (not batch or rows + self._queue[0].size <= self.max_rows):
                item = self._queue.pop(0)
                batch.append(item)
                rows += item.size
            return batch

    def _write(self, rows: Rows, token: str | None) -> dict[str, int]:
        """A request written on its own carries its token to the store, whose deduplication then also catches
        a retry that reaches another process (a merged insert has no single token to carry)."""
        if token is not None and self.write_fn == self.sink.write:
            return self.sink.write(rows, token=token)
        return self.write_fn(rows)

    def _write_each(self, batch: list[_Pending], done: dict[str, int]) -> None:
        """Write each request of a refused merged batch on its own, skipping the tables already stored."""
        for item in batch:
            rest = Rows(tables={t: cols for t, cols in item.rows.tables.items() if t not in done})
            try:
                result = self._write(rest, item.token) if rest.total() else {}
            except BaseException as exc:
                item.future.set_exception(exc)
            else:
                self._record([item])
                item.future.set_result({**{t: item.rows.count(t) for t in done if t in item.rows.tables}, **result})

    def _read_ledger(self) -> None:
        """Before the first write: the tokens a previous process stored become known, as if submitted here."""
        if self._ledger_read or self.ledger is None:
            return
        try:
            stored = self.ledger.recent(self.dedup_window)
        except (StoreError, StoreUnavailable) as exc:  # tables not migrated yet, store away: retry later
            raise StoreUnavailable(f"the stored request tokens cannot be read yet: {exc}") from exc
        with self._cond:
            for token in reversed(stored):  # newest first, each placed before everything submitted here
                if token not in self._recent:
                    known: Future[dict[str, int]] = Future()
                    known.set_result({})
                    self._recent[token] = known
                    self._recent.move_to_end(token, last=False)
            while len(self._recent) > self.dedup_window:
                self._recent.popitem(last=False)
            self._stored_before = set(stored)
        self._ledger_read = True
        if stored:
            log.info("writer: %d request tokens stored by an earlier process are known", len(stored))

    def _unstored(self, batch: list[_Pending]) -> list[_Pending]:
        """The requests of `batch` that an earlier process did not store; the others succeed at once."""
        self._read_ledger()
        if not self._stored_before:
            return batch
        fresh = []
        for item in batch:
            if item.token is not None and item.token in self._stored_before:
                item.future.set_result({})
            else:
                fresh.append(item)
        return fresh

    def _record(self, batch: list[_Pending]) -> None:
        """Note the stored requests' tokens, to be recorded with the next flush of the ledger."""
        if self.ledger is not None:
            self._unrecorded.extend(item.token for item in batch if item.token is not None)
            self._flush_ledger(force=False)

    def _flush_ledger(self, *, force: bool) -> None:
        """Record the noted tokens when due (or `force`); a failure costs only the dedup of a later retry."""
        if self.ledger is None or not self._unrecorded:
            return
        if not force and time.monotonic() - self._recorded_at < self.ledger_interval:
            return
        tokens, self._unrecorded = self._unrecorded, []
        self._recorded_at = time.monotonic()
        try:
            self.ledger.record(tokens)
        except (StoreError, StoreUnavailable, OSError) as exc:
            log.warning("writer: recording %d request tokens failed (%s); a retry of them after a restart "
                        "would be stored again", len(tokens), str(exc).splitlines()[0][:200])

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                self._flush_ledger(force=True)
                return
            if not batch:
                self._flush_ledger(force=True)
                continue
            taken = batch
            try:
                batch = self._unstored(batch)
                if not batch:
                    continue
                merged = Rows()
                for item in batch:
                    merged.extend(item.rows)
                result = self._write(merged, batch[0].token if len(batch) == 1 else None)
            except StoreError as exc:
                if len(batch) > 1:
                    # One request's rows refused by the store must not fail the requests merged with it.
                    log.warning("write of %d merged requests refused (%s); writing them one by one",
                                len(batch), str(exc).splitlines()[0][:200])
                    self._write_each(batch, getattr(exc, "written_tables", {}))
                else:
                    batch[0].future.set_exception(exc)
            except BaseException as exc:  # every waiting caller must hear about the failure
                log.warning("write of %d requests failed: %s", len(batch), exc)
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
            else:
                self._record(batch)
                for item in batch:
                    item.future.set_result(result)
            finally:
                size = sum(item.size for item in taken)
                with self._cond:
                    self._pending_rows -= size
                self.sink.telemetry.queue_rows.add(-size)
