"""Replaying scenarios through the real detection jobs, as the scheduler would run them.

All scenarios go into one fresh database side by side (their services must not overlap). A simulated clock
then advances in steps: at each step the rows that had *arrived* by then (`received_at`; a span arrives when
it ends) are inserted, and every job window that has closed (`window_end <= clock - lag_seconds`) since the
job's watermark is run with the same runner the scheduler uses. Late rows therefore land after their
window ran, exactly as in production. To stay fast, windows without any input rows for a job are skipped
(their result would be empty), and the leak-trend job, which looks hours back, is evaluated once per step
instead of once per minute: its time to detect is resolved to the step.

Most of a window's cost is the engine analysing the job's statement, not the data, so the replay runs as
few statements as give the same rows: a job that takes a window list (`gc_storms`) computes all the
windows of a clock step in one statement, and the leak-trend steps are kept and evaluated
together, each as of its step's clock (`received_at <= clock`: what had arrived then), just before a job
that reads their output (`gc_storms`) runs and at the end. Arrived rows are inserted just before the next
statement, one insert per table however many steps that spans. tests/integration/test_job_window_list.py
holds all of it to the rows of one run per window and step.

On-disk scenarios (`<table>.jsonl` exports) are inserted whole before the clock starts: their rows arrived
when they were recorded, which the export does not replay. Deferred leak-trend steps still give the same
rows when every exported row arrived within `lag_seconds` of its event time (recordings do); otherwise
every step runs at its time.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.backtest.scenario import INPUT_TABLES, JOB_INPUTS, Columns, Scenario, read_file, table_files
from pipeline.config import Settings
from pipeline.jobs.runner import Job, discover_jobs, execute_job, takes_as_of, takes_window_list
from pipeline.jobs.windows import Window, align_down
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, context_from_settings, migrate

log = logging.getLogger(__name__)

STRIDE_JOBS = ("leak_trends",)   # evaluated once per clock step


@dataclass
class ReplayStats:
    rows: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)  # windows computed (a run may compute several)
    job_seconds: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _arrivals(table: str, cols: Columns) -> list[datetime]:
    if table == "otel_traces":
        return [ts + timedelta(microseconds=d / 1000) for ts, d in zip(cols["Timestamp"], cols["Duration"],
                                                                         strict=True)]
    return list(cols["received_at"])


def _event_times(table: str, cols: Columns) -> list[datetime]:
    if table == "otel_traces":
        return _arrivals(table, cols)
    if table == "cancel_events":
        return list(cols["cancel_at"])
    return list(cols["ts"])


class _Feed:
    """The rows of one table, ordered by arrival, handed out up to a clock."""

    def __init__(self, table: str, cols: Columns) -> None:
        self.table = table
        # to the millisecond, as the store keeps received_at: "arrived by the clock" then reads the same in the
        # store (`received_at <= as_of`, what a deferred evaluation filters on) as here
        arrival = [t.replace(microsecond=t.microsecond // 1000 * 1000) for t in _arrivals(table, cols)]
        order = sorted(range(len(arrival)), key=arrival.__getitem__)
        self.arrival = [arrival[i] for i in order]
        self.cols = {name: [values[i] for i in order] for name, values in cols.items()}
        self.pos = 0

    def take(self, clock: datetime) -> Columns:
        end = bisect.bisect_right(self.arrival, clock)
        chunk = {name: values[self.pos:end] for name, values in self.cols.items()}
        self.pos = end
        return chunk


def check_disjoint(scenarios: list[Scenario]) -> None:
    owner: dict[str, str] = {}
    for sc in scenarios:
        for service in sc.services():
            if service in owner and owner[service] != sc.name:
                raise ValueError(f"scenarios {owner[service]} and {sc.name} both use service {service!r}: "
                                 "backtest them separately")
            owner[service] = sc.name


def replay(scenarios: list[Scenario], settings: Settings, store: Store, *, step_seconds: int = 1800,
           defer: bool = True) -> ReplayStats:
    """Load `scenarios` into the (fresh) database of `settings` and run every job over their time range.
    `defer=False` evaluates every step of a stride job at its time (the same rows, slower)."""
    t_start = time.monotonic()
    check_disjoint(scenarios)
    ctx = context_from_settings(settings)
    migrate(store, settings.sql_dir, ctx)
    detect = settings.detect
    stats = ReplayStats()
    jobs = discover_jobs(settings.sql_dir)
    w = detect.window_seconds
    step = timedelta(seconds=max(w, step_seconds - step_seconds % w))
    lag = timedelta(seconds=detect.lag_seconds)

    feeds: list[_Feed] = []
    active: dict[str, set[datetime]] = {job.name: set() for job in jobs}
    exported = False
    for sc in scenarios:
        for table, path in table_files(sc).items():
            data = read_file(path)
            store.insert_raw(table, data, fmt="JSONEachRow")
            times = _jsonl_event_times(table, data)
            # Rows inserted whole differ from rows fed by arrival only where one arrived more than the lag
            # after its event time (no step can see its event before then): only such rows rule deferral out.
            if any(table in JOB_INPUTS.get(name, ()) for name in STRIDE_JOBS):
                exported = exported or _max_delay(data, times) > lag
            stats.rows += len(times)
            for job, inputs in JOB_INPUTS.items():
                if table in inputs and job in active:
                    _mark_windows(active[job], times, w, detect.sustained_windows)
        for table, cols in sc.tables.items():
            if not cols or not next(iter(cols.values())):
                continue
            feeds.append(_Feed(table, cols))
            stats.rows += len(next(iter(cols.values())))
            for job, inputs in JOB_INPUTS.items():
                if table in inputs and job in active:
                    _mark_windows(active[job], _event_times(table, cols), w, detect.sustained_windows)
    begin = align_down(min(sc.start for sc in scenarios), w)
    finish = max(sc.end for sc in scenarios) + lag + step
    marks = {job.name: begin for job in jobs}
    listed = {job.name for job in jobs if takes_window_list(job, ctx)}
    # Stride jobs that can be evaluated later as of each step's clock are: their steps are kept and run in one
    # statement when a job that reads their output is about to run, and at the end. Exported rows were
    # inserted whole, not as they arrived, so with exports every step runs at its time.
    deferred = {job.name: _Deferred(job) for job in jobs
                if defer and job.name in STRIDE_JOBS and job.name in listed and takes_as_of(job, ctx)
                and not exported}
    readers = {job.name: {name for name in deferred if name != job.name and _reads(job, name, ctx)} for job in jobs}
    clock = begin + step
    landed = begin

    def land(now: datetime) -> None:
        """Insert every row that had arrived by `now`, in one insert per table however many steps it spans
        (done before any statement runs, so every run sees exactly what had arrived by its clock)."""
        nonlocal landed
        if now > landed:
            for feed in feeds:
                chunk = feed.take(now)
                if chunk and next(iter(chunk.values())):
                    store.insert_columns(feed.table, chunk)
            landed = now

    while clock <= finish + step:
        horizon = align_down(clock - lag, w)
        for job in jobs:
            if job.name in STRIDE_JOBS:
                if horizon > marks[job.name]:
                    window = Window(horizon - timedelta(seconds=w), horizon)
                    if job.name in deferred:
                        deferred[job.name].add(window, clock)
                    else:
                        land(clock)
                        _run(store, job, window, settings, ctx, stats)
                    marks[job.name] = horizon
                continue
            t = marks[job.name]
            due: list[Window] = []
            while t + timedelta(seconds=w) <= horizon:
                if t in active[job.name]:
                    due.append(Window(t, t + timedelta(seconds=w)))
                t += timedelta(seconds=w)
            marks[job.name] = t
            if due:
                land(clock)
                for name in readers[job.name]:  # what this job reads must be as complete as it would be by now
                    deferred[name].flush(store, settings, ctx, stats)
            if job.name in listed and due:
                _run(store, job, Window(due[0].start, due[-1].end), settings, ctx, stats, windows=due)
                continue
            for window in due:
                _run(store, job, window, settings, ctx, stats)
        clock += step
    land(clock - step)
    for pending in deferred.values():
        pending.flush(store, settings, ctx, stats)
    stats.seconds = time.monotonic() - t_start
    return stats


@dataclass
class _Deferred:
    """The clock steps of a stride job not evaluated yet, each with the clock it is to be evaluated as of."""

    job: Job
    windows: list[Window] = field(default_factory=list)
    as_of: list[datetime] = field(default_factory=list)

    def add(self, window: Window, clock: datetime) -> None:
        self.windows.append(window)
        self.as_of.append(clock)

    def flush(self, store: Store, settings: Settings, ctx: RenderContext, stats: ReplayStats) -> None:
        if self.windows:
            _run(store, self.job, Window(self.windows[0].start, self.windows[-1].end), settings, ctx, stats,
                 windows=self.windows, as_of=self.as_of)
            self.windows, self.as_of = [], []


def _reads(job: Job, table: str, ctx: RenderContext) -> bool:
    """Whether `job` reads the table `table` (another job's output) anywhere in its statements."""
    source = re.compile(rf"\b(?:FROM|JOIN)\s+{re.escape(ctx.database)}\.{re.escape(table)}\b", re.I)
    return any(source.search(statement) for statement in job.statements(ctx))


def _max_delay(data: bytes, times: list[datetime]) -> timedelta:
    """The longest arrival delay (`received_at` - event time) of exported rows; unbounded without arrivals."""
    worst = timedelta(0)
    rows = (json.loads(line) for line in data.splitlines() if line.strip())
    for row, t in zip(rows, times, strict=True):
        if "received_at" not in row:
            return timedelta.max
        got = datetime.fromisoformat(str(row["received_at"]).replace(" ", "T")[:26]).replace(tzinfo=UTC)
        worst = max(worst, got - t)
    return worst


def _jsonl_event_times(table: str, data: bytes) -> list[datetime]:
    """Event times of exported rows (ClickHouse JSONEachRow text of DateTime64 values, UTC)."""
    column = {"otel_traces": "Timestamp", "cancel_events": "cancel_at"}.get(table, "ts")
    times: list[datetime] = []
    for line in data.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        t = datetime.fromisoformat(str(row[column]).replace(" ", "T")[:26]).replace(tzinfo=UTC)
        if table == "otel_traces":
            t += timedelta(microseconds=int(row.get("Duration", 0)) / 1000)
        times.append(t)
    return times


def _mark_windows(active: set[datetime], times: list[datetime], w: int, sustained: int) -> None:
    """Windows holding any of `times`, and the `sustained - 1` after each (they look back at it)."""
    seen: set[datetime] = set()
    for t in times:
        start = align_down(t, w)
        if start in seen:
            continue
        seen.add(start)
        for k in range(max(1, sustained)):
            active.add(start + timedelta(seconds=k * w))


def _run(store: Store, job: Job, window: Window, settings: Settings, ctx: RenderContext, stats: ReplayStats,
         windows: list[Window] | None = None, as_of: list[datetime] | None = None) -> None:
    """One run: `window`, or every window of `windows` in one statement (a job that takes a window list),
    each as of its time in `as_of` when given."""
    result = execute_job(store, job, window, settings.detect, ctx, count_written=False, windows=windows or (),
                         as_of=as_of or ())
    stats.runs[job.name] = stats.runs.get(job.name, 0) + 1
    stats.windows[job.name] = stats.windows.get(job.name, 0) + len(windows or [window])
    stats.job_seconds[job.name] = stats.job_seconds.get(job.name, 0.0) + result.duration_s
    if result.status != "ok":
        stats.errors.append(f"{job.name} {window}: {result.error.splitlines()[0] if result.error else '?'}")


__all__ = ["INPUT_TABLES", "ReplayStats", "replay"]
