"""OTLP log records -> gc_events and friends, cancel_events, or otel_logs.

A service that ships its whole stderr as log records gets its runtime lines parsed exactly as
`fleetwatch ingest gctrace` would parse them: every runtime line of one resource in one request goes
to the gctrace normalizer in a single call, in order, so a line split by application output written
into the middle of it (see docs/schema.md) can be put back together. Each record's time
(time_unix_nano, else observed_time_unix_nano, else the receive time) is that line's observed time,
which anchors the line's `@seconds`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from pydantic import ValidationError

from pipeline.models import CancelEvent
from pipeline.normalize.cancel import append_cancel, describe_errors
from pipeline.normalize.logs import append_log
from pipeline.normalize.otlp import OtlpResult, quarantine_message
from pipeline.normalize.otlp_common import (
    CANCEL_EVENT_NAME,
    Context,
    any_value_str,
    attributes,
    hex_id,
    identity,
    storable_ns,
)

# The fixed heads of runtime lines, searched anywhere in a line because log shippers prepend stamps.
# `^gc ` also catches a gc line whose number was split off by foreign output ("gc app: ...").
_RUNTIME_HEAD = re.compile(r"gc \d+ @|^gc |GC forced|scav \d|scvg|pacer: ")
# The tail of a runtime line that foreign output pushed onto a line of its own. Only believed right
# after a runtime line, because on its own such text could be anything.
_RUNTIME_TAIL = re.compile(
    r"^\d+ @\d+\.\d+s \d+%|ms clock|ms cpu|MB goal|MB stacks|MB globals|\d+ P( \(forced\))?$"
    r"|KiB work|KiB now|KiB total|% util|\(MB\)$"
)

CANCEL_KEYS = ("cancel.cause", "cancel.stack_depth", "cancel.operation", "trace_id", "span_id", "event.name")


def is_runtime_line(line: str, previous_was_runtime: bool) -> bool:
    """Whether a line belongs to the Go runtime's stderr output (gctrace, scavenger, pacer, GC forced)."""
    if _RUNTIME_HEAD.search(line):
        return True
    return previous_was_runtime and _RUNTIME_TAIL.search(line) is not None


def normalize_logs(request: ExportLogsServiceRequest, ctx: Context) -> OtlpResult:
    result = OtlpResult()
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        service, instance = identity(resource)
        lines: list[str] = []
        observed: list[int] = []
        previous_runtime = False
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            for record in scope_logs.log_records:
                result.accepted += 1
                ts = storable_ns(record.time_unix_nano) or storable_ns(record.observed_time_unix_nano) \
                    or ctx.received_ns
                record_attrs = attributes(record.attributes) if record.attributes else {}
                event_name = record.event_name or record_attrs.get("event.name", "")
                if event_name == CANCEL_EVENT_NAME:
                    previous_runtime = False
                    reason = _cancel_from_record(record, record_attrs, ts, service, instance, ctx)
                    if reason:
                        result.accepted -= 1
                        result.rejected += 1
                        result.error_message = result.error_message or reason
                    continue
                body = record.body
                if body.WhichOneof("value") == "string_value":
                    text = body.string_value
                    parts = text.split("\n") if "\n" in text else [text]
                    if len(parts) > 1 and parts[-1] == "":
                        parts.pop()
                    other: list[str] = []
                    for line in parts:
                        if is_runtime_line(line, previous_runtime):
                            lines.append(line)
                            observed.append(ts)
                            previous_runtime = True
                        else:
                            other.append(line)
                            previous_runtime = False
                    if not other:
                        continue
                    bodies = [text] if len(other) == len(parts) else other
                else:
                    previous_runtime = False
                    bodies = [any_value_str(body)]
                for text_body in bodies:
                    append_log(
                        ctx.rows,
                        timestamp_ns=ts,
                        service=service,
                        instance=instance,
                        body=text_body,
                        severity_text=record.severity_text,
                        severity_number=record.severity_number,
                        trace_id=hex_id(record.trace_id),
                        span_id=hex_id(record.span_id),
                        trace_flags=record.flags & 0xFF,
                        resource_attributes=resource,
                        scope_name=scope.name,
                        scope_version=scope.version,
                        scope_attributes=attributes(scope.attributes) if scope.attributes else {},
                        log_attributes=record_attrs,
                        event_name=event_name,
                        resource_schema_url=resource_logs.schema_url,
                        scope_schema_url=scope_logs.schema_url,
                        observed_ns=storable_ns(record.observed_time_unix_nano),
                    )
        if lines:
            # Runtime lines are counted with their records above; lines the parser rejects are reported
            # as rejected on top, so the client hears that part of what it sent was not understood.
            rejected = _runtime_lines(lines, observed, service, instance, ctx)
            if rejected:
                result.rejected += rejected
                result.error_message = result.error_message or (
                    f"{rejected} runtime line(s) could not be parsed and were quarantined"
                )
    return result


def _runtime_lines(lines: list[str], observed: list[int], service: str, instance: str, ctx: Context) -> int:
    """Hand one resource's runtime lines to the gctrace normalizer; returns how many it quarantined."""
    from pipeline.normalize.gctrace import normalize_lines

    stats = normalize_lines(
        lines,
        observed_ns=observed,
        service=service,
        instance=instance,
        source=ctx.source,
        received_at=ctx.received_at,
        rows=ctx.rows,
        quarantine=ctx.where or None,
    )
    return int(getattr(stats, "quarantined", 0) or 0)


def _cancel_from_record(
    record: LogRecord, attrs: dict[str, str], ts: int, service: str, instance: str, ctx: Context
) -> str:
    """One cancel-event log record -> a cancel_events row (returns ""), or a quarantine row (the reason)."""
    fields: dict[str, Any] = {}
    if record.body.WhichOneof("value") == "string_value" and record.body.string_value.lstrip().startswith("{"):
        # A producer may put the CancelTrace JSON itself in the body; attributes still win.
        try:
            doc = json.loads(record.body.string_value)
            if isinstance(doc, dict):
                fields.update(doc)
        except ValueError:
            pass
    elif record.body.WhichOneof("value") == "kvlist_value":
        fields.update({kv.key: any_value_str(kv.value) for kv in record.body.kvlist_value.values})
    for key in ("cause", "stack_depth", "operation"):
        if f"cancel.{key}" in attrs:
            fields[key] = attrs[f"cancel.{key}"]
    fields["trace_id"] = hex_id(record.trace_id) or attrs.get("trace_id") or fields.get("trace_id", "")
    fields["span_id"] = hex_id(record.span_id) or attrs.get("span_id") or fields.get("span_id", "")
    fields.setdefault("cancel_at", ts)
    fields["service"] = fields.get("service") or service
    fields["instance"] = fields.get("instance") or instance
    extra = {k: v for k, v in attrs.items() if k not in CANCEL_KEYS}
    if extra:
        fields["attributes"] = {**extra, **(fields.get("attributes") or {})}
    try:
        event = CancelEvent.model_validate(fields)
    except ValidationError as exc:
        reason = describe_errors(exc)
        quarantine_message(ctx, "logs", reason, record, service=service, instance=instance)
        return reason
    append_cancel(ctx.rows, event, source=ctx.source, received_at=ctx.received_at)
    return ""
