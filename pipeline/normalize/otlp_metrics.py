"""OTLP metric points -> runtime_metrics (Go runtime, canonical names) or otel_metrics (everything else).

runtime_metrics holds one row per point: gauge and sum points give their value, converted to the
canonical unit (go_metrics.py). Histograms and summaries (GC pauses, scheduling latency) give up to
three rows: `<name>.count`, `<name>.sum` and, when the producer sends it, `<name>.max` (a summary's
quantile 1). Bucket counts are not kept there: the detections only need rates and totals, and a
histogram with its buckets is in otel_metrics only when it is not a runtime metric.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from pipeline.normalize import go_metrics
from pipeline.normalize.otlp_common import Context, OtlpResult, attributes, identity, quarantine_message, storable_ns

RUNTIME_TABLE = "runtime_metrics"
RUNTIME_COLUMNS = (
    "service", "instance", "ts", "metric", "value", "unit", "source_name", "attributes", "process_start",
    "received_at",
)
OTHER_TABLE = "otel_metrics"
OTHER_COLUMNS = (
    "ServiceName", "ServiceInstance", "MetricName", "MetricDescription", "MetricUnit", "MetricType", "Attributes",
    "ResourceAttributes", "ScopeName", "ScopeVersion", "StartTimeUnix", "TimeUnix", "Value", "Count", "Sum", "Min",
    "Max", "BucketCounts", "ExplicitBounds", "AggregationTemporality", "IsMonotonic", "Flags", "received_at",
)
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
                    result.accepted += _runtime_points(metric, kind, found, service, instance, ctx)
                else:
                    result.accepted += _other_points(metric, kind, service, instance, resource,
                                                     scope.name, scope.version, ctx)
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


def _other_points(
    metric: Metric, kind: str, service: str, instance: str, resource: dict[str, str], scope_name: str,
    scope_version: str, ctx: Context,
) -> int:
    cols = ctx.rows.columns(OTHER_TABLE, OTHER_COLUMNS)
    data = getattr(metric, kind)
    temporality = int(getattr(data, "aggregation_temporality", 0))
    monotonic = bool(getattr(data, "is_monotonic", False))
    points = 0
    for point in data.data_points:
        if point.flags & _NO_RECORDED_VALUE:
            continue
        points += 1
        bucket_counts: list[int] = []
        bounds: list[float] = []
        low = high = _NAN
        if kind in ("gauge", "sum"):
            value = _number(point)
            count, total = 0, 0.0
        else:
            count, total = point.count, point.sum if kind == "summary" or point.HasField("sum") else _NAN
            value = total
            if kind == "summary":
                for q in point.quantile_values:
                    if q.quantile == 0.0:
                        low = q.value
                    elif q.quantile == 1.0:
                        high = q.value
            else:
                low = point.min if point.HasField("min") else _NAN
                high = point.max if point.HasField("max") else _NAN
                if kind == "histogram":
                    bucket_counts = list(point.bucket_counts)
                    bounds = list(point.explicit_bounds)
        cols["ServiceName"].append(service)
        cols["ServiceInstance"].append(instance)
        cols["MetricName"].append(metric.name)
        cols["MetricDescription"].append(metric.description)
        cols["MetricUnit"].append(metric.unit)
        cols["MetricType"].append(kind)
        cols["Attributes"].append(attributes(point.attributes) if point.attributes else {})
        cols["ResourceAttributes"].append(resource)
        cols["ScopeName"].append(scope_name)
        cols["ScopeVersion"].append(scope_version)
        cols["StartTimeUnix"].append(storable_ns(point.start_time_unix_nano))
        cols["TimeUnix"].append(storable_ns(point.time_unix_nano) or ctx.received_ns)
        cols["Value"].append(value)
        cols["Count"].append(count)
        cols["Sum"].append(total)
        cols["Min"].append(low)
        cols["Max"].append(high)
        cols["BucketCounts"].append(bucket_counts)
        cols["ExplicitBounds"].append(bounds)
        cols["AggregationTemporality"].append(temporality)
        cols["IsMonotonic"].append(monotonic)
        cols["Flags"].append(point.flags)
        cols["received_at"].append(ctx.received_at)
    return points
