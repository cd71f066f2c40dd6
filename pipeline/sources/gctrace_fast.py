"""The gctrace fast path: runs of plain gc lines are parsed and stored by the engine, not line by line in Python.

Why: the Python normalizer costs several microseconds per line (a regex, about eighteen conversions, a
tuple), which bounds every ingest path far below what the store takes. ClickHouse parses the same lines in
bulk with its own regex engine. So each batch of a stream goes to the engine as one String column (a Memory
table per stream whose MATERIALIZED columns parse each line once, sql/fastpath/gctrace_stage.sql); the
engine answers which lines it did not recognise; runs of recognised lines are inserted into gc_events by one
`INSERT ... SELECT` that applies the stream clock with window functions (restarts open incarnations exactly as
`normalize.gctrace._StreamClock` does), and everything else (application lines, other runtime lines, torn,
broken and unknown lines, short runs) goes through the Python normalizer, the reference, with the clock state
handed over between the two. Rows, incarnations, quarantine and stats are identical to the reference's
(tests/integration/test_gctrace_fast_equivalence.py).

Only fixed-start streams take the fast path: a live pipe anchored on the wall clock stays in Python.

A caller that read the lines from bytes passes those bytes too (`feed(..., raw=...)`): they are staged as they
are, in the engine's `LineAsString` format, so clickhouse-connect serializes no Python string per line. The raw
bytes of a line may differ from its Python text only where the engine does not recognise it anyway (bytes that
are not UTF-8, kept as backslash escapes in Python; a trailing carriage return, which the stage regex allows),
and unrecognised lines are handled by Python from its own text, so the rows stay the reference's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pipeline.normalize import runtime_lines as rl
from pipeline.normalize.gctrace import REPAIR_WINDOW, GctraceStream, LineStats, StreamClockState
from pipeline.normalize.rows import Rows
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store, StoreError
from pipeline.store.migrate import RenderContext

# A chunk shorter than this is not tried as one statement: the statement's fixed cost (planning a large
# expression, writing a part) is tens of milliseconds, the span path's per-line cost is lower for a few lines.
MIN_CHUNK: Final = 1_000
# At most this many batches skip the chunk statement after refusals in a row (see FastGctraceStream._skip).
MAX_SKIP: Final = 64
# What the one-statement chunk path (gctrace_chunk.sql) raises when a chunk is not all plain gc lines in clock
# order; the chunk then stored nothing and takes the span path.
NOT_CLEAN: Final = "fleetwatch-fastpath: not a clean chunk"
# A run of recognised lines shorter than this goes to Python: two engine queries cost more than a few lines.
MIN_RUN: Final = 64
# A plain file at most this large, and of at most a batch of lines, is read by the embedded engine in place as one
# clean batch (`FastGctraceStream.feed_file`); the engine holds it as one block, as it holds a batch read by Python.
FILE_STATEMENT_BYTES: Final = 64 << 20
# The end of such a file read by Python for its last line (the clock state after it): a longer last line, and the
# file is read as before.
FILE_TAIL_BYTES: Final = 64 << 10
# The characters file() reads as a pattern of file names (globs, alternatives, ranges): a path holding one is read
# by Python.
_GLOB_CHARS: Final = frozenset("*?{}[]")
# Exact float parsing, as Python's float() (the engine's default parser may differ in the last bit).
_PARSE_SETTINGS: Final = {"precise_float_parsing": 1}
# Raw bytes: one block, parsed in order, so the stage's seq DEFAULT (the row's number in its block) is the line's
# index; the staged count and last seq are checked after every raw insert.
_RAW_SETTINGS: Final = {**_PARSE_SETTINGS, "input_format_parallel_parsing": 0, "max_block_size": 1 << 30,
                        "max_insert_block_size": 1 << 30, "min_insert_block_size_rows": 1 << 30,
                        "min_insert_block_size_bytes": 1 << 40}


class GctraceFastPath:
    """The SQL of the fast path, loaded once per process."""

    def __init__(self, store: Store, sql_dir: Path, ctx: RenderContext, *, min_run: int = MIN_RUN,
                 min_chunk: int = MIN_CHUNK) -> None:
        self.store = store
        self.min_run = min_run
        self.min_chunk = min_chunk
        self.stage_sql = load_statement(sql_dir, "fastpath/gctrace_stage.sql", ctx)
        self.unrecognised_sql = load_statement(sql_dir, "fastpath/gctrace_unrecognised.sql", ctx)
        self.insert_sql = load_statement(sql_dir, "fastpath/gctrace_insert.sql", ctx)
        self.state_sql = load_statement(sql_dir, "fastpath/gctrace_state.sql", ctx)
        self.clear_sql = load_statement(sql_dir, "fastpath/gctrace_clear.sql", ctx)
        self.drop_sql = load_statement(sql_dir, "fastpath/gctrace_drop.sql", ctx)
        self.staged_sql = load_statement(sql_dir, "fastpath/gctrace_staged.sql", ctx)
        self.undecided_sql = load_statement(sql_dir, "fastpath/gctrace_undecided.sql", ctx)
        self.chunk_sql = load_statement(sql_dir, "fastpath/gctrace_chunk.sql", ctx)
        self.file_lines_sql = load_statement(sql_dir, "fastpath/file_lines.sql", ctx)
        self.database = ctx.database

    def span_ns(self, chunks: Iterable[bytes]) -> int | None:
        """`normalize.gctrace.stream_span_ns` by the engine, over raw chunks of whole lines (each ended by b"\\n").

        Raises `SpanUndecided` at the first chunk with a " ms clock, " line the stage does not recognise: only the
        Python pass reads those as the reference does. The chunks are staged one at a time, so memory stays flat.
        """
        stage = f"gctrace_span_{uuid.uuid4().hex}"
        store = self.store
        state = StreamClockState(start_us=0, last_end_us=None, incarnation=1, last_num=-1, last_since_us=-1)
        seen = False
        store.command(self.stage_sql, parameters={"stage": stage})
        try:
            for chunk in chunks:
                lines = chunk.count(b"\n")
                if lines == 0:
                    continue
                store.command(self.clear_sql, parameters={"stage": stage})
                store.insert_raw(f"{self.database}.{stage}", chunk, fmt="LineAsString", column_names=["line"],
                                 settings=_RAW_SETTINGS)
                check = next(iter(store.query(self.staged_sql, parameters={"stage": stage}).named_results()))
                if check["lines"] != lines or check["last_seq"] != lines - 1:
                    raise SpanUndecided("the chunk was not staged as one block")
                undecided = next(iter(store.query(self.undecided_sql, parameters={"stage": stage}).named_results()))
                if undecided["lines"]:
                    raise SpanUndecided("a gc line the engine does not recognise")
                params = {"stage": stage, "service": "", "instance": "", "source": "", "received_ms": 0,
                          "first": 0, "last": lines - 1, "start_us": state.start_us,
                          "last_end_us": state.last_end_us if state.last_end_us is not None else state.start_us,
                          "incarnation": state.incarnation, "last_num": state.last_num,
                          "last_since_us": state.last_since_us}
                last = None
                for row in store.query(self.state_sql, parameters=params).named_results():
                    last = row
                if last is not None:
                    seen = True
                    state = StreamClockState(start_us=last["start_us"], last_end_us=last["end_us"],
                                             incarnation=last["incarnation"], last_num=last["gc_num"],
                                             last_since_us=last["since_us"])
        finally:
            store.command(self.drop_sql, parameters={"stage": stage})
        return state.last_end_us * 1000 if seen and state.last_end_us is not None else None

    def stream(self, stream: GctraceStream, *, service: str, instance: str, source: str) -> FastGctraceStream:
        return FastGctraceStream(self, stream, service=service, instance=instance, source=source)


class SpanUndecided(Exception):
    """The engine cannot compute a file's span as the reference does; the Python pass must."""


