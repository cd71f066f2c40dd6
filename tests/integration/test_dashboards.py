"""Every Grafana panel's SQL, with the plugin's macros expanded, returns rows on a seeded store; the committed
dashboard JSON is what deploy/grafana/build_dashboards.py generates."""

from __future__ import annotations

import importlib.util
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest

from pipeline.normalize.gctrace import normalize_lines
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.store.client import Store
from pipeline.telemetry import get_telemetry

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "deploy" / "grafana" / "build_dashboards.py"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SERVICES = ("checkout", "payments")


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_dashboards", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# -- the plugin's macros, as grafana-clickhouse-datasource expands them --------------------------------------
def expand_macros(sql: str, *, start: datetime, end: datetime, interval_s: int, variables: dict[str, list[str]]) -> str:
    frm, to = int(start.timestamp()), int(end.timestamp())

    def time_filter(match: re.Match[str]) -> str:
        col = match.group(1).strip()
        return f"{col} >= toDateTime({frm}) AND {col} <= toDateTime({to})"

    def time_interval(match: re.Match[str]) -> str:
        col = match.group(1).strip()
        return f"toStartOfInterval(toDateTime({col}), INTERVAL {interval_s} second)"

    sql = re.sub(r"\$__timeFilter\(([^)]*)\)", time_filter, sql)
    sql = re.sub(r"\$__timeInterval\(([^)]*)\)", time_interval, sql)
    sql = sql.replace("$__fromTime", f"toDateTime({frm})").replace("$__toTime", f"toDateTime({to})")
    sql = sql.replace("$__interval_s", str(interval_s))
    for name, values in variables.items():
        quoted = ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
        sql = sql.replace(f"${{{name}:singlequote}}", quoted).replace(f"${{{name}}}", values[0])
    leftover = re.search(r"\$__\w+|\$\{\w+", sql)
    assert leftover is None, f"unexpanded macro {leftover.group(0)} in:\n{sql}"
    return sql


def test_macro_expander() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC)
    out = expand_macros(
        "SELECT $__timeInterval(ts) t FROM x WHERE $__timeFilter(ts) AND s IN (${service:singlequote}) "
        "AND ts < $__toTime LIMIT $__interval_s",
        start=start, end=end, interval_s=60, variables={"service": ["a", "b'c"]},
    )
    assert "toStartOfInterval(toDateTime(ts), INTERVAL 60 second)" in out
    assert "ts >= toDateTime(1767225600) AND ts <= toDateTime(1767229200)" in out
    assert "IN ('a','b\\'c')" in out and "LIMIT 60" in out


# -- seeding -------------------------------------------------------------------------------------------------
def _gctrace_lines(n: int) -> list[str]:
    return [
        f"gc {i} @{i * 0.5:.3f}s 12%: 0.{10 + i}+1.{i}+0.0{i % 9 + 1} ms clock, "
        f"0.08+0.18/0.49/0.45+0.024 ms cpu, {40 + i}->{44 + i}->{20 + i} MB, {42 + i} MB goal, 0 MB stacks, "
        f"0 MB globals, 8 P"
        for i in range(1, n + 1)
    ]


def _insert(store: Store, table: str, rows: list[dict]) -> None:
    names = list(rows[0])
    store.insert_columns(table, {n: [r[n] for r in rows] for n in names})


