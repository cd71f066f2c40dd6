"""`fleetwatch backtest`: replay labelled scenarios through the jobs and report precision, recall and time
to detect; `fleetwatch backtest export`: write a time range of a store as a scenario to label.

The replay always uses a fresh embedded store in a temporary directory (never the configured one), with the
detection thresholds of the given settings, so `--config thresholds.toml` shows what new thresholds would
have found before they are deployed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.backtest.library import GENERATORS, generated
from pipeline.backtest.replay import ReplayStats, replay
from pipeline.backtest.scenario import DETECTIONS, INPUT_TABLES, Label, Scenario, dump_toml, load_scenario_dir
from pipeline.backtest.score import Outcome, read_flags, score
from pipeline.config import Settings
from pipeline.jobs.windows import fmt_time, parse_time
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import context_from_settings

BACKTEST_DATABASE = "fleetwatch_backtest"
# Generated scenarios sit in November 2026 and exported ones anywhere: keep ten years of rows (a TTL much
# further out would overflow DateTime and expire every row at once).
BACKTEST_RETENTION_DAYS = 3650


@dataclass
class Report:
    outcomes: list[Outcome]
    stats: ReplayStats
    scenarios: list[Scenario]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes) and not self.stats.errors

    def per_detection(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for detection in DETECTIONS:
            rows = [o for o in self.outcomes if o.detection == detection]
            if not rows:
                continue
            tp, fp, fn = (sum(getattr(o, k) for o in rows) for k in ("tp", "fp", "fn"))
            ttd = [t for o in rows for t in o.ttd]
            out.append({
                "detection": detection, "sick": sum(o.sick for o in rows), "healthy": sum(o.healthy for o in rows),
                "tp": tp, "fp": fp, "fn": fn,
                "precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
                "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0,
                "median_ttd": _fmt_td(statistics.median(ttd)) if ttd else "",
                "max_ttd": _fmt_td(max(ttd)) if ttd else "",
            })
        return out

    def per_scenario(self) -> list[dict[str, object]]:
        kinds = {sc.name: sc for sc in self.scenarios}
        return [{
            "scenario": o.scenario, "detection": o.detection,
            "expected": "sick" if o.sick else "healthy",
            "kind": ",".join(sorted({lb.kind for lb in kinds[o.scenario].labels
                                     if lb.detection == o.detection and lb.sick and lb.kind})),
            "result": "pass" if o.passed else "FAIL", "tp": o.tp, "fp": o.fp, "fn": o.fn,
            "ttd": ", ".join(_fmt_td(t) for t in o.ttd), "notes": "; ".join(o.notes),
        } for o in self.outcomes]

    def as_json(self) -> str:
        return json.dumps({"passed": self.passed, "detections": self.per_detection(),
                           "scenarios": self.per_scenario(), "job_runs": self.stats.runs,
                           "job_windows": self.stats.windows,
                           "errors": self.stats.errors, "rows": self.stats.rows,
                           "seconds": round(self.stats.seconds, 1)}, indent=2)

    def as_table(self) -> str:
        lines = ["| detection | sick | healthy | TP | FP | FN | precision | recall | median TTD | max TTD |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for d in self.per_detection():
            lines.append("| {detection} | {sick} | {healthy} | {tp} | {fp} | {fn} | {precision:.2f} | {recall:.2f} "
                         "| {median_ttd} | {max_ttd} |".format(**d))
        lines += ["", "| scenario | detection | expected | result | time to detect | notes |",
                  "|---|---|---|---|---|---|"]
        for s in self.per_scenario():
            expected = f"{s['expected']} ({s['kind']})" if s["kind"] else s["expected"]
            lines.append(f"| {s['scenario']} | {s['detection']} | {expected} | {s['result']} | {s['ttd']} "
                         f"| {s['notes']} |")
        runs = ", ".join(f"{k} {self.stats.windows.get(k, v)} windows in {v} runs"
                         for k, v in sorted(self.stats.runs.items()))
        lines += ["", f"{len(self.scenarios)} scenarios, {self.stats.rows} rows, jobs: {runs}."]
        lines += [f"error: {e}" for e in self.stats.errors[:20]]
        return "\n".join(lines)


def _fmt_td(value: timedelta) -> str:
    minutes = round(value.total_seconds() / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def backtest_settings(settings: Settings, dsn: str, database: str = BACKTEST_DATABASE) -> Settings:
    """The user's settings (thresholds included) pointed at a scratch store that keeps rows of any age."""
    return settings.model_copy(update={"clickhouse_dsn": dsn, "database": database, "cluster": "",
                                       "retention_days": BACKTEST_RETENTION_DAYS})


