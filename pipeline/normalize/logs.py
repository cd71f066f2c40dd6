"""Log lines that are not Go runtime lines -> otel_logs rows (the Collector ClickHouse exporter's layout).

Used by every transport, so a service can send its whole stderr: runtime lines become gc_events and
friends, the rest lands here, searchable next to them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.normalize.rows import Rows

TABLE = "otel_logs"
COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText", "SeverityNumber", "ServiceName", "Body",
    "ResourceSchemaUrl", "ResourceAttributes", "ScopeSchemaUrl", "ScopeName", "ScopeVersion",
    "ScopeAttributes", "LogAttributes", "EventName",
    # Fleetwatch's own column (migration 023): OTLP's observed_time_unix_nano, which the exporter drops.
    "ObservedTimestamp",
)
_EMPTY: Mapping[str, str] = {}


def append_log(
    rows: Rows,
    *,
    timestamp_ns: int,
    service: str,
    body: str,
    instance: str = "",
    severity_text: str = "",
    severity_number: int = 0,
    trace_id: str = "",
    span_id: str = "",
    trace_flags: int = 0,
    resource_attributes: Mapping[str, str] = _EMPTY,
    scope_name: str = "",
    scope_version: str = "",
    scope_attributes: Mapping[str, str] = _EMPTY,
    log_attributes: Mapping[str, str] = _EMPTY,
    event_name: str = "",
    resource_schema_url: str = "",
    scope_schema_url: str = "",
    observed_ns: int | None = None,
) -> None:
    """Append one log record; `instance` is recorded as the resource attribute service.instance.id.

    `observed_ns` is when a collector saw the record (OTLP's observed time, 0 when not sent); lines read
    from stderr are observed when they are stamped, so it defaults to `timestamp_ns`.
    """
    resource = log_resource(resource_attributes, service, instance)
    cols = rows.columns(TABLE, COLUMNS)
    cols["Timestamp"].append(timestamp_ns)
    cols["TraceId"].append(trace_id)
    cols["SpanId"].append(span_id)
    cols["TraceFlags"].append(trace_flags)
    cols["SeverityText"].append(severity_text)
    cols["SeverityNumber"].append(clamp_severity(severity_number))
    cols["ServiceName"].append(service)
    cols["Body"].append(body)
    cols["ResourceSchemaUrl"].append(resource_schema_url)
    cols["ResourceAttributes"].append(resource)
    cols["ScopeSchemaUrl"].append(scope_schema_url)
    cols["ScopeName"].append(scope_name)
    cols["ScopeVersion"].append(scope_version)
    cols["ScopeAttributes"].append(dict(scope_attributes))
    cols["LogAttributes"].append(dict(log_attributes))
    cols["EventName"].append(event_name)
    cols["ObservedTimestamp"].append(timestamp_ns if observed_ns is None else observed_ns)


def log_resource(resource_attributes: Mapping[str, str], service: str, instance: str) -> dict[str, str]:
    """The ResourceAttributes map of a row: as sent, with service.name and service.instance.id added when
    missing (`instance` is recorded as service.instance.id)."""
    resource = dict(resource_attributes)
    if instance and "service.instance.id" not in resource:
        resource["service.instance.id"] = instance
    if service and "service.name" not in resource:
        resource["service.name"] = service
    return resource


def clamp_severity(number: int) -> int:
    """OTLP enums are open: an unknown number outside the UInt8 column is stored as 0 (unspecified)."""
    return number if 0 <= number <= 255 else 0
