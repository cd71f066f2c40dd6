"""Running one SQL job over one window and recording the run in `job_runs`.

A job is a file `sql/jobs/<name>.sql`: statements separated by `;`, rendered with the migration placeholders
and executed in order. Every statement gets, as query parameters, the window (`window_start`, `window_end`),
the `run_id`, and any field of `settings.detect` it names (`{sustained_windows:UInt32}`); only the parameters
a statement references are sent, so a server that rejects unknown parameters is never surprised. A job whose
statements take `window_starts` / `window_ends` (arrays) instead computes every window of a list in one
statement (`takes_window_list`): the scheduler passes one window, the backtest a whole clock step's. The job's
output tables are ReplacingMergeTree keyed by window, which is what makes a rerun replace rather than add.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.config import DetectSettings
from pipeline.jobs.windows import Window, fmt_time
from pipeline.store.client import Store, StoreError, StoreUnavailable
from pipeline.store.migrate import RenderContext, render, split_statements

log = logging.getLogger(__name__)

_PARAM_RE = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")
_JOB_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_INSERT_RE = re.compile(r"^INSERT\s+INTO\s+([A-Za-z0-9_.`]+)", re.I)
HOST = f"{socket.gethostname()}:{os.getpid()}"
# "As of" no particular time: every row, whenever it was received (near the end of DateTime64's range).
AS_OF_ALL = datetime(2299, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Job:
    name: str
    path: Path

    def statements(self, ctx: RenderContext) -> list[str]:
        """Read the file each run, so an edited job takes effect without a restart."""
        return split_statements(render(self.path.read_text(encoding="utf-8"), ctx))


@dataclass
class RunResult:
    job: str
    window: Window
    run_id: str
    status: str
    rows_written: int = 0
    duration_s: float = 0.0
    error: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def discover_jobs(sql_dir: Path) -> list[Job]:
    """Every `sql/jobs/*.sql`, by name. Names are the file stems and must be lowercase identifiers."""
    jobs: list[Job] = []
    for path in sorted((sql_dir / "jobs").glob("*.sql")):
        if not _JOB_NAME_RE.match(path.stem):
            raise ValueError(f"{path}: job files are named lowercase_name.sql")
        jobs.append(Job(path.stem, path))
    return jobs


def select_jobs(all_jobs: list[Job], names: list[str] | None) -> list[Job]:
    if not names:
        return all_jobs
    by_name = {j.name: j for j in all_jobs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown job(s) {', '.join(unknown)}; known: {', '.join(by_name) or 'none'}")
    return [by_name[n] for n in names]


def referenced_parameters(statement: str) -> set[str]:
    """Names used as `{name:Type}` query parameters in a rendered statement."""
    return set(_PARAM_RE.findall(statement))


def job_parameters(detect: DetectSettings, window: Window, run_id: str,
                   windows: Sequence[Window] = (), as_of: Sequence[datetime] = ()) -> dict[str, Any]:
    """Everything a job statement may reference: the window, the run id and each DetectSettings field.

    A job that takes `window_starts` / `window_ends` (arrays) computes every window of the list in one
    statement, each as if run on its own: `windows`, or the one `window` when none are given. A job that
    also takes `window_as_of` sees, for each window, only the rows received by then (`as_of`; no limit when
    not given): a backtest evaluates many clock steps at once that way."""
    params: dict[str, Any] = {}
    for name, value in detect.model_dump().items():
        params[name] = int(value) if isinstance(value, bool) else value
    params.update(window_start=fmt_time(window.start), window_end=fmt_time(window.end), run_id=run_id)
    each = list(windows) or [window]
    params.update(window_starts=[fmt_time(w.start) for w in each], window_ends=[fmt_time(w.end) for w in each],
                  window_as_of=[fmt_time(t) for t in as_of] if as_of else [fmt_time(AS_OF_ALL)] * len(each))
    if len(params["window_as_of"]) != len(each):
        raise ValueError("one as-of time per window")
    return params


def takes_as_of(job: Job, ctx: RenderContext) -> bool:
    """Whether `job` can be limited to the rows received by a time per window (`window_as_of`)."""
    return any("window_as_of" in referenced_parameters(s) for s in job.statements(ctx))


def takes_window_list(job: Job, ctx: RenderContext) -> bool:
    """Whether every statement of `job` computes a list of windows (`window_starts`), so several windows can
    run as one statement; a job that also reads a single `window_start` cannot."""
    statements = job.statements(ctx)
    return bool(statements) and all("window_starts" in referenced_parameters(s)
                                    and "window_start" not in referenced_parameters(s) for s in statements)


def new_run_id() -> str:
    return uuid.uuid4().hex


def execute_job(store: Store, job: Job, window: Window, detect: DetectSettings, ctx: RenderContext,
                run_id: str | None = None, should_stop: Callable[[], bool] | None = None, *,
                count_written: bool = True, windows: Sequence[Window] = (),
                as_of: Sequence[datetime] = ()) -> RunResult:
    """Run every statement of `job` over `window`; never raises for a failing statement (it is recorded).

    `should_stop` is asked before each statement after the first: on shutdown the run ends at the next
    statement boundary as `skipped`, so the watermark stays put and the window runs again from the start
    (job outputs are keyed by window, so the statements already run are replaced, not doubled).
    `count_written=False` skips counting rows the engine did not report (a backtest does not need them).
    `windows` (for jobs where `takes_window_list`) computes those windows in one run; `window` then spans them;
    `as_of` limits each to the rows received by its time (for jobs that take `window_as_of`).
    """
    run_id = run_id or new_run_id()
    result = RunResult(job.name, window, run_id, status="ok")
    params = job_parameters(detect, window, run_id, windows, as_of)
    t0 = time.monotonic()
    try:
        statements = job.statements(ctx)
        for index, statement in enumerate(statements, start=1):
            if index > 1 and should_stop is not None and should_stop():
                result.status = "skipped"
                result.error = f"stopped before statement {index} of {len(statements)}; the window runs again"
                log.info("job %s %s: %s", job.name, window, result.error)
                break
            wanted = {k: params[k] for k in referenced_parameters(statement) if k in params}
            missing = referenced_parameters(statement) - params.keys()
            if missing:
                raise StoreError(f"statement {index} references unknown parameter(s) {', '.join(sorted(missing))}")
            try:
                summary = store.command(statement, parameters=wanted)
            except StoreError as exc:
                raise StoreError(f"statement {index} of {len(statements)}: {exc}") from exc
            written = _written_rows(summary)
            if written is None and count_written:
                written = _count_written(store, statement, params)
            result.rows_written += written or 0
    except (StoreError, StoreUnavailable, OSError, ValueError) as exc:
        result.status = "error"
        result.error = str(exc)[:8000]
        log.warning("job %s %s failed: %s", job.name, window, result.error[:400])
    result.duration_s = time.monotonic() - t0
    result.finished_at = datetime.now(UTC)
    return result


def _written_rows(summary: Any) -> int | None:
    """Rows written by one statement, from clickhouse-connect's QuerySummary; None when not reported."""
    details = getattr(summary, "summary", summary)
    value = details.get("written_rows") if isinstance(details, dict) else getattr(summary, "written_rows", None)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _count_written(store: Store, statement: str, params: dict[str, Any]) -> int:
    """The embedded engine reports no written_rows: count this run's rows of this window in the target table.

    Outputs keyed by `window_start` are counted within that window (one partition); others by `run_id` among
    recent `computed_at`. A target with neither counts as 0.
    """
    match = _INSERT_RE.match(_strip_comments(statement))
    if not match:
        return 0
    table = match.group(1)
    probes = [  # partition-pruned first; then any table that records run_id and computed_at
        f"SELECT count() FROM {table} "
        "WHERE window_start = {window_start:DateTime64(3, 'UTC')} AND run_id = {run_id:String}",
        f"SELECT count() FROM {table} WHERE computed_at >= now64(3) - INTERVAL 1 HOUR AND run_id = {{run_id:String}}",
    ]
    for sql in probes:
        try:
            return int(store.scalar(sql, {k: params[k] for k in referenced_parameters(sql)}) or 0)
        except StoreError:
            continue
    return 0


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S).strip()


def record_run(store: Store, result: RunResult, host: str = HOST) -> None:
    """Append the run to job_runs; the dedup token makes a retried write of the same run land once."""
    store.insert_columns(
        "job_runs",
        {
            "job": [result.job],
            "window_start": [result.window.start],
            "window_end": [result.window.end],
            "run_id": [result.run_id],
            "host": [host],
            "status": [result.status],
            "rows_written": [result.rows_written],
            "duration_s": [result.duration_s],
            "error": [result.error],
            "started_at": [result.started_at],
            "finished_at": [result.finished_at],
        },
        dedup_token=f"job_runs/{result.run_id}",
    )
