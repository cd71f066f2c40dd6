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
from bisect import bisect_right
from collections import Counter
from typing import Any, NamedTuple

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from pydantic import ValidationError

from pipeline.models import CancelEvent
from pipeline.normalize.cancel import FIELD_KEYS, append_cancel, canonical_fields, describe_errors
from pipeline.normalize.gctrace import LogHook, normalize_lines
from pipeline.normalize.lines import split_lines
from pipeline.normalize.logs import COLUMNS as LOG_COLUMNS
from pipeline.normalize.logs import TABLE as LOG_TABLE
from pipeline.normalize.logs import clamp_severity, log_resource
from pipeline.normalize.otlp_common import (
    CANCEL_EVENT_NAME,
    MAX_STORABLE_NS,
    Context,
    OtlpResult,
    any_value_str,
    attributes,
    hex_id,
    identity,
    quarantine_message,
    storable_ns,
)
from pipeline.normalize.plain_gc import GC_LINES_COLUMNS, GC_LINES_TABLE, plain_text
from pipeline.normalize.rows import WEIGHT, Rows


class _Held(NamedTuple):
    """A log record whose body went through the shared line normalizer, or is stored as it is.

    One small tuple per record, built by position in the hot loop; otel_logs rows are only assembled for
    the records that end up with application output (tests/unit/test_otlp_normalize.py checks every column
    of them, so a column added to otel_logs cannot be left short).
    """

    record: LogRecord
    scope: int  # index into the resource's scope_logs
    attrs: dict[str, str]
    event_name: str
    ts: int
    text: str  # the string body ("" when not text)
    lines: int  # how many lines it gave the normalizer; 0: not text (or blank), stored as it is
    start: int  # index of its first line in the resource's lines


_NO_ATTRS: dict[str, str] = {}
_new_held = tuple.__new__


def normalize_logs(request: ExportLogsServiceRequest, ctx: Context) -> OtlpResult:
    result = OtlpResult()
    for resource_logs in request.resource_logs:
        _resource_logs(resource_logs, ctx, result)
    return result


