"""End to end on real Go runtime output: real programs, the real gctrace normalizer, the real jobs and engine.

tests/data/go/fleetsim runs one process in a known state (GC storm under a memory limit, GC storm from a
tiny GOGC, steady, leaking, busy-but-flat); its gctrace goes through `GctraceStream` into gc_events and its
goroutine counts (printed every 100 ms) become runtime_metrics rows. The thresholds that depend on time
(window, bucket, warm-up, minimum buckets) are scaled down through settings so seconds of output stand in for
hours; the statistics and classification are the production SQL.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.jobs.runner import discover_jobs, select_jobs
from pipeline.jobs.scheduler import JobScheduler, run_once
from pipeline.normalize.gctrace import GctraceStream
from pipeline.normalize.rows import Rows
from pipeline.report.triage import build_report, render_json
from pipeline.sink import Sink

FLEETSIM = Path(__file__).resolve().parent.parent / "data" / "go" / "fleetsim"
RUN_SECONDS = 7

# instance -> (mode, extra environment, extra flags)
FLEET = {
    "squeeze": ("storm", {"GOGC": "off", "GOMEMLIMIT": "32MiB"}, ["-live", "16"]),
    "gogc1": ("storm", {"GOGC": "1"}, ["-live", "8"]),
    "steady": ("steady", {}, []),
    "leaky": ("leak", {"GOGC": "50"}, []),
    "busy": ("busy", {}, []),
}


def _run_fleet(binary: Path, tmp: Path) -> dict[str, tuple[int, list[str], list[str]]]:
    """Start every member at once; returns instance -> (start ns, stderr lines, stdout lines)."""
    procs = {}
    for name, (mode, env, flags) in FLEET.items():
        err = open(tmp / f"{name}.err", "w")  # noqa: SIM115 - closed below, after the process exits
        out = open(tmp / f"{name}.out", "w")  # noqa: SIM115
        start_ns = time.time_ns()
        proc = subprocess.Popen(
            [str(binary), "-mode", mode, "-dur", f"{RUN_SECONDS}s", *flags],
            env={**os.environ, "GODEBUG": "gctrace=1", **env}, stdout=out, stderr=err,
        )
        procs[name] = (proc, start_ns, err, out)
    result = {}
    for name, (proc, start_ns, err, out) in procs.items():
        assert proc.wait(timeout=RUN_SECONDS + 60) == 0, f"{name} exited with {proc.returncode}"
        err.close()
        out.close()
        result[name] = (start_ns, (tmp / f"{name}.err").read_text().splitlines(),
                        (tmp / f"{name}.out").read_text().splitlines())
    return result


def _ingest(store, service: str, instance: str, start_ns: int, stderr: list[str], stdout: list[str]) -> None:
    rows = Rows()
    now = datetime.now(UTC)
    stream = GctraceStream(service=service, instance=instance, source="file", received_at=now, start_ns=start_ns)
    stream.feed(stderr, rows)
    stream.finish(rows)
    for line in stdout:
        fields = dict(part.split("=", 1) for part in line.split())
        ts = datetime.fromtimestamp(int(fields["ts_ns"]) / 1e9, tz=UTC)
        start = datetime.fromtimestamp(int(fields["start_ns"]) / 1e9, tz=UTC)
        for metric, key, unit in (("go.goroutine.count", "goroutines", "{goroutine}"),
                                  ("go.memory.limit", "memlimit", "By"), ("go.config.gogc", "gogc", "%")):
            rows.append("runtime_metrics", {
                "service": service, "instance": instance, "ts": ts, "metric": metric,
                "value": float(fields[key]), "unit": unit, "source_name": key, "attributes": {},
                "process_start": start, "received_at": now,
            })
    Sink(store).write(rows, token=f"fleetsim/{instance}/{start_ns}")


@pytest.fixture(scope="module")
def fleet_output(build_go, tmp_path_factory) -> dict:
    binary = build_go(FLEETSIM)
    return _run_fleet(binary, tmp_path_factory.mktemp("fleetsim"))


def test_storms_and_leaks_found_on_real_go_output(store, settings, fleet_output) -> None:
    d = settings.detect
    d.window_seconds = 1
    d.sustained_windows = 3
    d.leak_bucket_seconds = 1
    d.leak_min_buckets = 4
    d.leak_warmup_seconds = 1
    d.leak_lookback_seconds = 600
    d.leak_min_relative_growth = 0.2
    for name, (start_ns, stderr, stdout) in fleet_output.items():
        assert any(line.startswith("gc ") for line in stderr), f"{name} printed no gctrace"
        _ingest(store, "sim", name, start_ns, stderr, stdout)
    db = settings.database
    assert store.scalar(f"SELECT uniqExact(instance) FROM {db}.gc_events") == len(FLEET)

    first = min(s for s, _, _ in fleet_output.values())
    since = datetime.fromtimestamp(first / 1e9, tz=UTC).replace(microsecond=0)
    until = since + timedelta(seconds=RUN_SECONDS + 1)
    scheduler = JobScheduler(settings, store)
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["gc_storms", "leak_trends"])
    results = run_once(scheduler, jobs, datetime.now(UTC), since=since.isoformat(), until=until.isoformat())
    assert results and all(r.status == "ok" for r in results), [r.error for r in results if r.error]

    storms = dict(store.rows(
        f"SELECT instance, groupUniqArrayIf(kind, storm = 1) FROM {db}.gc_storms FINAL GROUP BY instance"))
    assert "limit_squeeze" in storms["squeeze"], storms
    assert "misconfiguration" in storms["gogc1"], storms
    assert storms["steady"] == [] and storms["busy"] == [], storms

    leaks = {(i, s) for i, s in store.rows(
        f"SELECT DISTINCT instance, signal FROM {db}.leak_trends FINAL WHERE leaking = 1")}
    assert ("leaky", "goroutines") in leaks, leaks
    assert ("leaky", "heap_live") in leaks, leaks
    assert not {i for i, _ in leaks} & {"busy", "steady"}, leaks
    evaluated = {i for (i,) in store.rows(
        f"SELECT DISTINCT instance FROM {db}.leak_trends FINAL WHERE signal = 'goroutines' AND n_buckets >= 4")}
    assert "busy" in evaluated  # the busy one was judged, not skipped for lack of data

    report = build_report(store, settings, service="sim", since=since)
    subjects = {f.subject for f in report.gc_storms}
    assert {"sim/squeeze", "sim/gogc1"} <= subjects and "sim/steady" not in subjects
    assert {f.subject for f in report.leaks} == {"sim/leaky"}
    assert '"gc_storms"' in render_json(report)
