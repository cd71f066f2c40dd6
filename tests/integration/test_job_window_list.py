"""A job that takes a window list (`window_starts` / `window_ends`) computes, in one statement, exactly what
each window computes when run on its own, and leak-trend steps evaluated together as of their clocks give
the rows of one run per step: the backtest's batching must not change a single verdict."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import pytest

from pipeline.backtest.library import (
    T0,
    storm_across_restart,
    storm_allocation,
    storm_limit_squeeze,
    storm_misconfiguration,
)
from pipeline.backtest.scenario import Scenario
from pipeline.jobs.runner import discover_jobs, execute_job, takes_window_list
from pipeline.jobs.windows import Window
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings, migrate

pytestmark = pytest.mark.integration


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):  # sums in another order may differ in the last bit
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _gc_case() -> tuple[list[Scenario], range, str]:
    # calm, the storms' onset at 0:40, and the restart at 1:00
    return ([storm_allocation(), storm_limit_squeeze(), storm_misconfiguration(), storm_across_restart()],
            range(36, 66), "gc_storms")


@pytest.mark.parametrize(("job_name", "case"), [("gc_storms", _gc_case)])
def test_a_window_list_equals_each_window_alone(settings, db_name, job_name: str,
                                                case: Callable[[], tuple[list[Scenario], range, str]]) -> None:
    scenarios, minutes, table = case()
    windows = [Window(T0 + timedelta(minutes=k), T0 + timedelta(minutes=k + 1)) for k in minutes]
    found: dict[str, list[dict[str, object]]] = {}
    for mode in ("each", "list"):
        mine = settings.model_copy(update={"database": f"{db_name}_{mode}", "retention_days": 3650})
        ctx = context_from_settings(mine)
        store = Store.from_settings(mine)
        try:
            migrate(store, mine.sql_dir, ctx)
            for sc in scenarios:
                for name, cols in sc.tables.items():
                    store.insert_columns(name, cols)
            job = next(j for j in discover_jobs(mine.sql_dir) if j.name == job_name)
            assert takes_window_list(job, ctx)
            if mode == "each":
                runs = [execute_job(store, job, w, mine.detect, ctx) for w in windows]
            else:
                runs = [execute_job(store, job, Window(windows[0].start, windows[-1].end), mine.detect, ctx,
                                    windows=windows)]
            assert all(r.status == "ok" for r in runs), [r.error for r in runs if r.status != "ok"][:2]
            found[mode] = {t: store.dicts(f"SELECT * EXCEPT (run_id, computed_at) FROM {mine.database}.{t} FINAL "
                                          "ORDER BY ALL")
                           for t in {table, job_name}}
        finally:
            store.command(f"DROP DATABASE IF EXISTS {mine.database} SYNC")
            store.close()
    for t in {table, job_name}:
        each, listed = found["each"][t], found["list"][t]
        assert len(each) == len(listed) and len(each) > 20, (t, len(each), len(listed))
        for a, b in zip(each, listed, strict=True):
            assert a.keys() == b.keys()
            assert all(_same(a[k], b[k]) for k in a), {k: (a[k], b[k]) for k in a if not _same(a[k], b[k])}
    kinds = {r["kind"] for r in found["list"]["gc_storms"] if r["storm"]}
    assert kinds >= {"allocation", "limit_squeeze", "misconfiguration"}


def test_a_replay_with_deferred_leak_steps_writes_what_step_by_step_writes(settings, db_name) -> None:
    """The leak-trend steps evaluated together, each as of its clock, give the rows of one run per step: late
    data, gaps and a heap leak behind a GC storm (gc_storms reads the leak verdicts in between)."""
    from pipeline.backtest.command import backtest_settings
    from pipeline.backtest.library import fast_leak, gaps, late_data, storm_leak_driven
    from pipeline.backtest.replay import replay

    found: dict[bool, dict[str, list[dict[str, object]]]] = {}
    runs: dict[bool, dict[str, int]] = {}
    for defer in (False, True):
        mine = backtest_settings(settings, settings.clickhouse_dsn, f"{db_name}_{int(defer)}")
        store = Store.from_settings(mine)
        try:
            stats = replay([fast_leak(), gaps(), late_data(), storm_leak_driven()], mine, store,
                           defer=defer)
            assert not stats.errors, stats.errors[:3]
            runs[defer] = stats.runs
            found[defer] = {table: store.dicts(f"SELECT * EXCEPT (run_id, computed_at) FROM {mine.database}.{table} "
                                               "FINAL ORDER BY service, instance, window_start"
                                               + (", signal" if table == "leak_trends" else ""))
                            for table in ("leak_trends", "gc_storms")}
        finally:
            store.command(f"DROP DATABASE IF EXISTS {mine.database} SYNC")
            store.close()
    assert runs[True]["leak_trends"] < runs[False]["leak_trends"] / 4, runs
    for table in ("leak_trends", "gc_storms"):
        alone, together = found[False][table], found[True][table]
        assert len(alone) == len(together) and alone, table
        for a, b in zip(alone, together, strict=True):
            assert all(_same(a[k], b[k]) for k in a), (table, {k: (a[k], b[k]) for k in a if not _same(a[k], b[k])})
    assert any(r["leaking"] for r in found[True]["leak_trends"])
    assert any(r["kind"] == "leak_driven" for r in found[True]["gc_storms"] if r["storm"])
