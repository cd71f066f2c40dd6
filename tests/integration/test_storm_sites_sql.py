"""The storm_sites job on seeded allocation profiles: rates per site from cumulative counters, restarts
(announced by a new process_start, or only by counters that went down) never give negative or huge rates,
and only instances in a storm get sites."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.test_leak_sites_sql import run_job
from tests.profile_rows import EPOCH, Alloc, Frame, ProfileSeed

W = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOT = Frame("main.buildReport", "/app/report.go", 77)
WARM = Frame("main.encode", "/app/codec.go", 31)
COLD = Frame("main.logLine", "/app/log.go", 9)
RATES = {HOT: (10_000_000, 1000), WARM: (2_000_000, 4000), COLD: (500_000, 50)}  # bytes/s, objects/s
RESTART_AT = W - timedelta(seconds=95)


def _seed_instance(store, instance: str, *, announce_restart: bool) -> None:
    seed = ProfileSeed(store, service="api", instance=instance)
    first_start, second_start = W - timedelta(seconds=1000), RESTART_AT
    for k in range(36):
        ts = W - timedelta(seconds=300) + timedelta(seconds=10 * k)
        start = first_start if ts < RESTART_AT else second_start
        up = (ts - start).total_seconds()
        seed.allocs(ts, [Alloc(f, int(b * up), int(o * up)) for f, (b, o) in RATES.items()],
                    process_start=start if announce_restart else EPOCH)


def _storm(store, instance: str, storm: int) -> None:
    store.insert_columns("gc_storms", {
        "service": ["api"], "instance": [instance], "window_start": [W], "window_end": [W + timedelta(minutes=1)],
        "storm": [storm], "severity": ["critical" if storm else "none"], "kind": ["allocation" if storm else ""],
        "run_id": ["seed"],
    })


def test_rates_across_restarts_and_only_storms(store, settings) -> None:
    for instance, announce in (("announced", True), ("silent", False), ("calm", True)):
        _seed_instance(store, instance, announce_restart=announce)
    _storm(store, "announced", 1)
    _storm(store, "silent", 1)
    _storm(store, "calm", 0)
    run_job(store, settings, "storm_sites", W + timedelta(minutes=1))

    res = store.query(f"SELECT * FROM {settings.database}.storm_sites FINAL ORDER BY instance, rank")
    rows = [dict(zip(res.column_names, r, strict=True)) for r in res.result_rows]
    assert {r["instance"] for r in rows} == {"announced", "silent"}, rows
    for instance in ("announced", "silent"):
        mine = [r for r in rows if r["instance"] == instance]
        assert [(r["function"], r["file"], r["line"]) for r in mine] == [
            (f.function, f.file, f.line) for f in (HOT, WARM, COLD)]
        for r in mine:
            bytes_s, objects_s = RATES[Frame(r["function"], r["file"], r["line"])]
            # exact: every pair inside one process gives the true rate; the pair across the restart is dropped
            assert abs(r["bytes_per_sec"] - bytes_s) < 1e-6 * bytes_s, r
            assert abs(r["objects_per_sec"] - objects_s) < 1e-6 * objects_s, r
            assert r["pairs"] == 34 and abs(r["span_seconds"] - 340) < 1e-9, r
        assert abs(mine[0]["share"] - 10 / 12.5) < 1e-9
        assert abs(mine[0]["instance_bytes_per_sec"] - 12_500_000) < 1e-3


def test_restart_pairs_never_give_negative_or_huge_rates(store, settings) -> None:
    """The window right after each restart: whatever pairs remain, every rate stays within the true range."""
    for instance, announce in (("announced", True), ("silent", False)):
        _seed_instance(store, instance, announce_restart=announce)
        _storm(store, instance, 1)
    settings.detect.storm_sites_lookback_seconds = 20  # only the pairs right around the restart
    for end in (RESTART_AT + timedelta(seconds=s) for s in (5, 15, 25)):
        store.command(f"TRUNCATE TABLE {settings.database}.gc_storms")
        for instance in ("announced", "silent"):
            store.insert_columns("gc_storms", {
                "service": ["api"], "instance": [instance], "window_start": [end - timedelta(minutes=1)],
                "window_end": [end], "storm": [1], "run_id": ["seed"]})
        run_job(store, settings, "storm_sites", end)
    worst = store.rows(
        f"SELECT min(bytes_per_sec), max(bytes_per_sec), min(objects_per_sec), max(share) "
        f"FROM {settings.database}.storm_sites")
    low, high, low_objects, share = worst[0]
    assert low >= 500_000 * (1 - 1e-9) and high <= 10_000_000 * (1 + 1e-9), worst
    assert low_objects >= 0 and share <= 1.0


def test_allocs_and_heap_of_one_process_are_not_counted_twice(store, settings) -> None:
    """Both profiles carry the same cumulative counters: with allocs scraped, heap profiles are left out."""
    seed = ProfileSeed(store, service="api", instance="both")
    start = W - timedelta(seconds=1000)
    for k in range(36):
        ts = W - timedelta(seconds=300) + timedelta(seconds=10 * k)
        up = (ts - start).total_seconds()
        allocs = [Alloc(f, int(b * up), int(o * up)) for f, (b, o) in RATES.items()]
        seed.allocs(ts, allocs, process_start=start)
        seed.allocs(ts + timedelta(seconds=1), allocs, process_start=start, profile_type="heap")
    _storm(store, "both", 1)
    run_job(store, settings, "storm_sites", W + timedelta(minutes=1))
    rows = store.rows(f"SELECT function, bytes_per_sec FROM {settings.database}.storm_sites FINAL ORDER BY rank")
    assert [r[0] for r in rows] == [f.function for f in (HOT, WARM, COLD)], rows
    assert abs(rows[0][1] - RATES[HOT][0]) < 1e-6 * RATES[HOT][0], rows
