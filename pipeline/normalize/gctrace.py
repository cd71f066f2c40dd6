"""Go runtime stderr lines -> gc_events, scavenger_events, pacer_events, runtime_notices, otel_logs, quarantine.

Every transport ends here: files and stdin (`fleetwatch ingest gctrace`), Kafka raw lines and OTLP log
bodies. A service may send its whole stderr: runtime lines become typed rows, everything else becomes a log
record, and a line that looks like runtime output but cannot be read is quarantined with the reason.
Nothing is dropped.

Lines split by other writers. The runtime prints a trace line token by token, so application output
written to stderr at the same moment can land inside it: the runtime prefix, then the foreign text and its
newline, then the runtime suffix on the next line. When a line with a runtime head does not parse and one of
the next two lines is a headless runtime fragment, the split point is searched for: the runtime line is
rebuilt from prefix + fragment and the foreign text is kept as an application log line.

Time. A gctrace line carries seconds since process start (`@T`), nothing absolute. Two ways to anchor it:

* stream mode (`GctraceStream`): the process start is known (or fixed once from the wall clock); each
  cycle's ts = start + @T. A restart inside the stream (cycle number or @T going back) opens a new
  incarnation whose start is the end of the previous incarnation's last cycle.
* observed mode (`normalize_lines`): each line comes with the time it was observed (Kafka record time, OTLP
  log time). The gc line is printed when the cycle ends, so ts = observed - wall-clock duration of the
  cycle, and process_start = ts - @T (informational: it jitters with delivery latency).

Both are deterministic for the same input, which Kafka replays rely on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, NamedTuple

from pipeline.normalize import runtime_lines as rl
from pipeline.normalize.logs import append_log
from pipeline.normalize.rows import Rows

SIGNAL = "gctrace"
GC_TABLE = "gc_events"
SCAV_TABLE = "scavenger_events"
PACER_TABLE = "pacer_events"
NOTICE_TABLE = "runtime_notices"

# Every table's layout derives from the parsed fields' names (runtime_lines.GcFields and friends): the parsed
# fields sit between the identity/time head and the provenance tail.
_HEAD = ("service", "instance", "ts")
# gc fields stored under another name (converted on the way), and the one used only for the time.
_GC_RENAMED = {"since_us": "since_start_s"}
_GC_TIME_ONLY = ("clock_us",)
# (gc_events column, GcFields field) for every parsed field that is stored.
GC_STORED = tuple((_GC_RENAMED.get(f, f), f) for f in rl.GC_FIELDS if f not in _GC_TIME_ONLY)
GC_COLUMNS = (*_HEAD, *(column for column, _ in GC_STORED), "process_start", "incarnation", "source",
              "received_at", "line_prefix")
_TAIL = ("after_gc_num", "process_start", "incarnation", "source", "received_at")


class NoticeFields(NamedTuple):
    """A runtime line kept verbatim: its kind and the line."""

    kind: str
    raw: str


# line_prefix: what a log shipper wrote in front of the runtime line (kept, never dropped silently).
SCAV_COLUMNS = (*_HEAD, *rl.SCAV_FIELDS, *_TAIL, "line_prefix")
PACER_COLUMNS = (*_HEAD, *rl.PACER_FIELDS, *_TAIL, "line_prefix")
NOTICE_COLUMNS = (*_HEAD, *NoticeFields._fields, *_TAIL)

# How many lines after a broken one may hold its runtime suffix (the ones between are application lines).
# The same window on every transport: lines of a file, consecutive Kafka messages of one identity in one
# poll, consecutive log records of one resource in one OTLP request (docs/schema.md, "Torn lines").
REPAIR_WINDOW = 2
_RUNTIME_KINDS = (rl.GC, rl.SCAV, rl.PACER, rl.NOTICE)
# Where application output that split a runtime line plausibly begins: a timestamp, a bracket or a word.
_LINE_START = re.compile(r"\d{4}[/-]\d\d[/-]\d\d|\d\d:\d\d:\d\d|[A-Z][a-z]{2} [ \d]\d |[\[{<]")


# Values a runtime line can spell but a column cannot hold (a corrupted or forged line): such a line is
# quarantined with the reason instead of failing the insert of every row batched with it.
_I64 = 2**63
_MAX_SINCE_US = 2**64 // 1000  # the largest @T the runtime can print (a wrapped uint64 nanosecond clock)
_GC_LIMITS = (("gc_num", "gc number", 2**32), ("gc_cpu_pct", "GC CPU percentage", 256),
              ("procs", "P count", 65_536))
# The other integers of a gc line, bounded only by the column type.
_GC_UNBOUNDED = ("heap_start_mb", "heap_end_mb", "heap_live_mb", "heap_goal_mb", "stacks_mb", "globals_mb",
                 "clock_us")
_GC_LIMIT_AT = tuple((rl.GC_INDEX[name], what, limit) for name, what, limit in _GC_LIMITS)
_GC_UNBOUNDED_AT = tuple(rl.GC_INDEX[name] for name in _GC_UNBOUNDED)
_FIELD_LIMITS = {"util_pct": 256, "workers_dedicated": 2**32}
_REJECT = "reject"


def _range_problem(kind: int, parsed: Any) -> str | None:
    """Why a parsed runtime line cannot be stored, or None."""
    if kind == rl.GC:
        if not 0 <= parsed.since_us <= _MAX_SINCE_US:
            return "time since process start (@...s) is out of range"
        # Indexes derived from the names above (GC_INDEX): every gc line passes here.
        for index, what, limit in _GC_LIMIT_AT:
            if parsed[index] >= limit:
                return f"{what} {parsed[index]} is out of range"
        # Only the integers not bounded above are looked at (the regex admits no sign).
        for index in _GC_UNBOUNDED_AT:
            value = parsed[index]
            if value is not None and value >= _I64:
                return f"value {value} is out of range"
        return None
    if kind != rl.SCAV and kind != rl.PACER:
        return None
    values: Iterable[tuple[str, Any]] = zip(parsed._fields, parsed, strict=True)
    for name, value in values:
        if isinstance(value, int) and not -_I64 <= value < _FIELD_LIMITS.get(name, _I64):
            return f"{name} {value} is out of range"
    return None


def _classify(line: str) -> tuple[Any, Any]:
    """`runtime_lines.classify`, with numbers too large to convert turned into a rejection."""
    try:
        return rl.classify(line)
    except (OverflowError, ValueError) as exc:
        return _REJECT, f"number out of range: {exc}"


# Called instead of writing an otel_logs row for an application line: (rows, index of the line in the call,
# body, ts in microseconds). OTLP uses it to keep each record's own severity, ids and attributes.
LogHook = Callable[[Rows, int, str, int], None]


@dataclass
class LineStats:
    """What became of the lines of one call: lines == events + other_runtime + logs + quarantined + blank."""

    lines: int = 0
    events: int = 0          # gc_events rows
    other_runtime: int = 0   # scavenger_events, pacer_events and runtime_notices rows
    logs: int = 0            # otel_logs rows (application lines, and foreign text cut out of runtime lines)
    quarantined: int = 0
    blank: int = 0           # empty lines, not stored
    repaired: int = 0        # runtime lines rebuilt from two pieces (both lines are counted in `lines`)

    def add(self, other: LineStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class _ObservedClock:
    """Observed mode: every line carries the time it was seen."""

    def __init__(self) -> None:
        self.process_start_us = 0

    def gc(self, num: int, since_us: int, clock_us: int, observed_ns: int) -> tuple[int, int, int]:
        ts = observed_ns // 1000 - clock_us
        self.process_start_us = ts - since_us
        return ts, self.process_start_us, 0

    def other(self, observed_ns: int) -> tuple[int, int, int]:
        return observed_ns // 1000, self.process_start_us, 0


class _StreamClock:
    """Stream mode: ts = process start + @T, with a new incarnation when the stream restarts.

    With `start_us` None the start of each incarnation is fixed from `now_us()` when its first gc line is
    processed (a live pipe); other lines then carry the wall clock too.
    """

    def __init__(self, start_us: int | None, now_us: Callable[[], int] | None = None) -> None:
        if start_us is None and now_us is None:
            raise ValueError("a stream needs a start time or a clock")
        self.fixed = start_us is not None
        self.start_us = start_us
        self.now_us = now_us
        self.incarnation = 1
        self.last_num = -1
        self.last_since_us = -1
        self.last_end_us: int | None = None

    def gc(self, num: int, since_us: int, clock_us: int, observed_ns: int) -> tuple[int, int, int]:
        if num < self.last_num or since_us < self.last_since_us:
            self.incarnation += 1
            self.start_us = self.last_end_us if self.fixed else None
        if self.start_us is None:
            assert self.now_us is not None
            self.start_us = self.now_us() - since_us - clock_us
        ts = self.start_us + since_us
        self.last_num = num
        self.last_since_us = since_us
        self.last_end_us = ts + clock_us
        return ts, self.start_us, self.incarnation

    def other(self, observed_ns: int) -> tuple[int, int, int]:
        if not self.fixed:
            assert self.now_us is not None
            return self.now_us(), self.start_us or 0, self.incarnation
        ts = self.last_end_us if self.last_end_us is not None else self.start_us
        assert ts is not None and self.start_us is not None
        return ts, self.start_us, self.incarnation


def _foreign_score(text: str) -> int:
    """How much `text` looks like the start of an application line (used to pick among split points)."""
    if _LINE_START.match(text):
        return 2
    return 1 if text[:1].isalpha() else 0


def repair(broken: str, suffix: str) -> tuple[int, object, str, str] | None:
    """Rebuild a runtime line split by foreign output: `broken` = [shipper prefix] runtime prefix + foreign
    text, `suffix` = the rest of the runtime line.

    Returns (kind, parsed, runtime line, foreign text with the shipper prefix) or None. Among the split
    points that give a valid runtime line, the one where the foreign text looks most like the start of a
    line wins, then the longest runtime prefix.
    """
    starts = [0]
    for head in rl.REPAIR_HEADS:
        pos = broken.find(head)
        while pos > 0:
            if pos not in starts:
                starts.append(pos)
            pos = broken.find(head, pos + 1)
    suffixes = [suffix]
    best: tuple[tuple[int, int], tuple[int, object, str, str]] | None = None
    # A line cut with nothing written into it (before its last field, or a partial write): the pieces join
    # as they are; the shipper prefix of the continuation, as wide as the broken line's, is dropped.
    for start in starts:
        for tail in ((suffix, suffix[start:]) if start else (suffix,)):
            joins = [broken + tail]
            if rl.P_TAIL.match(" " + tail.lstrip(", ")):
                joins.append(broken.rstrip(", ") + ", " + tail.lstrip(", "))
            for joined in joins:
                kind, parsed = rl.classify(joined)
                if kind in _RUNTIME_KINDS:
                    return kind, parsed, joined, ""
    for start in starts:
        if start and len(suffix) > start:
            # A shipper stamps every line: drop a prefix of the same width from the continuation.
            suffixes.append(suffix[start:])
        for split in range(len(broken) - 1, start, -1):
            foreign = broken[split:]
            score = _foreign_score(foreign)
            if best is not None and (score, split - start) <= best[0]:
                continue
            for tail in suffixes:
                candidate = broken[start:split] + tail
                kind, parsed = rl.classify(candidate)
                if kind in _RUNTIME_KINDS:
                    best = ((score, split - start), (kind, parsed, candidate, broken[:start] + foreign))
                    break
    return None if best is None else best[1]


@dataclass(slots=True)
class _Pending:
    """Parsed typed rows and their times, waiting to be written as columns (one flush per call)."""

    gc_rows: list[tuple] = field(default_factory=list)
    scav_rows: list[tuple] = field(default_factory=list)
    pacer_rows: list[tuple] = field(default_factory=list)
    notice_rows: list[tuple] = field(default_factory=list)
    gc_times: list[tuple[int, int, int]] = field(default_factory=list)
    gc_prefixes: list[str] = field(default_factory=list)
    scav_times: list[tuple] = field(default_factory=list)
    pacer_times: list[tuple] = field(default_factory=list)
    notice_times: list[tuple] = field(default_factory=list)

    def tables(self) -> tuple[tuple[str, Sequence[str], list[tuple]], ...]:
        """(table, columns, rows) in the order `_Normalizer.flush` writes them."""
        return ((GC_TABLE, GC_COLUMNS, self.gc_rows), (SCAV_TABLE, SCAV_COLUMNS, self.scav_rows),
                (PACER_TABLE, PACER_COLUMNS, self.pacer_rows), (NOTICE_TABLE, NOTICE_COLUMNS, self.notice_rows))


class _Normalizer:
    """The per-line loop shared by both modes; collects row tuples and flushes them as columns."""

    def __init__(
        self,
        *,
        service: str,
        instance: str,
        source: str,
        received_at: datetime,
        clock: _ObservedClock | _StreamClock,
        quarantine: dict[str, Any] | None,
        on_log: LogHook | None = None,
        where_at: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        self.on_log = on_log
        self.where_at = where_at
        self.service = service
        self.instance = instance
        self.source = source
        self.received_at = received_at
        self.received_ms = int(received_at.timestamp() * 1000)
        self.clock = clock
        self.quarantine_kw = dict(quarantine or {})
        self.last_gc_num = 0

    def process(
        self,
        work: list[str | None],
        observed: Sequence[int] | None,
        limit: int,
        rows: Rows,
        stats: LineStats,
        location: Callable[[int], str] | None = None,
        start: int = 0,
    ) -> None:
        """Handle work[start:limit]; repairs may consume (set to None) lines up to limit + REPAIR_WINDOW."""
        pending = _Pending()
        self.scan(work, observed, limit, rows, stats, pending, location, start)
        self.flush(rows, stats, pending)

    def scan(
        self,
        work: list[str | None],
        observed: Sequence[int] | None,
        limit: int,
        rows: Rows,
        stats: LineStats,
        pending: _Pending,
        location: Callable[[int], str] | None = None,
        start: int = 0,
    ) -> None:
        """The per-line loop over work[start:limit]: typed rows go to `pending` (flushed as columns later),
        logs and quarantine rows straight to `rows`."""
        clock = self.clock
        gc_rows = pending.gc_rows
        scav_rows = pending.scav_rows
        pacer_rows = pending.pacer_rows
        notice_rows = pending.notice_rows
        gc_times = pending.gc_times
        gc_prefixes = pending.gc_prefixes
        scav_times = pending.scav_times
        pacer_times = pending.pacer_times
        notice_times = pending.notice_times
        count = 0
        classify = _classify
        parse_gc = rl.parse_gc
        n = len(work)
        for i in range(start, limit):
            line = work[i]
            if line is None:
                continue
            count += 1
            obs = observed[i] if observed is not None else 0
            # Fast path: a well-formed gc line (the most common runtime line), without the general dispatch.
            if " ms clock, " in line:
                try:
                    p = parse_gc(line)
                except (OverflowError, ValueError):
                    p = None  # the general path below quarantines it with the reason
                if p is not None and _range_problem(rl.GC, p) is None:
                    gc_times.append(clock.gc(p.gc_num, p.since_us, p.clock_us, obs))
                    gc_rows.append(p)
                    gc_prefixes.append("" if line.startswith("gc ") else rl.line_prefix(line))
                    self.last_gc_num = p.gc_num
                    continue
            kind, parsed = classify(line)
            if kind == _REJECT or kind == rl.UNSUPPORTED:
                self._quarantine(rows, stats, line, str(parsed), i, location)
                continue
            if kind == rl.APP:
                if not line or line.isspace():
                    stats.blank += 1
                    continue
                self._log(rows, stats, line, clock.other(obs)[0], i)
                continue
            if kind == rl.BROKEN or kind == rl.WEAK:
                fixed = self._try_repair(work, i, n)
                if fixed is None:
                    if kind == rl.WEAK:
                        self._log(rows, stats, line, clock.other(obs)[0], i)
                    else:
                        self._quarantine(rows, stats, line, f"{parsed}; no following line completes it", i,
                                         location)
                    continue
                j, kind, parsed, rebuilt, foreign = fixed
                work[j] = None
                count += 1
                stats.repaired += 1
                if foreign:
                    self._log(rows, stats, foreign, clock.other(obs)[0], i)
                line = rebuilt
                obs = observed[j] if observed is not None else obs
            problem = _range_problem(kind, parsed)
            if problem is not None:
                self._quarantine(rows, stats, line, problem, i, location)
                continue
            if kind == rl.GC:
                p = parsed  # type: ignore[assignment]
                gc_times.append(clock.gc(p.gc_num, p.since_us, p.clock_us, obs))
                gc_rows.append(p)
                gc_prefixes.append(rl.line_prefix(line))
                self.last_gc_num = p.gc_num
            elif kind == rl.FRAGMENT:
                self._quarantine(rows, stats, line, str(parsed), i, location)
            else:
                if kind == rl.NOTICE:
                    when = (*clock.other(obs), self.last_gc_num)
                else:
                    when = (*clock.other(obs), self.last_gc_num, rl.line_prefix(line))
                if kind == rl.PACER:
                    pacer_rows.append(parsed)  # type: ignore[arg-type]
                    pacer_times.append(when)
                elif kind == rl.SCAV:
                    scav_rows.append(parsed)  # type: ignore[arg-type]
                    scav_times.append(when)
                else:
                    notice_rows.append(NoticeFields(kind=str(parsed), raw=line))
                    notice_times.append(when)
        stats.lines += count

    def flush(self, rows: Rows, stats: LineStats, pending: _Pending) -> None:
        """The typed rows collected by `scan` -> columns of their tables."""
        stats.events += len(pending.gc_rows)
        stats.other_runtime += len(pending.pacer_rows) + len(pending.scav_rows) + len(pending.notice_rows)
        self._flush_gc(rows, pending.gc_rows, pending.gc_times, pending.gc_prefixes)
        self._flush_other(rows, SCAV_TABLE, SCAV_COLUMNS, rl.SCAV_FIELDS, pending.scav_rows, pending.scav_times)
        self._flush_other(rows, PACER_TABLE, PACER_COLUMNS, rl.PACER_FIELDS, pending.pacer_rows,
                          pending.pacer_times)
        self._flush_other(rows, NOTICE_TABLE, NOTICE_COLUMNS, NoticeFields._fields, pending.notice_rows,
                          pending.notice_times)

    def _flush_other(
        self, rows: Rows, table: str, columns: Sequence[str], names: Sequence[str], parsed: list[tuple],
        times: list[tuple],
    ) -> None:
        """Parsed field tuples (fields `names`) and their (ts, process_start, incarnation, after_gc_num[,
        line_prefix]) -> columns."""
        k = len(parsed)
        if not k:
            return
        cols = rows.columns(table, columns)
        if "line_prefix" in cols:
            ts, start, inc, after, prefix = zip(*times, strict=True)
            cols["line_prefix"].extend(prefix)
        else:
            ts, start, inc, after = zip(*times, strict=True)
        cols["service"].extend([self.service] * k)
        cols["instance"].extend([self.instance] * k)
        cols["ts"].extend(ts)
        for name, values in zip(names, zip(*parsed, strict=True), strict=True):
            cols[name].extend(values)
        cols["after_gc_num"].extend(after)
        cols["process_start"].extend(start)
        cols["incarnation"].extend(inc)
        cols["source"].extend([self.source] * k)
        cols["received_at"].extend([self.received_ms] * k)

    def _flush_gc(
        self, rows: Rows, parsed: list[tuple], times: list[tuple[int, int, int]], prefixes: list[str]
    ) -> None:
        """Parsed gc tuples (runtime_lines.GC_FIELDS) and their (ts, process_start, incarnation) -> columns."""
        k = len(parsed)
        if not k:
            return
        by_field = dict(zip(rl.GC_FIELDS, zip(*parsed, strict=True), strict=True))
        ts, start, inc = zip(*times, strict=True)
        cols = rows.columns(GC_TABLE, GC_COLUMNS)
        cols["service"].extend([self.service] * k)
        cols["instance"].extend([self.instance] * k)
        cols["ts"].extend(ts)
        for column, name in GC_STORED:
            values = by_field[name]
            cols[column].extend([us / 1e6 for us in values] if name == "since_us" else values)
        cols["process_start"].extend(start)
        cols["incarnation"].extend(inc)
        cols["source"].extend([self.source] * k)
        cols["received_at"].extend([self.received_ms] * k)
        cols["line_prefix"].extend(prefixes)

    def _try_repair(self, work: list[str | None], i: int, n: int) -> tuple[int, int, object, str, str] | None:
        broken = work[i]
        assert broken is not None
        for j in range(i + 1, min(n, i + 1 + REPAIR_WINDOW)):
            nxt = work[j]
            if nxt is None:
                return None
            kind, _ = _classify(nxt)
            if kind == rl.FRAGMENT or (kind == rl.APP and len(nxt) < 64 and rl.P_TAIL.search(nxt)):
                try:
                    fixed = repair(broken, nxt)
                except (OverflowError, ValueError):
                    return None
                return None if fixed is None else (j, *fixed)
            if kind != rl.APP:
                return None
        return None

    def _log(self, rows: Rows, stats: LineStats, body: str, ts_us: int, i: int) -> None:
        if self.on_log is not None:
            self.on_log(rows, i, body, ts_us)
        else:
            append_log(rows, timestamp_ns=ts_us * 1000, service=self.service, instance=self.instance, body=body)
        stats.logs += 1

    def _quarantine(
        self, rows: Rows, stats: LineStats, line: str, reason: str, i: int, location: Callable[[int], str] | None
    ) -> None:
        kw = self.quarantine_kw
        if self.where_at is not None:
            kw = {**kw, **self.where_at(i)}
        if location is not None:
            kw = {**kw, "location": location(i)}
        rows.quarantine(source=self.source, signal=SIGNAL, reason=reason, raw=line, service=self.service,
                        instance=self.instance, received_at=self.received_at, **kw)
        stats.quarantined += 1


def _strip(lines: Iterable[str]) -> list[str | None]:
    return [line.rstrip("\r\n") if line[-1:] in ("\n", "\r") else line for line in lines]


def normalize_lines(
    lines: Sequence[str],
    *,
    observed_ns: Sequence[int] | int,
    service: str,
    instance: str,
    source: str,
    received_at: datetime,
    rows: Rows,
    quarantine: dict | None = None,
    on_log: LogHook | None = None,
    where_at: Callable[[int], dict[str, Any]] | None = None,
) -> LineStats:
    """Observed mode: consecutive stderr lines of one process, each with the time it was observed (unix ns).

    `observed_ns` is one value per line or one for all. `quarantine` holds extra arguments for
    `Rows.quarantine` (topic, partition, offset, location); `where_at(i)` adds per-line ones. `on_log`
    replaces the otel_logs row of an application line (see `LogHook`). Lines split by foreign output are repaired when
    both pieces are in this call.
    """
    work = _strip(lines)
    if isinstance(observed_ns, int):
        observed: Sequence[int] = [observed_ns] * len(work)
    else:
        observed = observed_ns
        if len(observed) != len(work):
            raise ValueError(f"{len(work)} lines but {len(observed)} observed times")
    stats = LineStats()
    normalizer = _Normalizer(service=service, instance=instance, source=source, received_at=received_at,
                             clock=_ObservedClock(), quarantine=quarantine, on_log=on_log, where_at=where_at)
    normalizer.process(work, observed, len(work), rows, stats)
    return stats


def normalize_segments(
    segments: Iterable[tuple[Sequence[str], int, dict | None]],
    *,
    service: str,
    instance: str,
    source: str,
    received_at: datetime,
    rows: Rows,
) -> LineStats:
    """Observed mode for many small independent pieces of one (service, instance), e.g. Kafka messages.

    Each segment is (lines without line terminators, observed_ns, quarantine) and gives exactly the rows a
    `normalize_lines` call of its own would (its own clock, no repair across segments, its own quarantine
    arguments), appended in the same order, tables included: only the per-call work (a normalizer, a Rows,
    a flush, a merge) is shared, which is most of the cost when a segment is a single line.
    """
    stats = LineStats()
    pending = _Pending()
    typed = pending.tables()
    tables = rows.tables
    clock = _ObservedClock()
    normalizer = _Normalizer(service=service, instance=instance, source=source, received_at=received_at,
                             clock=clock, quarantine=None)
    scan = normalizer.scan
    for lines, observed_ns, quarantine in segments:
        work: list[str | None] = list(lines)
        clock.process_start_us = 0  # what a fresh clock starts with
        normalizer.last_gc_num = 0
        normalizer.quarantine_kw = quarantine or {}  # only read, never changed
        scan(work, [observed_ns] * len(work), len(work), rows, stats, pending)
        # A separate call would have created its typed tables after its logs and quarantine rows: do the same.
        for table, columns, parsed in typed:
            if parsed and table not in tables:
                rows.columns(table, columns)
    normalizer.flush(rows, stats, pending)
    return stats


@dataclass(frozen=True, slots=True)
class StreamClockState:
    """The stream clock of a fixed-start stream between two lines (see `_StreamClock`)."""

    start_us: int              # start of the current incarnation
    last_end_us: int | None    # end of the last cycle seen, None before the first
    incarnation: int
    last_num: int              # -1 before the first gc line
    last_since_us: int         # -1 before the first gc line


class GctraceStream:
    """Stream mode: the stderr of one process (or of its restarts), fed in batches.

    `start_ns` is the process start (unix ns); None anchors each incarnation on `now_ns()` when its first gc
    line is processed. The last REPAIR_WINDOW lines of a batch wait for the next one, so a line split at a
    batch boundary is still repaired; `finish()` handles them.
    """

    def __init__(
        self,
        *,
        service: str,
        instance: str,
        source: str,
        received_at: datetime,
        start_ns: int | None,
        now_ns: Callable[[], int] | None = None,
        name: str = "",
        observed: bool = False,
    ) -> None:
        now_us = None if now_ns is None else (lambda: now_ns() // 1000)
        # observed: every line comes with the time it was observed (a container log record's timestamp),
        # which anchors it as in `normalize_lines`; otherwise the stream clock anchors @seconds.
        clock: _ObservedClock | _StreamClock = (
            _ObservedClock() if observed else _StreamClock(None if start_ns is None else start_ns // 1000, now_us)
        )
        self._normalizer = _Normalizer(
            service=service, instance=instance, source=source, received_at=received_at, clock=clock,
            quarantine=None,
        )
        self.observed = observed
        self.name = name
        self.stats = LineStats()
        self._carry: list[str | None] = []
        self._carry_obs: list[int] = []
        self._first_line = 1  # line number of _carry[0] (or of the next line fed)

    def feed(
        self, lines: Iterable[str], rows: Rows, *, terminated: bool = True, observed_ns: Sequence[int] | None = None
    ) -> LineStats:
        """Normalize a batch into `rows`; returns the stats of this batch.

        `terminated=False` says the lines carry no line terminators (saves a pass over them). An observed
        stream needs `observed_ns`, one time per line.
        """
        batch = _strip(lines) if terminated else list(lines)
        if self.observed:
            if observed_ns is None or len(observed_ns) != len(batch):
                raise ValueError("an observed stream needs one observed time per line")
            self._carry_obs = self._carry_obs + list(observed_ns)
        return self._run(self._carry + batch, rows, final=False)

    def finish(self, rows: Rows) -> LineStats:
        """Handle the lines held back for repairs across batches."""
        return self._run(self._carry, rows, final=True)

    @property
    def received_ms(self) -> int:
        """received_at of every row, in unix milliseconds as stored."""
        return self._normalizer.received_ms

    # -- for a fast path that hands runs of plain gc lines to the engine (pipeline/sources/gctrace_fast.py) --
    def pending_work(self, lines: Iterable[str], *, terminated: bool = True) -> list[str | None]:
        """The lines a `feed` would handle: those held back from the last batch, then `lines`."""
        return self._carry + (_strip(lines) if terminated else list(lines))

    def clock_state(self) -> StreamClockState | None:
        """The stream clock before the next line, or None when it is anchored on the wall clock (no fast path
        can reproduce that)."""
        clock = self._normalizer.clock
        if self.observed or not isinstance(clock, _StreamClock) or not clock.fixed:
            return None
        assert clock.start_us is not None
        return StreamClockState(start_us=clock.start_us, last_end_us=clock.last_end_us,
                                incarnation=clock.incarnation, last_num=clock.last_num,
                                last_since_us=clock.last_since_us)

    def set_clock(self, state: StreamClockState) -> None:
        """Continue after gc lines stored elsewhere, after which the clock is `state` (count them with
        `count_stored`)."""
        clock = self._normalizer.clock
        assert isinstance(clock, _StreamClock) and clock.fixed
        clock.start_us = state.start_us
        clock.last_end_us = state.last_end_us
        clock.incarnation = state.incarnation
        clock.last_num = state.last_num
        clock.last_since_us = state.last_since_us
        if state.last_num >= 0:  # -1: no gc line yet, and after_gc_num stays 0
            self._normalizer.last_gc_num = state.last_num

    @staticmethod
    def count_stored(gc_lines: int, stats: LineStats) -> None:
        """Account for gc lines turned into gc_events rows elsewhere."""
        stats.lines += gc_lines
        stats.events += gc_lines

    def normalize_range(self, work: list[str | None], start: int, end: int, rows: Rows, stats: LineStats) -> None:
        """The reference normalizer over work[start:end] of a batch from `pending_work` (repairs may consume
        lines up to end + REPAIR_WINDOW, as in `feed`). Stream clock only: an observed stream has no fast path."""
        if self.observed:
            raise ValueError("an observed stream is normalized by feed() alone")
        first = self._first_line
        name = self.name or "stdin"
        self._normalizer.process(work, None, end, rows, stats, location=lambda i: f"{name}:{first + i}",
                                 start=start)

    def finish_batch(self, work: list[str | None], limit: int, stats: LineStats) -> None:
        """Close a batch handled range by range: keep work[limit:] for the next one."""
        self._carry = work[limit:]
        self._first_line += limit
        self.stats.add(stats)

    def _run(self, work: list[str | None], rows: Rows, *, final: bool) -> LineStats:
        limit = len(work) if final else max(0, len(work) - REPAIR_WINDOW)
        first = self._first_line
        name = self.name or "stdin"
        stats = LineStats()
        observed = self._carry_obs if self.observed else None
        self._normalizer.process(work, observed, limit, rows, stats, location=lambda i: f"{name}:{first + i}")
        self._carry = work[limit:]
        self._carry_obs = self._carry_obs[limit:]
        self._first_line = first + limit
        self.stats.add(stats)
        return stats


def stream_span_ns(lines: Iterable[str]) -> int | None:
    """Time from process start to the end of the last cycle, over all incarnations of a stream.

    Used to anchor a file without a known start time: its last cycle is taken to end at the file's
    modification time, so start = mtime - span. None when there is no gc line.
    """
    clock = _StreamClock(0)
    seen = False
    for line in lines:
        if " ms clock, " in line:
            parsed = rl.parse_gc(line)
            if parsed is not None:
                clock.gc(parsed.gc_num, parsed.since_us, parsed.clock_us, 0)
                seen = True
    return clock.last_end_us * 1000 if seen and clock.last_end_us is not None else None


class ObservedRanges:
    """Observed mode (`normalize_lines`) over chosen ranges of one call's lines, for a fast path that stores the
    plain gc lines elsewhere (pipeline/sources/kafka/gctrace_engine.py).

    The reference's clock in observed mode carries only two things from line to line: the process start of the
    last gc line (for scavenger, pacer and notice rows) and its cycle number (`after_gc_num`). `gc_stored_at(i)`
    moves them past a gc line stored elsewhere, exactly as the reference's own gc branch does, so the ranges
    handled here give the rows a `normalize_lines` call over all the lines would give them. A repair looks at most
    REPAIR_WINDOW lines ahead and stops at a gc line, so a range ended by a stored gc line needs nothing beyond it.
    """

    def __init__(
        self,
        lines: Sequence[str],
        *,
        observed_ns: Sequence[int],
        service: str,
        instance: str,
        source: str,
        received_at: datetime,
        where_at: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        self.work = _strip(lines)
        if len(observed_ns) != len(self.work):
            raise ValueError(f"{len(self.work)} lines but {len(observed_ns)} observed times")
        self.observed = observed_ns
        self.stats = LineStats()
        self._clock = _ObservedClock()
        self._normalizer = _Normalizer(service=service, instance=instance, source=source, received_at=received_at,
                                       clock=self._clock, quarantine=None, where_at=where_at)

    def gc_stored_at(self, i: int) -> None:
        """Line i, a well-formed gc line, was stored elsewhere: the clock moves past it."""
        line = self.work[i]
        parsed = rl.parse_gc(line) if line is not None else None
        if parsed is None:
            raise ValueError(f"line {i} is not a gc line")
        self._clock.gc(parsed.gc_num, parsed.since_us, parsed.clock_us, self.observed[i])
        self._normalizer.last_gc_num = parsed.gc_num
        self.stats.lines += 1
        self.stats.events += 1

    def normalize_range(self, start: int, end: int, rows: Rows) -> None:
        """The reference over lines[start:end] (repairs may read up to end + REPAIR_WINDOW)."""
        self._normalizer.process(self.work, self.observed, end, rows, self.stats, start=start)
