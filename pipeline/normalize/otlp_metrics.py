"""OTLP metric points -> the Collector exporter's five metric tables, and runtime_metrics for Go runtime ones.

Every point is stored as sent in the table of its type (otel_metrics_gauge, _sum, _histogram,
_exponential_histogram, _summary; layout of the OpenTelemetry Collector ClickHouse exporter, migration
025), with its exemplars, buckets, quantiles, scope, schema URLs, flags and start time, so queries and
dashboards written for a Collector work unchanged and nothing OTLP carries is lost.

Go runtime metrics are, in addition, written to runtime_metrics under one canonical name per signal
(go_metrics.py), which is what the detections read: gauge and sum points give their value, converted to
the canonical unit. Histograms and summaries (GC pauses, scheduling latency) give up to three rows there:
`<name>.count`, `<name>.sum` and, when the producer sends it, `<name>.max` (a summary's quantile 1).
Points flagged "no recorded value" (staleness markers) are kept in the Collector tables with their flag,
and skipped for runtime_metrics, where they would read as zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from pipeline.normalize import go_metrics
from pipeline.normalize.otlp_common import (
    Context,
    OtlpResult,
    attributes,
    hex_id,
    identity,
    quarantine_message,
    storable_ns,
)

RUNTIME_TABLE = "runtime_metrics"
RUNTIME_COLUMNS = (
    "service", "instance", "ts", "metric", "value", "unit", "source_name", "attributes", "process_start",
    "received_at",
)
TABLES = {
    "gauge": "otel_metrics_gauge",
    "sum": "otel_metrics_sum",
    "histogram": "otel_metrics_histogram",
    "exponential_histogram": "otel_metrics_exponential_histogram",
    "summary": "otel_metrics_summary",
}
_COMMON = (
    "ResourceAttributes", "ResourceSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
    "ScopeDroppedAttrCount", "ScopeSchemaUrl", "ServiceName", "ServiceInstance", "MetricName", "MetricDescription",
    "MetricUnit", "Attributes", "StartTimeUnix", "TimeUnix", "Flags", "received_at",
)
_EXEMPLARS = (
    "Exemplars.FilteredAttributes", "Exemplars.TimeUnix", "Exemplars.Value", "Exemplars.SpanId",
    "Exemplars.TraceId",
)
COLUMNS = {
    "gauge": _COMMON + _EXEMPLARS + ("Value",),
    "sum": _COMMON + _EXEMPLARS + ("Value", "AggregationTemporality", "IsMonotonic"),
    "histogram": _COMMON + _EXEMPLARS + (
        "Count", "Sum", "BucketCounts", "ExplicitBounds", "Min", "Max", "AggregationTemporality",
    ),
    "exponential_histogram": _COMMON + _EXEMPLARS + (
        "Count", "Sum", "Scale", "ZeroCount", "ZeroThreshold", "PositiveOffset", "PositiveBucketCounts",
        "NegativeOffset", "NegativeBucketCounts", "Min", "Max", "AggregationTemporality",
    ),
    "summary": (*_COMMON, "Count", "Sum", "ValueAtQuantiles.Quantile", "ValueAtQuantiles.Value"),
}
_NO_RECORDED_VALUE = 1  # DataPointFlags.FLAG_NO_RECORDED_VALUE: a staleness marker, not a value
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_EPOCH = datetime.fromtimestamp(0, UTC)
_NAN = math.nan


def _number(point: Any) -> float:
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


def _process_start(point: Any, cumulative: bool) -> datetime:
    """A cumulative point's start time is when its counting began: the process start, give or take."""
    if cumulative and storable_ns(point.start_time_unix_nano):
        return datetime.fromtimestamp(point.start_time_unix_nano / 1e9, UTC)
    return _EPOCH


