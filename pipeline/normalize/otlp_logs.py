"""OTLP log records -> gc_events and friends, cancel_events, or otel_logs.

A service that ships its whole stderr as log records gets its runtime lines parsed exactly as
`fleetwatch ingest gctrace` would parse them: every line of every string body of one resource in one
request goes to the gctrace normalizer in a single call, in order. That is the one line contract of every
transport: the same classifier decides what is a runtime line, and a line split by application output
written into the middle of it (docs/schema.md, "Torn lines") is put back together within the same
window, even when its tail arrives records later. Application lines keep their record's severity, ids
and attributes; a record made only of application lines is stored whole, as sent. Each record's time
(time_unix_nano, else observed_time_unix_nano, else the receive time) is that line's observed time,
which anchors the line's `@seconds`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs
from pydantic import ValidationError

from pipeline.models import CancelEvent
from pipeline.normalize.cancel import FIELD_KEYS, append_cancel, canonical_fields, describe_errors
from pipeline.normalize.gctrace import LogHook, normalize_lines
from pipeline.normalize.lines import split_lines
from pipeline.normalize.logs import append_log
from pipeline.normalize.otlp_common import (
    CANCEL_EVENT_NAME,
    Context,
    OtlpResult,
    any_value_str,
    attributes,
    hex_id,
    identity,
    quarantine_message,
    storable_ns,
)
from pipeline.normalize.rows import Rows


@dataclass(slots=True)
class _Record:
    """A string-bodied log record whose lines went through the shared line normalizer."""

    record: LogRecord
    scope: InstrumentationScope
    scope_schema_url: str
    attrs: dict[str, str]
    event_name: str
    ts: int
    text: str
    lines: int  # 0: not text (or blank), stored as it is
    app: list[str] = field(default_factory=list)


def normalize_logs(request: ExportLogsServiceRequest, ctx: Context) -> OtlpResult:
    result = OtlpResult()
    for resource_logs in request.resource_logs:
        _resource_logs(resource_logs, ctx, result)
    return result


def _resource_logs(resource_logs: ResourceLogs, ctx: Context, result: OtlpResult) -> None:
    resource = attributes(resource_logs.resource.attributes)
    service, instance = identity(resource)
    # Every line of every string body of this resource, in order: the same classifier and the same repair
    # window as a file or a Kafka stream (pipeline.normalize.gctrace.REPAIR_WINDOW lines), so a runtime line
    # torn by application output is rebuilt even when its tail came records later.
    lines: list[str] = []
    observed: list[int] = []
    owner: list[_Record] = []
    records: list[_Record] = []

    def log_row(rec: _Record, body: str) -> None:
        _append_record_log(ctx, rec, body, service, instance, resource, resource_logs.schema_url)

    for scope_logs in resource_logs.scope_logs:
        scope = scope_logs.scope
        for record in scope_logs.log_records:
            result.accepted += 1
            ts = storable_ns(record.time_unix_nano) or storable_ns(record.observed_time_unix_nano) \
                or ctx.received_ns
            record_attrs = attributes(record.attributes) if record.attributes else {}
            event_name = record.event_name or record_attrs.get("event.name", "")
            if event_name == CANCEL_EVENT_NAME:
                reason = _cancel_from_record(record, record_attrs, ts, service, instance, ctx)
                if reason:
                    result.accepted -= 1
                    result.rejected += 1
                    result.error_message = result.error_message or reason
                continue
            body = record.body
            rec = _Record(record, scope, scope_logs.schema_url, record_attrs, event_name, ts, "", 0)
            is_text = body.WhichOneof("value") == "string_value"
            records.append(rec)
            if not is_text or not body.string_value.strip():
                rec.app.append(body.string_value if is_text else any_value_str(body))
                continue
            rec.text = body.string_value
            parts = split_lines(rec.text)
            rec.lines = len(parts)
            lines.extend(parts)
            observed.extend([ts] * len(parts))
            owner.extend([rec] * len(parts))
    def on_log(_rows: Rows, index: int, body: str, _ts_us: int) -> None:
        owner[index].app.append(body)

    # Runtime lines are counted with their records above; lines the parser rejects are reported as rejected
    # on top, so the client hears that part of what it sent was not understood.
    rejected = _runtime_lines(lines, observed, service, instance, ctx, on_log) if lines else 0
    for rec in records:
        if rec.lines and len(rec.app) == rec.lines and rec.app == split_lines(rec.text):
            log_row(rec, rec.text)  # an application record, kept whole
        else:
            for body_line in rec.app:
                log_row(rec, body_line)
    if rejected:
        result.rejected += rejected
        result.error_message = result.error_message or (
            f"{rejected} runtime line(s) could not be parsed and were quarantined"
        )


def _append_record_log(
    ctx: Context, rec: _Record, body: str, service: str, instance: str, resource: dict[str, str],
    resource_schema_url: str,
) -> None:
    record, scope = rec.record, rec.scope
    append_log(
        ctx.rows,
        timestamp_ns=rec.ts,
        service=service,
        instance=instance,
        body=body,
        severity_text=record.severity_text,
        severity_number=record.severity_number,
        trace_id=hex_id(record.trace_id),
        span_id=hex_id(record.span_id),
        trace_flags=record.flags & 0xFF,
        resource_attributes=resource,
        scope_name=scope.name,
        scope_version=scope.version,
        scope_attributes=attributes(scope.attributes) if scope.attributes else {},
        log_attributes=rec.attrs,
        event_name=rec.event_name,
        resource_schema_url=resource_schema_url,
        scope_schema_url=rec.scope_schema_url,
        observed_ns=storable_ns(record.observed_time_unix_nano),
    )


def _runtime_lines(
    lines: list[str], observed: list[int], service: str, instance: str, ctx: Context, on_log: LogHook
) -> int:
    """Hand one resource's lines to the gctrace normalizer; returns how many it quarantined."""

    stats = normalize_lines(
        lines,
        observed_ns=observed,
        service=service,
        instance=instance,
        source=ctx.source,
        received_at=ctx.received_at,
        rows=ctx.rows,
        quarantine=ctx.where or None,
        on_log=on_log,
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
    # Attributes may use the contract's names or their `cancel.*` spellings (pipeline.normalize.cancel).
    named = canonical_fields(attrs)
    fields = canonical_fields(fields)
    for key in ("cause", "stack_depth", "operation", "cancel_at", "attributes"):
        if key in named:
            fields[key] = named[key]
    if isinstance(fields.get("attributes"), str):
        try:
            fields["attributes"] = json.loads(fields["attributes"])
        except ValueError:
            pass
    fields["trace_id"] = hex_id(record.trace_id) or named.get("trace_id") or fields.get("trace_id", "")
    fields["span_id"] = hex_id(record.span_id) or named.get("span_id") or fields.get("span_id", "")
    fields.setdefault("cancel_at", ts)
    fields["service"] = fields.get("service") or service
    fields["instance"] = fields.get("instance") or instance
    extra = {k: v for k, v in attrs.items() if k not in FIELD_KEYS}
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
