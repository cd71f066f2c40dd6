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
from pipeline.normalize.otlp import OtlpResult, quarantine_message
from pipeline.normalize.otlp_common import Context, attributes, hex_id, identity, storable_ns

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
                if found is not None:
                    _runtime_points(metric, kind, found, service, instance, ctx)
                result.accepted += _collector_points(metric, kind, origin, ctx)
    return result


def _runtime_points(
    metric: Metric, kind: str, found: tuple[go_metrics.Canonical, float], service: str, instance: str,
    ctx: Context,
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
    for point in data.data_points:
        if point.flags & _NO_RECORDED_VALUE:
            continue
        points += 1
        attrs = attributes(point.attributes) if point.attributes else {}
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


def _exemplars(point: Any, cols: dict[str, list[Any]]) -> None:
    exemplars = point.exemplars
    cols["Exemplars.FilteredAttributes"].append([attributes(e.filtered_attributes) for e in exemplars])
    cols["Exemplars.TimeUnix"].append([storable_ns(e.time_unix_nano) for e in exemplars])
    cols["Exemplars.Value"].append([_number(e) for e in exemplars])
    cols["Exemplars.SpanId"].append([hex_id(e.span_id) for e in exemplars])
    cols["Exemplars.TraceId"].append([hex_id(e.trace_id) for e in exemplars])


def _optional(point: Any, name: str) -> float:
    """An optional double (histogram sum, min, max): NaN when the producer did not send it."""
    return float(getattr(point, name)) if point.HasField(name) else _NAN


def _collector_points(metric: Metric, kind: str, origin: Origin, ctx: Context) -> int:
    """Every point of one metric, as sent, into the Collector table of its type."""
    cols = ctx.rows.columns(TABLES[kind], COLUMNS[kind])
    data = getattr(metric, kind)
    temporality = int(getattr(data, "aggregation_temporality", 0))
    for point in data.data_points:
        cols["ResourceAttributes"].append(origin.resource)
        cols["ResourceSchemaUrl"].append(origin.resource_schema_url)
        cols["ScopeName"].append(origin.scope_name)
        cols["ScopeVersion"].append(origin.scope_version)
        cols["ScopeAttributes"].append(origin.scope_attributes)
        cols["ScopeDroppedAttrCount"].append(origin.scope_dropped)
        cols["ScopeSchemaUrl"].append(origin.scope_schema_url)
        cols["ServiceName"].append(origin.service)
        cols["ServiceInstance"].append(origin.instance)
        cols["MetricName"].append(metric.name)
        cols["MetricDescription"].append(metric.description)
        cols["MetricUnit"].append(metric.unit)
        cols["Attributes"].append(attributes(point.attributes) if point.attributes else {})
        cols["StartTimeUnix"].append(storable_ns(point.start_time_unix_nano))
        cols["TimeUnix"].append(storable_ns(point.time_unix_nano) or ctx.received_ns)
        cols["Flags"].append(point.flags)
        cols["received_at"].append(ctx.received_at)
        if kind == "summary":
            cols["Count"].append(point.count)
            cols["Sum"].append(point.sum)
            cols["ValueAtQuantiles.Quantile"].append([q.quantile for q in point.quantile_values])
            cols["ValueAtQuantiles.Value"].append([q.value for q in point.quantile_values])
            continue
        _exemplars(point, cols)
        if kind in ("gauge", "sum"):
            cols["Value"].append(_number(point))
            if kind == "sum":
                cols["AggregationTemporality"].append(temporality)
                cols["IsMonotonic"].append(bool(data.is_monotonic))
            continue
        cols["Count"].append(point.count)
        cols["Sum"].append(_optional(point, "sum"))
        cols["Min"].append(_optional(point, "min"))
        cols["Max"].append(_optional(point, "max"))
        cols["AggregationTemporality"].append(temporality)
        if kind == "histogram":
            cols["BucketCounts"].append(list(point.bucket_counts))
            cols["ExplicitBounds"].append(list(point.explicit_bounds))
        else:
            cols["Scale"].append(point.scale)
            cols["ZeroCount"].append(point.zero_count)
            cols["ZeroThreshold"].append(point.zero_threshold)
            cols["PositiveOffset"].append(point.positive.offset)
            cols["PositiveBucketCounts"].append(list(point.positive.bucket_counts))
            cols["NegativeOffset"].append(point.negative.offset)
            cols["NegativeBucketCounts"].append(list(point.negative.bucket_counts))
    return len(data.data_points)