class FastGctraceStream:
    """`GctraceStream` with its runs of plain gc lines stored by the engine (same `feed`/`finish`/`stats`).

    gc rows of engine runs are in gc_events when `feed` returns; every other row is in the `rows` passed,
    for the caller to write as before. `close()` drops the stage table.
    """

    def __init__(self, fast: GctraceFastPath, stream: GctraceStream, *, service: str, instance: str,
                 source: str) -> None:
        if stream.observed:
            raise ValueError("the fast path runs the stream clock; an observed stream has none")
        self.fast = fast
        self.stream = stream
        self.stage = f"gctrace_fast_{uuid.uuid4().hex}"
        self.params = {"stage": self.stage, "service": service, "instance": instance, "source": source,
                       "received_ms": stream.received_ms}
        self.engine_lines = 0  # gc lines stored by the engine (the rest went through Python)
        self.raw_batches = 0  # batches staged from their raw bytes
        self.clean_chunks = 0  # batches stored by the one-statement chunk path
        self.refused_chunks = 0  # batches the chunk statement refused (then handled by the span path)
        self.span_batches = 0  # batches given as bytes that took the span path
        self.file_statements = 0  # whole files stored by the chunk statement reading them in place (feed_file)
        # After a refused batch the next ones skip the statement, twice as many after each refusal in a row
        # (up to MAX_SKIP): a stream whose batches are all refused (Go 1.5 lines hold " ms clock, " but are not
        # taken) pays for the wasted statement on few of them. A stored batch resets it.
        self._skip = 0
        self._backoff = 1
        self._raw: bytes | None = None
        self._created = False

    @property
    def stats(self) -> LineStats:
        return self.stream.stats

    def feed_raw(self, raw: bytes | RawBatch, rows: Rows, *, final: bool = False) -> LineStats:
        """A batch given only as bytes (whole lines, as `files.iter_raw_chunks` reads them; a final
        unterminated line allowed), or as the `RawBatch` of the chunks a reader counted as it read them: the
        common case, every line a plain gc line in clock order, is parsed and stored by one engine statement
        with no Python string per line and no copy of the batch; any other batch is split into lines and fed as
        `feed` does, so the rows are the reference's either way. `final`: the stream's last batch, then `finish`
        too (one statement for both when the batch is clean)."""
        batch = raw if isinstance(raw, RawBatch) else RawBatch.of(raw)
        parts = list(batch.parts)
        lines = batch.lines
        # A stream's unterminated last line ends like any other there (its trailing carriage returns, which
        # Python strips and the engine's regex allows, are in no value).
        if final and parts and not parts[-1].endswith(b"\n"):
            parts[-1] = bytes(parts[-1]) + b"\n"  # a new object: the batch's own part stays as it was read
            lines += 1
        if self._skip:
            self._skip -= 1
        elif parts and parts[-1].endswith(b"\n"):
            stats = self._clean_chunk(parts, lines, batch.clock_lines, final=final)
            if stats is not None:
                self._backoff = 1
                return stats
        self.span_batches += 1
        data = batch.joined()
        stats = self.feed(raw_lines(data), rows, terminated=False, raw=data if data.endswith(b"\n") else None)
        if final:
            stats.add(self.finish(rows))
        return stats

    def _clean_chunk(self, parts: Sequence[bytes], lines: int, clock_lines: int, *, final: bool) -> LineStats | None:
        """Store work[:limit] (the held-back lines, then the batch: `parts`, whole lines, `lines` of them,
        `clock_lines` occurrences of " ms clock, ") with gctrace_chunk.sql; None, with nothing stored, when the
        batch is not a clean one (then it takes the span path). `final`: the stream's last lines, none held back
        (a few lines alone are only tried after clean chunks: they cost less in Python)."""
        before = self.stream.clock_state()
        carried = self.stream.pending_work(())
        held = 0 if final else REPAIR_WINDOW
        limit = len(carried) + lines - held
        # (the held-back lines come from the batch alone, so they are the lines a `feed` would have kept)
        too_short = (limit < self.fast.min_chunk and not (final and self.clean_chunks)) or lines < held
        if (before is None or limit <= 0 or too_short
                or not all(line and " ms clock, " in line for line in carried)):
            return None
        # Cheap and exact in one direction: a batch with a line that holds no " ms clock, " is not clean.
        if clock_lines != lines:
            return None
        head = b"".join(line.encode("utf-8", "backslashreplace") + b"\n" for line in carried if line is not None)
        pieces = [head, *parts] if head else list(parts)
        # The last REPAIR_WINDOW lines wait for the next batch, as in `GctraceStream.feed`: cut before them, in the
        # last piece when it holds them and the end of the line before (the rest is written as it was read).
        cut = _cut_before(pieces[-1], held)
        if cut is None:
            pieces = [b"".join(pieces)]
            cut = _cut_before(pieces[-1], held)
            assert cut is not None  # the batch has at least `held` lines and stores at least one
        tail_piece = pieces[-1]
        last = parse_last(tail_piece[tail_piece.rfind(b"\n", 0, cut - 1) + 1:cut])
        if last is None:
            return None
        return self._insert_clean([*pieces[:-1], memoryview(tail_piece)[:cut]], before, last, limit,
                                  raw_lines(tail_piece[cut:]))

    def feed_file(self, path: Path, *, max_lines: int) -> LineStats | None:
        """A whole plain file as the stream's one and final batch, read by the embedded engine in place: the engine
        counts its line ends and its " ms clock, " (fastpath/file_lines.sql, the reader's two counts) and, when
        they make a clean batch of `min_chunk` to `max_lines` lines, the chunk statement reads the file itself. No
        Python reads, counts or copies its bytes (only the last line, for the clock state after it), so the
        command's Python between two statements is a few milliseconds, none of it holding the GIL while the engine
        counts. None, with nothing stored, when the file is not taken: too large, not a clean batch, a last line
        longer than FILE_TAIL_BYTES, a server store (its file() reads the server's disk), a path file() would read
        as a pattern, bytes that do not add up to the file's size, or the statement refused it; the caller then
        reads it as before, and the rows are the reference's either way. Then `finish` as after any final batch.
        Like the reader, this takes the file as it is while the command runs (a growing file: --follow)."""
        fast = self.fast
        store = fast.store
        before = self.stream.clock_state()
        if not store.embedded or self._skip or before is None or self.stream.pending_work(()):
            return None
        where = str(path.resolve())
        if any(char in where for char in _GLOB_CHARS):
            return None  # file() would read the name as a pattern of names
        try:
            size = os.stat(path).st_size
            if not 0 < size <= FILE_STATEMENT_BYTES:
                return None
            with open(path, "rb") as file:
                file.seek(max(0, size - FILE_TAIL_BYTES))
                tail = file.read(FILE_TAIL_BYTES)
        except OSError:
            return None
        terminated = tail.endswith(b"\n")
        end = len(tail) - 1 if terminated else len(tail)
        begin = tail.rfind(b"\n", 0, end) + 1
        if begin == 0 and size > len(tail):
            return None  # the last line does not start within the tail
        last = parse_last(tail[begin:end] + b"\n")
        if last is None:
            return None  # not a clean batch: its last line is not a plain gc line
        counted = next(iter(store.query(fast.file_lines_sql, parameters={"path": where}).named_results()))
        lines = counted["line_ends"] + (0 if terminated else 1)
        if (counted["bytes"] != size or counted["clock_lines"] != lines
                or lines > max_lines or lines < fast.min_chunk):
            return None
        stats = self._insert_clean(path, before, last, lines, [])
        if stats is not None:
            self.file_statements += 1
        return stats

    def _insert_clean(self, data: Sequence[bytes | memoryview] | Path, before: StreamClockState, last: rl.GcFields,
                      limit: int, tail: Sequence[str]) -> LineStats | None:
        """The chunk statement over `data` (`limit` lines, `last` the last of them); `tail`: the batch's held-back
        lines after them. None, with nothing stored, when the statement refused the chunk (then the next batches
        skip it for a while, see `_skip`)."""
        params = {**self.params, "start_us": before.start_us, "incarnation": before.incarnation,
                  "last_num": before.last_num, "last_since_us": before.last_since_us}
        try:
            self.fast.store.insert_select_lines(self.fast.chunk_sql, data, parameters=params)
        except StoreError as exc:
            if NOT_CLEAN not in str(exc):
                raise
            self.refused_chunks += 1
            self._skip, self._backoff = self._backoff, min(self._backoff * 2, MAX_SKIP)
            return None
        end_us = before.start_us + last.since_us + last.clock_us
        self.stream.set_clock(StreamClockState(start_us=before.start_us, last_end_us=end_us,
                                               incarnation=before.incarnation, last_num=last.gc_num,
                                               last_since_us=last.since_us))
        stats = LineStats()
        self.stream.count_stored(limit, stats)
        self.stream.finish_batch([None] * limit + list(tail), limit, stats)
        self.engine_lines += limit
        self.clean_chunks += 1
        return stats

    def feed(self, lines: Sequence[str], rows: Rows, *, terminated: bool = True, raw: bytes | None = None
             ) -> LineStats:
        """`raw`: the bytes `lines` were read from, each line ended by b"\\n" (staged as they are when the
        line count matches; otherwise the lines are staged from Python)."""
        work = self.stream.pending_work(lines, terminated=terminated)
        carried = len(work) - len(lines)
        if raw is not None and raw.count(b"\n") == len(lines):
            head = b"".join((line or "").encode("utf-8", "backslashreplace") + b"\n" for line in work[:carried])
            self._raw = head + raw
        try:
            return self._run(work, rows, final=False)
        finally:
            self._raw = None

    def finish(self, rows: Rows) -> LineStats:
        stats = self._clean_chunk([], 0, 0, final=True)
        if stats is not None:
            return stats
        return self._run(self.stream.pending_work(()), rows, final=True)

    def close(self) -> None:
        if self._created:
            self.fast.store.command(self.fast.drop_sql, parameters={"stage": self.stage})
            self._created = False

    def _run(self, work: list[str | None], rows: Rows, *, final: bool) -> LineStats:
        limit = len(work) if final else max(0, len(work) - REPAIR_WINDOW)
        stats = LineStats()
        if self.stream.clock_state() is None or limit < self.fast.min_run:
            self._python(work, 0, limit, rows, stats)
        else:
            span_start = 0
            span_segments: list[tuple[int, int]] = []
            for start, end in self._unrecognised_segments(work, limit):
                if self._may_make_gc_rows(work, start, end, limit):
                    # A barrier: its gc rows move the clock, so the engine's span ends before it.
                    self._span(work, span_start, start, span_segments, rows, stats)
                    self._python(work, start, end, rows, stats)
                    span_start, span_segments = end, []
                else:
                    span_segments.append((start, end))
            self._span(work, span_start, limit, span_segments, rows, stats)
        self.stream.finish_batch(work, limit, stats)
        return stats

    def _python(self, work: list[str | None], start: int, end: int, rows: Rows, stats: LineStats) -> None:
        if end > start:
            self.stream.normalize_range(work, start, end, rows, stats)

    @staticmethod
    def _may_make_gc_rows(work: list[str | None], start: int, end: int, limit: int) -> bool:
        """Whether the reference could turn work[start:end] into a gc row: a gc line the engine does not take
        (Go 1.5, Unicode digits) or one rebuilt from pieces (a repair reads up to REPAIR_WINDOW lines ahead).
        Every such line holds "gc" or "clock" (the pieces of one split gc line hold both between them)."""
        # A recognised gc line ends a repair's look-ahead, so only a segment at the batch's end looks beyond it.
        stop = end if end < limit else min(len(work), end + REPAIR_WINDOW)
        return any(line is not None and ("gc" in line or "clock" in line) for line in work[start:stop])

    def _unrecognised_segments(self, work: list[str | None], limit: int) -> list[tuple[int, int]]:
        """Stage work[:limit]; the [start, end) ranges of consecutive lines the engine does not take."""
        store = self.fast.store
        if not self._created:
            store.command(self.fast.stage_sql, parameters={"stage": self.stage})
            self._created = True
        else:
            store.command(self.fast.clear_sql, parameters={"stage": self.stage})
        if not self._stage_raw(len(work)):
            # A line consumed by a repair (None) is staged empty: not recognised, so Python skips it as before.
            store.insert_columns(f"{self.fast.database}.{self.stage}",
                                 {"seq": range(limit), "line": [line or "" for line in work[:limit]]},
                                 settings=_PARSE_SETTINGS)
        result = store.query(self.fast.unrecognised_sql, parameters={"stage": self.stage})
        segments: list[tuple[int, int]] = []
        for (seq,) in result.result_rows:
            if seq >= limit:  # raw bytes stage the whole batch; lines from limit on wait for the next one
                break
            if segments and segments[-1][1] == seq:
                segments[-1] = (segments[-1][0], seq + 1)
            else:
                segments.append((seq, seq + 1))
        return segments

    def _stage_raw(self, lines: int) -> bool:
        """Stage this batch's raw bytes (all `lines` of the work list); False, with the stage emptied, when there
        are none or they did not arrive as one block numbered 0..lines-1."""
        if self._raw is None:
            return False
        store = self.fast.store
        store.insert_raw(f"{self.fast.database}.{self.stage}", self._raw, fmt="LineAsString", column_names=["line"],
                         settings=_RAW_SETTINGS)
        staged = store.query(self.fast.staged_sql, parameters={"stage": self.stage}).named_results()
        check = next(iter(staged))
        if check["lines"] == lines and check["last_seq"] == lines - 1:
            self.raw_batches += 1
            return True
        store.command(self.fast.clear_sql, parameters={"stage": self.stage})
        return False

    def _span(self, work: list[str | None], first: int, end: int, segments: list[tuple[int, int]], rows: Rows,
              stats: LineStats) -> None:
        """work[first:end]: its recognised lines stored by the engine, `segments` (no gc rows) by Python."""
        recognised = (end - first) - sum(e - s for s, e in segments)
        if recognised < self.fast.min_run:
            self._python(work, first, end, rows, stats)
            return
        before = self.stream.clock_state()
        assert before is not None
        params = {
            **self.params, "first": first, "last": end - 1, "start_us": before.start_us,
            "last_end_us": before.last_end_us if before.last_end_us is not None else before.start_us,
            "incarnation": before.incarnation, "last_num": before.last_num, "last_since_us": before.last_since_us,
        }
        store = self.fast.store
        store.command(self.fast.insert_sql, parameters=params)
        states = [
            (row["seq"], StreamClockState(start_us=row["start_us"], last_end_us=row["end_us"],
                                          incarnation=row["incarnation"], last_num=row["gc_num"],
                                          last_since_us=row["since_us"]))
            for row in store.query(self.fast.state_sql, parameters=params).named_results()
        ]
        k = 0
        for start, stop in segments:
            # The clock after the last recognised line before this segment (or as the span found it).
            while k < len(states) and states[k][0] < start:
                k += 1
            self.stream.set_clock(states[k - 1][1] if k else before)
            self._python(work, start, stop, rows, stats)
        self.stream.set_clock(states[-1][1])
        self.stream.count_stored(recognised, stats)
        self.engine_lines += recognised


