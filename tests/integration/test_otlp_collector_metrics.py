"""Every OTLP metric type round-trips into the Collector exporter's five tables, every field checked by name.

Gauges, sums, explicit and exponential histograms (with exemplars, recorded inside a sampled span) come
from the official SDK through the official OTLP/HTTP and OTLP/gRPC exporters; summaries, which the SDK cannot produce,
are a hand-built ExportMetricsServiceRequest posted as protobuf. The exporter is wrapped to keep the batch
it sent, encoded with the exporter's own encoder, so each stored row is compared with the point that was
on the wire, and a few values are also checked against what the test recorded.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICE = "metrics-roundtrip"
DB = "fleetwatch"
COMMON = ("ResourceAttributes", "ResourceSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
          "ScopeDroppedAttrCount", "ScopeSchemaUrl", "ServiceName", "ServiceInstance", "MetricName",
          "MetricDescription", "MetricUnit", "Attributes", "StartTimeUnix", "TimeUnix", "Flags")
EXEMPLARS = ("Exemplars.FilteredAttributes", "Exemplars.TimeUnix", "Exemplars.Value", "Exemplars.SpanId",
             "Exemplars.TraceId")


class KeepingExporter(OTLPMetricExporter):
    """The official HTTP exporter, keeping what it exported."""

    sent: list[MetricsData]

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.sent = [*getattr(self, "sent", []), metrics_data]
        return super().export(metrics_data, timeout_millis, **kwargs)


class KeepingGrpcExporter(GrpcMetricExporter):
    """The official gRPC exporter, keeping what it exported."""

    sent: list[MetricsData]

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.sent = [*getattr(self, "sent", []), metrics_data]
        return super().export(metrics_data, timeout_millis, **kwargs)


def _attrs(kvs: Any) -> dict[str, str]:
    out = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        out[kv.key] = ("true" if value else "false") if kind == "bool_value" else str(value)
    return out


def _number(point: Any) -> float:
    return float(point.as_int) if point.WhichOneof("value") == "as_int" else point.as_double


def send_sdk_metrics(fw, transport: str) -> KeepingExporter | KeepingGrpcExporter:
    resource = Resource.create({"service.name": SERVICE, "service.instance.id": "rt-1", "deployment.env": "test"},
                               schema_url="https://opentelemetry.io/schemas/1.26.0")
    exporter: KeepingExporter | KeepingGrpcExporter
    if transport == "grpc":
        exporter = KeepingGrpcExporter(endpoint=fw.grpc_endpoint, insecure=True)
    else:
        exporter = KeepingExporter(endpoint=f"{fw.http_endpoint}/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource, metric_readers=[reader], views=[
        View(instrument_name="rpc.latency.exp", aggregation=ExponentialBucketHistogramAggregation(max_size=20)),
    ])
    meter = provider.get_meter("roundtrip.scope", "1.2.3", schema_url="https://example.test/scope-schema",
                               attributes={"scope.team": "runtime"})
    tracer = TracerProvider(resource=resource).get_tracer("roundtrip")
    queue = meter.create_gauge("queue.depth", unit="{item}", description="items waiting")
    requests = meter.create_counter("requests", unit="{request}", description="requests served")
    inflight = meter.create_up_down_counter("inflight", unit="{request}")
    latency = meter.create_histogram("rpc.latency", unit="ms", description="rpc latency")
    latency_exp = meter.create_histogram("rpc.latency.exp", unit="ms")
    queue.set(7, {"queue": "a"})
    queue.set(9.5, {"queue": "b"})
    with tracer.start_as_current_span("work"):  # a sampled span: measurements get exemplars
        requests.add(3, {"route": "/a", "ok": True})
        inflight.add(5)
        inflight.add(-2)
        for value in (1.0, 5.0, 50.0, 700.0):
            latency.record(value, {"method": "Get"})
        for value in (0.5, 2.0, 2.5, 0.0, 1000.0):
            latency_exp.record(value)
    provider.shutdown()
    return exporter


def summary_request() -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add(schema_url="https://opentelemetry.io/schemas/1.21.0")
    rm.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=SERVICE)))
    sm = rm.scope_metrics.add(schema_url="https://example.test/prom")
    sm.scope.name, sm.scope.version, sm.scope.dropped_attributes_count = "prometheus", "0.1", 2
    sm.scope.attributes.append(KeyValue(key="job", value=AnyValue(string_value="api")))
    metric = sm.metrics.add(name="http_request_duration_seconds", unit="s", description="a summary")
    now = time.time_ns()
    point = metric.summary.data_points.add(start_time_unix_nano=now - 60_000_000_000, time_unix_nano=now,
                                           count=10, sum=2.5, flags=0)
    point.attributes.append(KeyValue(key="handler", value=AnyValue(string_value="/x")))
    for q, v in ((0.0, 0.01), (0.5, 0.2), (0.99, 0.9), (1.0, 1.2)):
        point.quantile_values.add(quantile=q, value=v)
    stale = metric.summary.data_points.add(time_unix_nano=now + 1, flags=1)  # "no recorded value"
    stale.attributes.append(KeyValue(key="handler", value=AnyValue(string_value="/gone")))
    # Negative buckets and a zero threshold, which the SDK's histograms cannot produce.
    signed = sm.metrics.add(name="temperature.delta", unit="Cel").exponential_histogram
    signed.aggregation_temporality = 1
    point = signed.data_points.add(time_unix_nano=now, count=6, sum=-3.5, scale=1, zero_count=1,
                                   zero_threshold=0.001, min=-8.0, max=4.0)
    point.positive.offset, point.negative.offset = 2, -1
    point.positive.bucket_counts.extend([1, 1])
    point.negative.bucket_counts.extend([0, 2, 1])
    return request


def post_proto(fw, request: ExportMetricsServiceRequest) -> int:
    req = urllib.request.Request(f"{fw.http_endpoint}/v1/metrics", data=request.SerializeToString(), method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def check_common(row: dict[str, Any], rm: Any, sm: Any, metric: Any, point: Any) -> None:
    assert row["ResourceAttributes"] == _attrs(rm.resource.attributes)
    assert row["ResourceSchemaUrl"] == rm.schema_url
    assert row["ScopeName"] == sm.scope.name and row["ScopeVersion"] == sm.scope.version
    assert row["ScopeAttributes"] == _attrs(sm.scope.attributes)
    assert row["ScopeDroppedAttrCount"] == sm.scope.dropped_attributes_count
    assert row["ScopeSchemaUrl"] == sm.schema_url
    assert row["ServiceName"] == SERVICE
    assert row["MetricName"] == metric.name and row["MetricDescription"] == metric.description
    assert row["MetricUnit"] == metric.unit
    assert row["Attributes"] == _attrs(point.attributes)
    assert row["start_ns"] == point.start_time_unix_nano  # DateTime64(9), read as nanoseconds
    assert row["time_ns"] == point.time_unix_nano
    assert row["Flags"] == point.flags


def check_exemplars(row: dict[str, Any], point: Any) -> None:
    sent = list(point.exemplars)
    assert row["Exemplars.Value"] == [_number(e) for e in sent]
    assert row["exemplar_ns"] == [e.time_unix_nano for e in sent]
    assert row["Exemplars.TraceId"] == [e.trace_id.hex() for e in sent]
    assert row["Exemplars.SpanId"] == [e.span_id.hex() for e in sent]
    assert row["Exemplars.FilteredAttributes"] == [_attrs(e.filtered_attributes) for e in sent]


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_every_metric_type_round_trips_into_the_collector_tables(fleetwatch_run, transport: str) -> None:
    fw = fleetwatch_run()
    exporter = send_sdk_metrics(fw, transport)
    handbuilt = summary_request()
    assert post_proto(fw, handbuilt) == 200
    assert fw.terminate() == 0, fw.log()
    kinds = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
    ns = "toUnixTimestamp64Nano(StartTimeUnix) AS start_ns, toUnixTimestamp64Nano(TimeUnix) AS time_ns"
    exemplar_ns = ", arrayMap(t -> toUnixTimestamp64Nano(t), Exemplars.TimeUnix) AS exemplar_ns"
    got = fw.sql_many({
        kind: f"SELECT *, {ns}{exemplar_ns if kind != 'summary' else ''} FROM {DB}.otel_metrics_{kind} "
              f"WHERE ServiceName = '{SERVICE}' ORDER BY MetricName, toString(Attributes), TimeUnix"
        for kind in kinds
    } | {"runtime": f"SELECT count() AS n FROM {DB}.runtime_metrics WHERE service = '{SERVICE}'"})
    for kind in kinds:
        for row in got[kind]:  # Nested columns come back flattened under their dotted names
            assert set(COMMON) <= set(row), (kind, sorted(row))

    request = ExportMetricsServiceRequest()
    for batch in exporter.sent:
        request.MergeFrom(encode_metrics(batch))
    checked = {kind: 0 for kind in kinds}
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                rows = [r for r in got[kind] if r["MetricName"] == metric.name]
                assert len(rows) == len(data.data_points), metric.name
                for point in data.data_points:
                    row = next(r for r in rows if r["Attributes"] == _attrs(point.attributes))
                    check_common(row, rm, sm, metric, point)
                    check_exemplars(row, point)
                    assert row["ServiceInstance"] == "rt-1"
                    if kind in ("gauge", "sum"):
                        assert row["Value"] == _number(point)
                        if kind == "sum":
                            assert row["AggregationTemporality"] == data.aggregation_temporality
                            assert bool(row["IsMonotonic"]) == data.is_monotonic
                    else:
                        assert int(row["Count"]) == point.count and row["Sum"] == point.sum
                        assert (row["Min"], row["Max"]) == (point.min, point.max)
                        assert row["AggregationTemporality"] == data.aggregation_temporality
                    if kind == "histogram":
                        assert [int(c) for c in row["BucketCounts"]] == list(point.bucket_counts)
                        assert row["ExplicitBounds"] == list(point.explicit_bounds)
                    if kind == "exponential_histogram":
                        assert (row["Scale"], int(row["ZeroCount"]), row["ZeroThreshold"]) == (
                            point.scale, point.zero_count, point.zero_threshold)
                        assert row["PositiveOffset"] == point.positive.offset
                        assert [int(c) for c in row["PositiveBucketCounts"]] == list(point.positive.bucket_counts)
                        assert row["NegativeOffset"] == point.negative.offset
                        assert [int(c) for c in row["NegativeBucketCounts"]] == list(point.negative.bucket_counts)
                    checked[kind] += 1
    assert checked == {"gauge": 2, "sum": 2, "histogram": 1, "exponential_histogram": 1, "summary": 0}

    # Independently of the encoder: what the test recorded.
    by_name = {r["MetricName"]: r for kind in kinds for r in got[kind]}
    assert by_name["requests"]["Value"] == 3 and by_name["inflight"]["Value"] == 3
    hist = by_name["rpc.latency"]
    assert (int(hist["Count"]), hist["Sum"], hist["Min"], hist["Max"]) == (4, 756.0, 1.0, 700.0)
    assert len(hist["Exemplars.TraceId"]) >= 1 and all(len(t) == 32 for t in hist["Exemplars.TraceId"])
    exp = by_name["rpc.latency.exp"]
    assert int(exp["Count"]) == 5 and int(exp["ZeroCount"]) == 1
    assert sum(int(c) for c in exp["PositiveBucketCounts"]) == 4

    # The hand-built summary, the staleness marker included (kept with its flag).
    rm = handbuilt.resource_metrics[0]
    sm = rm.scope_metrics[0]
    metric = sm.metrics[0]
    summaries = got["summary"]
    assert [r["Attributes"] for r in summaries] == [{"handler": "/gone"}, {"handler": "/x"}]
    stale, row = summaries
    assert stale["Flags"] == 1 and int(stale["Count"]) == 0
    point = metric.summary.data_points[0]
    for name in ("ResourceAttributes", "ResourceSchemaUrl", "ScopeName", "ScopeVersion", "ScopeAttributes",
                 "ScopeDroppedAttrCount", "ScopeSchemaUrl", "ServiceName", "MetricName", "MetricDescription",
                 "MetricUnit"):
        assert row[name] is not None
    assert row["ResourceSchemaUrl"] == rm.schema_url and row["ScopeSchemaUrl"] == sm.schema_url
    assert row["ScopeAttributes"] == {"job": "api"} and row["ScopeDroppedAttrCount"] == 2
    assert (row["ScopeName"], row["ScopeVersion"]) == ("prometheus", "0.1")
    assert (row["MetricName"], row["MetricUnit"], row["MetricDescription"]) == (
        "http_request_duration_seconds", "s", "a summary")
    assert (int(row["Count"]), row["Sum"], row["Flags"]) == (10, 2.5, 0)
    assert row["ValueAtQuantiles.Quantile"] == [0.0, 0.5, 0.99, 1.0]
    assert row["ValueAtQuantiles.Value"] == [0.01, 0.2, 0.9, 1.2]
    assert (row["start_ns"], row["time_ns"]) == (point.start_time_unix_nano, point.time_unix_nano)
    assert point.count == 10
    signed = next(r for r in got["exponential_histogram"] if r["MetricName"] == "temperature.delta")
    assert (signed["Scale"], int(signed["ZeroCount"]), signed["ZeroThreshold"]) == (1, 1, 0.001)
    assert (signed["PositiveOffset"], signed["PositiveBucketCounts"]) == (2, [1, 1])
    assert (signed["NegativeOffset"], signed["NegativeBucketCounts"]) == (-1, [0, 2, 1])
    assert (signed["Sum"], signed["Min"], signed["Max"], signed["AggregationTemporality"]) == (-3.5, -8.0, 4.0, 1)
    assert got["runtime"] == [{"n": 0}]  # none of these is a Go runtime metric
