"""How long the detection jobs take over 1 hour of 1,000 instances on the embedded store.

Not a test: it prints seconds per job for one steady-state window (what the scheduler does every interval)
and for a catch-up of several windows, as JSON. `python -m bench.jobs_bench [--instances N] [--seconds S]`.
The data is synthetic but shaped like the real thing (GC cycles every 2 s, storms at 5/s, leaking heaps and
goroutine floors, load waves), generated inside the engine by bench/jobs_bench_data.sql.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.config import load_settings
from pipeline.jobs.runner import discover_jobs
from pipeline.jobs.scheduler import JobScheduler
from pipeline.jobs.windows import Window, align_down, fmt_time
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate, render, split_statements

DATA_SQL = Path(__file__).resolve().parent / "jobs_bench_data.sql"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--catch-up-windows", type=int, default=5)
    parser.add_argument("--store", help="chdb:// path (default: a temporary directory)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fw-jobs-bench-") as tmp:
        settings = load_settings(clickhouse_dsn=args.store or f"chdb://{tmp}/store", database="jobs_bench")
        store = Store.from_settings(settings)
        ctx = context_from_settings(settings)
        store.command(f"DROP DATABASE IF EXISTS {settings.database} SYNC")
        migrate(store, settings.sql_dir, ctx)
        end = align_down(datetime.now(UTC), settings.detect.window_seconds)
        params = {"instances": args.instances, "seconds": args.seconds, "end": fmt_time(end)}
        t0 = time.monotonic()
        for statement in split_statements(render(DATA_SQL.read_text(encoding="utf-8"), ctx)):
            store.command(statement, parameters=params)
        load_s = time.monotonic() - t0
        counts = {t: store.scalar(f"SELECT count() FROM {settings.database}.{t}")
                  for t in ("gc_events", "runtime_metrics", "goroutine_samples", "heap_samples")}

        scheduler = JobScheduler(settings, store)
        step = timedelta(seconds=settings.detect.window_seconds)
        report: dict = {"instances": args.instances, "seconds_of_data": args.seconds, "rows": counts,
                        "load_s": round(load_s, 2), "window_seconds": settings.detect.window_seconds, "jobs": {}}
        for job in discover_jobs(settings.sql_dir):
            one = scheduler.run_window(job, Window(end - step, end))
            t1 = time.monotonic()
            catch_up = [scheduler.run_window(job, Window(end - (i + 1) * step, end - i * step))
                        for i in range(args.catch_up_windows)]
            report["jobs"][job.name] = {
                "status": one.status, "error": one.error[:300], "rows_written": one.rows_written,
                "one_window_s": round(one.duration_s, 3),
                "catch_up_windows": args.catch_up_windows,
                "catch_up_s": round(time.monotonic() - t1, 3),
                "catch_up_ok": all(r.status == "ok" for r in catch_up),
            }
        store.command(f"DROP DATABASE IF EXISTS {settings.database} SYNC")
        store.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