def normalize_metrics(request: ExportMetricsServiceRequest, ctx: Context) -> OtlpResult:
    result = OtlpResult()
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        service, instance = identity(resource)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            origin = Origin(
                service=service, instance=instance, resource=resource, resource_schema_url=resource_metrics.schema_url,
                scope_name=scope.name, scope_version=scope.version,
                scope_attributes=attributes(scope.attributes) if scope.attributes else {},
                scope_dropped=scope.dropped_attributes_count, scope_schema_url=scope_metrics.schema_url,
            )
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    quarantine_message(ctx, "metrics", "metric has no data (gauge, sum, histogram, ...)", metric,
                                       service=service, instance=instance)
                    result.rejected += 1
                    result.error_message = result.error_message or "metrics without data were rejected"
                    continue
                monotonic = kind == "sum" and metric.sum.is_monotonic
                found = go_metrics.lookup(metric.name, metric.unit, monotonic_sum=monotonic)
                point_attributes = [
                    attributes(p.attributes) if p.attributes else {} for p in getattr(metric, kind).data_points
                ]
                if found is not None:
                    _runtime_points(metric, kind, found, service, instance, point_attributes, ctx)
                result.accepted += _collector_points(metric, kind, origin, point_attributes, ctx)
    return result


def _runtime_points(
    metric: Metric, kind: str, found: tuple[go_metrics.Canonical, float], service: str, instance: str,
    point_attributes: list[dict[str, str]], ctx: Context,
) -> int:
    canonical, scale = found
    cols = ctx.rows.columns(RUNTIME_TABLE, RUNTIME_COLUMNS)
    data = getattr(metric, kind)
    cumulative = getattr(data, "aggregation_temporality", 0) == _CUMULATIVE

    def add(point: Any, name: str, value: float, unit: str, attrs: dict[str, str]) -> None:
        cols["service"].append(service)
        cols["instance"].append(instance)
        cols["ts"].append(storable_ns(point.time_unix_nano) or ctx.received_ns)
        cols["metric"].append(name)
        cols["value"].append(value)
        cols["unit"].append(unit)
        cols["source_name"].append(metric.name)
        cols["attributes"].append(attrs)
        cols["process_start"].append(_process_start(point, cumulative))
        cols["received_at"].append(ctx.received_at)

    points = 0
    for point, attrs in zip(data.data_points, point_attributes, strict=True):
        if point.flags & _NO_RECORDED_VALUE:
            continue
        points += 1
        if kind in ("gauge", "sum"):
            add(point, canonical.name, _number(point) * scale, canonical.unit, attrs)
            continue
        add(point, canonical.name + ".count", float(point.count), "1", attrs)
        add(point, canonical.name + ".sum", point.sum * scale, canonical.unit, attrs)
        high = _max_of(point, kind)
        if not math.isnan(high):
            add(point, canonical.name + ".max", high * scale, canonical.unit, attrs)
    return points


def _max_of(point: Any, kind: str) -> float:
    if kind == "summary":
        for q in point.quantile_values:
            if q.quantile == 1.0:
                return q.value
        return _NAN
    return point.max if point.HasField("max") else _NAN


@dataclass(frozen=True)
class Origin:
    """The resource and scope a metric came from: the same on every point of the scope."""

    service: str
    instance: str
    resource: dict[str, str]
    resource_schema_url: str
    scope_name: str
    scope_version: str
    scope_attributes: dict[str, str]
    scope_dropped: int
    scope_schema_url: str


def _exemplars(points: Any, cols: dict[str, list[Any]]) -> None:
    if not any(p.exemplars for p in points):
        empty: list[list[Any]] = [[] for _ in points]
        for name in ("Exemplars.FilteredAttributes", "Exemplars.TimeUnix", "Exemplars.Value", "Exemplars.SpanId",
                     "Exemplars.TraceId"):
            cols[name].extend(empty)
        return
    for point in points:
        exemplars = point.exemplars
        cols["Exemplars.FilteredAttributes"].append([attributes(e.filtered_attributes) for e in exemplars])
        cols["Exemplars.TimeUnix"].append([storable_ns(e.time_unix_nano) for e in exemplars])
        cols["Exemplars.Value"].append([_number(e) for e in exemplars])
        cols["Exemplars.SpanId"].append([hex_id(e.span_id) for e in exemplars])
        cols["Exemplars.TraceId"].append([hex_id(e.trace_id) for e in exemplars])


