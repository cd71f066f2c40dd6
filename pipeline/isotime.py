"""ISO 8601 times given on the command line (`--time`, `--at`) as unix nanoseconds.

One parser for every command that takes a time, so `2026-11-29T10:00:00Z`, an offset, or no zone at all
(read as UTC) mean the same thing everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso_ns(text: str, flag: str = "--time") -> int:
    """ISO 8601 -> unix ns. Raises ValueError naming `flag` with an example."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{flag} {text!r} is not an ISO 8601 time (example: 2026-11-29T10:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
