"""Every message format the Kafka source accepts, through a real broker into the real engine.

One worker per test, run in this process on the test's own database until it has caught up.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.plugins.kafka_pipeline import create_topics, gctrace_line, kafka_settings, run_worker, send

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
HOUR_NS = 3600 * 10**9


def q_rows(store, sql: str, params: dict | None = None) -> list[tuple]:
    return store.rows(sql.replace("{db}", store.database), params)


def q_scalar(store, sql: str, params: dict | None = None):
    return store.scalar(sql.replace("{db}", store.database), params)


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _otlp_json(message) -> bytes:
    """OTLP/JSON as the Collector writes it: camelCase fields, trace and span ids in hex."""
    doc = json_format.MessageToDict(message)

    def hexify(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                    import base64

                    node[k] = base64.b64decode(v).hex()
                else:
                    hexify(v)
        elif isinstance(node, list):
            for item in node:
                hexify(item)

    hexify(doc)
    return json.dumps(doc).encode()


def _logs(service: str, instance: str, body: str, now_ns: int) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend([_kv("service.name", service), _kv("service.instance.id", instance)])
    rl.scope_logs.add().log_records.add(time_unix_nano=now_ns, observed_time_unix_nano=now_ns,
                                        body=AnyValue(string_value=body))
    return req


def _spans(service: str, span_id: str, now_ns: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", service), _kv("service.instance.id", "pod-1")])
    rs.scope_spans.add().spans.add(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(span_id), name="GET /x",
                                   start_time_unix_nano=now_ns - 10**6, end_time_unix_nano=now_ns)
    return req


def _metrics(service: str, value: float, now_ns: int) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend([_kv("service.name", service), _kv("service.instance.id", "pod-1")])
    metric = rm.scope_metrics.add().metrics.add(name="go.goroutine.count", unit="{goroutine}")
    metric.gauge.data_points.add(time_unix_nano=now_ns, as_double=value)
    return req


def test_every_format_round_trips(settings, store, kafka_bootstrap, kafka_names, producer) -> None:
    n = kafka_names
    create_topics(kafka_bootstrap, {n.topic(k): 1 for k in
                                    ("gctrace", "cancel-events", "otlp_logs", "otlp_spans", "otlp_metrics")})
    now_ns = time.time_ns()
    now_iso = datetime.fromtimestamp(now_ns / 1e9, UTC).isoformat().replace("+00:00", "Z")
    gct = n.topic("gctrace")
    # raw text: identity from headers, from a key, several lines in one message
    send(producer, gct, gctrace_line(1), headers={"service": "raw-h", "instance": "i-h"})
    send(producer, gct, gctrace_line(1) + "\n" + gctrace_line(2) + "\n", key=b"raw-k/i-k")
    # JSON envelopes: Fleetwatch's own, Docker json-file, Fluent Bit with kubernetes, Vector flattened, arrays
    send(producer, gct, {"service": "env", "instance": "e1", "ts": now_ns - HOUR_NS, "line": gctrace_line(1),
                         "attributes": {"region": "eu"}})
    send(producer, gct, {"service": "env", "instance": "e2", "ts": now_iso,
                         "lines": [gctrace_line(1), gctrace_line(2)]})
    send(producer, gct, {"log": gctrace_line(1) + "\n", "stream": "stderr", "time": now_iso},
         headers={"service": "docker", "instance": "c1"})
    send(producer, gct, {"message": gctrace_line(1), "@timestamp": now_ns / 1e9, "host": "h1",
                         "kubernetes": {"pod_name": "pod-a", "labels": {"app": "fluent"}}})
    send(producer, gct, {"message": gctrace_line(1), "timestamp": now_ns // 10**6,
                         "kubernetes.pod_name": "pod-b", "kubernetes.container_name": "vector"})
    send(producer, gct, [{"service": "arr", "instance": "a1", "line": gctrace_line(1)},
                         {"service": "arr", "instance": "a2", "line": gctrace_line(1)}])
    # cancel-events: an object, and an array with one invalid event
    ce = n.topic("cancel-events")
    event = {"trace_id": TRACE_ID, "span_id": "00f067aa0ba902b7", "cancel_at": now_iso, "cause": "canceled",
             "stack_depth": 12, "service": "api", "instance": "api-1"}
    send(producer, ce, event)
    send(producer, ce, [{**event, "span_id": "00f067aa0ba902b8", "cause": "timeout", "cancel_at": now_ns},
                        {**event, "span_id": "xyz"}], headers={"service": "from-header"})
    # OTLP, proto and JSON, as the Collector's Kafka exporter writes them; one with a content-type header
    for encoding in ("proto", "json"):
        def encode(msg, enc=encoding):
            return msg.SerializeToString() if enc == "proto" else _otlp_json(msg)
        send(producer, n.topic("otlp_logs"), encode(_logs(f"otlp-{encoding}", "pod-1", gctrace_line(5), now_ns)))
        send(producer, n.topic("otlp_spans"), encode(_spans(f"otlp-{encoding}", "00000000000000a1", now_ns)))
        send(producer, n.topic("otlp_metrics"), encode(_metrics(f"otlp-{encoding}", 42.0, now_ns)))
    send(producer, n.topic("otlp_logs"), _otlp_json(_logs("otlp-header", "pod-1", gctrace_line(6), now_ns)),
         headers={"content-type": "application/json"})
    producer.flush()

    # The topic default is proto; the JSON messages without a header would be quarantined, so the JSON run
    # uses the setting and the header carries the per-message override.
    run_worker(kafka_settings(settings, kafka_bootstrap, n, otlp_encoding="otlp_proto"), store)

    gc = dict(((s, i), c) for s, i, c in q_rows(store,
        "SELECT service, instance, count() FROM {db}.gc_events GROUP BY service, instance"))
    assert gc == {
        ("raw-h", "i-h"): 1, ("raw-k", "i-k"): 2, ("env", "e1"): 1, ("env", "e2"): 2, ("docker", "c1"): 1,
        ("fluent", "pod-a"): 1, ("vector", "pod-b"): 1, ("arr", "a1"): 1, ("arr", "a2"): 1,
        ("otlp-proto", "pod-1"): 1, ("otlp-header", "pod-1"): 1,
    }
    # the envelope's time, not the record's, is when the line was observed
    ts = q_scalar(store, "SELECT toUnixTimestamp64Micro(ts) FROM {db}.gc_events WHERE instance = 'e1'")
    assert abs(ts - (now_ns - HOUR_NS) // 1000) < 2_000_000
    cancels = q_rows(store, "SELECT service, span_id, cause, source FROM {db}.cancel_events ORDER BY span_id")
    assert cancels == [("api", "00f067aa0ba902b7", "cancelled", "kafka"),
                       ("api", "00f067aa0ba902b8", "timeout", "kafka")]
    assert q_scalar(store, "SELECT count() FROM {db}.otel_traces WHERE ServiceName = 'otlp-proto'") == 1
    assert q_rows(store, "SELECT service, value FROM {db}.runtime_metrics WHERE metric = 'go.goroutine.count'") == \
        [("otlp-proto", 42.0)]
    quarantined = q_rows(store, "SELECT topic, signal, reason FROM {db}.quarantine ORDER BY topic, offset")
    # the invalid cancel-event, and the three JSON-encoded OTLP messages without a content-type header
    assert [(t, s) for t, s, _ in quarantined] == [
        (ce, "cancel_event"), (n.topic("otlp_logs"), "otlp_logs"), (n.topic("otlp_metrics"), "otlp_metrics"),
        (n.topic("otlp_spans"), "otlp_spans"),
    ]
    assert "span_id" in quarantined[0][2] and all("otlp_proto" in r for _, _, r in quarantined[1:])


def test_otlp_json_topics(settings, store, kafka_bootstrap, kafka_names, producer) -> None:
    n = kafka_names
    create_topics(kafka_bootstrap, {n.topic(k): 2 for k in ("otlp_logs", "otlp_spans", "otlp_metrics")})
    now_ns = time.time_ns()
    send(producer, n.topic("otlp_logs"), _otlp_json(_logs("j", "pod-1", gctrace_line(3), now_ns)), partition=1)
    send(producer, n.topic("otlp_spans"), _otlp_json(_spans("j", "00000000000000b2", now_ns)))
    send(producer, n.topic("otlp_metrics"), _otlp_json(_metrics("j", 7.0, now_ns)), partition=1)
    producer.flush()
    run_worker(kafka_settings(settings, kafka_bootstrap, n, otlp_encoding="otlp_json"), store)
    assert q_rows(store, "SELECT service, gc_num FROM {db}.gc_events") == [("j", 3)]
    assert q_rows(store, "SELECT ServiceName, SpanId, TraceId FROM {db}.otel_traces") == \
        [("j", "00000000000000b2", TRACE_ID)]
    assert q_rows(store, "SELECT service, value FROM {db}.runtime_metrics WHERE metric = 'go.goroutine.count'") == \
        [("j", 7.0)]
    assert q_scalar(store, "SELECT count() FROM {db}.quarantine") == 0


def test_poison_message_is_quarantined_and_the_partition_moves_on(
    settings, store, kafka_bootstrap, kafka_names, producer
) -> None:
    n = kafka_names
    gct, ce = n.topic("gctrace"), n.topic("cancel-events")
    create_topics(kafka_bootstrap, {gct: 2, ce: 1})
    for i in range(1, 41):
        send(producer, gct, gctrace_line(i), key=b"svc/p1", partition=1)
        if i == 20:
            send(producer, gct, b"\xff\xfe\x00 not text", key=b"svc/p1", partition=1)  # offset 20
            send(producer, gct, b"{\"line\": 5", key=b"svc/p1", partition=1)  # offset 21: broken JSON
            send(producer, gct, b"x" * 70_000, key=b"svc/p1", partition=1)  # offset 22: too large
    send(producer, ce, b"not json at all")
    send(producer, ce, {"trace_id": TRACE_ID, "span_id": "00f067aa0ba902b7", "cancel_at": time.time_ns(),
                        "cause": "timeout", "stack_depth": 3, "service": "s", "instance": "i"})
    producer.flush()
    run_worker(kafka_settings(settings, kafka_bootstrap, n, max_message_bytes=65_536), store)

    assert q_rows(store, "SELECT count(), uniqExact(gc_num), min(gc_num), max(gc_num) FROM {db}.gc_events") == \
        [(40, 40, 1, 40)]
    rows = q_rows(store, "SELECT topic, partition, offset, reason FROM {db}.quarantine ORDER BY topic, offset")
    assert [(t, p, o) for t, p, o, _ in rows] == [(ce, 0, 0), (gct, 1, 20), (gct, 1, 21), (gct, 1, 22)]
    reasons = [r for *_, r in rows]
    assert "not JSON" in reasons[0]
    assert "not UTF-8" in reasons[1]
    assert "invalid JSON envelope" in reasons[2]
    assert "exceeds max_message_bytes" in reasons[3]
    assert q_scalar(store, "SELECT count() FROM {db}.cancel_events") == 1
    # offsets are committed past the poison: the group's ledger covers the whole partition
    assert q_scalar(store, "SELECT max(end_offset) FROM {db}.kafka_batches WHERE topic = {t:String} AND partition = 1",
                        {"t": gct}) == 43
