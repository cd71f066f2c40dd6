"""The leak_sites job on seeded goroutine profiles: each kind of evidence, and load that drains is not a leak.

One hour of goroutine snapshots a minute apart (the production defaults: 1 h lookback, 5 min buckets) for one
instance with five sites: a leak that grows, a leak only the goroutineleak profile reports (constant count), a
pool that follows a periodic load, a site whose goroutines have waited long while growing slowly, and an idle
site that waits long without growing.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from pipeline.jobs.runner import discover_jobs, execute_job, select_jobs
from pipeline.jobs.windows import Window
from pipeline.store.migrate import context_from_settings
from tests.profile_rows import Frame, ProfileSeed, Site

BASE = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
START = BASE - timedelta(minutes=10)
MAIN = Frame("main.main", "/app/main.go", 20)
LEAK = Frame("main.fetchAll.func1", "/app/fetch.go", 41)
LEAK_PROFILE = Frame("main.startWatcher.func1", "/app/watch.go", 17)
POOL = Frame("main.worker", "/app/pool.go", 58)
LONG_WAIT = Frame("main.subscribe.func2", "/app/sub.go", 93)
IDLE = Frame("main.listen", "/app/listen.go", 12)


def _sites(minute: int) -> list[Site]:
    pool = 10 + round(40 * abs(math.sin(math.pi * minute / 10)))  # period 10 min: troughs every bucket pair
    return [
        Site(LEAK, MAIN, 2 + minute, "chan send"),
        Site(LEAK_PROFILE, MAIN, 3, "chan receive"),
        Site(POOL, MAIN, pool, "select"),
        Site(LONG_WAIT, MAIN, 6 + minute // 30, "chan receive", wait_minutes=30 + minute),
        Site(IDLE, None, 20, "IO wait", wait_minutes=60 + minute),
    ]


def seed(store, *, leak_profile: bool = True) -> ProfileSeed:
    s = ProfileSeed(store)
    for minute in range(60):
        ts = BASE + timedelta(minutes=minute)
        s.goroutines(ts, _sites(minute), process_start=START)
        if leak_profile and minute % 5 == 4:
            s.goroutines(ts + timedelta(seconds=1), [Site(LEAK_PROFILE, MAIN, 3)], profile_type="goroutineleak",
                         process_start=START)
    return s


def run_job(store, settings, name: str, end: datetime):
    job = select_jobs(discover_jobs(settings.sql_dir), [name])[0]
    window = Window(end - timedelta(seconds=settings.detect.window_seconds), end)
    result = execute_job(store, job, window, settings.detect, context_from_settings(settings))
    assert result.status == "ok", result.error
    return result


def _sites_by_function(store, db: str) -> dict[str, dict]:
    res = store.query(f"SELECT * FROM {db}.leak_sites FINAL")
    return {r["function"]: r for r in (dict(zip(res.column_names, row, strict=True)) for row in res.result_rows)}


def test_each_kind_of_evidence_and_the_pool_is_clean(store, settings) -> None:
    seed(store)
    run_job(store, settings, "leak_sites", BASE + timedelta(minutes=60))
    sites = _sites_by_function(store, settings.database)

    leak = sites[LEAK.function]
    assert leak["leaking"] == 1 and "growing_site" in leak["evidence"], leak
    assert (leak["file"], leak["line"]) == (LEAK.file, LEAK.line)
    assert leak["created_by"] == f"{MAIN.function} {MAIN.file}:{MAIN.line}"
    assert leak["wait_reason"] == "chan send" and leak["goroutines"] == 61
    assert 50 <= leak["growth_per_hour"] <= 70, leak["growth_per_hour"]  # one goroutine a minute
    assert f"{LEAK.function} {LEAK.file}:{LEAK.line}" in leak["example_stack"]

    proven = sites[LEAK_PROFILE.function]
    assert proven["leaking"] == 1 and proven["evidence"] == ["leak_profile"], proven
    assert proven["severity"] == "critical" and proven["leaked_goroutines"] == 3

    slow = sites[LONG_WAIT.function]
    assert slow["leaking"] == 1 and slow["evidence"] == ["long_wait"], slow
    assert slow["oldest_wait_minutes"] == 89

    for clean in (POOL, IDLE):
        row = sites[clean.function]
        assert row["leaking"] == 0 and row["evidence"] == [] and row["severity"] == "none", row
    assert sites[POOL.function]["n_snapshots"] == 60


def test_rerun_replaces_and_a_quiet_instance_is_not_evaluated(store, settings) -> None:
    seed(store, leak_profile=False)
    end = BASE + timedelta(minutes=60)
    run_job(store, settings, "leak_sites", end)
    run_job(store, settings, "leak_sites", end)
    db = settings.database
    assert store.scalar(f"SELECT count() FROM {db}.leak_sites FINAL") == 4  # LEAK_PROFILE is 3 < 5
    assert store.scalar(f"SELECT countIf(leaking) FROM {db}.leak_sites FINAL") == 2
    # an hour after the last profile the instance no longer reports: nothing evaluated, nothing claimed
    run_job(store, settings, "leak_sites", end + timedelta(hours=1))
    assert store.scalar(
        f"SELECT count() FROM {db}.leak_sites WHERE window_end = {{e:DateTime64(3, 'UTC')}}",
        {"e": end + timedelta(hours=1)}) == 0


def test_restart_starts_a_new_series(store, settings) -> None:
    """A leak in the previous incarnation is not carried over: after the restart the site starts again."""
    seed(store, leak_profile=False)
    s = ProfileSeed(store)
    restart = BASE + timedelta(minutes=61)
    for minute in range(62, 75):
        s.goroutines(BASE + timedelta(minutes=minute), [Site(LEAK, MAIN, 2, "chan send")], process_start=restart)
    run_job(store, settings, "leak_sites", BASE + timedelta(minutes=75))
    sites = _sites_by_function(store, settings.database)
    assert set(sites) == set(), sites  # 2 goroutines < leak_site_min_goroutines, no other site since restart


def test_leak_trends_defers_to_sites_that_drain(store, settings) -> None:
    """Two instances with the same rising goroutine count: where profiles show only draining sites, the count
    trend is load; where profiles show a growing site, or where no profile exists, it stays a leak."""
    end = BASE + timedelta(minutes=120)
    metrics: dict[str, list] = {k: [] for k in ("service", "instance", "ts", "metric", "value", "unit")}
    for instance in ("profiled-busy", "profiled-leak", "counts-only"):
        for minute in range(120):
            for k, v in (("service", "svc"), ("instance", instance), ("ts", BASE + timedelta(minutes=minute)),
                         ("metric", "go.goroutine.count"), ("value", 100.0 + 2 * minute), ("unit", "{goroutine}")):
                metrics[k].append(v)
    store.insert_columns("runtime_metrics", metrics)
    busy = ProfileSeed(store, instance="profiled-busy")
    leaking = ProfileSeed(store, instance="profiled-leak")
    for minute in range(60, 120):
        ts = BASE + timedelta(minutes=minute)
        pool = 10 + round(40 * abs(math.sin(math.pi * minute / 10)))
        busy.goroutines(ts, [Site(POOL, MAIN, pool, "select")])
        leaking.goroutines(ts, [Site(POOL, MAIN, pool, "select"), Site(LEAK, MAIN, minute, "chan send")])
    run_job(store, settings, "leak_sites", end)
    run_job(store, settings, "leak_trends", end)
    verdicts = dict(store.rows(
        f"SELECT instance, leaking FROM {settings.database}.leak_trends FINAL WHERE signal = 'goroutines'"))
    assert verdicts == {"profiled-busy": 0, "profiled-leak": 1, "counts-only": 1}, verdicts


def test_triage_names_every_leaking_site(store, settings) -> None:
    """No goroutine-count trend here: the sites alone make the finding, each named with its dig query."""
    from pipeline.report.triage import build_report, render_text

    seed(store)
    run_job(store, settings, "leak_sites", BASE + timedelta(minutes=60))
    report = build_report(store, settings, service="svc", since=BASE)
    assert [f.subject for f in report.leaks] == ["svc/i-0"], report.leaks
    finding = report.leaks[0]
    assert finding.severity == "critical"
    named = [(s["function"], s["file:line"]) for s in finding.evidence["sites"]]
    assert sorted(named) == sorted((f.function, f"{f.file}:{f.line}") for f in (LEAK, LEAK_PROFILE, LONG_WAIT))
    text = render_text(report)
    assert (f"site: {LEAK.function} {LEAK.file}:{LEAK.line}, created by {MAIN.function} {MAIN.file}:{MAIN.line}, "
            "chan send, 61 goroutines") in text, text
    assert text.count("  dig: ") == 1 + 3, text  # the finding's, then one per site
    for site in finding.evidence["sites"]:
        assert store.rows(site["dig"]), site["dig"]  # each dig query runs as printed and finds the site