def run_backtest(scenarios: list[Scenario], settings: Settings, *, step_seconds: int = 1800) -> Report:
    """Replay `scenarios` into the (fresh) database of `settings`, then score the jobs' findings."""
    store = Store.from_settings(settings)
    try:
        stats = replay(scenarios, settings, store, step_seconds=step_seconds)
        outcomes = score(scenarios, read_flags(store, settings))
    finally:
        store.close()
    return Report(outcomes, stats, scenarios)


def resolve_scenarios(names: list[str]) -> list[Scenario]:
    """Library names (`fast-leak`), `library` (every generated scenario, so one command can run them with
    directories), scenario directories, or directories of scenario directories."""
    if not names:
        return generated()
    by_name = {make.__name__.replace("_", "-"): make for make in GENERATORS}
    found: list[Scenario] = []
    for name in names:
        path = Path(name)
        if name == "library" and not path.exists():
            found.extend(generated())
        elif (path / "scenario.toml").is_file():
            found.append(load_scenario_dir(path))
        elif path.is_dir():
            subdirs = sorted(p for p in path.iterdir() if (p / "scenario.toml").is_file())
            if not subdirs:
                raise ValueError(f"{path}: no scenario.toml in it or in its subdirectories")
            found.extend(load_scenario_dir(p) for p in subdirs)
        else:
            matches = [make() for key, make in by_name.items() if key == name]
            if not matches:
                raise ValueError(f"unknown scenario {name!r}; the library has: {', '.join(sorted(by_name))}")
            found.extend(matches)
    return found


def backtest_command(settings: Settings, args: argparse.Namespace) -> int:
    names: list[str] = list(args.scenarios or [])
    if names[:1] == ["export"]:
        return export_command(settings, args)
    scenarios = resolve_scenarios(names)
    scratch = Path(tempfile.mkdtemp(prefix="fleetwatch-backtest-"))
    try:
        report = run_backtest(scenarios, backtest_settings(settings, f"chdb://{scratch}"), step_seconds=args.step)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(report.as_json() if args.format == "json" else report.as_table())
    return 0 if report.passed else 1


# -- export ------------------------------------------------------------------------------------------------
def export_scenario(reader: Store, settings: Settings, out: Path, *, name: str, services: list[str],
                    since: datetime, until: datetime) -> Scenario:
    """Write the input rows of `services` in [since, until) to `out` as a scenario, every subject labelled
    healthy: the user marks what was sick (sick = true, kind, onset, fair_from) before backtesting it."""
    ctx = context_from_settings(settings)
    params = {"services": services, "since": fmt_time(since), "until": fmt_time(until)}
    out.mkdir(parents=True, exist_ok=True)
    json_settings = {"output_format_json_quote_64bit_integers": 0, "output_format_json_quote_denormals": 1}
    for table in INPUT_TABLES:
        data = reader.export_raw(load_statement(settings.sql_dir, f"queries/backtest_export_{table}.sql", ctx),
                                 params, settings=json_settings)
        if data.strip():
            (out / f"{table}.jsonl").write_bytes(data)
    subjects = reader.query(load_statement(settings.sql_dir, "queries/backtest_export_subjects.sql", ctx), params)
    names = list(subjects.column_names)
    labels = []
    for values in subjects.result_rows:
        row = dict(zip(names, values, strict=True))
        labels.append(Label(detection=row["detection"], service=row["service"], instance=row["instance"],
                            signal=row["signal"], sick=False))
    scenario = Scenario(name=name, description=f"export of {', '.join(services)} from {fmt_time(since)} to "
                        f"{fmt_time(until)}; label what was sick", start=since, end=until, labels=labels)
    (out / "scenario.toml").write_text(dump_toml(scenario), encoding="utf-8")
    return scenario


def export_command(settings: Settings, args: argparse.Namespace) -> int:
    if not args.service or not args.since or not args.out:
        print("fleetwatch backtest export needs --since, --service (repeatable) and --out", file=sys.stderr)
        return 2
    from pipeline.store.query import open_reader

    now = datetime.now(UTC)
    since = parse_time(args.since, now)
    until = parse_time(args.until, now) if args.until else now
    if until <= since:
        raise ValueError("--until must be after --since")
    out = Path(args.out)
    reader = open_reader(settings)
    try:
        scenario = export_scenario(reader, settings, out, name=args.name or out.name.lower(),
                                   services=args.service, since=since, until=until)
    finally:
        reader.close()
    print(f"wrote {out}: {len(scenario.labels)} subject(s) labelled healthy; edit {out / 'scenario.toml'} "
          "to mark what was sick, then: fleetwatch backtest " + str(out))
    return 0
