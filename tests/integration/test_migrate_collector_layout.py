"""A store created by the previous schema (otel_logs before the exporter's v0.151 layout, one otel_metrics
table, otel_traces without the trace-id lookup) migrates forward and keeps every row, value for value; an
interrupted or repeated run neither loses nor duplicates rows.

The previous DDL is the migration files as they were (tests/data/schema_before_v0151/migrations).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import REPO_SQL_DIR
from pipeline.store.client import Store
from pipeline.store.migrate import Guard, RenderContext, guard_holds, migrate, render_statements

pytestmark = pytest.mark.integration

PREVIOUS = Path(__file__).resolve().parents[1] / "data" / "schema_before_v0151"
LOG_ROWS, SPAN_ROWS, POINTS_PER_TYPE = 3000, 500, 400
# Recent times: rows older than the retention would be dropped by the tables' TTL.
BASE = "toDateTime64(toStartOfDay(now() - INTERVAL 1 DAY), 9, 'UTC')"
RECEIVED = "toDateTime64(toStartOfDay(now()), 3, 'UTC')"
LOG_FINGERPRINT = ("Timestamp, TraceId, SpanId, TraceFlags, SeverityText, SeverityNumber, ServiceName, Body, "
                   "ResourceSchemaUrl, ResourceAttributes, ScopeSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, "
                   "LogAttributes, EventName")
METRIC_FINGERPRINT = ("ServiceName, ServiceInstance, MetricName, MetricDescription, MetricUnit, Attributes, "
                      "ResourceAttributes, ScopeName, ScopeVersion, StartTimeUnix, TimeUnix, Flags, received_at")
KIND_FINGERPRINT = {
    "gauge": "Value", "sum": "Value, AggregationTemporality, IsMonotonic",
    "histogram": "Count, Sum, Min, Max, BucketCounts, ExplicitBounds, AggregationTemporality",
    "exponential_histogram": "Count, Sum, Min, Max, AggregationTemporality",
    "summary": "Count, Sum",
}


def _fill_previous(store: Store, db: str) -> None:
    store.command(
        f"INSERT INTO {db}.otel_logs ({LOG_FINGERPRINT}) SELECT "
        f"{BASE} + toIntervalNanosecond(number * 7919000003), "
        "lower(hex(cityHash64(number, 't'))), lower(hex(cityHash64(number, 's'))), number % 2, "
        "['INFO', 'WARN', 'ERROR'][number % 3 + 1], [9, 13, 17][number % 3 + 1], concat('svc-', toString(number % 5)), "
        "concat('line ', toString(number), if(number % 7 = 0, ' Mixed CASE body', '')), 'https://r/1', "
        "map('service.name', concat('svc-', toString(number % 5)), "
        "'k8s.pod.name', concat('pod-', toString(number % 3))), "
        "'https://s/1', 'scope', '1.0', map('team', 'a'), map('n', toString(number)), if(number % 11 = 0, 'evt', '') "
        f"FROM numbers({LOG_ROWS})"
    )
    store.command(
        f"INSERT INTO {db}.otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, "
        f"Duration, StatusCode) SELECT {BASE} + toIntervalMillisecond(number * 10), "
        "lower(hex(cityHash64(intDiv(number, 5)))) || lower(hex(cityHash64(intDiv(number, 5), 1))), "
        "lower(hex(cityHash64(number))), '', 'op', 'Server', 'svc', 1000 + number, 'Unset' "
        f"FROM numbers({SPAN_ROWS})"
    )
    for index, kind in enumerate(KIND_FINGERPRINT):
        is_summary = kind == "summary"
        store.command(
            f"INSERT INTO {db}.otel_metrics (ServiceName, ServiceInstance, MetricName, MetricDescription, "
            "MetricUnit, MetricType, Attributes, ResourceAttributes, ScopeName, ScopeVersion, StartTimeUnix, TimeUnix, "
            "Value, Count, Sum, Min, Max, BucketCounts, ExplicitBounds, AggregationTemporality, IsMonotonic, Flags, "
            f"received_at) SELECT 'svc', concat('i-', toString(number % 4)), 'm.{kind}', 'desc', 'ms', '{kind}', "
            "map('a', toString(number % 9)), "
            f"map('service.name', 'svc'), 'scope', '2.0', {BASE}, "
            f"{BASE} + toIntervalSecond(number), number * 1.5, number, "
            "number * 2.5, if(number % 3 = 0, nan, number * 0.1), if(number % 4 = 0, nan, number * 10.0), "
            f"{'[1, 2, 3]' if kind == 'histogram' else '[]'}, {'[1.0, 10.0]' if kind == 'histogram' else '[]'}, "
            f"{0 if is_summary else 2}, {1 if kind == 'sum' else 0}, number % 2, "
            f"{RECEIVED} + toIntervalMillisecond({index} * 1000 + number) "
            f"FROM numbers({POINTS_PER_TYPE})"
        )


def _fingerprint(store: Store, table: str, columns: str, where: str = "") -> tuple[int, int]:
    count, digest = store.rows(f"SELECT count(), groupBitXor(cityHash64({columns})) FROM {table} {where}")[0]
    return int(count), int(digest)


def _columns(store: Store, db: str, table: str) -> set[str]:
    return {r[0] for r in store.rows("SELECT name FROM system.columns WHERE database = {d:String} AND "
                                     "table = {t:String}", {"d": db, "t": table})}


def test_previous_schema_migrates_forward_keeping_every_row(store: Store, settings) -> None:
    ctx = RenderContext(settings.database + "_prev", settings.retention_days)
    db = ctx.database
    try:
        assert [m.version for m in migrate(store, PREVIOUS, ctx)] == [3, 20, 22]
        assert "TimestampTime" in _columns(store, db, "otel_logs")
        _fill_previous(store, db)
        logs_before = _fingerprint(store, f"{db}.otel_logs", LOG_FINGERPRINT)
        spans_before = _fingerprint(store, f"{db}.otel_traces", "TraceId, SpanId, Timestamp")
        metrics_before = {
            kind: _fingerprint(store, f"{db}.otel_metrics", f"{METRIC_FINGERPRINT}, {cols}",
                               f"WHERE MetricType = '{kind}'")
            for kind, cols in KIND_FINGERPRINT.items()
        }
        assert logs_before[0] == LOG_ROWS and all(n == POINTS_PER_TYPE for n, _ in metrics_before.values())
        summary_extremes = store.rows(
            f"SELECT count(), countIf(NOT isNaN(Min)) + countIf(NOT isNaN(Max)) FROM {db}.otel_metrics "
            "WHERE MetricType = 'summary'")[0]

        applied = [m.version for m in migrate(store, REPO_SQL_DIR, ctx)]
        assert {23, 24, 25} <= set(applied)

        tables = {r[0] for r in store.rows("SELECT name FROM system.tables WHERE database = {d:String}", {"d": db})}
        assert "otel_metrics" not in tables and "otel_logs_next" not in tables
        logs_columns = _columns(store, db, "otel_logs")
        assert "TimestampTime" not in logs_columns and "__otel_materialized_k8s.pod.name" in logs_columns
        assert _fingerprint(store, f"{db}.otel_logs", LOG_FINGERPRINT) == logs_before
        assert store.scalar(f"SELECT uniqExact(`__otel_materialized_k8s.pod.name`) FROM {db}.otel_logs") == 3
        assert _fingerprint(store, f"{db}.otel_traces", "TraceId, SpanId, Timestamp") == spans_before
        # The lookup table covers the spans stored before it existed: one row per trace, its time range.
        assert store.rows(f"SELECT uniqExact(TraceId), count() FROM {db}.otel_traces_trace_id_ts") == \
            [(SPAN_ROWS // 5, SPAN_ROWS // 5)]
        for kind, cols in KIND_FINGERPRINT.items():
            assert _fingerprint(store, f"{db}.otel_metrics_{kind}", f"{METRIC_FINGERPRINT}, {cols}") == \
                metrics_before[kind], kind
        # Summary min/max (quantiles 0 and 1) became ValueAtQuantiles entries.
        assert store.rows(f"SELECT count(), sum(length(ValueAtQuantiles.Quantile)) FROM {db}.otel_metrics_summary") \
            == [summary_extremes]

        # An interrupted run is redone from the state of the tables: re-running the files (their records
        # removed) neither loses nor duplicates a row.
        store.command(f"ALTER TABLE {db}.schema_migrations DELETE WHERE version IN (23, 25) "
                      "SETTINGS mutations_sync = 2")
        assert {23, 25} <= {m.version for m in migrate(store, REPO_SQL_DIR, ctx)}
        assert _fingerprint(store, f"{db}.otel_logs", LOG_FINGERPRINT) == logs_before
        for kind, cols in KIND_FINGERPRINT.items():
            assert _fingerprint(store, f"{db}.otel_metrics_{kind}", f"{METRIC_FINGERPRINT}, {cols}") == \
                metrics_before[kind], kind
        assert migrate(store, REPO_SQL_DIR, ctx) == []
    finally:
        store.command(f"DROP DATABASE IF EXISTS {db} SYNC")


def test_copy_interrupted_before_the_swap_is_redone_whole(store: Store, settings) -> None:
    """A run that died after copying part of otel_logs (the new table exists, half full) copies again
    from scratch: the half copy is emptied first, so no row is counted twice."""
    ctx = RenderContext(settings.database + "_half", settings.retention_days)
    db = ctx.database
    try:
        migrate(store, PREVIOUS, ctx)
        _fill_previous(store, db)
        before = _fingerprint(store, f"{db}.otel_logs", LOG_FINGERPRINT)
        migration = next(p for p in (REPO_SQL_DIR / "migrations").glob("023_*.sql"))
        store.command(render_statements(migration.read_text(), ctx)[0])  # its CREATE of otel_logs_next
        store.command(f"INSERT INTO {db}.otel_logs_next ({LOG_FINGERPRINT}) SELECT {LOG_FINGERPRINT} "
                      f"FROM {db}.otel_logs LIMIT 1000")
        migrate(store, REPO_SQL_DIR, ctx)
        assert _fingerprint(store, f"{db}.otel_logs", LOG_FINGERPRINT) == before
        assert "TimestampTime" not in _columns(store, db, "otel_logs")
    finally:
        store.command(f"DROP DATABASE IF EXISTS {db} SYNC")


def test_on_a_cluster_guards_read_the_local_table(store: Store, settings) -> None:
    """A swap interrupted between the local tables and their fronts: the local table's columns decide."""
    db = settings.database + "_guard"
    ctx = RenderContext(db, 1, cluster="fleet")
    store.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    try:
        store.command(f"CREATE TABLE {db}.otel_logs_local (Timestamp DateTime64(9)) ENGINE = MergeTree ORDER BY ()")
        store.command(f"CREATE TABLE {db}.otel_logs (Timestamp DateTime64(9), TimestampTime DateTime) "
                      "ENGINE = MergeTree ORDER BY ()")  # a front still showing the old columns
        assert not guard_holds(store, ctx, Guard("otel_logs", "TimestampTime", True))
        assert guard_holds(store, ctx, Guard("otel_logs", "TimestampTime", False))
        assert guard_holds(store, ctx, Guard("otel_traces_trace_id_ts_mv", "", False))  # no local: by name
        assert guard_holds(store, RenderContext(db, 1), Guard("otel_logs", "TimestampTime", True))  # single node
    finally:
        store.command(f"DROP DATABASE IF EXISTS {db} SYNC")