def _optional(point: Any, name: str) -> float:
    """An optional double (histogram sum, min, max): NaN when the producer did not send it."""
    return float(getattr(point, name)) if point.HasField(name) else _NAN


def _collector_points(
    metric: Metric, kind: str, origin: Origin, point_attributes: list[dict[str, str]], ctx: Context
) -> int:
    """Every point of one metric, as sent, into the Collector table of its type.

    What is the same for every point of the metric (resource, scope, name) is extended in one go rather
    than appended point by point: this runs for every point OTLP delivers.
    """
    cols = ctx.rows.columns(TABLES[kind], COLUMNS[kind])
    data = getattr(metric, kind)
    points = data.data_points
    n = len(points)
    for name, value in (
        ("ResourceAttributes", origin.resource), ("ResourceSchemaUrl", origin.resource_schema_url),
        ("ScopeName", origin.scope_name), ("ScopeVersion", origin.scope_version),
        ("ScopeAttributes", origin.scope_attributes), ("ScopeDroppedAttrCount", origin.scope_dropped),
        ("ScopeSchemaUrl", origin.scope_schema_url), ("ServiceName", origin.service),
        ("ServiceInstance", origin.instance), ("MetricName", metric.name),
        ("MetricDescription", metric.description), ("MetricUnit", metric.unit), ("received_at", ctx.received_at),
    ):
        cols[name].extend([value] * n)
    received_ns = ctx.received_ns
    cols["Attributes"].extend(point_attributes)
    cols["StartTimeUnix"].extend([storable_ns(p.start_time_unix_nano) for p in points])
    cols["TimeUnix"].extend([storable_ns(p.time_unix_nano) or received_ns for p in points])
    cols["Flags"].extend([p.flags for p in points])
    if kind == "summary":
        cols["Count"].extend([p.count for p in points])
        cols["Sum"].extend([p.sum for p in points])
        cols["ValueAtQuantiles.Quantile"].extend([[q.quantile for q in p.quantile_values] for p in points])
        cols["ValueAtQuantiles.Value"].extend([[q.value for q in p.quantile_values] for p in points])
        return n
    _exemplars(points, cols)
    if kind in ("gauge", "sum"):
        cols["Value"].extend([_number(p) for p in points])
        if kind == "sum":
            cols["AggregationTemporality"].extend([int(data.aggregation_temporality)] * n)
            cols["IsMonotonic"].extend([bool(data.is_monotonic)] * n)
        return n
    cols["Count"].extend([p.count for p in points])
    cols["Sum"].extend([_optional(p, "sum") for p in points])
    cols["Min"].extend([_optional(p, "min") for p in points])
    cols["Max"].extend([_optional(p, "max") for p in points])
    cols["AggregationTemporality"].extend([int(data.aggregation_temporality)] * n)
    if kind == "histogram":
        cols["BucketCounts"].extend([list(p.bucket_counts) for p in points])
        cols["ExplicitBounds"].extend([list(p.explicit_bounds) for p in points])
        return n
    cols["Scale"].extend([p.scale for p in points])
    cols["ZeroCount"].extend([p.zero_count for p in points])
    cols["ZeroThreshold"].extend([p.zero_threshold for p in points])
    cols["PositiveOffset"].extend([p.positive.offset for p in points])
    cols["PositiveBucketCounts"].extend([list(p.positive.bucket_counts) for p in points])
    cols["NegativeOffset"].extend([p.negative.offset for p in points])
    cols["NegativeBucketCounts"].extend([list(p.negative.bucket_counts) for p in points])
    return n
