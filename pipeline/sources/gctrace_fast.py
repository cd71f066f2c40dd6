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
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from pipeline.normalize.gctrace import REPAIR_WINDOW, GctraceStream, LineStats, StreamClockState
from pipeline.normalize.rows import Rows
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext

# A run of recognised lines shorter than this goes to Python: two engine queries cost more than a few lines.
MIN_RUN: Final = 64
# Exact float parsing, as Python's float() (the engine's default parser may differ in the last bit).
_PARSE_SETTINGS: Final = {"precise_float_parsing": 1}


class GctraceFastPath:
    """The SQL of the fast path, loaded once per process."""

    def __init__(self, store: Store, sql_dir: Path, ctx: RenderContext, *, min_run: int = MIN_RUN) -> None:
        self.store = store
        self.min_run = min_run
        self.stage_sql = load_statement(sql_dir, "fastpath/gctrace_stage.sql", ctx)
        self.unrecognised_sql = load_statement(sql_dir, "fastpath/gctrace_unrecognised.sql", ctx)
        self.insert_sql = load_statement(sql_dir, "fastpath/gctrace_insert.sql", ctx)
        self.state_sql = load_statement(sql_dir, "fastpath/gctrace_state.sql", ctx)
        self.clear_sql = load_statement(sql_dir, "fastpath/gctrace_clear.sql", ctx)
        self.drop_sql = load_statement(sql_dir, "fastpath/gctrace_drop.sql", ctx)
        self.database = ctx.database

    def stream(self, stream: GctraceStream, *, service: str, instance: str, source: str) -> FastGctraceStream:
        return FastGctraceStream(self, stream, service=service, instance=instance, source=source)


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
        self._created = False

    @property
    def stats(self) -> LineStats:
        return self.stream.stats

    def feed(self, lines: Iterable[str], rows: Rows, *, terminated: bool = True) -> LineStats:
        work = self.stream.pending_work(lines, terminated=terminated)
        return self._run(work, rows, final=False)

    def finish(self, rows: Rows) -> LineStats:
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
        # A line consumed by a repair (None) is staged empty: not recognised, so Python skips it as before.
        store.insert_columns(f"{self.fast.database}.{self.stage}",
                             {"seq": range(limit), "line": [line or "" for line in work[:limit]]},
                             settings=_PARSE_SETTINGS)
        result = store.query(self.fast.unrecognised_sql, parameters={"stage": self.stage})
        segments: list[tuple[int, int]] = []
        for (seq,) in result.result_rows:
            if segments and segments[-1][1] == seq:
                segments[-1] = (segments[-1][0], seq + 1)
            else:
                segments.append((seq, seq + 1))
        return segments

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
