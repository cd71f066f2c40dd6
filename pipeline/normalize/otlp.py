"""OTLP export requests (logs, traces, metrics) -> rows. The one mapping every OTLP transport uses.

The gRPC and HTTP receivers and the Kafka source's `otlp_*` topics all call `decode_request` then
`normalize_request`, so a record means the same thing whichever way it arrived. Both are pure: no I/O,
no clock (the receive time is passed in).

Where each signal goes (docs/schema.md, "OTLP mapping", has the full table):

* logs: Go runtime lines in the body -> gc_events and friends (through the gctrace normalizer);
  `event.name = cancel-event` -> cancel_events; everything else -> otel_logs.
* traces: spans -> otel_traces; span events named `cancel-event` -> cancel_events as well.
* metrics: every point as sent -> the Collector exporter's table of its type (otel_metrics_gauge, _sum,
  _histogram, _exponential_histogram, _summary); Go runtime metrics in any vocabulary also ->
  runtime_metrics under one canonical name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from pipeline.normalize import otlp_logs, otlp_metrics, otlp_traces

# The shared types live in otlp_common so the per-signal mappings need not import this module (a cycle).
from pipeline.normalize.otlp_common import QUARANTINE_SIGNAL, Context, OtlpResult, Signal, quarantine_message
from pipeline.normalize.rows import Rows

__all__ = [
    "QUARANTINE_SIGNAL", "Encoding", "OtlpDecodeError", "OtlpResult", "Signal", "decode_request",
    "normalize_request", "quarantine_message",
]

Encoding = Literal["proto", "json"]

REQUEST_TYPES: dict[str, type[Message]] = {
    "logs": ExportLogsServiceRequest,
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
# OTLP/JSON writes these bytes fields as hex, where protobuf's JSON mapping expects base64.
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


class OtlpDecodeError(ValueError):
    """The body is not a valid export request of the expected signal and encoding."""


def decode_request(
    signal: Signal, body: bytes, encoding: Encoding, *, json_loads: Callable[[bytes], Any] = json.loads
) -> Message:
    """Parse an Export{Logs,Trace,Metrics}ServiceRequest from protobuf or OTLP/JSON bytes.

    JSON follows the OTLP specification: trace and span ids in hex, enums as numbers or names, 64-bit
    integers as strings or numbers, unknown fields ignored. Raises `OtlpDecodeError` with the reason, also
    for JSON nested too deeply to parse. `json_loads` lets the caller bound the parse (object budget).
    """
    request_type = REQUEST_TYPES.get(signal)
    if request_type is None:
        raise OtlpDecodeError(f"unknown signal {signal!r}")
    request = request_type()
    if encoding == "proto":
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise OtlpDecodeError(f"invalid protobuf {request_type.__name__}: {exc}") from None
        return request
    if encoding != "json":
        raise OtlpDecodeError(f"unknown encoding {encoding!r}")
    try:
        doc = json_loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OtlpDecodeError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise OtlpDecodeError("invalid JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise OtlpDecodeError(f"a JSON {request_type.__name__} must be an object")
    try:
        _hex_ids_to_base64(doc)
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, OverflowError) as exc:
        # OverflowError: a JSON `Infinity` (which Python's parser accepts) where protobuf wants an integer.
        raise OtlpDecodeError(f"invalid OTLP/JSON {request_type.__name__}: {exc}") from None
    except RecursionError:
        raise OtlpDecodeError(f"invalid OTLP/JSON {request_type.__name__}: nested too deeply") from None
    return request


def _hex_ids_to_base64(node: Any) -> None:
    """Rewrite hex id strings in place into the base64 that protobuf's JSON parser expects."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _HEX_ID_KEYS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise OtlpDecodeError(f"{key} {value[:80]!r} is not hex") from None
                node[key] = base64.b64encode(raw).decode("ascii")
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _hex_ids_to_base64(item)


def normalize_request(
    signal: Signal,
    request: Message,
    *,
    rows: Rows,
    source: str,
    received_at: datetime,
    quarantine: dict[str, Any] | None = None,
    plain_gc: bool = False,
) -> OtlpResult:
    """Append the rows of one decoded export request to `rows`; rejected items are quarantined there.

    `quarantine` carries transport context for rejected rows (location, topic, partition, offset). With
    `plain_gc`, a resource whose log bodies are all plain gc lines leaves them as lines for the engine
    (`plain_gc.GC_LINES_TABLE`), which only a `pipeline.sink.Sink` stores.
    """

    ctx = Context(rows=rows, source=source, received_at=received_at, where=dict(quarantine or {}), plain_gc=plain_gc)
    if signal == "logs":
        return otlp_logs.normalize_logs(request, ctx)  # type: ignore[arg-type]
    if signal == "traces":
        return otlp_traces.normalize_traces(request, ctx)  # type: ignore[arg-type]
    if signal == "metrics":
        return otlp_metrics.normalize_metrics(request, ctx)  # type: ignore[arg-type]
    raise ValueError(f"unknown signal {signal!r}")
