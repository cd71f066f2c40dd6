"""The one line contract (issue 15): the tolerance real log plumbing needs, container log layouts, the
same classifier and repair window over OTLP as over files, and cancel-event field names on every
transport. Pure functions only: strings in, rows out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from pipeline.normalize.container_logs import CRI, DOCKER, PLAIN, decode, detect_format
from pipeline.normalize.gctrace import normalize_lines
from pipeline.normalize.kafka_messages import KafkaMessage, Kind, normalize_messages
from pipeline.normalize.lines import split_lines
from pipeline.normalize.otlp import normalize_request
from pipeline.normalize.rows import Rows
from pipeline.sources.tail.identity import identify

RECEIVED = datetime(2026, 12, 1, tzinfo=UTC)
OBS = 1_796_000_000_000_000_000
GC = ("gc 7 @2.000s 1%: 0.010+1.0+0.010 ms clock, 0.020+0.1/0.5/0+0.02 ms cpu, 4->5->2 MB, 5 MB goal, "
      "0 MB stacks, 0 MB globals, 2 P")
TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def lines_rows(lines: list[str]) -> Rows:
    rows = Rows()
    normalize_lines(lines, observed_ns=OBS, service="api", instance="i-1", source="t", received_at=RECEIVED,
                    rows=rows)
    return rows


def otlp_rows(bodies: list[str], attrs: list[list[KeyValue]] | None = None) -> tuple[Rows, object]:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend([KeyValue(key="service.name", value=AnyValue(string_value="api")),
                                   KeyValue(key="service.instance.id", value=AnyValue(string_value="i-1"))])
    records = rl.scope_logs.add().log_records
    for i, body in enumerate(bodies):
        rec = records.add(time_unix_nano=OBS + i, body=AnyValue(string_value=body))
        if attrs:
            rec.attributes.extend(attrs[i])
    rows = Rows()
    result = normalize_request("logs", request, rows=rows, source="otlp_http", received_at=RECEIVED)
    return rows, result


def table(rows: Rows, name: str) -> list[dict]:
    cols = rows.tables.get(name, {})
    n = len(next(iter(cols.values()))) if cols else 0
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


# --- tolerance --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tail", [" ", "\t", "  \t ", "\r", " \r"])
def test_trailing_blanks_and_carriage_returns_keep_the_cycle(tail: str) -> None:
    rows = lines_rows([GC + tail, "pacer: assist ratio=0.06 (scan 3 MB in 46->48 MB) workers=0+0.25" + tail,
                       "scav 1 KiB work, 2 KiB total, 99% util" + tail])
    assert [r["gc_num"] for r in table(rows, "gc_events")] == [7]
    assert rows.count("pacer_events") == 1 and rows.count("scavenger_events") == 1
    assert "quarantine" not in rows.tables


def test_lines_split_only_at_newline() -> None:
    text = "app: caf\u00e9 \u2028 next\u0085 still one\r\nsecond\n" + GC + "\r\n"
    assert split_lines(text) == ["app: caf\u00e9 \u2028 next\u0085 still one", "second", GC]
    message = KafkaMessage(topic="gc", partition=0, offset=1, timestamp_ms=OBS // 10**6, key=b"api/i-1",
                           value=text.encode())
    rows = Rows()
    normalize_messages(Kind.gctrace, [message], rows=rows, received_at=RECEIVED)
    assert table(rows, "otel_logs")[0]["Body"] == "app: caf\u00e9 \u2028 next\u0085 still one"
    assert rows.count("gc_events") == 1


def test_scvg_kb_lines_of_go113_are_kib() -> None:
    rows = lines_rows(["scvg: 1536 KB released", "scvg: 3 MB released", "forced scvg: 100 KB released"])
    got = [(r["kind"], r["released_delta_kib"], r["released_delta_mb"], r["forced"])
           for r in table(rows, "scavenger_events")]
    assert got == [("scvg_released", 1536, 1, 0), ("scvg_released", 3072, 3, 0), ("scvg_released", 100, 0, 1)]


def test_go14_lines_are_quarantined_as_unsupported() -> None:
    line = ("gc76(1): 0+0+0+0 us, 0 -> 0 MB, 78 (78-0) objects, 2 goroutines, 18/0/0 sweeps, 0(0) handoff, "
            "0(0) steal, 0/0/0 yields")
    rows = lines_rows([line])
    q = table(rows, "quarantine")
    assert len(q) == 1 and q[0]["reason"].startswith("unsupported Go version") and "otel_logs" not in rows.tables


@pytest.mark.parametrize("tail", [", 2 P", " 2 P", "2 P"])
def test_a_line_cut_before_its_last_field_is_repaired(tail: str) -> None:
    head = GC[: GC.rindex(", 2 P")]
    rows = lines_rows([head, tail])
    assert [r["procs"] for r in table(rows, "gc_events")] == [2]
    assert "quarantine" not in rows.tables and "otel_logs" not in rows.tables


def test_a_shippers_prefix_is_kept_on_the_row() -> None:
    rows = lines_rows(["2026-12-01T10:00:00Z host-1 " + GC,
                       "Dec  1 10:00:01 app[42]: scav 1 KiB work, 2 KiB total, 99% util", GC])
    assert [r["line_prefix"] for r in table(rows, "gc_events")] == ["2026-12-01T10:00:00Z host-1", ""]
    assert table(rows, "scavenger_events")[0]["line_prefix"] == "Dec  1 10:00:01 app[42]:"


# --- container layouts ------------------------------------------------------------------------------------

def test_cri_partials_are_joined_per_stream_and_docker_pieces_too() -> None:
    raw = [
        "2026-12-01T10:00:00.000000001Z stderr P gc 7 @2.000s 1%: 0.010+1.0+0.010 ms clock, ",
        "2026-12-01T10:00:00.000000002Z stdout F app: interleaved on stdout",
        "2026-12-01T10:00:00.000000003Z stderr F " + GC[GC.index("0.020+"):],
        json.dumps({"log": "pacer: assist ratio=0.06 ", "stream": "stderr", "time": "2026-12-01T10:00:01Z"}),
        json.dumps({"log": "(scan 3 MB in 46->48 MB) workers=0+0.25\n", "stream": "stderr",
                    "time": "2026-12-01T10:00:02.5Z"}),
        "plain line",
    ]
    assert detect_format(raw) == CRI and detect_format(raw[3:]) == DOCKER and detect_format(raw[5:]) == PLAIN
    entries, consumed = decode(raw, final=False)
    assert consumed == 6
    by_text = {e.text: e for e in entries}
    assert GC in by_text and by_text[GC].stream == "stderr" and by_text[GC].time_ns % 10 == 3
    assert by_text["app: interleaved on stdout"].stream == "stdout"
    pacer = by_text["pacer: assist ratio=0.06 (scan 3 MB in 46->48 MB) workers=0+0.25"]
    assert pacer.fmt == DOCKER and pacer.time_ns == 1_796_119_202_500_000_000
    assert by_text["plain line"].time_ns is None


def test_an_unfinished_partial_stops_consumption_until_its_last_piece() -> None:
    raw = ["2026-12-01T10:00:00Z stderr P gc 7 @2.000s", "2026-12-01T10:00:01Z stdout F app: later"]
    entries, consumed = decode(raw, final=False)
    assert (entries, consumed) == ([], 0)
    entries, consumed = decode(raw, final=True)
    assert [e.text for e in entries] == ["gc 7 @2.000s", "app: later"] and consumed == 2


def test_kubernetes_paths_name_service_instance_and_namespace() -> None:
    pods = identify("/var/log/pods/shop_cart-5f7c9-x2x_7f3e-11/cart/3.log", host="node-1")
    assert (pods.service, pods.instance, pods.attributes["k8s.namespace.name"]) == ("cart", "cart-5f7c9-x2x", "shop")
    link = identify("/var/log/containers/cart-5f7c9-x2x_shop_cart-" + "ab" * 32 + ".log", host="node-1")
    assert (link.service, link.instance, link.attributes["k8s.namespace.name"]) == ("cart", "cart-5f7c9-x2x", "shop")
    mapped = identify("/srv/logs/billing/blue.log", pattern=r"/srv/logs/(?P<service>\w+)/(?P<instance>\w+)\.log")
    assert (mapped.service, mapped.instance) == ("billing", "blue")
    assert identify("/var/log/pods/a_b_c/d/0.log", service="forced").service == "forced"


# --- the same contract over OTLP ----------------------------------------------------------------------------

def test_otlp_uses_the_shared_classifier() -> None:
    notices = ["SCHED 0ms: gomaxprocs=2 idleprocs=1 threads=4 spinningthreads=0 idlethreads=1 runqueue=0 [0 0]",
               "runtime: program exceeds 10000-thread limit"]
    rows, _ = otlp_rows(notices)
    by_file = lines_rows(notices)
    assert [r["kind"] for r in table(rows, "runtime_notices")] == [r["kind"] for r in table(by_file,
                                                                                             "runtime_notices")]
    assert rows.count("runtime_notices") == 2 and "otel_logs" not in rows.tables


def test_otlp_repairs_a_torn_line_whose_tail_comes_records_later() -> None:
    cut = GC.index("0.020+")
    bodies = [GC[:cut] + "app: written into the middle", "app: another line", GC[cut:]]
    rows, result = otlp_rows(bodies)
    assert [r["gc_num"] for r in table(rows, "gc_events")] == [7] and result.rejected == 0
    assert sorted(r["Body"] for r in table(rows, "otel_logs")) == ["app: another line", "app: written into the middle"]
    assert table(lines_rows(bodies), "gc_events")[0]["gc_num"] == 7


@pytest.mark.parametrize("prefix", ["", "cancel."])
def test_cancel_event_fields_by_schema_name_or_cancel_prefix_over_otlp(prefix: str) -> None:
    attrs = [KeyValue(key="event.name", value=AnyValue(string_value="cancel-event")),
             KeyValue(key="trace_id", value=AnyValue(string_value=TRACE)),
             KeyValue(key="span_id", value=AnyValue(string_value=SPAN)),
             KeyValue(key=prefix + "cause", value=AnyValue(string_value="timeout")),
             KeyValue(key=prefix + "stack_depth", value=AnyValue(int_value=12)),
             KeyValue(key=prefix + "cancel_at", value=AnyValue(string_value="2026-12-01T10:00:00.5Z")),
             KeyValue(key="http.route", value=AnyValue(string_value="/pay"))]
    rows, result = otlp_rows([""], [attrs])
    assert result.rejected == 0, result.error_message
    got = table(rows, "cancel_events")
    assert [(r["cause"], r["stack_depth"], r["cancel_at"], r["attributes"]) for r in got] == [
        ("timeout", 12, 1_796_119_200_500_000_000, {"http.route": "/pay"})]


def test_cancel_event_prefixed_fields_over_kafka() -> None:
    doc = {"trace_id": TRACE, "span_id": SPAN, "cancel.cause": "canceled", "cancel.stack_depth": 3,
           "cancel.cancel_at": "2026-12-01T10:00:00Z"}
    message = KafkaMessage(topic="cancel-events", partition=0, offset=1, timestamp_ms=OBS // 10**6, key=b"api/i-1",
                           value=json.dumps(doc).encode())
    rows = Rows()
    normalize_messages(Kind.cancel_events, [message], rows=rows, received_at=RECEIVED)
    got = table(rows, "cancel_events")
    assert [(r["cause"], r["stack_depth"]) for r in got] == [("cancelled", 3)]
