"""The OTLP normalizer on its own: decoding (protobuf and OTLP/JSON) and the mapping of each signal to rows."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from pipeline.normalize import go_metrics
from pipeline.normalize.otlp import OtlpDecodeError, decode_request, normalize_request
from pipeline.normalize.otlp_common import any_value_str, identity
from pipeline.normalize.otlp_traces import rpc_status_name
from pipeline.normalize.rows import Rows

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NOW_NS = int(NOW.timestamp()) * 10**9
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def normalize(signal, request) -> tuple[Rows, object]:
    rows = Rows()
    result = normalize_request(signal, request, rows=rows, source="test", received_at=NOW)
    return rows, result


def test_json_ids_are_hex_enums_names_or_numbers_int64_strings_or_numbers() -> None:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": TRACE.upper(), "spanId": SPAN, "parentSpanId": "", "name": "a", "kind": "SPAN_KIND_CLIENT",
         "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": NOW_NS + 7, "status": {"code": 2},
         "links": [{"traceId": TRACE, "spanId": SPAN}], "unknownField": 1},
        {"traceId": TRACE, "spanId": "1111111111111111", "name": "b", "kind": 2,
         "startTimeUnixNano": NOW_NS, "endTimeUnixNano": str(NOW_NS + 9), "status": {"code": "STATUS_CODE_OK"}},
    ]}]}]}
    request = decode_request("traces", json.dumps(doc).encode(), "json")
    rows, result = normalize("traces", request)
    assert (result.accepted, result.rejected) == (2, 0)
    cols = rows.tables["otel_traces"]
    assert cols["TraceId"] == [TRACE, TRACE]
    assert cols["SpanId"] == [SPAN, "1111111111111111"]
    assert cols["SpanKind"] == ["Client", "Server"]
    assert cols["StatusCode"] == ["Error", "Ok"]
    assert cols["Duration"] == [7, 9]
    assert cols["Links.SpanId"][0] == [SPAN]


def test_span_keeps_what_the_exporter_table_has_no_column_for() -> None:
    doc = {"resourceSpans": [{"schemaUrl": "https://opentelemetry.io/schemas/1.26.0", "scopeSpans": [{
        "schemaUrl": "https://example.test/s", "scope": {"name": "lib", "version": "2",
                                                         "attributes": [{"key": "k", "value": {"intValue": 3}}]},
        "spans": [{"traceId": TRACE, "spanId": SPAN, "name": "a", "flags": 769, "droppedAttributesCount": 2,
                   "droppedEventsCount": 3, "droppedLinksCount": 4, "startTimeUnixNano": NOW_NS,
                   "endTimeUnixNano": NOW_NS + 1}]}]}]}
    rows, _ = normalize("traces", decode_request("traces", json.dumps(doc).encode(), "json"))
    cols = rows.tables["otel_traces"]
    assert (cols["ResourceSchemaUrl"], cols["ScopeSchemaUrl"]) == (
        ["https://opentelemetry.io/schemas/1.26.0"], ["https://example.test/s"])
    assert (cols["ScopeName"], cols["ScopeVersion"], cols["ScopeAttributes"]) == (["lib"], ["2"], [{"k": "3"}])
    assert (cols["SpanFlags"], cols["DroppedAttributesCount"], cols["DroppedEventsCount"],
            cols["DroppedLinksCount"]) == ([769], [2], [3], [4])


@pytest.mark.parametrize(("body", "encoding", "needle"), [
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}', "json", "not hex"),
    (b"[1, 2]", "json", "object"),
    (b"{not json", "json", "invalid JSON"),
    (b'{"resourceLogs": 5}', "json", "OTLP/JSON"),
    (b"\x0a\xff\xff\xff", "proto", "protobuf"),
])
def test_undecodable_bodies_raise_with_a_reason(body: bytes, encoding: str, needle: str) -> None:
    with pytest.raises(OtlpDecodeError, match=needle):
        decode_request("traces" if b"Spans" in body else "logs", body, encoding)


def test_identity_falls_back_to_host_and_pid() -> None:
    assert identity({"service.name": "api", "service.instance.id": "i-1", "host.name": "h"}) == ("api", "i-1")
    assert identity({"service.name": "api", "host.name": "h", "process.pid": "12"}) == ("api", "h:12")
    assert identity({"host.name": "h"}) == ("unknown_service", "h")


def test_any_value_text_forms() -> None:
    assert any_value_str(AnyValue(bool_value=True)) == "true"
    assert any_value_str(AnyValue(int_value=-3)) == "-3"
    assert any_value_str(AnyValue(double_value=0.5)) == "0.5"
    arr = AnyValue()
    arr.array_value.values.add(string_value="a")
    arr.array_value.values.add(int_value=2)
    assert any_value_str(arr) == '["a",2]'


@pytest.mark.parametrize(("attrs", "expected"), [
    ({"rpc.grpc.status_code": "4"}, "DEADLINE_EXCEEDED"),
    ({"rpc.response.status_code": "cancelled"}, "CANCELLED"),
    ({"rpc.response.status_code": "CANCELED"}, "CANCELLED"),
    ({"rpc.status_code": "1"}, "CANCELLED"),
    ({"rpc.grpc.status_code": "0", "rpc.status_code": "4"}, "OK"),
    ({"rpc.response.status_code": "-32600"}, "-32600"),
    ({}, ""),
])
def test_rpc_status_code_from_each_historical_attribute(attrs: dict[str, str], expected: str) -> None:
    assert rpc_status_name(attrs) == expected


def logs_request(records: list[dict], resource: list[KeyValue] | None = None) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(resource or [kv("service.name", string_value="api"),
                                               kv("service.instance.id", string_value="i-1")])
    sl = rl.scope_logs.add()
    for rec in records:
        sl.log_records.add(**rec)
    return request


def test_cancel_event_log_records_valid_and_invalid() -> None:
    good = {
        "time_unix_nano": NOW_NS, "event_name": "cancel-event", "trace_id": bytes.fromhex(TRACE),
        "span_id": bytes.fromhex(SPAN),
        "attributes": [kv("cancel.cause", string_value="deadline_exceeded"), kv("cancel.stack_depth", int_value=5),
                       kv("http.route", string_value="/x")],
    }
    by_attribute = {
        "observed_time_unix_nano": NOW_NS + 1,
        "attributes": [kv("event.name", string_value="cancel-event"), kv("trace_id", string_value=TRACE),
                       kv("span_id", string_value=SPAN), kv("cancel.cause", string_value="parent_canceled"),
                       kv("cancel.stack_depth", string_value="2")],
    }
    bad = {"time_unix_nano": NOW_NS, "event_name": "cancel-event",
           "attributes": [kv("cancel.cause", string_value="boom")]}
    rows, result = normalize("logs", logs_request([good, by_attribute, bad]))
    assert (result.accepted, result.rejected) == (2, 1)
    assert "trace_id" in result.error_message and "cause" in result.error_message
    cols = rows.tables["cancel_events"]
    assert cols["cause"] == ["timeout", "parent_cancelled"]
    assert cols["cancel_at"] == [NOW_NS, NOW_NS + 1]
    assert cols["trace_id"] == [TRACE, TRACE] and cols["instance"] == ["i-1", "i-1"]
    assert cols["attributes"][0] == {"http.route": "/x"}
    assert rows.tables["quarantine"]["signal"] == ["otlp_logs"]
    assert "otel_logs" not in rows.tables


def test_other_log_records_keep_their_metadata() -> None:
    rec = {"time_unix_nano": NOW_NS, "severity_text": "WARN", "severity_number": 13,
           "body": AnyValue(string_value="disk almost full"), "trace_id": bytes.fromhex(TRACE),
           "span_id": bytes.fromhex(SPAN), "flags": 1, "attributes": [kv("k", int_value=3)]}
    kv_body = {"observed_time_unix_nano": NOW_NS + 5}
    rows, result = normalize("logs", logs_request([rec, kv_body]))
    assert (result.accepted, result.rejected) == (2, 0)
    cols = rows.tables["otel_logs"]
    assert cols["Body"] == ["disk almost full", ""]
    assert cols["Timestamp"] == [NOW_NS, NOW_NS + 5]
    assert cols["ObservedTimestamp"] == [0, NOW_NS + 5]  # as sent: 0 when the record has none
    assert cols["SeverityNumber"][0] == 13 and cols["TraceId"][0] == TRACE and cols["TraceFlags"][0] == 1
    assert cols["LogAttributes"][0] == {"k": "3"}
    assert cols["ResourceAttributes"][0]["service.instance.id"] == "i-1"


def test_runtime_log_bodies_become_gc_events_and_app_lines_stay_logs() -> None:
    start = NOW_NS
    line = ("gc 7 @2.000s 1%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, "
            "0 MB stacks, 0 MB globals, 2 P")
    records = [
        {"time_unix_nano": start + 2_001_020_000, "body": AnyValue(string_value=line)},
        {"time_unix_nano": start + 2_100_000_000, "body": AnyValue(string_value="app: hello")},
    ]
    rows, result = normalize("logs", logs_request(records))
    assert result.accepted == 2 and result.rejected == 0
    gc = rows.tables["gc_events"]
    assert gc["gc_num"] == [7]
    assert rows.tables["otel_logs"]["Body"] == ["app: hello"]


def test_log_rows_keep_their_own_record_and_scope_across_scopes_and_mixed_bodies() -> None:
    """otel_logs rows are built column by column: each row must still carry its own record's and scope's fields,
    whatever mix of runtime lines, application lines, blank and non-string bodies comes before it."""
    gc = ("gc 7 @2.000s 1%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, "
          "0 MB stacks, 0 MB globals, 2 P")
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add(schema_url="rs")
    rl.resource.attributes.extend([kv("service.name", string_value="api")])
    first = rl.scope_logs.add(schema_url="u1")
    first.scope.name, first.scope.version = "lib-a", "1"
    first.log_records.add(time_unix_nano=NOW_NS + 1, body=AnyValue(string_value=gc))
    first.log_records.add(time_unix_nano=NOW_NS + 2, body=AnyValue(string_value=f"app one\n{gc}\napp two"),
                          severity_text="INFO", attributes=[kv("k", string_value="a")])
    first.log_records.add(time_unix_nano=NOW_NS + 3, body=AnyValue(int_value=42), span_id=bytes.fromhex(SPAN))
    second = rl.scope_logs.add(schema_url="u2")
    second.scope.name = "lib-b"
    second.scope.attributes.extend([kv("s", bool_value=True)])
    second.log_records.add(time_unix_nano=NOW_NS + 4, body=AnyValue(string_value="  "), severity_number=300)
    second.log_records.add(time_unix_nano=NOW_NS + 5, body=AnyValue(string_value="whole\nrecord\n"),
                           trace_id=bytes.fromhex(TRACE), event_name="e")
    rows, result = normalize("logs", request)
    assert (result.accepted, result.rejected) == (5, 0)
    assert rows.tables["gc_events"]["gc_num"] == [7, 7]
    cols = rows.tables["otel_logs"]
    assert {len(values) for values in cols.values()} == {5}
    got = [{name: cols[name][i] for name in ("Timestamp", "Body", "ScopeName", "ScopeVersion", "ScopeSchemaUrl",
                                             "ScopeAttributes", "LogAttributes", "SeverityText", "SeverityNumber",
                                             "SpanId", "TraceId", "EventName", "ResourceSchemaUrl")}
           for i in range(5)]
    a = {"ScopeName": "lib-a", "ScopeVersion": "1", "ScopeSchemaUrl": "u1", "ScopeAttributes": {},
         "ResourceSchemaUrl": "rs"}
    b = {"ScopeName": "lib-b", "ScopeVersion": "", "ScopeSchemaUrl": "u2", "ScopeAttributes": {"s": "true"},
         "ResourceSchemaUrl": "rs"}
    plain = {"LogAttributes": {}, "SeverityText": "", "SeverityNumber": 0, "SpanId": "", "TraceId": "", "EventName": ""}
    mixed = {**plain, "LogAttributes": {"k": "a"}, "SeverityText": "INFO", "Timestamp": NOW_NS + 2}
    assert got == [
        {**a, **mixed, "Body": "app one"},
        {**a, **mixed, "Body": "app two"},
        {**a, **plain, "Timestamp": NOW_NS + 3, "Body": "42", "SpanId": SPAN},
        {**b, **plain, "Timestamp": NOW_NS + 4, "Body": "  "},
        {**b, **plain, "Timestamp": NOW_NS + 5, "Body": "whole\nrecord\n", "TraceId": TRACE, "EventName": "e"},
    ]
    assert all(r["service.name"] == "api" for r in cols["ResourceAttributes"])


def metric_request(metrics: list[metrics_pb2.Metric]) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend([kv("service.name", string_value="api"), kv("host.name", string_value="h"),
                                   kv("process.pid", int_value=9)])
    rm.scope_metrics.add().metrics.extend(metrics)
    return request


def test_go_runtime_metrics_from_every_vocabulary_land_under_canonical_names() -> None:
    gauge = metrics_pb2.Metric(name="go_goroutines")
    gauge.gauge.data_points.add(time_unix_nano=NOW_NS, as_double=12)
    deprecated = metrics_pb2.Metric(name="process.runtime.go.goroutines")
    deprecated.sum.data_points.add(time_unix_nano=NOW_NS, as_int=13)
    pause_total = metrics_pb2.Metric(name="process.runtime.go.gc.pause_total_ns", unit="ns")
    pause_total.sum.is_monotonic = True
    pause_total.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    pause_total.sum.data_points.add(time_unix_nano=NOW_NS, start_time_unix_nano=NOW_NS - 10**10, as_int=2_500_000)
    pauses = metrics_pb2.Metric(name="process.runtime.go.gc.pause_ns")  # no unit: older contrib releases
    pauses.histogram.data_points.add(time_unix_nano=NOW_NS, count=4, sum=4_000_000, max=2_000_000)
    summary = metrics_pb2.Metric(name="go_gc_duration_seconds")
    point = summary.summary.data_points.add(time_unix_nano=NOW_NS, count=3, sum=0.003)
    point.quantile_values.add(quantile=1.0, value=0.002)
    allocs = metrics_pb2.Metric(name="go_memstats_alloc_bytes")  # Prometheus receiver dropped `_total`
    allocs.sum.is_monotonic = True
    allocs.sum.data_points.add(time_unix_nano=NOW_NS, as_double=1e9)
    memory = metrics_pb2.Metric(name="go.memory.used", unit="By")
    memory.sum.data_points.add(time_unix_nano=NOW_NS, as_int=1024,
                               attributes=[kv("go.memory.type", string_value="stack")])
    other = metrics_pb2.Metric(name="http.server.duration", unit="ms")
    other.histogram.data_points.add(time_unix_nano=NOW_NS, count=2, sum=30, bucket_counts=[1, 1], explicit_bounds=[10])
    empty = metrics_pb2.Metric(name="nothing")
    rows, result = normalize("metrics", metric_request(
        [gauge, deprecated, pause_total, pauses, summary, allocs, memory, other, empty]))
    assert (result.accepted, result.rejected) == (8, 1)
    cols = rows.tables["runtime_metrics"]
    got = list(zip(cols["metric"], cols["value"], cols["unit"], cols["source_name"], strict=True))
    assert got[:3] == [
        ("go.goroutine.count", 12.0, "{goroutine}", "go_goroutines"),
        ("go.goroutine.count", 13.0, "{goroutine}", "process.runtime.go.goroutines"),
        ("go.memory.gc.pause.duration.sum", pytest.approx(0.0025), "s", "process.runtime.go.gc.pause_total_ns"),
    ]
    assert got[3:6] == [
        ("go.memory.gc.pause.duration.count", 4.0, "1", "process.runtime.go.gc.pause_ns"),
        ("go.memory.gc.pause.duration.sum", pytest.approx(0.004), "s", "process.runtime.go.gc.pause_ns"),
        ("go.memory.gc.pause.duration.max", pytest.approx(0.002), "s", "process.runtime.go.gc.pause_ns"),
    ]
    assert got[6:9] == [
        ("go.memory.gc.pause.duration.count", 3.0, "1", "go_gc_duration_seconds"),
        ("go.memory.gc.pause.duration.sum", 0.003, "s", "go_gc_duration_seconds"),
        ("go.memory.gc.pause.duration.max", 0.002, "s", "go_gc_duration_seconds"),
    ]
    assert got[9:] == [("go.memory.allocated", 1e9, "By", "go_memstats_alloc_bytes"),
                       ("go.memory.used", 1024.0, "By", "go.memory.used")]
    assert cols["attributes"][-1] == {"go.memory.type": "stack"}
    assert set(cols["instance"]) == {"h:9"}
    assert cols["process_start"][2] == datetime.fromtimestamp((NOW_NS - 10**10) / 1e9, UTC)
    # Every point is also stored as sent in the Collector table of its type, runtime metrics included.
    histograms = rows.tables["otel_metrics_histogram"]
    assert histograms["MetricName"] == ["process.runtime.go.gc.pause_ns", "http.server.duration"]
    assert (histograms["Count"][1], histograms["Sum"][1], histograms["BucketCounts"][1]) == (2, 30.0, [1, 1])
    assert histograms["Max"][0] == 2_000_000 and math.isnan(histograms["Max"][1])
    assert rows.tables["otel_metrics_gauge"]["MetricName"] == ["go_goroutines"]
    assert rows.tables["otel_metrics_sum"]["MetricName"] == [
        "process.runtime.go.goroutines", "process.runtime.go.gc.pause_total_ns", "go_memstats_alloc_bytes",
        "go.memory.used"]
    summaries = rows.tables["otel_metrics_summary"]
    assert summaries["ValueAtQuantiles.Quantile"] == [[1.0]] and summaries["ValueAtQuantiles.Value"] == [[0.002]]


def test_every_reference_metric_name_has_one_canonical_name() -> None:
    names = ["go.goroutine.count", "go.memory.used", "go.memory.limit", "go.memory.gc.goal", "go.config.gogc",
             "go.processor.limit", "go.memory.allocated", "go.memory.allocations", "go.schedule.duration",
             "go.memory.gc.cycles", "go.memory.gc.pause.duration", "go.cpu.time", "runtime.go.goroutines",
             "go_sched_gomaxprocs_threads", "go_memstats_next_gc_bytes", "go_gc_gogc_percent"]
    for name in names:
        assert go_metrics.lookup(name, "") is not None, name
    assert go_metrics.lookup("go_sched_gomaxprocs_threads", "")[0].name == "go.processor.limit"
    assert go_metrics.lookup("go_memstats_next_gc_bytes", "")[0].name == "go.memory.gc.goal"
    assert go_metrics.lookup("http.server.duration", "ms") is None
