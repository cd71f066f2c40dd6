"""Whatever the normalizers accept must be insertable: absurd timestamps, huge numbers, odd strings and huge
attribute maps from any transport end as stored rows or quarantine rows, never as an insert the store
refuses (which would fail every request merged into the same batch).

Hypothesis builds OTLP requests and gctrace lines with extreme values; each example's rows go through the
real `Sink` into the real engine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.normalize.cancel import normalize_cancel_payload
from pipeline.normalize.gctrace import normalize_lines
from pipeline.normalize.otlp import OtlpDecodeError, decode_request, normalize_request
from pipeline.normalize.rows import Rows
from pipeline.sink import Sink

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
NOW_NS = int(NOW.timestamp()) * 10**9
EXTREME_NS = st.sampled_from([0, 1, 10**9, NOW_NS, 2**63 - 1, 2**63, 2**64 - 1, NOW_NS * 4, -1, -(2**63)])
EXTREME_NUM = st.sampled_from([0, -1, 2**63 - 1, 2**64 - 1, -(2**63), 1e308, -1e308, "NaN", "Infinity", 1e-320])
TEXT = st.text(max_size=40) | st.sampled_from(["'; DROP TABLE otel_logs; --", "\\", "\x00", "{x:String}"])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])


def _json_ns(value: int) -> int | str:
    return str(value) if value >= 0 else value


@st.composite
def extreme_request(draw: st.DrawFn) -> tuple[str, bytes]:
    signal = draw(st.sampled_from(["logs", "traces", "metrics"]))
    attrs = [{"key": draw(TEXT), "value": {"stringValue": draw(TEXT)}} for _ in range(draw(st.integers(0, 3)))]
    attrs.append({"key": "n", "value": {"intValue": str(draw(st.sampled_from([2**63 - 1, -(2**63)])))}})
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": draw(TEXT)}}, *attrs]}
    t1, t2 = _json_ns(draw(EXTREME_NS)), _json_ns(draw(EXTREME_NS))
    if signal == "logs":
        body = draw(st.sampled_from([
            "plain text", f"gc 1 @{draw(st.sampled_from(['0.1', '1e30', '99999999999999']))}s 1%: 0.1+1+0.1 ms clock, "
            "0.1+0.1/1/0+0.1 ms cpu, 4->4->1 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 8 P",
        ]))
        record = {"timeUnixNano": t1, "observedTimeUnixNano": t2, "body": {"stringValue": body},
                  "attributes": attrs, "severityNumber": draw(st.sampled_from([0, 24, 255, 2**31 - 1]))}
        if draw(st.booleans()):
            record["attributes"] = [*attrs, {"key": "event.name", "value": {"stringValue": "cancel-event"}},
                                    {"key": "cause", "value": {"stringValue": "timeout"}}]
        doc = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": [record]}]}]}
    elif signal == "traces":
        span = {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7", "name": draw(TEXT),
                "startTimeUnixNano": t1, "endTimeUnixNano": t2, "attributes": attrs,
                "events": [{"name": "cancel-event", "timeUnixNano": _json_ns(draw(EXTREME_NS)), "attributes": attrs}]}
        doc = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}
    else:
        value = draw(EXTREME_NUM)
        point = {"timeUnixNano": t1, "startTimeUnixNano": t2, "attributes": attrs,
                 "asInt" if isinstance(value, int) and abs(value) < 2**63 else "asDouble": value}
        kind = draw(st.sampled_from(["gauge", "sum"]))
        name = draw(st.sampled_from(["go.goroutine.count", "go_goroutines", "go.memory.used", "custom.x"]))
        body_kind = {kind: {"dataPoints": [point], **({"aggregationTemporality": 2} if kind == "sum" else {})}}
        doc = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [{"name": name,
                                                                                         **body_kind}]}]}]}
    return signal, json.dumps(doc).encode()


@SLOW
@given(extreme_request())
def test_otlp_rows_with_extreme_values_are_insertable(store, case) -> None:
    signal, body = case
    try:
        request = decode_request(signal, body, "json")
    except OtlpDecodeError:
        return
    rows = Rows()
    normalize_request(signal, request, rows=rows, source="test", received_at=NOW)
    Sink(store).write(rows)


@SLOW
@given(st.lists(st.sampled_from([
    "gc 99999999999999999999 @1.0s 1%: 0.1+1+0.1 ms clock, 0.1+0.1/1/0+0.1 ms cpu, 4->4->1 MB, 5 MB goal, 8 P",
    "gc 1 @99999999999999.999s 1%: 0.1+1+0.1 ms clock, 0.1+0.1/1/0+0.1 ms cpu, 4->4->1 MB, 5 MB goal, 8 P",
    "gc 2 @1.0s 100000%: 99999999999+1+0.1 ms clock, 0.1+0.1/1/0+0.1 ms cpu, 99999999999999->4->1 MB, 5 MB goal, "
    "0 MB stacks, 0 MB globals, 99999999999 P",
    "gc 9 @18446653480.186s 0%: 0+0+0 ms clock, 0+0/0/0+0 ms cpu, 0->0->0 MB, 4 MB goal, 8 P",
    "scvg: 99999999999999999999 MB released",
    "pacer: assist ratio=1e400 (scan 3 MB in 46->48 MB) workers=0+0.25",
    "runtime: out of memory: cannot allocate 99999999999999999999-byte block",
]), min_size=1, max_size=6), EXTREME_NS)
def test_gctrace_rows_with_extreme_values_are_insertable(store, lines, observed) -> None:
    rows = Rows()
    normalize_lines(lines, observed_ns=max(observed, 0), service="svc", instance="i", source="test",
                    received_at=NOW, rows=rows)
    Sink(store).write(rows)


@pytest.mark.parametrize("cancel_at", [0, 1, 2**63 - 1, 2**63, 2**64 - 1, "9999-12-31T23:59:59Z",
                                       "1900-01-01T00:00:00Z", "2262-04-12T00:00:00Z"])
def test_cancel_events_with_absurd_times_are_stored_or_quarantined(store, cancel_at) -> None:
    rows = Rows()
    event = {"service": "s", "instance": "i", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
             "span_id": "00f067aa0ba902b7", "cancel_at": cancel_at, "cause": "timeout", "stack_depth": 1}
    accepted, rejected = normalize_cancel_payload(json.dumps(event), rows=rows, source="test", received_at=NOW)
    assert (accepted, rejected) == (0, 1)  # outside 2000..2200: a unit mistake, quarantined with the reason
    Sink(store).write(rows)
