"""Cost of `fleetwatch backtest` over the whole scenario library: wall and CPU seconds, job runs per job.

Run: `python -m bench.backtest_bench` (a fresh embedded store in a temporary directory; prints one line per
job and the totals). CPU is `getrusage` of this process, so the embedded engine's threads are included.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

from pipeline.backtest.command import backtest_settings, run_backtest
from pipeline.backtest.library import generated
from pipeline.config import load_settings


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="fleetwatch-backtest-bench-"))
    try:
        wall0, cpu0 = time.monotonic(), _cpu()
        library = generated()
        gen_wall = time.monotonic() - wall0
        report = run_backtest(library, backtest_settings(load_settings(), f"chdb://{scratch}"))
        wall, cpu = time.monotonic() - wall0, _cpu() - cpu0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for job, runs in sorted(report.stats.runs.items()):
        spent = report.stats.job_seconds.get(job, 0.0)
        windows = report.stats.windows.get(job, runs)  # a run may compute several windows (one statement)
        print(f"{job:12s} runs {runs:4d}  windows {windows:4d}  wall {spent:6.1f} s  "
              f"({spent / max(runs, 1):.2f} s/run)")
    print(f"{len(library)} scenarios, {report.stats.rows} rows; generating {gen_wall:.1f} s; "
          f"total wall {wall:.1f} s, CPU {cpu:.1f} s; passed={report.passed}")


if __name__ == "__main__":
    main()
