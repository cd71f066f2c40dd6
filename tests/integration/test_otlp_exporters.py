"""`fleetwatch run` receives what the official OpenTelemetry exporters send, over gRPC and HTTP.

One real process (its own embedded store, a bearer token) receives logs (gctrace bodies, a cancel-event
record, ordinary lines), spans with events (one a cancel-event) and metrics (a goroutine-count observable
gauge under today's name and a Prometheus-style name), from the gRPC and the HTTP exporters; it is
stopped with SIGTERM, must exit 0, and the rows are read back from its store.
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "s3cret-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def gc_line(n: int, at_s: float) -> str:
    return (f"gc {n} @{at_s:.3f}s 2%: 0.010+1.2+0.005 ms clock, 0.020+0.10/0.50/0+0.010 ms cpu, "
            f"4->5->2 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P")


def send_with_exporters(transport: str, fw, service: str) -> None:
    """Logs, spans and metrics for one service through one transport's official exporters."""
    resource = Resource.create({"service.name": service, "service.instance.id": f"{service}-1"})
    if transport == "grpc":
        log_exp = GrpcLogExporter(endpoint=fw.grpc_endpoint, insecure=True, headers=AUTH)
        span_exp = GrpcSpanExporter(endpoint=fw.grpc_endpoint, insecure=True, headers=AUTH)
        metric_exp = GrpcMetricExporter(endpoint=fw.grpc_endpoint, insecure=True, headers=AUTH)
    else:
        log_exp = HttpLogExporter(endpoint=f"{fw.http_endpoint}/v1/logs", headers=AUTH)
        span_exp = HttpSpanExporter(endpoint=f"{fw.http_endpoint}/v1/traces", headers=AUTH)
        metric_exp = HttpMetricExporter(endpoint=f"{fw.http_endpoint}/v1/metrics", headers=AUTH)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exp))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exp))
    reader = PeriodicExportingMetricReader(metric_exp, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])

    tracer = tracer_provider.get_tracer("test")
    logger = logger_provider.get_logger("test")
    start_ns = time.time_ns() - 10_000_000_000
    # Two gc lines, then an application line, each record stamped so its @seconds anchor a known start.
    logger.emit(body=gc_line(1, 0.5), timestamp=start_ns + 500_000_000)
    logger.emit(body=gc_line(2, 1.0), timestamp=start_ns + 1_000_000_000)
    logger.emit(body=f"{service}: served 10 requests", timestamp=start_ns + 1_100_000_000)
    with tracer.start_as_current_span("GET /orders", kind=trace.SpanKind.SERVER) as parent:
        parent.set_attribute("rpc.grpc.status_code", 1)
        with tracer.start_as_current_span("db.query") as child:
            child.add_event("cancel-event", {"cancel.cause": "parent_canceled", "cancel.stack_depth": 9})
        logger.emit(event_name="cancel-event", attributes={"cancel.cause": "timeout", "cancel.stack_depth": 14})
    meter = meter_provider.get_meter("test")
    meter.create_observable_up_down_counter(
        "go.goroutine.count", callbacks=[lambda _opts: [Observation(42)]], unit="{goroutine}")
    meter.create_observable_gauge("go_goroutines", callbacks=[lambda _opts: [Observation(43)]])
    meter.create_observable_gauge("queue.depth", callbacks=[lambda _opts: [Observation(7)]])
    meter_provider.shutdown()  # collects and exports once
    tracer_provider.shutdown()
    logger_provider.shutdown()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def json_logs_body(service: str, trace_hex: str, span_hex: str) -> bytes:
    now = time.time_ns()
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "host.name", "value": {"stringValue": "node-7"}},
            {"key": "process.pid", "value": {"intValue": "4242"}},
        ]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": str(now), "severityNumber": "SEVERITY_NUMBER_INFO", "body": {"stringValue": "hello"},
             "traceId": trace_hex, "spanId": span_hex},
            {"timeUnixNano": now + 1, "eventName": "cancel-event", "traceId": trace_hex, "spanId": span_hex,
             "attributes": [{"key": "cancel.cause", "value": {"stringValue": "cancelled"}},
                            {"key": "cancel.stack_depth", "value": {"intValue": 3}}]},
            {"timeUnixNano": now + 2, "eventName": "cancel-event",
             "attributes": [{"key": "cancel.cause", "value": {"stringValue": "exploded"}}]},
        ]}],
    }]}).encode()


