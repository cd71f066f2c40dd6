"""`fleetwatch triage`: the three questions (GC storm? leak? lost cancellation?) for a service or the fleet.

It only reads the detection tables the scheduled jobs write (sql/queries/triage_*.sql), so it answers in
well under a second and works while `fleetwatch run` holds the embedded store (`open_reader` then goes
through the running process's query endpoint). Each finding comes with its evidence and a ready-to-run query
over the raw rows, because a verdict nobody can check is not trusted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.jobs.windows import fmt_time, parse_time
from pipeline.report import sites as triage_sites
from pipeline.report.findings import Finding, Report, fill_parameters
from pipeline.sqlfiles import load_statement
from pipeline.store.client import Store
from pipeline.store.migrate import RenderContext, context_from_settings

DEFAULT_LIMIT = 20


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.1f}%"


def _num(x: Any, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if not isinstance(x, float):
        return str(x)
    text = f"{x:.{digits}f}"
    # Trailing zeros go only after a decimal point: 550 must not become 55.
    return text.rstrip("0").rstrip(".") if "." in text else text


def gc_storm_findings(store: Store, ctx: RenderContext, sql_dir: Any, params: dict[str, Any]) -> list[Finding]:
    out = []
    for r in store.dicts(load_statement(sql_dir, "queries/triage_gc_storms.sql", ctx), params):
        state = "ongoing" if r["ongoing"] else f"last seen {fmt_time(r['last_seen'])}"
        headline = (f"{r['kind'] or 'storm'}: {r['reason']} ({r['storm_windows']} windows since "
                    f"{fmt_time(r['first_seen'])}, {state})")
        evidence = {
            "gc_count": r["gc_count"], "gc_per_s": round(r["gc_per_s"], 2),
            "gc_cpu_fraction": round(r["gc_cpu_fraction"], 4), "assist_share": round(r["assist_share"], 4),
            "stw_p50_ms": r["stw_p50_ms"], "stw_p99_ms": r["stw_p99_ms"], "stw_max_ms": r["stw_max_ms"],
            "heap_live_mb": round(r["heap_live_mb"], 1), "heap_goal_mb": round(r["heap_goal_mb"], 1),
            "forced_cycles": r["forced_cycles"], "procs": r["procs"],
            "memory_limit_mb": r["memory_limit_mb"], "gogc": r["gogc"], "ongoing": bool(r["ongoing"]),
        }
        dig = fill_parameters(load_statement(sql_dir, "queries/dig_gc_storm.sql", ctx),
                              {"service": r["service"], "instance": r["instance"], "since": r["first_seen"]})
        out.append(Finding("gc_storm", f"{r['service']}/{r['instance']}", r["severity"], headline, evidence, dig))
    return out


def leak_findings(store: Store, ctx: RenderContext, sql_dir: Any, params: dict[str, Any]) -> list[Finding]:
    out = []
    for r in store.dicts(load_statement(sql_dir, "queries/triage_leak_trends.sql", ctx), params):
        state = "ongoing" if r["ongoing"] else f"last seen {fmt_time(r['last_seen'])}"
        headline = f"{r['signal']} leak: {r['reason']} ({state})"
        evidence = {
            "signal": r["signal"], "unit": r["unit"], "first_floor": round(r["first_floor"], 1),
            "last_floor": round(r["last_floor"], 1), "sen_slope_per_hour": round(r["sen_slope_per_hour"], 2),
            "relative_growth": round(r["relative_growth"], 3), "mk_z": round(r["mk_z"], 2),
            "spearman_rho": round(r["spearman_rho"], 3), "buckets": r["n_buckets"],
            "limit": r["limit_value"],
            "hours_to_limit": None if r["hours_to_limit"] is None else round(r["hours_to_limit"], 1),
            "incarnation_since": fmt_time(r["segment_start"]), "ongoing": bool(r["ongoing"]),
        }
        dig = fill_parameters(load_statement(sql_dir, f"queries/dig_leak_{r['signal']}.sql", ctx),
                              {"service": r["service"], "instance": r["instance"], "since": r["segment_start"]})
        out.append(Finding("leak", f"{r['service']}/{r['instance']}", r["severity"], headline, evidence, dig))
    return out


def cancel_gap_findings(store: Store, ctx: RenderContext, sql_dir: Any, params: dict[str, Any]) -> list[Finding]:
    out = []
    for r in store.dicts(load_statement(sql_dir, "queries/triage_cancel_gaps.sql", ctx), params):
        edge = f"{r['parent_service']} {r['parent_operation']} -> {r['child_service']} {r['child_operation']}"
        headline = (f"{r['overruns']} of {r['cancellations']} cancelled calls kept running "
                    f"(p99 overrun {_num(r['p99_overrun_ms'], 0)} ms, {_num(r['wasted_child_ms'] / 1000, 1)} s "
                    f"wasted, child observed the cancellation in {_pct(r['observed_share'])})")
        evidence = {k: r[k] for k in (
            "cancellations", "overruns", "doomed_starts", "p50_overrun_ms", "p99_overrun_ms", "max_overrun_ms",
            "wasted_child_ms", "observed", "affected_instances", "example_trace_id")}
        evidence["overrun_share"] = round(r["overrun_share"], 4)
        evidence["observed_share"] = round(r["observed_share"], 4)
        dig = fill_parameters(load_statement(sql_dir, "queries/dig_cancel_gap.sql", ctx),
                              {**{k: r[k] for k in ("parent_service", "parent_operation", "child_service",
                                                    "child_operation")}, "since": params["since"]})
        severity = "critical" if r["overrun_share"] >= 0.5 else "warning"
        out.append(Finding("cancel_gap", edge, severity, headline, evidence, dig))
    return out


def _table_exists(store: Store, database: str, table: str) -> bool:
    return bool(store.scalar(
        "SELECT count() FROM system.tables WHERE database = {d:String} AND name = {t:String}",
        {"d": database, "t": table},
    ))


def build_report(store: Store, settings: Settings, *, service: str | None, since: datetime,
                 limit: int = DEFAULT_LIMIT) -> Report:
    ctx = context_from_settings(settings)
    params = {"since": fmt_time(since), "service": service or "", "limit": limit}
    report = Report(scope=f"service {service}" if service else "whole fleet", since=fmt_time(since))
    sections = [
        ("gc_storms", gc_storm_findings),
        ("leak_trends", leak_findings),
        ("cancel_gaps", cancel_gap_findings),
    ]
    for table, collect in sections:
        if not _table_exists(store, settings.database, table):
            if table == "cancel_gaps":
                report.cancel_gaps_available = False
            report.notes.append(f"{settings.database}.{table} does not exist yet (run `fleetwatch migrate`)")
            continue
        findings = collect(store, ctx, settings.sql_dir, params)
        target = {"gc_storms": report.gc_storms, "leak_trends": report.leaks, "cancel_gaps": report.cancel_gaps}
        target[table].extend(findings)
    # Code locations from the profile detections (leak_sites, storm_sites), when those tables exist.
    if all(_table_exists(store, settings.database, t) for t in ("leak_sites", "storm_sites")):

        triage_sites.enrich(store, ctx, settings.sql_dir, params, report.gc_storms, report.leaks)
    last_runs = store.rows(
        f"SELECT job, max(window_end) FROM {settings.database}.job_runs WHERE status = 'ok' GROUP BY job ORDER BY job"
    ) if _table_exists(store, settings.database, "job_runs") else []
    if not last_runs:
        report.notes.append("no detection job has completed yet: is `fleetwatch run` (or `jobs run-once`) running?")
    else:
        report.notes.append("detections current to " + ", ".join(f"{j} {fmt_time(_utc(t))}" for j, t in last_runs))
    return report


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


_SECTIONS = (
    ("GC storms", "gc_storms", "no instance in a sustained GC storm"),
    ("Leaks (goroutines, live heap)", "leaks", "no goroutine or live-heap floor trending up"),
    ("Cancellation gaps", "cancel_gaps", "no call edge keeps working after a cancellation"),
)


def render_text(report: Report) -> str:
    lines = [f"Fleetwatch triage: {report.scope}, since {report.since} UTC", ""]
    for title, attr, clean in _SECTIONS:
        findings: list[Finding] = getattr(report, attr)
        if attr == "cancel_gaps" and not report.cancel_gaps_available:
            lines += [f"{title}: not available (no cancel_gaps table)", ""]
            continue
        lines.append(f"{title}: {len(findings)} finding(s)" if findings else f"{title}: OK, {clean}")
        for f in findings:
            lines.append(f"  [{f.severity.upper()}] {f.subject}")
            lines.append(f"      {f.headline}")
            evidence = ", ".join(f"{k}={_fmt_evidence(v)}" for k, v in f.evidence.items()
                                 if v not in (None, "") and k not in _SITE_KEYS)
            lines.append(f"      evidence: {evidence}")
            lines.append("      dig: " + " ".join(f.dig_sql.split()))
            lines += [f"      {line}" for line in _site_lines(f.evidence)]
        lines.append("")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


_SITE_KEYS = ("sites", "alloc_sites")


def _site_lines(evidence: dict[str, Any]) -> list[str]:

    return triage_sites.site_lines(evidence)


def _fmt_evidence(v: Any) -> str:
    if isinstance(v, float):
        return _num(v, 4)
    if isinstance(v, list):
        return "[" + " ".join(map(str, v)) + "]"
    return str(v)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _finite(value: Any) -> Any:
    """NaN/inf (an empty quantile, a constant series' correlation) become null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def render_json(report: Report) -> str:
    return json.dumps(_finite(asdict(report)), default=_json_default, indent=2, allow_nan=False) + "\n"


def triage_command(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.store.query import open_reader

    since = parse_time(args.since or "15m", datetime.now(UTC))
    store = open_reader(settings)
    try:
        report = build_report(store, settings, service=getattr(args, "service", None), since=since)
    finally:
        store.close()
    sys.stdout.write(render_json(report) if getattr(args, "format", "text") == "json" else render_text(report))
    return 0
