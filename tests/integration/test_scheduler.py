"""The scheduler on the real engine: reruns replace, downtime is caught up, every run is recorded."""

from __future__ import annotations

import argparse
import itertools
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.jobs.runner import discover_jobs, select_jobs
from pipeline.jobs.scheduler import JobScheduler, jobs_command, run_once
from pipeline.jobs.windows import align_down, due_windows


def _gc_rows(store, start: datetime, seconds: int, instances=("a", "b")) -> None:
    """Dense GC cycles (20 per second, 12 ms of GC CPU each on 2 P: a storm) for `seconds`."""
    cols: dict[str, list] = {k: [] for k in (
        "service", "instance", "ts", "gc_num", "since_start_s", "gc_cpu_pct", "stw_sweep_term_ms", "mark_ms",
        "stw_mark_term_ms", "cpu_sweep_term_ms", "cpu_assist_ms", "cpu_background_ms", "cpu_idle_ms",
        "cpu_mark_term_ms", "heap_start_mb", "heap_end_mb", "heap_live_mb", "heap_goal_mb", "procs", "forced",
        "leak_check", "process_start", "incarnation", "format", "source", "received_at")}
    for inst in instances:
        for i in range(seconds * 20):
            row = {"service": "svc", "instance": inst, "ts": start + timedelta(milliseconds=50 * i), "gc_num": i + 1,
                   "since_start_s": 0.05 * i, "gc_cpu_pct": 30, "stw_sweep_term_ms": 0.05, "mark_ms": 8,
                   "stw_mark_term_ms": 0.04, "cpu_sweep_term_ms": 0.1, "cpu_assist_ms": 6, "cpu_background_ms": 6,
                   "cpu_idle_ms": 1, "cpu_mark_term_ms": 0.1, "heap_start_mb": 20, "heap_end_mb": 22,
                   "heap_live_mb": 10, "heap_goal_mb": 20, "procs": 2, "forced": 0, "leak_check": 0,
                   "process_start": start, "incarnation": 1, "format": "go1.18", "source": "file",
                   "received_at": start}
            for k in cols:
                cols[k].append(row[k])
    store.insert_columns("gc_events", cols)


def _small_windows(settings) -> None:
    settings.detect.window_seconds = 10
    settings.detect.lag_seconds = 0
    settings.detect.jobs_backfill_seconds = 60
    settings.detect.jobs_max_windows_per_tick = 3


def test_rerunning_a_window_replaces_its_rows(store, settings) -> None:
    _small_windows(settings)
    start = align_down(datetime.now(UTC) - timedelta(seconds=60), 10)
    _gc_rows(store, start, 40)
    scheduler = JobScheduler(settings, store)
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["gc_storms"])
    since = (start + timedelta(seconds=20)).isoformat()
    until = (start + timedelta(seconds=40)).isoformat()
    for _ in range(2):
        results = run_once(scheduler, jobs, datetime.now(UTC), since=since, until=until)
        assert [r.status for r in results] == ["ok", "ok"] and all(r.rows_written == 2 for r in results)
    db = settings.database
    assert store.scalar(f"SELECT count() FROM {db}.gc_storms FINAL") == 4
    assert store.scalar(f"SELECT count() FROM (SELECT instance, window_start, argMax(storm, computed_at) "
                        f"FROM {db}.gc_storms GROUP BY instance, window_start)") == 4
    assert store.scalar(f"SELECT countIf(storm = 1 AND kind = 'allocation') FROM {db}.gc_storms FINAL") == 4
    runs = store.rows(f"SELECT status, rows_written, window_end - window_start, host != '' "
                      f"FROM {db}.job_runs WHERE job = 'gc_storms'")
    assert len(runs) == 4 and all(r[0] == "ok" and r[1] == 2 and r[3] for r in runs)


def test_catch_up_after_downtime_is_contiguous(store, settings) -> None:
    _small_windows(settings)
    scheduler = JobScheduler(settings, store)
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["gc_storms", "leak_trends"])
    t0 = align_down(datetime.now(UTC), 10) - timedelta(seconds=300)
    results, behind = scheduler.tick(now=t0, jobs=jobs)
    assert len(results) == 6 and behind  # 3 per job, backfill wants 6 windows each
    # the process was down for two minutes: passes resume at each job's watermark until caught up
    later = t0 + timedelta(seconds=120)
    caught = run_once(scheduler, jobs, later)
    for job in ("gc_storms", "leak_trends"):
        windows = sorted(r.window for r in results + caught if r.job == job)
        assert all(a.end == b.start for a, b in itertools.pairwise(windows))
        assert windows[0].start == t0 - timedelta(seconds=60) and windows[-1].end == later
    assert scheduler.watermarks() == {"gc_storms": later, "leak_trends": later}
    assert scheduler.tick(now=later, jobs=jobs) == ([], False)


def test_a_failing_job_is_recorded_and_holds_its_watermark(store, settings, tmp_path: Path) -> None:
    _small_windows(settings)
    sql_dir = tmp_path / "sql"
    shutil.copytree(settings.sql_dir, sql_dir)
    (sql_dir / "jobs" / "broken.sql").write_text("INSERT INTO {{db}}.nope SELECT {window_start:DateTime64(3, 'UTC')}")
    settings.sql_dir = sql_dir
    scheduler = JobScheduler(settings, store)
    jobs = select_jobs(discover_jobs(sql_dir), ["broken"])
    now = align_down(datetime.now(UTC), 10)
    results, _ = scheduler.tick(now=now, jobs=jobs)
    assert len(results) == 1 and results[0].status == "error" and "nope" in results[0].error
    assert "broken" not in scheduler.watermarks()
    row = store.rows(f"SELECT status, error FROM {settings.database}.job_runs WHERE job = 'broken'")
    assert row[0][0] == "error" and "nope" in row[0][1]


def test_a_claimed_window_is_left_to_its_holder(store, settings) -> None:
    _small_windows(settings)
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["gc_storms"])
    now = align_down(datetime.now(UTC), 10)
    first = JobScheduler(settings, store, host="worker-1")
    second = JobScheduler(settings, store, host="worker-2")
    window = due_windows(None, now, window_seconds=10, lag_seconds=0, backfill_seconds=60, limit=1)[0]
    assert first.claim(jobs[0], window, "run-1")
    assert not second.claim(jobs[0], window, "run-2")
    results, _ = second.tick(now=now, jobs=jobs)
    assert results == []  # the other worker holds the first due window


def test_jobs_command_run_once_and_list(store, settings, capsys) -> None:
    _small_windows(settings)
    args = argparse.Namespace(jobs_command="run-once", job=["gc_storms"], since="30s", until=None)
    assert jobs_command(settings, args) == 0
    out = capsys.readouterr().out
    assert out.count("gc_storms\t") >= 3 and "\tok\t" in out
    assert jobs_command(settings, argparse.Namespace(jobs_command="list")) == 0
    listing = capsys.readouterr().out
    assert "gc_storms\twatermark" in listing and "leak_trends\t(never run)" in listing
