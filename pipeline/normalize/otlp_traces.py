"""OTLP spans -> otel_traces (the Collector ClickHouse exporter's layout), and cancel-event span events.

The cancellation detection reads spans (which ended CANCELLED or DEADLINE_EXCEEDED, which kept running
after their parent was cancelled) and cancel-events; a CancelTrace middleware that records its events
on the span rather than as separate log records produces `cancel-event` span events, which land in
cancel_events exactly like the other transports' events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pydantic import ValidationError

from pipeline.models import CancelEvent
from pipeline.normalize.cancel import append_cancel, describe_errors
from pipeline.normalize.otlp_common import (
    CANCEL_EVENT_NAME,
    Context,
    OtlpResult,
    attributes,
    hex_id,
    identity,
    quarantine_message,
    storable_ns,
)

TABLE = "otel_traces"
COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind", "ServiceName",
    "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration", "StatusCode",
    "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId", "Links.SpanId",
    "Links.TraceState", "Links.Attributes", "ServiceInstance", "RpcStatusCode",
    # Fleetwatch's own columns (migration 024): what OTLP carries and the exporter's table has no place for.
    "ResourceSchemaUrl", "ScopeSchemaUrl", "ScopeAttributes", "SpanFlags", "DroppedAttributesCount",
    "DroppedEventsCount", "DroppedLinksCount",
)
# As the Collector's exporter spells them (pdata's String() forms).
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
GRPC_CODES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)
_GRPC_BY_NAME = {name: name for name in GRPC_CODES} | {"CANCELED": "CANCELLED"}
# Oldest first in semconv history; the first one present wins.
RPC_STATUS_ATTRIBUTES = ("rpc.grpc.status_code", "rpc.response.status_code", "rpc.status_code")
CANCEL_ATTRIBUTES = ("cancel.cause", "cancel.stack_depth", "cancel.operation")


@dataclass(frozen=True)
class SpanScope:
    """Per-scope values every span of the scope carries into its row."""

    resource_schema_url: str
    scope_schema_url: str
    scope_attributes: dict[str, str]


def rpc_status_name(span_attributes: dict[str, str]) -> str:
    """The gRPC status of a span as a name, from any of the three attribute names semconv has used.

    Numbers map to their names (4 -> DEADLINE_EXCEEDED); names are upper-cased (`canceled` accepted);
    anything else is kept as sent, so non-gRPC RPC systems keep their own codes.
    """
    for key in RPC_STATUS_ATTRIBUTES:
        value = span_attributes.get(key)
        if value is None or value == "":
            continue
        text = value.strip()
        if text.isdigit():
            code = int(text)
            return GRPC_CODES[code] if code < len(GRPC_CODES) else text
        return _GRPC_BY_NAME.get(text.upper().replace(" ", "_"), text)
    return ""


def normalize_traces(request: ExportTraceServiceRequest, ctx: Context) -> OtlpResult:
    result = OtlpResult()
    cols: dict[str, list[Any]] | None = None
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service, instance = identity(resource)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            extra = SpanScope(resource_spans.schema_url, scope_spans.schema_url,
                              attributes(scope.attributes) if scope.attributes else {})
            for span in scope_spans.spans:
                trace_id = hex_id(span.trace_id)
                span_id = hex_id(span.span_id)
                if len(trace_id) != 32 or len(span_id) != 16:
                    quarantine_message(ctx, "traces", "span needs a 16-byte trace_id and an 8-byte span_id",
                                       span, service=service, instance=instance)
                    result.rejected += 1
                    result.error_message = result.error_message or "spans with invalid ids were rejected"
                    continue
                if cols is None:
                    cols = ctx.rows.columns(TABLE, COLUMNS)
                span_attrs = attributes(span.attributes)
                _append_span(cols, span, trace_id, span_id, span_attrs, service, instance, resource,
                             scope.name, scope.version, extra)
                result.accepted += 1
                for event in span.events:
                    if event.name == CANCEL_EVENT_NAME and not _cancel_from_event(
                        event, span, trace_id, span_id, service, instance, ctx
                    ):
                        result.error_message = result.error_message or (
                            "invalid cancel-event span events were quarantined (their spans were stored)"
                        )
    return result


def _append_span(
    cols: dict[str, list[Any]], span: Span, trace_id: str, span_id: str, span_attrs: dict[str, str],
    service: str, instance: str, resource: dict[str, str], scope_name: str, scope_version: str, extra: SpanScope,
) -> None:
    start = storable_ns(span.start_time_unix_nano)
    end = storable_ns(span.end_time_unix_nano)
    kind = span.kind
    code = span.status.code
    cols["Timestamp"].append(start)
    cols["TraceId"].append(trace_id)
    cols["SpanId"].append(span_id)
    cols["ParentSpanId"].append(hex_id(span.parent_span_id))
    cols["TraceState"].append(span.trace_state)
    cols["SpanName"].append(span.name)
    cols["SpanKind"].append(SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else str(kind))
    cols["ServiceName"].append(service)
    cols["ResourceAttributes"].append(resource)
    cols["ScopeName"].append(scope_name)
    cols["ScopeVersion"].append(scope_version)
    cols["SpanAttributes"].append(span_attrs)
    cols["Duration"].append(end - start if end >= start else 0)
    cols["StatusCode"].append(STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else str(code))
    cols["StatusMessage"].append(span.status.message)
    events = span.events
    cols["Events.Timestamp"].append([storable_ns(e.time_unix_nano) for e in events])
    cols["Events.Name"].append([e.name for e in events])
    cols["Events.Attributes"].append([attributes(e.attributes) for e in events])
    links = span.links
    cols["Links.TraceId"].append([hex_id(link.trace_id) for link in links])
    cols["Links.SpanId"].append([hex_id(link.span_id) for link in links])
    cols["Links.TraceState"].append([link.trace_state for link in links])
    cols["Links.Attributes"].append([attributes(link.attributes) for link in links])
    cols["ServiceInstance"].append(instance)
    cols["RpcStatusCode"].append(rpc_status_name(span_attrs))
    cols["ResourceSchemaUrl"].append(extra.resource_schema_url)
    cols["ScopeSchemaUrl"].append(extra.scope_schema_url)
    cols["ScopeAttributes"].append(extra.scope_attributes)
    cols["SpanFlags"].append(span.flags)
    cols["DroppedAttributesCount"].append(span.dropped_attributes_count)
    cols["DroppedEventsCount"].append(span.dropped_events_count)
    cols["DroppedLinksCount"].append(span.dropped_links_count)


def _cancel_from_event(
    event: Span.Event, span: Span, trace_id: str, span_id: str, service: str, instance: str, ctx: Context
) -> bool:
    attrs = attributes(event.attributes)
    fields: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "cancel_at": event.time_unix_nano,
        "cause": attrs.get("cancel.cause"),
        "stack_depth": attrs.get("cancel.stack_depth"),
        "service": service,
        "instance": instance,
        "operation": attrs.get("cancel.operation") or span.name,
        "attributes": {k: v for k, v in attrs.items() if k not in CANCEL_ATTRIBUTES},
    }
    try:
        cancel = CancelEvent.model_validate(fields)
    except ValidationError as exc:
        quarantine_message(ctx, "traces", describe_errors(exc), event, service=service, instance=instance)
        return False
    append_cancel(ctx.rows, cancel, source=ctx.source, received_at=ctx.received_at)
    return True
