"""Grafana's ClickHouse data source in OTel mode, and the plugin's own dashboards, on Fleetwatch's tables.

The store is seeded through the real OTLP normalizers and sink (spans of three services with events and a
link, logs carrying the trace id). Then:
* the queries the plugin (4.20) generates in OTel mode run and return the right rows: trace by id through
  the `otel_traces_trace_id_ts` lookup table, the logs view, the logs of one trace;
* every query of the plugin's example dashboards (traces explorer with its service map, logs explorer,
  service dashboard) runs, and the service map returns the service-to-service edges;
* the example queries of the Collector exporter's README (logs, traces by id through the lookup table,
  metrics in otel_metrics_sum) find what they look for;
* the provisioning turns OTel mode fully on and names only columns the store has; the plugin is pinned in
  compose; every Fleetwatch dashboard query on otel_traces is bounded in time.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from pipeline.normalize.otlp_common import Context
from pipeline.normalize.otlp_logs import normalize_logs
from pipeline.normalize.otlp_metrics import normalize_metrics
from pipeline.normalize.otlp_traces import normalize_traces
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink
from pipeline.store.client import Store

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "grafana_plugin"
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml"
TRACE_ID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
OTHER_TRACE_ID = bytes.fromhex("00f067aa0ba902b7a3ce929d0e0e4736")
SERVICES = ("gateway", "checkout", "payments")


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _span_id(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _traces(now_ns: int) -> ExportTraceServiceRequest:
    """gateway -> checkout -> (client call) -> payments in one trace, the call failing; plus an older trace."""
    request = ExportTraceServiceRequest()
    chain = {  # service: [(own id, parent id, name, kind, failed)]
        "gateway": [(1, 0, "GET /checkout", Span.SPAN_KIND_SERVER, False)],
        "checkout": [(2, 1, "POST /cart", Span.SPAN_KIND_SERVER, False), (3, 2, "Charge", Span.SPAN_KIND_CLIENT, True)],
        "payments": [(4, 3, "Charge", Span.SPAN_KIND_SERVER, True)],
    }
    for service in SERVICES:
        rs = request.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
        rs.resource.attributes.extend([_kv("service.name", service), _kv("service.instance.id", f"{service}-0")])
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = "fleetwatch.test", "1.0"
        for own, parent, name, kind, failed in chain[service]:
            start = now_ns - 60_000_000_000 + own * 1_000_000
            parent_id = _span_id(parent) if parent else b""
            span = ss.spans.add(trace_id=TRACE_ID, span_id=_span_id(own), parent_span_id=parent_id, name=name,
                                kind=kind, start_time_unix_nano=start,
                                end_time_unix_nano=start + (30 - own * 5) * 1_000_000, flags=0x101)
            span.attributes.append(_kv("http.route", name))
            if failed:
                span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="card declined"))
            if service == "payments":
                event = span.events.add(time_unix_nano=start + 1_000_000, name="exception")
                event.attributes.append(_kv("exception.message", "declined"))
                link = span.links.add(trace_id=OTHER_TRACE_ID, span_id=_span_id(99))
                link.attributes.append(_kv("link.kind", "retry-of"))
        if service == "gateway":
            old = ss.spans.add(trace_id=OTHER_TRACE_ID, span_id=_span_id(99), name="GET /old",
                               kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=now_ns - 3 * 3600 * 10**9,
                               end_time_unix_nano=now_ns - 3 * 3600 * 10**9 + 10**6)
            old.attributes.append(_kv("http.route", "/old"))
    return request


def _logs(now_ns: int) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for index, service in enumerate(SERVICES):
        rl = request.resource_logs.add()
        rl.resource.attributes.extend([_kv("service.name", service), _kv("k8s.pod.name", f"{service}-pod")])
        sl = rl.scope_logs.add()
        sl.scope.name = "app"
        sl.scope.attributes.append(_kv("logger", "main"))
        for n, (level, number) in enumerate((("INFO", 9), ("ERROR", 17))):
            record = sl.log_records.add(time_unix_nano=now_ns - 59_000_000_000 + n * 1_000_000, severity_text=level,
                                        severity_number=number, trace_id=TRACE_ID, span_id=_span_id(index + 1))
            record.body.string_value = f"{service}: step {n} userId=u{index}"
            record.attributes.append(_kv("step", str(n)))
        sl.log_records.add(time_unix_nano=now_ns - 30_000_000_000, severity_text="WARN", severity_number=13).body \
            .string_value = f"{service}: no trace here"
    return request


def seed(store: Store, now: datetime) -> None:
    now_ns = int(now.timestamp()) * 10**9
    rows = Rows()
    ctx = Context(rows=rows, source="otlp_test", received_at=now)
    normalize_traces(_traces(now_ns), ctx)
    normalize_logs(_logs(now_ns), ctx)
    Sink(store).write(rows, token=f"grafana-otel-{time.time_ns()}")


# -- the plugin's macros and variables -----------------------------------------------------------------------
def _balanced_args(sql: str, open_at: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose `(` is at `open_at`, and the index after its `)`."""
    depth, args, current, i, quote = 0, [], [], open_at + 1, ""
    while i < len(sql):
        ch = sql[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                args.append("".join(current))
                return [a.strip() for a in args], i + 1
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    raise ValueError(f"unbalanced call at {open_at} in {sql}")


def expand(sql: str, *, start: datetime, end: datetime, variables: dict[str, list[str]], interval_s: int = 60) -> str:
    """The macros the plugin's dashboards use, expanded as grafana-clickhouse-datasource does.

    `$__conditionalAll(cond, $var)` is `cond` when the variable selects some values and `1=1` when it
    selects all (or a textbox is empty); multi-value variables become quoted, comma-separated lists.
    """
    frm, to = int(start.timestamp()), int(end.timestamp())
    while (at := sql.find("$__conditionalAll(")) != -1:
        (condition, var), after = _balanced_args(sql, at + len("$__conditionalAll"))
        values = variables.get(var.lstrip("$").strip("{}"), [])
        sql = sql[:at] + (condition if values else "1=1") + sql[after:]
    while (at := sql.find("$__timeFilter(")) != -1:
        (column,), after = _balanced_args(sql, at + len("$__timeFilter"))
        sql = sql[:at] + f"{column} >= toDateTime({frm}) AND {column} <= toDateTime({to})" + sql[after:]
    sql = sql.replace("$__fromTime", f"toDateTime({frm})").replace("$__toTime", f"toDateTime({to})")
    sql = sql.replace("$__interval_s", str(interval_s))

    def quoted(values: list[str]) -> str:
        return ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)

    for name, values in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        sql = sql.replace(f"${{{name}:singlequote}}", quoted(values))
        sql = sql.replace(f"'${{{name}}}'", quoted(values[:1])).replace(f"'${name}'", quoted(values[:1]))
        sql = sql.replace(f"${{{name}}}", quoted(values)).replace(f"${name}", quoted(values))
    leftover = re.search(r"\$__\w+|\$\{?\w+", sql)
    assert leftover is None, f"unexpanded {leftover.group(0)} in:\n{sql}"
    return sql


