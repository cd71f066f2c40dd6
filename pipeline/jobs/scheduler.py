"""The detection scheduler: runs every `sql/jobs/*.sql` over consecutive windows behind a watermark.

Each job's watermark is the latest `window_end` of its successful runs in `job_runs`, so the scheduler keeps
no state of its own: after downtime it resumes where the table says and catches up window by window (at most
`jobs_max_windows_per_tick` per job before moving on, then straight into another pass while behind). A window
closes `lag_seconds` behind now so late rows still land in the window that owns them.

Several workers against one server: before running a window a worker inserts a claim in `job_leases` and
proceeds only if its claim is the earliest live one; otherwise it leaves the job for this pass. The claim is a
courtesy, not a lock (ClickHouse has no compare-and-set): if two workers do run one window, the results
replace each other, because every job output is ReplacingMergeTree keyed by window.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from datetime import UTC, datetime

from pipeline.config import Settings
from pipeline.jobs.runner import (
    HOST,
    Job,
    RunResult,
    discover_jobs,
    execute_job,
    new_run_id,
    record_run,
    select_jobs,
)
from pipeline.jobs.views import apply_views
from pipeline.jobs.windows import Window, due_windows, fmt_time, parse_time, range_windows
from pipeline.runtime import RunContext
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store, StoreError, StoreUnavailable
from pipeline.store.migrate import context_from_settings, migrate
from pipeline.telemetry import Telemetry

log = logging.getLogger(__name__)


class JobScheduler:
    """Runs due windows of every job. `tick()` is one pass; `run_forever()` repeats it until stopped."""

    def __init__(self, settings: Settings, store: Store, telemetry: Telemetry | None = None, host: str = HOST) -> None:
        self.settings = settings
        self.store = store
        self.telemetry = telemetry
        self.host = host
        self.ctx = context_from_settings(settings)
        self.stop_event = threading.Event()

    # -- state in the store ---------------------------------------------------------------------------
    def watermarks(self) -> dict[str, datetime]:
        sql = load_statement(self.settings.sql_dir, "queries/job_watermarks.sql", self.ctx)
        return {job: _utc(end) for job, end in self.store.rows(sql)}

    def claim(self, job: Job, window: Window, holder: str) -> bool:
        """True when this worker may run the window (its claim is the earliest live one)."""
        params = {"job": job.name, "window_start": fmt_time(window.start), "holder": holder}
        self.store.command(
            load_statement(self.settings.sql_dir, "queries/job_claim.sql", self.ctx),
            parameters={**params, "lease_ms": int(self.settings.detect.jobs_lease_seconds * 1000)},
        )
        winner = self.store.scalar(
            load_statement(self.settings.sql_dir, "queries/job_claim_winner.sql", self.ctx),
            {"job": job.name, "window_start": params["window_start"]},
        )
        return winner in (holder, "", None)

    # -- running --------------------------------------------------------------------------------------
    def run_window(self, job: Job, window: Window, run_id: str | None = None) -> RunResult:
        result = execute_job(self.store, job, window, self.settings.detect, self.ctx, run_id=run_id,
                             should_stop=self.stop_event.is_set)
        record_run(self.store, result, host=self.host)
        if self.telemetry is not None:
            self.telemetry.job_duration.record(result.duration_s, {"job": job.name, "status": result.status})
        return result

    def tick(self, now: datetime | None = None, jobs: list[Job] | None = None) -> tuple[list[RunResult], bool]:
        """One pass over every job. Returns the runs and whether any job is still behind."""
        now = now or datetime.now(UTC)
        detect = self.settings.detect
        marks = self.watermarks()
        results: list[RunResult] = []
        behind = False
        for job in jobs if jobs is not None else discover_jobs(self.settings.sql_dir):
            windows = due_windows(
                marks.get(job.name), now,
                window_seconds=detect.window_seconds, lag_seconds=detect.lag_seconds,
                backfill_seconds=detect.jobs_backfill_seconds, limit=detect.jobs_max_windows_per_tick + 1,
            )
            behind = behind or len(windows) > detect.jobs_max_windows_per_tick
            for window in windows[: detect.jobs_max_windows_per_tick]:
                if self.stop_event.is_set():
                    return results, False
                run_id = new_run_id()
                if not self.claim(job, window, run_id):
                    log.debug("job %s %s is claimed by another worker", job.name, window)
                    break
                result = self.run_window(job, window, run_id)
                results.append(result)
                if result.status != "ok":
                    break  # retried next pass; later windows wait so the watermark stays contiguous
        return results, behind

    def run_forever(self) -> None:
        interval = self.settings.detect.interval_seconds
        try:
            apply_views(self.store, self.settings.sql_dir, self.ctx)
        except StoreUnavailable as exc:
            log.warning("views not applied yet: %s", exc)
        while not self.stop_event.is_set():
            behind = False
            try:
                _, behind = self.tick()
            except (StoreError, StoreUnavailable) as exc:
                log.warning("scheduler pass failed, retrying in %.0fs: %s", interval, exc)
            except Exception:
                log.exception("scheduler pass failed unexpectedly")
            if not behind:
                self.stop_event.wait(interval)


class SchedulerComponent:
    """The scheduler thread inside `fleetwatch run`."""

    name = "scheduler"

    def __init__(self, scheduler: JobScheduler, process_stop: threading.Event) -> None:
        self.scheduler = scheduler
        self._process_stop = process_stop
        self._thread = threading.Thread(target=self._main, name="fleetwatch-scheduler", daemon=True)

    def start(self) -> SchedulerComponent:
        self._thread.start()
        return self

    def _main(self) -> None:
        watcher = threading.Thread(target=self._forward_stop, name="fleetwatch-scheduler-stop", daemon=True)
        watcher.start()
        self.scheduler.run_forever()

    def _forward_stop(self) -> None:
        self._process_stop.wait()
        self.scheduler.stop_event.set()

    def stop(self, timeout: float) -> None:
        self.scheduler.stop_event.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("scheduler still finishing a job after %.0fs", timeout)


def start(ctx: RunContext) -> SchedulerComponent | None:
    """The scheduler Component for `fleetwatch run`, or None when jobs are turned off."""
    if not ctx.settings.jobs_enabled:
        return None
    scheduler = JobScheduler(ctx.settings, ctx.store, telemetry=ctx.telemetry)
    return SchedulerComponent(scheduler, ctx.stop_event).start()


# -- fleetwatch jobs run-once | list -----------------------------------------------------------------------
def jobs_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.jobs_command == "list":
        return _list_jobs(settings)
    return _run_once(settings, args)


def _list_jobs(settings: Settings) -> int:
    jobs = discover_jobs(settings.sql_dir)
    status: dict[str, tuple] = {}
    try:
        from pipeline.store.query import open_reader

        reader = open_reader(settings)
        try:
            ctx = context_from_settings(settings)
            rows = reader.rows(load_statement(settings.sql_dir, "queries/job_runs_recent.sql", ctx))
            status = {r[0]: r for r in rows}
        finally:
            reader.close()
    except (StoreError, StoreUnavailable) as exc:
        log.info("no run history: %s", str(exc).splitlines()[0])
    for job in jobs:
        row = status.get(job.name)
        if row is None:
            print(f"{job.name}\t(never run)\t{job.path}")
        else:
            _, _last_end, last_status, watermark, errors, last_error, rows, _last_run = row
            line = f"{job.name}\twatermark {fmt_time(_utc(watermark))}\tlast {last_status}\t" \
                   f"rows(24h) {rows}\terrors(24h) {errors}"
            if last_status == "error" and last_error:
                line += f"\t{last_error.splitlines()[0][:200]}"
            print(line)
    return 0


def _run_once(settings: Settings, args: argparse.Namespace) -> int:
    store = Store.from_settings(settings)
    try:
        ctx = context_from_settings(settings)
        migrate(store, settings.sql_dir, ctx)
        apply_views(store, settings.sql_dir, ctx)
        scheduler = JobScheduler(settings, store)
        jobs = select_jobs(discover_jobs(settings.sql_dir), getattr(args, "job", None))
        now = datetime.now(UTC)
        results = run_once(scheduler, jobs, now,
                           since=getattr(args, "since", None), until=getattr(args, "until", None))
    finally:
        store.close()
    failed = [r for r in results if r.status != "ok"]
    for r in results:
        print(f"{r.job}\t{r.window}\t{r.status}\trows={r.rows_written}\t{r.duration_s:.2f}s"
              + (f"\t{r.error.splitlines()[0]}" if r.error else ""))
    if not results:
        print("nothing to run: every job is up to date", file=sys.stderr)
    return 1 if failed else 0


def run_once(scheduler: JobScheduler, jobs: list[Job], now: datetime, *,
             since: str | None = None, until: str | None = None) -> list[RunResult]:
    """Without `since`: catch every job up to now - lag. With it: recompute [since, until or now) window by
    window (no claims: an operator's explicit backfill runs even if a worker holds the window)."""
    if since is None:
        if until is not None:
            raise ValueError("--until needs --since")
        results: list[RunResult] = []
        for _ in range(100_000):  # bounded: each pass advances every due job by up to a tick's windows
            batch, behind = scheduler.tick(now=now, jobs=jobs)
            results.extend(batch)
            if not behind or not batch or any(r.status != "ok" for r in batch):
                break
        return results
    start = parse_time(since, now)
    end = parse_time(until, now) if until else now
    if end <= start:
        raise ValueError(f"--until ({fmt_time(end)}) must be after --since ({fmt_time(start)})")
    results = []
    for job in jobs:
        for window in range_windows(start, end, window_seconds=scheduler.settings.detect.window_seconds):
            results.append(scheduler.run_window(job, window))
    return results


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


__all__ = ["JobScheduler", "jobs_command", "run_once", "start"]
