"""Wire contracts, validated at the edges with pydantic.

These models are what producers in other languages code against: `schemas/*.schema.json` is generated
from them (`python -m pipeline.models`), and a test keeps the published files in sync.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})$"
)
# Anything before 2000 or after 2200 is a unit mistake (seconds or milliseconds sent as nanoseconds).
_MIN_NS = 946_684_800 * 10**9
_MAX_NS = 7_258_118_400 * 10**9


class CancelCause(StrEnum):
    timeout = "timeout"
    cancelled = "cancelled"
    parent_cancelled = "parent_cancelled"


_CAUSE_ALIASES = {
    "timeout": CancelCause.timeout,
    "deadline_exceeded": CancelCause.timeout,
    "context deadline exceeded": CancelCause.timeout,
    "cancelled": CancelCause.cancelled,
    "canceled": CancelCause.cancelled,
    "context canceled": CancelCause.cancelled,
    "parent_cancelled": CancelCause.parent_cancelled,
    "parent_canceled": CancelCause.parent_cancelled,
}


# Every spelling the validator maps onto a cause (any letter case), so a schema-valid event is a valid event.
_CAUSE_SCHEMA = {
    "type": "string",
    "enum": sorted({v for alias in _CAUSE_ALIASES for v in (alias, alias.upper())}),
    "description": "timeout, cancelled or parent_cancelled; also accepted: canceled, parent_canceled, "
    "deadline_exceeded, 'context canceled', 'context deadline exceeded'",
}


def parse_timestamp_ns(value: Any) -> int:
    """Unix nanoseconds from RFC 3339 (nanosecond precision kept) or an integer of unix nanoseconds."""
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, int):
        ns = value
    elif isinstance(value, float):
        raise ValueError("give unix nanoseconds as an integer, or an RFC 3339 string")
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            ns = int(text)
        else:
            m = _RFC3339.match(text)
            if not m:
                raise ValueError(f"not RFC 3339 or unix nanoseconds: {value!r}")
            year, month, day, hour, minute, second, frac, zone = m.groups()
            tz = UTC if zone in ("Z", "z") else datetime.strptime(zone.replace(":", ""), "%z").tzinfo
            dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
            ns = int(dt.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))
    else:
        raise ValueError(f"unsupported timestamp type {type(value).__name__}")
    if not _MIN_NS <= ns <= _MAX_NS:
        raise ValueError(f"timestamp {value!r} is outside 2000..2200 (nanoseconds expected)")
    return ns


def _cause(value: Any) -> Any:
    if isinstance(value, str):
        found = _CAUSE_ALIASES.get(value.strip().lower())
        if found is None:
            raise ValueError(f"cause must be timeout, cancelled or parent_cancelled, not {value!r}")
        return found
    return value


def _lower_hex(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


# The published schema must accept what the validator accepts: the Python type is int (nanoseconds), but on
# the wire either spelling is fine, so the schema replaces pydantic's "type": "integer" outright.
TimestampNs = Annotated[
    int,
    BeforeValidator(parse_timestamp_ns),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "description": "RFC 3339, up to nanoseconds"},
                {"type": "integer", "minimum": _MIN_NS, "maximum": _MAX_NS,
                 "description": "unix time in nanoseconds"},
                {"type": "string", "pattern": "^[0-9]{19}$", "description": "unix time in nanoseconds, as text"},
            ]
        }
    ),
]


class CancelEvent(BaseModel):
    """One context cancellation observed by the CancelTrace middleware (or any producer speaking it)."""

    model_config = ConfigDict(extra="ignore", title="Fleetwatch cancel-event")

    trace_id: Annotated[str, BeforeValidator(_lower_hex)] = Field(
        description="W3C trace id: 32 hex digits, not all zero", examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
        json_schema_extra={"pattern": "^[0-9a-fA-F]{32}$"},
    )
    span_id: Annotated[str, BeforeValidator(_lower_hex)] = Field(
        description="span id of the work whose context was cancelled: 16 hex digits, not all zero",
        examples=["00f067aa0ba902b7"], json_schema_extra={"pattern": "^[0-9a-fA-F]{16}$"},
    )
    cancel_at: TimestampNs = Field(description="when the context was cancelled")
    cause: Annotated[CancelCause, BeforeValidator(_cause), WithJsonSchema(_CAUSE_SCHEMA)] = Field(
        description="timeout | cancelled | parent_cancelled; stored under these three names"
    )
    stack_depth: int = Field(ge=0, le=65535, description="goroutine stack depth when the cancel was seen")
    service: str = Field(default="", max_length=256, description="service name (else from the transport)")
    instance: str = Field(default="", max_length=256, description="instance name (else from the transport)")
    operation: str = Field(default="", max_length=512, description="route or span name, optional")
    attributes: dict[str, str] = Field(default_factory=dict, description="free-form string attributes")

    @field_validator("trace_id")
    @classmethod
    def _trace_id(cls, v: str) -> str:
        if not _HEX32.match(v) or v == "0" * 32:
            raise ValueError("trace_id must be 32 hex digits and not all zero")
        return v

    @field_validator("span_id")
    @classmethod
    def _span_id(cls, v: str) -> str:
        if not _HEX16.match(v) or v == "0" * 16:
            raise ValueError("span_id must be 16 hex digits and not all zero")
        return v

    @field_validator("attributes", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): v2 if isinstance(v2, str) else json.dumps(v2) for k, v2 in v.items()}
        return v


SCHEMAS: dict[str, type[BaseModel]] = {"cancel_event": CancelEvent}


def schema_documents() -> dict[str, str]:
    """The JSON Schema text of every published wire model, keyed by file name."""
    docs = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://fleetwatch.dev/schemas/{name}.schema.json"
        docs[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return docs


def write_schemas(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, text in schema_documents().items():
        (directory / file_name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_schemas(Path(__file__).resolve().parent.parent / "schemas")
