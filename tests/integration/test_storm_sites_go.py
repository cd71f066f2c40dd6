"""A real GC storm attributed to its allocation site: Go 1.27 under GODEBUG=gctrace=1, with net/http/pprof.

tests/data/go/profiled -mode allocstorm allocates from three functions: buildReport (32 KiB per call, the
storm), encode (about a sixteenth of that) and logLine (a trickle). Its gctrace goes through the gctrace
normalizer into gc_events; its allocs profile, scraped every half second by the scraper of `fleetwatch run`, into
heap_samples. gc_storms and storm_sites then run over the run's windows (window length scaled down to a
second), and triage names buildReport first, by function and file:line, under the storm.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from pipeline.config import ScrapeTarget
from pipeline.jobs.runner import discover_jobs, select_jobs
from pipeline.jobs.scheduler import JobScheduler, run_once
from pipeline.normalize.gctrace import GctraceStream
from pipeline.normalize.rows import Rows
from pipeline.report.triage import build_report, render_text
from pipeline.sink import Sink
from pipeline.sources.scrape import Scraper
from tests.integration.test_profile_detections_go import PROGRAM, SOURCE, site_line, start, stop
from tests.net import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
RUN_SECONDS = 8


def test_storm_finding_names_the_allocating_function(store, settings, build_go, tmp_path) -> None:
    binary = build_go(PROGRAM)
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w") as err:
        target = start(binary, "allocstorm", "storm-0", env={"GODEBUG": "gctrace=1", "GOMAXPROCS": "2"},
                       stderr=err)
        start_ns = time.time_ns()
        scrape = [ScrapeTarget(url=target.base, service="profiled", instance="storm-0", interval_seconds=0.5,
                               profiles=["allocs"])]
        scraper = Scraper(settings.model_copy(update={"scrape": scrape}), Sink(store)).start()
        try:
            wait_for(lambda: (store.scalar(f"SELECT count() FROM {store.database}.profile_snapshots "
                                           "WHERE profile_type = 'allocs'") or 0) >= 2 * RUN_SECONDS,
                     120, "allocs profiles")
        finally:
            scraper.stop()
            stop([target])
    lines = stderr_path.read_text(errors="replace").splitlines()
    assert sum(line.startswith("gc ") for line in lines) > 50, "no storm in the gctrace"
    rows = Rows()
    stream = GctraceStream(service="profiled", instance="storm-0", source="file", received_at=datetime.now(UTC),
                           start_ns=start_ns)
    stream.feed(lines, rows)
    stream.finish(rows)
    Sink(store).write(rows, token=f"gctrace/{start_ns}")

    d = settings.detect
    d.window_seconds = 1
    d.sustained_windows = 3
    d.storm_sites_lookback_seconds = 2
    d.alloc_min_interval_seconds = 0.2  # profiles half a second apart stand for a minute apart
    since = datetime.fromtimestamp(start_ns / 1e9, tz=UTC).replace(microsecond=0)
    until = since + timedelta(seconds=RUN_SECONDS + 1)
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["gc_storms", "storm_sites"])
    results = run_once(JobScheduler(settings, store), jobs, datetime.now(UTC), since=since.isoformat(),
                       until=until.isoformat())
    assert results and all(r.status == "ok" for r in results), [r.error for r in results if r.error]

    db = settings.database
    assert store.scalar(f"SELECT countIf(storm) FROM {db}.gc_storms FINAL") >= 1, store.rows(
        f"SELECT window_start, hot, gc_count, gc_per_s, gc_cpu_fraction, assist_share, live_vs_goal, reason "
        f"FROM {db}.gc_storms FINAL ORDER BY window_start")
    tops = store.rows(f"SELECT function, file, line, share FROM {db}.storm_sites FINAL WHERE rank = 1")
    assert tops and all(t[:3] == ("main.buildReport", str(SOURCE), site_line("storm")) for t in tops), tops
    assert all(0.5 < t[3] <= 1.0 for t in tops), tops
    rates = store.rows(f"SELECT min(bytes_per_sec), max(bytes_per_sec) FROM {db}.storm_sites")
    assert rates[0][0] > 0 and rates[0][1] < 1e12, rates

    report = build_report(store, settings, service="profiled", since=since - timedelta(minutes=1))
    storm = [f for f in report.gc_storms if f.subject == "profiled/storm-0"]
    assert storm, render_text(report)
    sites = storm[0].evidence["alloc_sites"]
    assert sites[0]["function"] == "main.buildReport"
    assert sites[0]["file:line"] == f"{SOURCE}:{site_line('storm')}"
    assert len(sites) <= 3
    dug = store.rows(sites[0]["dig"])  # the dig query runs as printed: the site's cumulative counters
    assert len(dug) >= 3 and [r[2] for r in dug] == sorted(r[2] for r in dug), dug
    text = render_text(report)
    assert f"alloc site 1: main.buildReport {SOURCE}:{site_line('storm')}" in text, text


def test_real_restart_never_gives_negative_or_huge_rates(store, settings, build_go) -> None:
    """The same instance, killed and started again on the same address while the scraper keeps pulling its
    allocs profile: the counters fall back to zero (the profile does not say when the process started), and
    no window across the restart gets a negative, absurd or over-100 % rate."""
    binary = build_go(PROGRAM)
    port = free_port()
    scrape = [ScrapeTarget(url=f"http://127.0.0.1:{port}", service="profiled", instance="restarted",
                           interval_seconds=0.5, profiles=["allocs"])]
    pprof = settings.pprof.model_copy(update={"scrape_backoff_max_seconds": 0.5})
    scraper = Scraper(settings.model_copy(update={"scrape": scrape, "pprof": pprof}), Sink(store)).start()
    db = store.database
    snapshots = f"SELECT count() FROM {db}.profile_snapshots WHERE profile_type = 'allocs'"
    first_ns = time.time_ns()
    try:
        for _ in range(2):
            target = start(binary, "allocstorm", "restarted", addr=f"127.0.0.1:{port}")
            before = store.scalar(snapshots) or 0
            try:
                wait_for(lambda before=before: (store.scalar(snapshots) or 0) >= before + 8, 120, "allocs profiles")
            finally:
                stop([target])
    finally:
        scraper.stop()
    totals = [r[0] for r in store.rows(
        f"SELECT sum(alloc_space) AS s FROM {db}.heap_samples GROUP BY ts ORDER BY ts")]
    assert any(b < a for a, b in pairwise(totals)), "the counters never fell back"

    settings.detect.window_seconds = 1
    settings.detect.storm_sites_lookback_seconds = 2
    settings.detect.alloc_min_interval_seconds = 0.2
    since = datetime.fromtimestamp(first_ns / 1e9, tz=UTC).replace(microsecond=0)
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    windows = int((until - since).total_seconds())
    store.insert_columns("gc_storms", {  # every window a storm, so every window is attributed
        "service": ["profiled"] * windows, "instance": ["restarted"] * windows,
        "window_start": [since + timedelta(seconds=i) for i in range(windows)],
        "window_end": [since + timedelta(seconds=i + 1) for i in range(windows)],
        "storm": [1] * windows, "run_id": ["seed"] * windows})
    jobs = select_jobs(discover_jobs(settings.sql_dir), ["storm_sites"])
    results = run_once(JobScheduler(settings, store), jobs, datetime.now(UTC), since=since.isoformat(),
                       until=until.isoformat())
    assert results and all(r.status == "ok" for r in results), [r.error for r in results if r.error]
    low, high, share, windows_with_sites = store.rows(
        f"SELECT min(bytes_per_sec), max(instance_bytes_per_sec), max(share), uniqExact(window_start) "
        f"FROM {db}.storm_sites FINAL")[0]
    # bounded by what two goroutines can allocate on this machine (a few GB/s), never a restart artefact
    assert low > 0 and high < 20e9 and share <= 1.0, (low, high, share)
    assert windows_with_sites >= 4
    assert {r[0] for r in store.rows(f"SELECT function FROM {db}.storm_sites FINAL WHERE rank = 1")} == {
        "main.buildReport"}
