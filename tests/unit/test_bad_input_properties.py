"""Property-based tests of the three parsers that face untrusted bytes: gctrace lines, cancel-event JSON and
OTLP requests (protobuf and OTLP/JSON).

What must hold for ANY input: no exception escapes (other than the documented decode error), and every
input is accounted for: each gctrace line becomes a row, a log record, a quarantine row or is blank; each
cancel-event is stored or quarantined; each OTLP body is decoded or refused with OtlpDecodeError. Inputs are
random text and mutations of real captures (tests/data/go-runtime) and of valid requests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from pipeline.normalize.cancel import normalize_cancel_payload
from pipeline.normalize.gctrace import GctraceStream, normalize_lines
from pipeline.normalize.otlp import OtlpDecodeError, decode_request, normalize_request
from pipeline.normalize.rows import QUARANTINE, Rows

NOW = datetime.now(UTC).replace(microsecond=0)
NOW_NS = int(NOW.timestamp()) * 10**9
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "go-runtime"
REAL_LINES = sorted({
    line for path in sorted(SAMPLES.glob("*.txt")) for line in path.read_text(errors="replace").splitlines()[:400]
})
OTHER_RUNTIME = ("scavenger_events", "pacer_events", "runtime_notices")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text without newlines (the sources split on them) but with every other kind of character.
line_text = st.text(st.characters(blacklist_characters="\n", codec="utf-8"), max_size=300)


@st.composite
def mutated_real_line(draw: st.DrawFn) -> str:
    """A real runtime line with a few edits: cut, inserted junk, a digit swapped, a token doubled."""
    line = draw(st.sampled_from(REAL_LINES))
    for _ in range(draw(st.integers(0, 4))):
        if not line:
            break
        at = draw(st.integers(0, len(line)))
        edit = draw(st.sampled_from(["cut", "insert", "digit", "double", "truncate"]))
        if edit == "cut":
            line = line[:at] + line[at + draw(st.integers(1, 5)):]
        elif edit == "insert":
            junk = draw(st.sampled_from(["9" * 30, "-", "+", "/", " ", "->", "%", "@", "\x00", "é", "NaN"]))
            line = line[:at] + junk + line[at:]
        elif edit == "digit":
            line = line[:at] + draw(st.sampled_from("0123456789")) + line[at + 1:]
        elif edit == "double":
            line = line[:at] + line[at:at + 10] + line[at:]
        else:
            line = line[:at]
    return line


lines_strategy = st.lists(st.one_of(line_text, mutated_real_line(), st.sampled_from(REAL_LINES)), max_size=40)


def assert_accounted(stats, rows: Rows, n_lines: int) -> None:
    assert stats.lines == n_lines
    assert stats.lines == stats.events + stats.other_runtime + stats.logs + stats.quarantined + stats.blank
    assert rows.count("gc_events") == stats.events
    assert sum(rows.count(t) for t in OTHER_RUNTIME) == stats.other_runtime
    assert rows.count("otel_logs") == stats.logs
    assert rows.count(QUARANTINE) == stats.quarantined


@FAST
@given(lines_strategy)
def test_gctrace_observed_mode_accounts_for_every_line(lines: list[str]) -> None:
    rows = Rows()
    stats = normalize_lines(lines, observed_ns=NOW_NS, service="svc", instance="i-1", source="test",
                            received_at=NOW, rows=rows)
    assert_accounted(stats, rows, len(lines))


@FAST
@given(lines_strategy, st.lists(st.integers(1, 10), max_size=6), st.sampled_from([None, NOW_NS - 3600 * 10**9]))
def test_gctrace_stream_mode_accounts_for_every_line_whatever_the_batching(lines, cuts, start_ns) -> None:
    rows = Rows()
    stream = GctraceStream(service="svc", instance="i-1", source="test", received_at=NOW, start_ns=start_ns,
                           now_ns=lambda: NOW_NS)
    rest = list(lines)
    for cut in cuts:
        stream.feed(rest[:cut], rows, terminated=False)
        rest = rest[cut:]
    stream.feed(rest, rows, terminated=False)
    stream.finish(rows)
    assert_accounted(stream.stats, rows, len(lines))
    for ts in rows.tables.get("gc_events", {}).get("ts", []):
        assert isinstance(ts, (int, datetime))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | line_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(line_text, inner, max_size=4),
    max_leaves=20,
)
valid_event = {
    "service": "checkout", "instance": "checkout-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7", "cancel_at": NOW.isoformat().replace("+00:00", "Z"), "cause": "timeout",
    "stack_depth": 3, "operation": "GET /cart",
}


@st.composite
def perturbed_event(draw: st.DrawFn) -> dict:
    event = dict(valid_event)
    for key in draw(st.lists(st.sampled_from([*valid_event, "attributes", "extra"]), max_size=3)):
        choice = draw(st.sampled_from(["drop", "replace"]))
        if choice == "drop":
            event.pop(key, None)
        else:
            event[key] = draw(json_values | st.sampled_from([
                "'; DROP TABLE cancel_events; --", "1" * 40, -1, 10**30, "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z", "timeout\x00", {"a" * 50: "b" * 50},
            ]))
    return event


def assert_cancel_accounted(payload, expected_items: int) -> None:
    rows = Rows()
    accepted, rejected = normalize_cancel_payload(payload, rows=rows, source="test", received_at=NOW)
    assert accepted + rejected == expected_items
    assert rows.count("cancel_events") == accepted
    assert rows.count(QUARANTINE) == rejected


@FAST
@given(st.binary(max_size=400) | line_text.map(str.encode))
def test_cancel_payload_from_arbitrary_bytes(payload: bytes) -> None:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        doc = None
        expected = 1
    else:
        expected = len(doc) if isinstance(doc, list) else 1
    assert_cancel_accounted(payload, expected)


@FAST
@given(st.lists(perturbed_event() | json_values, max_size=6), st.booleans())
def test_cancel_payload_from_perturbed_events(events: list, as_array: bool) -> None:
    if as_array:
        assert_cancel_accounted(json.dumps(events).encode(), len(events))
    for event in events[:2]:
        assert_cancel_accounted(json.dumps(event), len(event) if isinstance(event, list) else 1)


def _valid_logs_body() -> bytes:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    attr = rl.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "svc"
    records = rl.scope_logs.add().log_records
    records.add(time_unix_nano=NOW_NS, body={"string_value": REAL_LINES[0]})
    records.add(time_unix_nano=NOW_NS, body={"string_value": "hello"}).attributes.add(
        key="event.name", value={"string_value": "cancel-event"})
    return request.SerializeToString()


VALID_LOGS = _valid_logs_body()


def _normalize_ok(signal, request) -> None:
    rows = Rows()
    result = normalize_request(signal, request, rows=rows, source="test", received_at=NOW)
    assert result.accepted >= 0 and result.rejected >= 0
    assert (rows.count(QUARANTINE) > 0) == (result.rejected > 0)


@FAST
@given(st.sampled_from(["logs", "traces", "metrics"]), st.binary(max_size=600))
def test_otlp_protobuf_random_bytes_decode_or_refuse(signal, body: bytes) -> None:
    try:
        request = decode_request(signal, body, "proto")
    except OtlpDecodeError:
        return
    _normalize_ok(signal, request)


@FAST
@given(st.lists(st.tuples(st.integers(0, len(VALID_LOGS) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_otlp_protobuf_mutated_valid_request(flips) -> None:
    body = bytearray(VALID_LOGS)
    for at, value in flips:
        body[at] = value
    try:
        request = decode_request("logs", bytes(body), "proto")
    except OtlpDecodeError:
        return
    _normalize_ok("logs", request)


@FAST
@given(st.sampled_from(["logs", "traces", "metrics"]), json_values)
def test_otlp_json_arbitrary_documents_decode_or_refuse(signal, doc) -> None:
    try:
        request = decode_request(signal, json.dumps(doc).encode(), "json")
    except OtlpDecodeError:
        return
    _normalize_ok(signal, request)


@st.composite
def otlp_json_shaped(draw: st.DrawFn) -> tuple[str, dict]:
    """A request of the right shape whose leaves are random: ids, times, values and attributes."""
    signal = draw(st.sampled_from(["logs", "traces", "metrics"]))
    leaf = json_values | st.sampled_from(["", "zz", "00" * 16, str(2**64 - 1), str(-1), "1e400", "NaN", 2**64])
    attrs = st.lists(st.fixed_dictionaries({"key": line_text, "value": st.fixed_dictionaries(
        {}, optional={"stringValue": line_text, "intValue": leaf, "doubleValue": leaf, "boolValue": leaf,
                      "kvlistValue": st.just({"values": [{"key": "k", "value": {"stringValue": "v"}}]})})}),
        max_size=4)
    resource = {"attributes": draw(attrs)}
    item = draw(st.fixed_dictionaries({}, optional={
        "timeUnixNano": leaf, "startTimeUnixNano": leaf, "endTimeUnixNano": leaf, "observedTimeUnixNano": leaf,
        "traceId": st.sampled_from(["", "00" * 16, "4bf92f3577b34da6a3ce929d0e0e4736"]),
        "spanId": st.sampled_from(["", "00f067aa0ba902b7"]), "name": line_text, "attributes": attrs,
        "body": st.fixed_dictionaries({"stringValue": st.one_of(line_text, st.sampled_from(REAL_LINES))}),
        "severityNumber": leaf, "kind": leaf,
        "events": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["cancel-event", "x"]),
                                                  "timeUnixNano": leaf, "attributes": attrs}), max_size=2),
    }))
    if signal == "logs":
        doc = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [item]}]}]}
    elif signal == "traces":
        doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [item]}]}]}
    else:
        point = {k: v for k, v in item.items() if k in ("timeUnixNano", "startTimeUnixNano", "attributes")}
        point["asDouble" if draw(st.booleans()) else "asInt"] = draw(leaf)
        kind = draw(st.sampled_from(["gauge", "sum", "histogram"]))
        name = draw(st.sampled_from(["go.goroutine.count", "go_goroutines", "process.runtime.go.goroutines", "x"]))
        doc = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [
            {"name": name, kind: {"dataPoints": [point]}}]}]}]}
    return signal, doc


@FAST
@given(otlp_json_shaped())
# An integer field given as `Infinity` once escaped as OverflowError (a 500 instead of a 400).
@example(("logs", {"resourceLogs": [{"resource": {"attributes": []},
                                     "scopeLogs": [{"logRecords": [{"severityNumber": float("inf")}]}]}]}))
@example(("traces", {"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": float("-inf")}]}]}]}))
def test_otlp_json_shaped_requests_with_random_leaves(case) -> None:
    signal, doc = case
    try:
        request = decode_request(signal, json.dumps(doc).encode(), "json")
    except OtlpDecodeError:
        return
    _normalize_ok(signal, request)


@FAST
@given(st.binary(min_size=1, max_size=200))
def test_otlp_json_invalid_utf8_is_a_decode_error(junk: bytes) -> None:
    body = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "' + junk + b'"}}]}]}]}'
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        assume(False)
    try:
        request = decode_request("logs", body, "json")
    except OtlpDecodeError:
        return
    _normalize_ok("logs", request)