def test_official_exporters_json_gzip_and_auth(fleetwatch_run) -> None:
    fw = fleetwatch_run({"FLEETWATCH_OTLP_TOKEN": TOKEN, "FLEETWATCH_OTLP__MAX_REQUEST_BYTES": str(1 << 20)})
    send_with_exporters("grpc", fw, "svc-grpc")
    send_with_exporters("http", fw, "svc-http")

    trace_hex, span_hex = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    status, _, body = post(f"{fw.http_endpoint}/v1/logs", json_logs_body("svc-json", trace_hex, span_hex), headers)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "cause" in answer["partialSuccess"]["errorMessage"]

    gz_body = gzip.compress(json_logs_body("svc-gzip", trace_hex, span_hex))
    status, _, _ = post(f"{fw.http_endpoint}/v1/logs", gz_body, {**headers, "Content-Encoding": "gzip"})
    assert status == 200

    wrong = {"Content-Type": "application/x-protobuf", "Authorization": "Bearer nope"}
    status, _, _ = post(f"{fw.http_endpoint}/v1/logs", b"", wrong)
    assert status == 401
    garbage = {**wrong, "Authorization": headers["Authorization"]}
    status, _, _ = post(f"{fw.http_endpoint}/v1/logs", b"\x0a\xff\xff", garbage)
    assert status == 400
    # 4 MiB of zeros compresses to a few KiB: refused once 1 MiB has been inflated.
    bomb = gzip.compress(b"\0" * (4 << 20))
    status, _, body = post(f"{fw.http_endpoint}/v1/logs", bomb,
                           {**headers, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert status == 413, body
    status, _, _ = post(f"{fw.http_endpoint}/v1/logs", b"x" * (2 << 20), headers)
    assert status == 413
    proto_ok = ExportLogsServiceResponse()
    status, _, body = post(f"{fw.http_endpoint}/v1/logs", b"", {**headers, "Content-Type": "application/x-protobuf"})
    assert status == 200 and proto_ok.ParseFromString(body) == 0

    bad_grpc = GrpcLogExporter(endpoint=fw.grpc_endpoint, insecure=True, headers={"authorization": "Bearer nope"})
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    lp = LoggerProvider(resource=Resource.create({"service.name": "intruder"}))
    results: list = []

    class Recording(SimpleLogRecordProcessor):
        def on_emit(self, log_record) -> None:
            results.append(self._exporter.export([log_record]))

    lp.add_log_record_processor(Recording(bad_grpc))
    lp.get_logger("t").emit(body="should be refused")
    assert results == [LogRecordExportResult.FAILURE]
    lp.shutdown()

    assert fw.terminate() == 0, fw.log()

    queries: dict[str, str] = {}
    for service in ("svc-grpc", "svc-http"):
        queries.update(service_queries(service))
    for service in ("svc-json", "svc-gzip"):
        queries.update(json_service_queries(service))
    queries["rejected"] = "SELECT source, signal, reason FROM fleetwatch.quarantine ORDER BY source"
    queries["intruder"] = "SELECT count() AS n FROM fleetwatch.otel_logs WHERE ServiceName = 'intruder'"
    got = fw.sql_many(queries)

    for service in ("svc-grpc", "svc-http"):
        gc = got[f"{service}/gc"]
        assert [(r["gc_num"], r["instance"]) for r in gc] == [(1, f"{service}-1"), (2, f"{service}-1")]
        assert [r["Body"] for r in got[f"{service}/logs"]] == [f"{service}: served 10 requests"]
        spans = got[f"{service}/spans"]
        assert [(s["SpanName"], s["SpanKind"], s["RpcStatusCode"], s["ServiceInstance"], s["ev"]) for s in spans] == [
            ("GET /orders", "Server", "CANCELLED", f"{service}-1", []),
            ("db.query", "Internal", "", f"{service}-1", ["cancel-event"]),
        ]
        assert len(spans[0]["TraceId"]) == 32 and spans[1]["ParentSpanId"] != ""
        cancels = got[f"{service}/cancels"]
        assert [(c["cause"], c["stack_depth"], c["operation"]) for c in cancels] == [
            ("parent_cancelled", 9, "db.query"), ("timeout", 14, "")]
        assert {c["trace_id"] for c in cancels} == {spans[0]["TraceId"]}
        metrics = got[f"{service}/metrics"]
        assert [(m["metric"], m["value"], m["source_name"]) for m in metrics] == [
            ("go.goroutine.count", 42.0, "go.goroutine.count"), ("go.goroutine.count", 43.0, "go_goroutines")]
        assert [(m["MetricName"], m["Value"]) for m in got[f"{service}/other"]] == [("queue.depth", 7.0)]
        # Go runtime metrics are also kept as sent, under the producer's names, in the Collector's tables.
        assert sorted((m["MetricName"], m["Value"]) for m in got[f"{service}/collector"]) == [
            ("go.goroutine.count", 42.0), ("go_goroutines", 43.0), ("queue.depth", 7.0)]

    for service in ("svc-json", "svc-gzip"):
        logs = got[f"{service}/logs"]
        assert [(r["Body"], r["TraceId"], r["SpanId"], r["SeverityNumber"], r["pid"]) for r in logs] == [
            ("hello", trace_hex, span_hex, 9, "4242")]
        assert got[f"{service}/cancels"] == [{"instance": "node-7:4242", "trace_id": trace_hex, "span_id": span_hex,
                                              "cause": "cancelled"}]
    rejected = got["rejected"]
    assert len(rejected) == 2 and all(r["signal"] == "otlp_logs" and "cause" in r["reason"] for r in rejected)
    assert got["intruder"] == [{"n": 0}]


def service_queries(service: str) -> dict[str, str]:
    where = f"WHERE service = '{service}'"
    return {
        f"{service}/gc": f"SELECT gc_num, instance FROM fleetwatch.gc_events {where} ORDER BY gc_num",
        f"{service}/logs": f"SELECT Body FROM fleetwatch.otel_logs WHERE ServiceName = '{service}'",
        f"{service}/spans": "SELECT SpanName, SpanKind, ParentSpanId, RpcStatusCode, ServiceInstance, "
                            "Events.Name AS ev, TraceId FROM fleetwatch.otel_traces "
                            f"WHERE ServiceName = '{service}' ORDER BY SpanName",
        f"{service}/cancels": "SELECT cause, stack_depth, operation, trace_id FROM fleetwatch.cancel_events "
                              f"{where} ORDER BY stack_depth",
        f"{service}/metrics": f"SELECT metric, value, source_name FROM fleetwatch.runtime_metrics {where} "
                              "ORDER BY source_name",
        f"{service}/other": "SELECT MetricName, Value FROM fleetwatch.otel_metrics_gauge "
                            f"WHERE ServiceName = '{service}' AND MetricName = 'queue.depth'",
        f"{service}/collector": "SELECT MetricName, Value FROM fleetwatch.otel_metrics_gauge "
                                f"WHERE ServiceName = '{service}' UNION ALL SELECT MetricName, Value "
                                f"FROM fleetwatch.otel_metrics_sum WHERE ServiceName = '{service}'",
    }


def json_service_queries(service: str) -> dict[str, str]:
    return {
        f"{service}/logs": "SELECT Body, TraceId, SpanId, SeverityNumber, ResourceAttributes['process.pid'] AS pid "
                           f"FROM fleetwatch.otel_logs WHERE ServiceName = '{service}'",
        f"{service}/cancels": "SELECT instance, trace_id, span_id, cause FROM fleetwatch.cancel_events "
                              f"WHERE service = '{service}'",
    }

def test_tiny_buffer_exporters_retry_until_everything_is_stored(fleetwatch_run) -> None:
    """With room for 5 pending rows, concurrent exporters are told 429 / RESOURCE_EXHAUSTED, back off, retry,
    and every record ends up stored exactly once; SIGTERM then exits 0."""
    from concurrent.futures import ThreadPoolExecutor

    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    fw = fleetwatch_run({"FLEETWATCH_OTLP__MAX_PENDING_ROWS": "5"})
    per_service, services = 30, [("grpc", f"tiny-grpc-{i}") for i in range(2)] + [
        ("http", f"tiny-http-{i}") for i in range(2)]

    def send(transport: str, service: str) -> None:
        if transport == "grpc":
            exporter = GrpcLogExporter(endpoint=fw.grpc_endpoint, insecure=True, timeout=60)
        else:
            exporter = HttpLogExporter(endpoint=f"{fw.http_endpoint}/v1/logs", timeout=60)
        provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=10,
                                                                  schedule_delay_millis=10))
        logger = provider.get_logger("t")
        for i in range(per_service):
            logger.emit(body=f"{service} record {i}")
        assert provider.force_flush(120_000)
        provider.shutdown()

    with ThreadPoolExecutor(len(services)) as pool:
        for fut in [pool.submit(send, t, s) for t, s in services]:
            fut.result(180)
    assert fw.terminate() == 0, fw.log()
    got = fw.sql("SELECT ServiceName AS s, count() AS n, uniqExact(Body) AS u FROM fleetwatch.otel_logs "
                 "GROUP BY s ORDER BY s")
    assert got == [{"s": s, "n": per_service, "u": per_service} for _, s in sorted(services, key=lambda x: x[1])]
