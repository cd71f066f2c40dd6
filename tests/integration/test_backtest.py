"""The backtest over the whole scenario library, and the user's flow: export a time range of a store, label
it, backtest thresholds from a TOML file. Real embedded ClickHouse, the real jobs."""

from __future__ import annotations

import json
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.backtest.command import backtest_settings, resolve_scenarios, run_backtest
from pipeline.backtest.library import T0, generated, storm_allocation
from pipeline.backtest.scenario import DETECTIONS, dump_toml, load_scenario_dir, table_files
from pipeline.cli import main
from tests.net import VENV_BIN

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1800)  # about 70 s of CPU (docs/benchmarks.md); minutes of wall on a crowded machine
def test_library_passes_every_detection(settings, chdb_dir) -> None:
    """Zero false alarms on healthy scenarios, every sick one found with the right kind (the regression gate)."""
    real = resolve_scenarios([str(Path(__file__).resolve().parent.parent / "data" / "scenarios")])
    assert all(sc.tables.get("gc_events") or table_files(sc) for sc in real)
    # Real Go programs for every storm kind, both leak signals and cancel gaps, as many healthy as sick.
    real_sick = {(lb.detection, lb.kind or lb.signal) for sc in real for lb in sc.labels if lb.sick}
    kinds = ("allocation", "misconfiguration", "limit_squeeze", "leak_driven")
    assert real_sick >= {("gc_storms", k) for k in kinds} | {
        ("leak_trends", "goroutines"), ("leak_trends", "heap_live"), ("cancel_gaps", "")}
    assert sum(sc.healthy for sc in real) >= sum(not sc.healthy for sc in real) >= 7
    library = generated() + real
    report = run_backtest(library, backtest_settings(settings, f"chdb://{chdb_dir}", settings.database))
    assert not report.stats.errors, report.stats.errors[:5]
    failed = [o for o in report.outcomes if not o.passed]
    assert not failed, report.as_table()
    per = {d["detection"]: d for d in report.per_detection()}
    assert set(per) == set(DETECTIONS)
    for d in per.values():
        assert d["precision"] == 1.0 and d["recall"] == 1.0 and d["tp"] >= 2, d
    scored = {o.scenario for o in report.outcomes}
    assert scored == {sc.name for sc in library}  # every scenario was judged on something
    sick = [o for o in report.outcomes if o.sick]
    assert all(len(o.ttd) == o.sick for o in sick)


def _shift(columns: dict[str, list], delta: timedelta) -> dict[str, list]:
    return {k: [v + delta if isinstance(v, datetime) else v for v in vals] for k, vals in columns.items()}


def test_export_label_and_backtest_thresholds_from_toml(settings, store, tmp_path: Path) -> None:
    # A store that recorded an allocation storm on "storm-allocation/i0" (recent, inside the retention).
    recorded = storm_allocation()
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    delta = base - T0
    for table, columns in recorded.tables.items():
        store.insert_columns(table, _shift(columns, delta))
    since, until = base + timedelta(minutes=30), base + timedelta(minutes=50)

    out = tmp_path / "friday-storm"
    rc = main(["backtest", "export", "--clickhouse-dsn", settings.clickhouse_dsn, "--database", settings.database,
               "--service", "storm-allocation", "--since", since.isoformat(), "--until", until.isoformat(),
               "--out", str(out), "--log-level", "WARNING"])
    assert rc == 0
    assert (out / "gc_events.jsonl").stat().st_size > 0
    exported = load_scenario_dir(out)
    assert {(lb.detection, lb.instance, lb.signal) for lb in exported.labels} == {
        ("gc_storms", "calm", ""), ("gc_storms", "i0", ""),
        ("leak_trends", "calm", "heap_live"), ("leak_trends", "i0", "heap_live")}
    assert all(not lb.sick for lb in exported.labels)

    # The user labels what was sick: i0 stormed (allocation) from 40 minutes in.
    for label in exported.labels:
        if label.detection == "gc_storms" and label.instance == "i0":
            label.sick, label.kind = True, "allocation"
            label.onset, label.fair_from = base + timedelta(minutes=40), base + timedelta(minutes=42)
    (out / "scenario.toml").write_text(dump_toml(exported), encoding="utf-8")
    assert tomllib.loads((out / "scenario.toml").read_text())["labels"]

    def backtest(thresholds: str) -> tuple[int, dict]:
        config = tmp_path / "thresholds.toml"
        config.write_text(thresholds, encoding="utf-8")
        proc = subprocess.run([str(VENV_BIN / "fleetwatch"), "backtest", str(out), "--config", str(config),
                               "--format", "json", "--log-level", "WARNING"],
                              capture_output=True, text=True, timeout=600)
        assert proc.stdout, proc.stderr[-2000:]
        return proc.returncode, json.loads(proc.stdout)

    rc, result = backtest("[detect]\ngc_cpu_warn = 0.25\n")
    gc = next(d for d in result["detections"] if d["detection"] == "gc_storms")
    assert rc == 0 and result["passed"], result
    assert (gc["tp"], gc["fp"], gc["fn"], gc["precision"], gc["recall"]) == (1, 0, 0, 1.0, 1.0)
    assert gc["median_ttd"] == "3m"

    # Thresholds too lax to see it: the backtest says so before they are deployed.
    rc, result = backtest("[detect]\ngc_cpu_warn = 0.9\nassist_share_warn = 0.9\ngc_rate_warn_per_s = 50\n")
    gc = next(d for d in result["detections"] if d["detection"] == "gc_storms")
    assert rc == 1 and not result["passed"]
    assert (gc["tp"], gc["fn"], gc["recall"]) == (0, 1, 0.0)


def test_recorded_exports_replay_deferred_with_the_rows_of_step_by_step(settings) -> None:
    """Recorded scenarios (exported runtime_metrics, arrivals within the lag) keep the leak-trend steps
    deferred, and deferred steps write exactly what one run per step writes."""
    from pipeline.backtest.replay import replay
    from pipeline.store.client import Store

    root = Path(__file__).resolve().parent.parent / "data" / "scenarios"
    found, runs = {}, {}
    for defer in (False, True):
        scenarios = [load_scenario_dir(root / name) for name in ("real-goroutine-leak", "real-periodic-load")]
        mine = backtest_settings(settings, settings.clickhouse_dsn, f"{settings.database}_{int(defer)}")
        store = Store.from_settings(mine)
        try:
            stats = replay(scenarios, mine, store, defer=defer)
            assert not stats.errors, stats.errors[:3]
            runs[defer] = stats.runs["leak_trends"]
            found[defer] = store.dicts(f"SELECT * EXCEPT (run_id, computed_at) FROM {mine.database}.leak_trends "
                                       "FINAL ORDER BY service, instance, signal, window_start")
        finally:
            store.command(f"DROP DATABASE IF EXISTS {mine.database} SYNC")
            store.close()
    assert runs[True] < runs[False], runs
    assert found[True] and len(found[True]) == len(found[False])
    assert [r for r in found[True] if r["leaking"]] and found[True] == found[False]