def test_expander() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC)
    out = expand("SELECT 1 WHERE $__conditionalAll(f(a) IN ($service), $service) AND "
                 "$__conditionalAll(positionCaseInsensitive(Body, '$search') > 0, $search) AND $__timeFilter(t.x) "
                 "AND s = '${service}' AND s IN (${service:singlequote})",
                 start=start, end=end, variables={"service": ["a", "b'c"], "search": []})
    assert "f(a) IN ('a','b\\'c')" in out and "AND 1=1 AND" in out
    assert "t.x >= toDateTime(1767225600) AND t.x <= toDateTime(1767229200)" in out
    assert "s = 'a'" in out and "s IN ('a','b\\'c')" in out


def _client(store: Store):  # the clickhouse-connect client class differs per backend
    # Dashboards name tables without a database: the data source's default database supplies it.
    return clickhouse_connect.get_client(interface="chdb", path=store.path, database=store.database)


@pytest.mark.integration
def test_plugin_generated_queries_run_on_fleetwatch_tables(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seed(store, now)
    generated = json.loads((DATA / "generated_queries.json").read_text())["queries"]
    fill = {"{db}": store.database, "{trace_id}": TRACE_ID.hex()}

    def run(name: str) -> list[dict]:
        sql = generated[name]
        for key, value in fill.items():
            sql = sql.replace(key, value)
        sql = expand(sql, start=now - timedelta(hours=1), end=now + timedelta(minutes=1), variables={})
        result = client.query(sql)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    client = _client(store)
    try:
        # The lookup table knows the trace's time range (kept by the materialized view on insert).
        lookup = client.query("SELECT min(Start), max(End) FROM otel_traces_trace_id_ts WHERE TraceId = "
                              "{t:String}", parameters={"t": TRACE_ID.hex()}).result_rows[0]
        assert lookup[0] <= lookup[1] and lookup[0].year == now.year

        spans = run("trace by id")
        assert sorted((s["serviceName"], s["operationName"]) for s in spans) == [
            ("checkout", "Charge"), ("checkout", "POST /cart"), ("gateway", "GET /checkout"), ("payments", "Charge")]
        by_service = {s["serviceName"]: s for s in spans if s["kind"] == "Server"}
        assert by_service["checkout"]["parentSpanID"] == by_service["gateway"]["spanID"]
        assert by_service["payments"]["statusCode"] == 2 and by_service["payments"]["statusMessage"] == "card declined"
        assert by_service["gateway"]["statusCode"] == 0
        assert by_service["payments"]["duration"] == pytest.approx(10.0)
        assert by_service["gateway"]["instrumentationLibraryName"] == "fleetwatch.test"
        logs = by_service["payments"]["logs"]
        assert [(e["name"], e["fields"]) for e in logs] == [
            ("exception", [{"key": "exception.message", "value": "declined"}])]
        refs = by_service["payments"]["references"]
        assert [(r["traceID"], r["tags"]) for r in refs] == [
            (OTHER_TRACE_ID.hex(), [{"key": "link.kind", "value": "retry-of"}])]
        assert {"key": "http.route", "value": "Charge"} in by_service["payments"]["tags"]

        view = run("logs view")
        assert len(view) == 3 * len(SERVICES)
        assert list(view[0])[:4] == ["timestamp", "body", "level", "traceID"]
        assert view[0]["timestamp"] >= view[-1]["timestamp"]
        assert {r["level"] for r in view} == {"INFO", "ERROR", "WARN"}
        assert all(r["LogAttributes"] or r["traceID"] == "" for r in view)

        of_trace = run("logs of a trace")
        assert sorted(r["body"] for r in of_trace) == sorted(
            f"{s}: step {n} userId=u{i}" for i, s in enumerate(SERVICES) for n in range(2))
        assert {r["traceID"] for r in of_trace} == {TRACE_ID.hex()}
    finally:
        client.close()


@pytest.mark.integration
def test_plugin_example_dashboards_run_on_fleetwatch_tables(store: Store) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    seed(store, now)
    queries = json.loads((DATA / "example_dashboards.json").read_text())["queries"]
    assert len(queries) >= 30
    # Single-service panels ('${service}') take the first value: checkout has server and client spans.
    variables = {"service": ["checkout", "gateway", "payments"], "operation": [], "status": [], "level_filter": [],
                 "search": [], "min_duration": []}
    client = _client(store)
    failures, results = [], {}
    try:
        for label, raw in queries.items():
            sql = expand(raw, start=now - timedelta(hours=6), end=now + timedelta(minutes=1), variables=variables)
            try:
                result = client.query(sql)
            except Exception as exc:  # collect them all: one report names every broken query
                failures.append(f"{label}: {exc}")
                continue
            results[label] = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    finally:
        client.close()
    assert not failures, "\n".join(failures)
    empty = [label for label, rows in results.items() if not rows]
    # Panels of span kinds the seed has none of may be empty, and the duration distribution samples one
    # span in 500; every other query must return rows.
    allowed_empty = re.compile(r"\((Internal|Async)\)|Async Operations|Internal Operations|Duration Distribution")
    assert [label for label in empty if not allowed_empty.search(label)] == []

    service_map = [rows for label, rows in results.items() if label.startswith("otel-traces-explorer: Service Map")]
    nodes = next(rows for rows in service_map if rows and "title" in rows[0])
    edges = next(rows for rows in service_map if rows and "source" in rows[0])
    assert {n["id"] for n in nodes} == set(SERVICES)
    assert sorted((e["source"], e["target"]) for e in edges) == [("checkout", "payments"), ("gateway", "checkout")]
    arcs = {n["id"]: n["arc__errors"] for n in nodes}
    assert arcs == {"gateway": 0.0, "checkout": 0.5, "payments": 1.0}


def test_provisioning_turns_otel_mode_fully_on_with_existing_columns(store: Store) -> None:
    generated = json.loads((DATA / "generated_queries.json").read_text())
    doc = yaml.safe_load(PROVISIONING.read_text())
    (source,) = doc["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    columns = {
        table: {r[0] for r in store.rows("SELECT name FROM system.columns WHERE database = {d:String} AND "
                                         "table = {t:String}", {"d": store.database, "t": table})}
        for table in ("otel_logs", "otel_traces", "otel_traces_trace_id_ts")
    }
    for signal, table in (("logs", "otel_logs"), ("traces", "otel_traces")):
        settings = source["jsonData"][signal]
        assert settings["otelEnabled"] is True and settings["defaultTable"] == table
        assert settings["otelVersion"] in generated["otel_versions"]
        named = [v for k, v in settings.items() if k.endswith("Column")] + settings.get("contextColumns", [])
        assert named and set(named) <= columns[table], (signal, set(named) - columns[table])
    # 1.30.0 is the exporter's v0.151+ logs layout: no TimestampTime (the plugin would filter on it otherwise).
    assert source["jsonData"]["logs"]["otelVersion"] == "1.30.0" and "TimestampTime" not in columns["otel_logs"]
    traces = source["jsonData"]["traces"]
    assert columns[f"otel_traces{traces['traceTimestampTableSuffix']}"] == {"TraceId", "Start", "End"}
    assert {f"{traces['traceEventsColumnPrefix']}.Name", f"{traces['traceLinksColumnPrefix']}.TraceId"} <= \
        columns["otel_traces"]


def test_compose_pins_the_plugin_version_the_tests_run() -> None:
    version = json.loads((DATA / "generated_queries.json").read_text())["plugin_version"]
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_PLUGINS_PREINSTALL"] == f"grafana-clickhouse-datasource@{version}"
    assert env["GF_INSTALL_PLUGINS"] == f"grafana-clickhouse-datasource {version}"


def test_every_fleetwatch_trace_query_is_bounded_in_time() -> None:
    found = 0
    for path in sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                sql = target["rawSql"]
                if re.search(r"\botel_traces\b", sql):
                    found += 1
                    time_filtered = "$__timeFilter(" in sql
                    by_lookup = "otel_traces_trace_id_ts" in sql and re.search(r"Timestamp\s*>=\s*\w+_start", sql)
                    assert time_filtered or by_lookup, (path.name, panel["title"])
    assert found >= 1


def _readme_seed(store: Store, now: datetime) -> None:
    """Logs, spans and a sum metric carrying the values the Collector README's example queries look for."""
    now_ns = int(now.timestamp()) * 10**9 - 60 * 10**9
    service = _kv("service.name", "clickhouse-exporter")
    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    rl.resource.attributes.append(service)
    records = rl.scope_logs.add().log_records
    for n, body in enumerate(("GET http /index 200", '{"bytes": 2048, "path": "/big"}')):
        record = records.add(time_unix_nano=now_ns + n, severity_text="INFO", severity_number=9)
        record.body.string_value = body
        record.attributes.append(_kv("container_name", "/example_flog_1"))
    spans = ExportTraceServiceRequest()
    rs = spans.resource_spans.add()
    rs.resource.attributes.append(service)
    span = rs.scope_spans.add().spans.add(
        trace_id=bytes.fromhex("391dae938234560b16bb63f51501cb6f"), span_id=_span_id(7), name="lets-go",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=now_ns, end_time_unix_nano=now_ns + 2 * 10**9)
    span.attributes.append(_kv("peer.service", "telemetrygen-server"))
    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="boom"))
    metrics = ExportMetricsServiceRequest()
    rm = metrics.resource_metrics.add()
    rm.resource.attributes.append(service)
    calls = rm.scope_metrics.add().metrics.add(name="calls", unit="1")
    calls.sum.is_monotonic, calls.sum.aggregation_temporality = True, 2
    point = calls.sum.data_points.add(time_unix_nano=now_ns, as_int=5)
    point.attributes.append(_kv("service_name", "featureflagservice"))
    rows = Rows()
    ctx = Context(rows=rows, source="otlp_test", received_at=now)
    normalize_logs(logs, ctx)
    normalize_traces(spans, ctx)
    normalize_metrics(metrics, ctx)
    Sink(store).write(rows, token=f"readme-{time.time_ns()}")


@pytest.mark.integration
def test_collector_readme_queries_run_on_fleetwatch_tables(store: Store) -> None:
    """The example queries of the Collector exporter's README, as written, find what they look for."""
    now = datetime.now(UTC).replace(microsecond=0)
    _readme_seed(store, now)
    queries = json.loads((DATA / "collector_readme_queries.json").read_text())["queries"]
    assert len(queries) >= 14
    client = _client(store)
    failures = []
    try:
        for label, sql in queries.items():
            try:
                rows = client.query(sql).result_rows
            except Exception as exc:  # collect them all
                failures.append(f"{label}: {exc}")
                continue
            if not rows:
                failures.append(f"{label}: no rows")
        by_id = client.query(queries["Find traces with traceID (using time primary index and TraceID skip index)"])
        assert [row[4] for row in by_id.result_rows] == ["lets-go"]
        assert client.query(queries["Find log with body json extract"]).result_rows[0][1].startswith('{"bytes"')
    finally:
        client.close()
    assert not failures, "\n".join(failures)