def _resource_logs(resource_logs: ResourceLogs, ctx: Context, result: OtlpResult) -> None:
    resource = attributes(resource_logs.resource.attributes)
    service, instance = identity(resource)
    if ctx.plain_gc and _all_plain_resource(resource_logs, service, instance, ctx, result):
        return
    # Every line of every string body of this resource, in order: the same classifier and the same repair
    # window as a file or a Kafka stream (pipeline.normalize.gctrace.REPAIR_WINDOW lines), so a runtime line
    # torn by application output is rebuilt even when its tail came records later.
    #
    # The loop below runs once per record, so it does only what every record needs: its time, its event
    # name, and its body's lines. A record keeps one `_Held` tuple; application lines are matched back to
    # their record by line index (bisect over `starts`) only when the normalizer reports one, and the
    # otel_logs rows are built only for the records that have any.
    scopes = list(resource_logs.scope_logs)
    lines: list[str] = []
    observed: list[int] = []
    held: list[_Held] = []
    starts: list[int] = []  # held[k].start, for the bisect
    whole: list[int] = []  # held records stored as they are (non-text or blank bodies)
    received_ns = ctx.received_ns
    for scope_index, scope_logs in enumerate(scopes):
        log_records = scope_logs.log_records
        result.accepted += len(log_records)
        for record in log_records:
            ts = record.time_unix_nano
            if not 0 < ts <= MAX_STORABLE_NS:
                ts = record.observed_time_unix_nano
                if not 0 < ts <= MAX_STORABLE_NS:
                    ts = received_ns
            if record.attributes:
                record_attrs = attributes(record.attributes)
                event_name = record.event_name or record_attrs.get("event.name", "")
            else:
                record_attrs = _NO_ATTRS
                event_name = record.event_name
            if event_name == CANCEL_EVENT_NAME:
                reason = _cancel_from_record(record, record_attrs, ts, service, instance, ctx)
                if reason:
                    result.accepted -= 1
                    result.rejected += 1
                    result.error_message = result.error_message or reason
                continue
            body = record.body
            start = len(lines)
            if body.WhichOneof("value") != "string_value":
                whole.append(len(held))
                held.append(_new_held(_Held, (record, scope_index, record_attrs, event_name, ts, "", 0, start)))
                starts.append(start)
                continue
            text = body.string_value
            if not text or text.isspace():
                whole.append(len(held))
                held.append(_new_held(_Held, (record, scope_index, record_attrs, event_name, ts, text, 0, start)))
                starts.append(start)
                continue
            if "\n" in text or "\r" in text:
                parts = split_lines(text)
                lines.extend(parts)
                observed.extend([ts] * len(parts))
                count = len(parts)
            else:
                lines.append(text)
                observed.append(ts)
                count = 1
            held.append(_new_held(_Held, (record, scope_index, record_attrs, event_name, ts, text, count, start)))
            starts.append(start)

    app: dict[int, list[str]] = {}

    def on_log(_rows: Rows, index: int, body: str, _ts_us: int) -> None:
        # The record that owns line `index`: the last one starting at or before it (records without lines
        # share their start with the next record, which comes later in `held`, so bisect_right finds it).
        app.setdefault(bisect_right(starts, index) - 1, []).append(body)

    # Runtime lines are counted with their records above; lines the parser rejects are reported as rejected
    # on top, so the client hears that part of what it sent was not understood.
    if not lines:
        rejected = 0
    elif ctx.plain_gc and (text := plain_text(lines)) is not None:
        # Every line a plain gc line: the reference would make one gc row of each and nothing else (no
        # application line, no repair, no quarantine), so the engine makes them (pipeline/normalize/plain_gc.py).
        _plain_gc_lines(text, observed, service, instance, ctx)
        rejected = 0
    else:
        rejected = _runtime_lines(lines, observed, service, instance, ctx, on_log)
    if app or whole:
        out: list[tuple[_Held, str]] = []
        for k in sorted({*app, *whole}):
            rec = held[k]
            if not rec.lines:  # not text, or blank: the body as sent
                body = rec.text if rec.text or rec.record.body.WhichOneof("value") == "string_value" \
                    else any_value_str(rec.record.body)
                out.append((rec, body))
                continue
            app_lines = app[k]
            if len(app_lines) == rec.lines and app_lines == split_lines(rec.text):
                out.append((rec, rec.text))  # an application record, kept whole
            else:
                out.extend((rec, body_line) for body_line in app_lines)
        _log_rows(ctx, out, scopes, service, instance, resource, resource_logs.schema_url)
    if rejected:
        result.rejected += rejected
        result.error_message = result.error_message or (
            f"{rejected} runtime line(s) could not be parsed and were quarantined"
        )


def _log_rows(
    ctx: Context, out: list[tuple[_Held, str]], scopes: list[ScopeLogs], service: str, instance: str,
    resource: dict[str, str], resource_schema_url: str,
) -> None:
    """otel_logs rows (record, body) of one resource, built column by column: what is the same for the whole
    resource or scope (resource map, scope fields and attributes) is computed once, not per row."""
    resource_map = log_resource(resource, service, instance)
    scope_fields: dict[int, tuple[str, str, dict[str, str], str]] = {}
    built: list[tuple[Any, ...]] = []
    for rec, body in out:
        fields = scope_fields.get(rec.scope)
        if fields is None:
            scope_logs = scopes[rec.scope]
            scope = scope_logs.scope
            fields = scope_fields[rec.scope] = (
                scope.name, scope.version, attributes(scope.attributes) if scope.attributes else {},
                scope_logs.schema_url,
            )
        record = rec.record
        built.append((
            rec.ts, hex_id(record.trace_id), hex_id(record.span_id), record.flags & 0xFF, record.severity_text,
            clamp_severity(record.severity_number), body, *fields, rec.attrs, rec.event_name,
            storable_ns(record.observed_time_unix_nano),
        ))
    k = len(built)
    (ts, trace_id, span_id, flags, severity_text, severity_number, bodies, scope_name, scope_version,
     scope_attrs, scope_schema_url, log_attrs, event_name, observed) = zip(*built, strict=True)
    cols = ctx.rows.columns(LOG_TABLE, LOG_COLUMNS)
    for name, values in (
        ("Timestamp", ts), ("TraceId", trace_id), ("SpanId", span_id), ("TraceFlags", flags),
        ("SeverityText", severity_text), ("SeverityNumber", severity_number), ("ServiceName", [service] * k),
        ("Body", bodies), ("ResourceSchemaUrl", [resource_schema_url] * k),
        ("ResourceAttributes", [resource_map] * k), ("ScopeSchemaUrl", scope_schema_url),
        ("ScopeName", scope_name), ("ScopeVersion", scope_version), ("ScopeAttributes", scope_attrs),
        ("LogAttributes", log_attrs), ("EventName", event_name), ("ObservedTimestamp", observed),
    ):
        cols[name].extend(values)