@dataclass(frozen=True)
class RawBatch:
    """A batch of whole lines as a reader got them: `parts` (each ended by b"\\n", but for a stream's unterminated
    last line), with the counts the fast path needs, taken by the reader chunk by chunk while each was still in
    the CPU's cache. Not joining the parts and not counting the batch again is what keeps the Python side of a
    clean batch a small fraction of the engine's statement (docs/benchmarks.md)."""

    parts: Sequence[bytes]
    lines: int  # b"\\n" in the parts
    clock_lines: int  # occurrences of b" ms clock, " in the parts

    @classmethod
    def of(cls, data: bytes) -> RawBatch:
        return cls([data] if data else [], data.count(b"\n"), data.count(b" ms clock, "))

    def joined(self) -> bytes:
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)


def _cut_before(piece: bytes, held: int) -> int | None:
    """The offset in `piece` (whole lines, ended by b"\\n") where its last `held` lines begin, when `piece` also holds
    the end of a line before them; None when it does not (the caller joins the batch and asks again)."""
    end = len(piece) - 1
    for _ in range(held):
        end = piece.rfind(b"\n", 0, end)
        if end < 0:
            return None
    return end + 1


def raw_lines(raw: bytes) -> list[str]:
    """The lines of `raw` (whole lines, a final unterminated one allowed) without their terminators: bytes that
    are not UTF-8 kept as backslash escapes, the carriage return of a CRLF line end dropped (every trailing one of
    an unterminated last line). The one definition of a line for the file reader and the fast path, so the
    lines of a batch are the same whether it was read in one piece or many."""
    if not raw:
        return []
    terminated = raw.endswith(b"\n")
    text = (raw[:-1] if terminated else raw).decode("utf-8", errors="backslashreplace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if terminated and text.endswith("\r"):
            text = text[:-1]
    lines = text.split("\n")
    if not terminated:
        lines[-1] = lines[-1].rstrip("\r")
    return lines


def parse_last(line: bytes) -> rl.GcFields | None:
    """The gc fields of a batch's last stored line (ended by b"\\n"), read by the reference parser: the clock
    state after a clean chunk is this line's."""
    text = raw_lines(line)
    return rl.parse_gc(text[0]) if len(text) == 1 else None
