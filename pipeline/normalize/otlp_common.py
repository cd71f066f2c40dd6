"""Pieces every OTLP signal mapping shares: attribute flattening, identity, ids, the per-request context.

Attributes become `Map(String, String)` the way the Collector's ClickHouse exporter writes them, so
queries written against its tables work on ours: strings as they are, booleans `true`/`false`, numbers
in decimal, bytes in base64, arrays and key-value lists as JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from pipeline.normalize.rows import Rows

SERVICE_NAME = "service.name"
SERVICE_INSTANCE_ID = "service.instance.id"
HOST_NAME = "host.name"
PROCESS_PID = "process.pid"
UNKNOWN_SERVICE = "unknown_service"
CANCEL_EVENT_NAME = "cancel-event"

Signal = Literal["logs", "traces", "metrics"]
# The quarantine table's name for each signal.
QUARANTINE_SIGNAL = {"logs": "otlp_logs", "traces": "otlp_spans", "metrics": "otlp_metrics"}


@dataclass
class Context:
    """What a signal mapping needs besides the request: where rows go and how to label them."""

    rows: Rows
    source: str
    received_at: datetime
    # Transport context copied onto quarantine rows (location, topic, partition, offset).
    where: dict[str, Any] = field(default_factory=dict)
    # Log bodies that are all plain gc lines go to the engine as lines (pipeline/normalize/plain_gc.py), for a
    # writer whose sink stores them; off, every line goes through the Python normalizer.
    plain_gc: bool = False

    @property
    def received_ns(self) -> int:
        return int(self.received_at.timestamp()) * 1_000_000_000 + self.received_at.microsecond * 1000


def any_value_json(value: AnyValue) -> Any:
    """A JSON-able Python value for an AnyValue (used inside arrays and key-value lists)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value_json(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value_json(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def any_value_str(value: AnyValue) -> str:
    """The text form of an AnyValue, as stored in a String column or an attribute map."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return json.dumps(any_value_json(value), separators=(",", ":"), ensure_ascii=False)


def attributes(kvs: Any) -> dict[str, str]:
    """A repeated KeyValue field as a str -> str dict (later duplicates win, as in the Collector)."""
    out: dict[str, str] = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = v.string_value if v.WhichOneof("value") == "string_value" else any_value_str(v)
    return out


def attribute_lookup(kvs: Any, key: str) -> KeyValue | None:
    for kv in kvs:
        if kv.key == key:
            return kv
    return None


def identity(resource_attributes: dict[str, str]) -> tuple[str, str]:
    """(service, instance) of a resource.

    service = `service.name` (the SDK default `unknown_service...` kept as sent; absent: unknown_service).
    instance = `service.instance.id`; else `host.name:process.pid`; else `host.name`; else empty. The
    pid is part of the fallback because several processes of one service often share a host, and their
    gctrace cycle numbers would otherwise collide.
    """
    service = resource_attributes.get(SERVICE_NAME) or UNKNOWN_SERVICE
    instance = resource_attributes.get(SERVICE_INSTANCE_ID, "")
    if not instance:
        host = resource_attributes.get(HOST_NAME, "")
        pid = resource_attributes.get(PROCESS_PID, "")
        instance = f"{host}:{pid}" if host and pid else host or (f"pid:{pid}" if pid else "")
    return service, instance


# DateTime64(9) columns hold signed 64-bit nanoseconds (until 2262-04-11). OTLP times are unsigned 64-bit, so a
# larger value cannot be stored at all; such a time is treated like 0 (unknown) instead of failing the insert.
MAX_STORABLE_NS = 2**63 - 1


def storable_ns(value: int, fallback: int = 0) -> int:
    """`value` when a DateTime64(9) column can hold it, else `fallback`."""
    return value if 0 <= value <= MAX_STORABLE_NS else fallback


def hex_id(raw: bytes) -> str:
    """Trace and span ids as lowercase hex; all-zero (or absent) ids become the empty string."""
    if not raw or not any(raw):
        return ""
    return raw.hex()


@dataclass
class OtlpResult:
    """What one request produced: items stored, items quarantined, and the reason to tell the client.

    Items are log records, spans, or metric data points, as OTLP's partial_success counts them.
    """

    accepted: int = 0
    rejected: int = 0
    error_message: str = ""

    def add(self, other: OtlpResult) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        if other.error_message and not self.error_message:
            self.error_message = other.error_message


def quarantine_message(ctx: Context, signal: Signal, reason: str, item: Message, *,
                       service: str = "", instance: str = "") -> None:
    """Store one rejected OTLP item as JSON text with its reason."""
    try:
        raw = json_format.MessageToJson(item, indent=None)
    except Exception:  # a message that cannot even be printed is still recorded
        raw = binascii.hexlify(item.SerializeToString()).decode("ascii")
    ctx.rows.quarantine(source=ctx.source, signal=QUARANTINE_SIGNAL[signal], reason=reason, raw=raw,
                        service=service, instance=instance, received_at=ctx.received_at, **ctx.where)