def _all_plain_resource(resource_logs: ResourceLogs, service: str, instance: str, ctx: Context,
                        result: OtlpResult) -> bool:
    """The common case in bulk: every record of the resource a plain gc line with its own valid time, and no
    record that could be a cancel event (no attributes, no event name). Then the lines go to the engine as they
    are, with no Python object per record beyond what reading them from upb makes (one loop over the records
    for both repeated fields; the lines checked joined, in one call), and True is returned; otherwise nothing is
    done and the per-record loop decides (it gives the same rows in this case, slower). A plain line holds no line
    break, and a body that is not a string reads as "", which is not plain."""
    texts: list[str] = []
    observed: list[int] = []
    for scope_logs in resource_logs.scope_logs:
        records = scope_logs.log_records
        scope_texts: list[str] = []
        times: list[int] = []
        text, time = scope_texts.append, times.append
        for record in records:
            text(record.body.string_value)
            time(record.time_unix_nano)
        joined = plain_text(scope_texts)
        if joined is None:
            return False
        if not (min(times) > 0 and max(times) <= MAX_STORABLE_NS):
            return False
        if not _time_and_body_only(scope_logs, scope_texts) and any(record.event_name or record.attributes
                                                                    for record in records):
            return False
        texts.append(joined)
        observed += times
    if not texts:
        return False
    result.accepted += len(observed)
    _plain_gc_lines("\n".join(texts), observed, service, instance, ctx)
    return True


def _varint_size(n: int) -> int:
    """Bytes of `n` as a protobuf varint."""
    return (max(n.bit_length(), 1) + 6) // 7


def _record_overhead(text_bytes: int) -> int:
    """Encoded bytes, beyond the text's own, of one `ScopeLogs.log_records` entry that holds only a nonzero
    `time_unix_nano` (fixed64) and a string body: the entry's tag and length, the time's 9 bytes, the body's tag and
    length, the AnyValue's string tag and length."""
    any_value = 1 + _varint_size(text_bytes) + text_bytes
    record = 9 + 1 + _varint_size(any_value) + any_value
    return 1 + _varint_size(record) + record - text_bytes


def _time_and_body_only(scope_logs: ScopeLogs, texts: list[str]) -> bool:
    """Whether every record of the scope holds nothing but its time and its string body, told from the scope's
    encoded size (one C-level call) instead of a look at each record's attributes and event name (0.9 against 0.2
    CPU us per record). Any other field, unknown fields included, makes the encoding longer than what time and body
    alone take, so equal sizes prove there is none. Called once the texts are plain gc lines (ASCII, so characters
    are bytes) and every time nonzero; False only means "look record by record"."""
    if not texts:
        return False
    # Per distinct length (a few hundred at most; Counter counts in C), so no Python step per record.
    records = sum((_record_overhead(length) + length) * count for length, count in Counter(map(len, texts)).items())
    other = 0
    if scope_logs.HasField("scope"):
        size = scope_logs.scope.ByteSize()
        other += 1 + _varint_size(size) + size
    if scope_logs.schema_url:
        size = len(scope_logs.schema_url.encode())
        other += 1 + _varint_size(size) + size
    return scope_logs.ByteSize() == other + records


def _plain_gc_lines(text: str, observed: list[int], service: str, instance: str, ctx: Context) -> None:
    """One resource's plain gc lines (joined by "\n"), with their observed times, as one row of lines for the
    engine."""
    cols = ctx.rows.columns(GC_LINES_TABLE, GC_LINES_COLUMNS)
    for name, value in (
        ("service", service), ("instance", instance), ("source", ctx.source),
        ("received_ms", int(ctx.received_at.timestamp() * 1000)), ("observed_ns", observed), ("text", text),
        (WEIGHT, len(observed)),
    ):
        cols[name].append(value)


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