def seed(store: Store, now: datetime) -> None:
    rows = Rows()
    for service in SERVICES:
        start_ns = int((now - timedelta(minutes=30)).timestamp() * 1e9)
        lines = _gctrace_lines(40)
        normalize_lines(
            lines, observed_ns=[start_ns + i * 30_000_000_000 for i in range(len(lines))], service=service,
            instance=f"{service}-0", source="file", received_at=now, rows=rows,
        )
    Sink(store, get_telemetry()).write(rows, token=f"seed-{time.time_ns()}")
    assert store.scalar(f"SELECT count() FROM {store.database}.gc_events") >= 40, "no gc_events from the normalizer"

    metrics, storms, trends, gaps, spans, traces = [], [], [], [], [], []
    for s, service in enumerate(SERVICES):
        instance = f"{service}-0"
        for i in range(12):
            at = now - timedelta(minutes=60 - 5 * i)
            metrics.append({"service": service, "instance": instance, "ts": at, "metric": "go.goroutine.count",
                            "value": 100.0 + 25 * i, "unit": "{goroutine}", "source_name": "go_goroutines",
                            "received_at": now})
            storms.append({"service": service, "instance": instance, "window_start": at,
                           "window_end": at + timedelta(minutes=1), "storm": int(i > 6), "severity": "critical",
                           "kind": "allocation", "hot": 1, "hot_windows": 3, "reason": "gc cpu above 45%",
                           "gc_count": 120, "gc_per_s": 2.0, "gc_cpu_fraction": 0.5 + 0.01 * i,
                           "stw_p99_ms": 3.5, "heap_live_mb": 100.0, "heap_goal_mb": 110.0, "live_vs_goal": 0.91,
                           "run_id": "seed"})
            trends.append({"service": service, "instance": instance, "signal": "goroutines", "unit": "goroutines",
                           "window_start": at - timedelta(hours=1), "window_end": at, "leaking": int(i > 3),
                           "severity": "warning", "reason": "goroutine floor rising", "n_buckets": 60,
                           "first_floor": 100.0, "last_floor": 400.0, "sen_slope_per_hour": 300.0 + s,
                           "relative_growth": 3.0, "hours_to_limit": 12.0, "run_id": "seed"})
        bucket = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
        gaps.append({"bucket": bucket, "bucket_seconds": 60, "parent_service": "gateway",
                     "parent_operation": "GET /pay", "child_service": service, "child_operation": "charge",
                     "cancellations": 10, "overruns": 4,
                     "doomed_starts": 1, "overrun_share": 0.4, "p50_overrun_ms": 120.0, "p99_overrun_ms": 900.0,
                     "max_overrun_ms": 950.0, "wasted_child_ms": 2400.0, "observed": 2, "observed_share": 0.2,
                     "instances": 1, "affected_instances": [instance], "example_trace_id": TRACE_ID,
                     "flagged": 1, "run_id": "seed", "computed_at": now})
        for k in range(4):
            cancel_at = now - timedelta(minutes=10, seconds=k)
            spans.append({"bucket": bucket, "trace_id": TRACE_ID, "span_id": f"{s}{k:015x}", "parent_span_id": "a" * 16,
                          "parent_service": "gateway", "parent_operation": "GET /pay", "child_service": service,
                          "child_instance": instance, "child_operation": "charge", "child_kind": "Client",
                          "origin": "span_status", "cause": "timeout", "cancel_at": cancel_at,
                          "child_start": cancel_at - timedelta(milliseconds=100),
                          "child_end": cancel_at + timedelta(milliseconds=200 * (k + 1)), "grace_ms": 50.0,
                          "overrun_ms": 200.0 * (k + 1), "wasted_ms": 200.0 * (k + 1), "is_overrun": 1,
                          "doomed_start": 0, "observed": 0, "run_id": "seed", "computed_at": now})
        traces.append({"Timestamp": now - timedelta(minutes=10), "TraceId": TRACE_ID, "SpanId": f"{s:016x}",
                       "ParentSpanId": "a" * 16, "SpanName": "charge", "SpanKind": "Client", "ServiceName": service,
                       "ResourceAttributes": {"service.name": service}, "SpanAttributes": {"rpc.system": "grpc"},
                       "Duration": 300_000_000, "StatusCode": "Error", "StatusMessage": "context canceled"})
    _seed_sites(store, now)
    for table, table_rows in (("runtime_metrics", metrics), ("gc_storms", storms), ("leak_trends", trends),
                              ("cancel_gaps", gaps), ("cancel_gap_spans", spans), ("otel_traces", traces)):
        _insert(store, table, table_rows)
    _insert(store, "cancel_events", [
        {"service": service, "instance": f"{service}-0", "trace_id": TRACE_ID, "span_id": "b" * 16,
         "cancel_at": now - timedelta(minutes=10), "cause": "timeout", "stack_depth": 3, "source": "file",
         "received_at": now}
        for service in SERVICES
    ])


def _seed_sites(store: Store, now: datetime) -> None:
    """leak_sites and storm_sites rows, as the profile detections write them."""
    sites, allocs = [], []
    for service in SERVICES:
        for i in range(6):
            end = now - timedelta(minutes=30 - 5 * i)
            sites.append({"service": service, "instance": f"{service}-0", "window_start": end - timedelta(minutes=1),
                          "window_end": end, "site_id": 7, "function": "main.fetchAll.func1", "file": "/app/fetch.go",
                          "line": 41, "created_by": "main.fetchAll /app/fetch.go:38", "wait_reason": "chan send",
                          "leaking": int(i > 1), "evidence": ["growing_site"] if i > 1 else [],
                          "severity": "warning" if i > 1 else "none", "goroutines": 100 + 20 * i,
                          "growth_per_hour": 240.0, "run_id": "seed"})
            allocs.append({"service": service, "instance": f"{service}-0", "window_start": end - timedelta(minutes=1),
                           "window_end": end, "rank": 1, "function": "main.buildReport", "file": "/app/report.go",
                           "line": 77, "bytes_per_sec": 5e8, "objects_per_sec": 1e4, "share": 0.9, "run_id": "seed"})
    _insert(store, "leak_sites", sites)
    _insert(store, "storm_sites", allocs)


def _panel_queries() -> list[tuple[str, str]]:
    out = []
    for path in sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable.get("type") == "query":
                out.append((f"{path.stem}: variable {variable['name']}", variable["query"]["rawSql"]))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((f"{path.stem}: {panel['title']}", target["rawSql"]))
    return out


@pytest.mark.integration
def test_every_panel_query_returns_rows(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seed(store, now)
    queries = _panel_queries()
    assert len(queries) >= 20
    variables = {"service": list(SERVICES), "instance": [f"{s}-0" for s in SERVICES], "trace_id": [TRACE_ID]}
    failures = []
    # Panels name tables without a database, as the data source's default database supplies it.
    client = clickhouse_connect.get_client(interface="chdb", path=store.path, database=store.database)
    for label, raw in queries:
        sql = expand_macros(raw, start=now - timedelta(hours=6), end=now + timedelta(minutes=1), interval_s=60,
                            variables=variables)
        try:
            result = client.query(sql)
        except Exception as exc:  # collect them all: one report names every broken panel
            failures.append(f"{label}: {exc}")
            continue
        if not result.result_rows:
            failures.append(f"{label}: no rows")
    client.close()
    assert not failures, "\n".join(failures)


def test_committed_dashboards_are_up_to_date() -> None:
    builder = _load_builder()
    rendered = builder.render_all()
    assert set(rendered) == {p.name for p in builder.OUT_DIR.glob("*.json")}
    for name, text in rendered.items():
        committed = (builder.OUT_DIR / name).read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run python deploy/grafana/build_dashboards.py"
