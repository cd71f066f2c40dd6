"""cancel-events (JSON object or array, as the CancelTrace middleware emits them) -> cancel_events rows.

The same row builder serves every transport: Kafka's cancel-events topic, OTLP log records with
`event.name = cancel-event`, and span events named `cancel-event`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pipeline.models import CancelEvent
from pipeline.normalize.rows import Rows

TABLE = "cancel_events"
SIGNAL = "cancel_event"

# The contract's field names (schemas/cancel_event.schema.json). Every transport also accepts them with a
# `cancel.` prefix (`cancel.cause`, `cancel.stack_depth`, `cancel.cancel_at`, ...), the OpenTelemetry
# attribute style; `cancel.at` is accepted for cancel_at. The plain name wins when both are given.
FIELDS = tuple(CancelEvent.model_fields)
_PREFIXED = {**{f"cancel.{name}": name for name in FIELDS}, "cancel.at": "cancel_at"}
# Keys that name a field of the contract (plain or prefixed): not copied into `attributes`.
FIELD_KEYS = frozenset((*FIELDS, *_PREFIXED, "event.name"))


def canonical_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`doc` with `cancel.*` spellings renamed to the contract's field names (plain names win)."""
    out = {k: v for k, v in doc.items() if k not in _PREFIXED}
    for key, name in _PREFIXED.items():
        if key in doc and name not in out:
            out[name] = doc[key]
    return out


def append_cancel(rows: Rows, event: CancelEvent, *, source: str, received_at: datetime) -> None:
    rows.append(
        TABLE,
        {
            "service": event.service,
            "instance": event.instance,
            "trace_id": event.trace_id,
            "span_id": event.span_id,
            "cancel_at": event.cancel_at,
            "cause": event.cause.value,
            "stack_depth": event.stack_depth,
            "operation": event.operation,
            "attributes": event.attributes,
            "source": source,
            "received_at": received_at,
        },
    )


def describe_errors(exc: ValidationError) -> str:
    """A one-line reason naming each bad field, for the quarantine table."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{loc}: {err['msg']}")
    return "invalid cancel-event: " + "; ".join(parts)


def normalize_cancel_payload(
    payload: bytes | str,
    *,
    rows: Rows,
    source: str,
    received_at: datetime,
    service: str = "",
    instance: str = "",
    quarantine: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """Validate one payload (an event or an array of events); returns (accepted, rejected).

    `service`/`instance` fill events that do not name their own (from Kafka headers or keys). Each invalid
    event is quarantined on its own with the reason; its valid neighbours in the same array are kept.
    `quarantine` carries transport context (topic, partition, offset, location) for rejected rows.
    """
    where = quarantine or {}
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        rows.quarantine(source=source, signal=SIGNAL, reason=f"not JSON: {exc}", raw=payload,
                        service=service, instance=instance, received_at=received_at, **where)
        return 0, 1
    items = doc if isinstance(doc, list) else [doc]
    accepted = rejected = 0
    for item in items:
        if isinstance(item, dict):
            item = canonical_fields(item)
        if not isinstance(item, dict):
            rows.quarantine(source=source, signal=SIGNAL, reason="cancel-event must be a JSON object",
                            raw=json.dumps(item), service=service, instance=instance,
                            received_at=received_at, **where)
            rejected += 1
            continue
        if service and not item.get("service"):
            item = {**item, "service": service}
        if instance and not item.get("instance"):
            item = {**item, "instance": instance}
        try:
            event = CancelEvent.model_validate(item)
        except ValidationError as exc:
            rows.quarantine(source=source, signal=SIGNAL, reason=describe_errors(exc),
                            raw=json.dumps(item, default=str), service=str(item.get("service", service)),
                            instance=str(item.get("instance", instance)), received_at=received_at, **where)
            rejected += 1
            continue
        append_cancel(rows, event, source=source, received_at=received_at)
        accepted += 1
    return accepted, rejected
