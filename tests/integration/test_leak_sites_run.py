"""`fleetwatch run` end to end on real Go 1.27 programs: its scraper pulls their goroutine and goroutineleak
profiles from [[scrape]] tables, its scheduler runs leak_sites, and `fleetwatch triage`, reading through the
running process's query endpoint, names the leak (a) and the proven leak (b) by function and file:line and
says nothing about the busy pool (c). Time thresholds are scaled down (seconds stand for minutes)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_profile_detections_go import (
    EVERY_S,
    POOL_PERIOD_S,
    PROGRAM,
    SOURCE,
    site_line,
    start,
    stop,
)
from tests.net import FLEETWATCH
from tests.process import FleetwatchProcess

pytestmark = pytest.mark.integration


class _WithJobs(FleetwatchProcess):
    """`fleetwatch run` with its scheduler (the base class runs it without jobs)."""

    def args(self) -> list[str]:
        return [a for a in super().args() if a != "--no-jobs"]


def _reader(proc: FleetwatchProcess) -> list[str]:
    """The running process's store (held, so reads go through its query endpoint)."""
    return ["--clickhouse-dsn", proc.dsn, "--query-http", f"127.0.0.1:{proc.query_port}"]


def _triage(proc: FleetwatchProcess) -> dict:
    out = subprocess.run([FLEETWATCH, "triage", "--service", "profiled", "--since", "10m", "--format", "json",
                          *_reader(proc)],
                         env=proc.env, capture_output=True, text=True, timeout=120, cwd=proc.workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _progress(proc: FleetwatchProcess) -> str:
    """What the running pipeline has done so far (for a failure message)."""
    out = subprocess.run([FLEETWATCH, "sql", *_reader(proc), "--format", "json",
                          "SELECT job, count() AS runs, max(window_end) AS last, now64() AS now, "
                          "countIf(status != 'ok') AS errors FROM fleetwatch.job_runs GROUP BY job"],
                         env=proc.env, capture_output=True, text=True, timeout=120, cwd=proc.workdir)
    return out.stdout + out.stderr[-1000:]


def _sites(report: dict) -> dict[tuple[str, str], dict]:
    return {(f["subject"], s["function"]): s for f in report["leaks"] for s in f["evidence"].get("sites", [])}


def test_fleetwatch_run_scrapes_and_names_the_leaks(build_go, tmp_path: Path) -> None:
    binary = build_go(PROGRAM)
    targets = [start(binary, mode, mode) for mode in ("leak", "blocked", "pool")]
    config = tmp_path / "fleetwatch.toml"
    config.write_text("\n".join(
        [f'[[scrape]]\nurl = "{t.base}"\nservice = "profiled"\ninstance = "{t.instance}"\n'
         f'interval_seconds = {EVERY_S}\nprofiles = ["goroutine", "goroutineleak"]\n' for t in targets]))
    env = {"FLEETWATCH_CONFIG": str(config), "FLEETWATCH_PPROF__GOROUTINELEAK_INTERVAL_SECONDS": "2",
           "FLEETWATCH_DETECT__WINDOW_SECONDS": "1", "FLEETWATCH_DETECT__LAG_SECONDS": "1",
           "FLEETWATCH_DETECT__INTERVAL_SECONDS": "1", "FLEETWATCH_DETECT__JOBS_BACKFILL_SECONDS": "3",
           "FLEETWATCH_DETECT__LEAK_SITE_LOOKBACK_SECONDS": "600",
           "FLEETWATCH_DETECT__LEAK_SITE_BUCKET_SECONDS": str(POOL_PERIOD_S),
           "FLEETWATCH_DETECT__LEAK_SITE_MIN_BUCKETS": "5"}
    proc = _WithJobs(tmp_path, env, query=True)
    try:
        proc.start()
        deadline = time.monotonic() + 180
        sites: dict[tuple[str, str], dict] = {}
        wanted = {("profiled/leak", "main.fetchAll.func1"), ("profiled/blocked", "main.watch")}
        # wait on state: until triage names both leaks (the growing one needs five 2 s buckets of profiles)
        while not wanted <= set(sites):
            assert proc.alive(), proc.log()[-5000:]
            assert time.monotonic() < deadline, (sites, proc.log()[-1500:], _progress(proc))
            time.sleep(1)
            sites = _sites(_triage(proc))
        # a few more evaluations: the pool, evaluated every second all along, is never named
        for _ in range(3):
            time.sleep(2)
            sites = _sites(_triage(proc))
            assert not [k for k in sites if k[0] == "profiled/pool"], sites
    finally:
        stop(targets)
        if proc.alive():
            proc.terminate()
    assert sites[("profiled/leak", "main.fetchAll.func1")]["file:line"] == f"{SOURCE}:{site_line('leak')}"
    assert "growing_site" in sites[("profiled/leak", "main.fetchAll.func1")]["evidence"]
    assert sites[("profiled/blocked", "main.watch")]["file:line"] == f"{SOURCE}:{site_line('blocked')}"
    assert sites[("profiled/blocked", "main.watch")]["evidence"] == ["leak_profile"]
    evaluated = proc.sql("SELECT count() AS n FROM fleetwatch.leak_sites WHERE instance = 'pool'")
    assert evaluated[0]["n"] > 0, "the pool's site was never evaluated"
