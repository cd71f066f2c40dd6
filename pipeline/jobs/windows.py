"""Window arithmetic for the scheduler: pure functions of times, no clock and no store.

Windows sit on a fixed grid (multiples of `window_seconds` since the epoch), so every worker and every rerun
cuts time the same way: a window is identified by its start alone, and rerunning it replaces its results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, order=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def __str__(self) -> str:
        return f"[{fmt_time(self.start)}, {fmt_time(self.end)})"


def parse_duration(text: str) -> timedelta | None:
    """`90s`, `15m`, `1h`, `2d` -> timedelta; None when `text` is not a duration."""
    match = _DURATION_RE.match(text)
    if not match:
        return None
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_time(text: str, now: datetime) -> datetime:
    """A point in time from ISO 8601 (naive means UTC) or a duration meaning "that long before `now`"."""
    delta = parse_duration(text)
    if delta is not None:
        return now - delta
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time or a duration like 15m / 1h: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def align_down(t: datetime, window_seconds: int) -> datetime:
    """The grid point at or before `t`."""
    epoch_ms = int(t.timestamp() * 1000)
    step = window_seconds * 1000
    return datetime.fromtimestamp((epoch_ms - epoch_ms % step) / 1000, tz=UTC)


def due_windows(
    watermark: datetime | None,
    now: datetime,
    *,
    window_seconds: int,
    lag_seconds: float,
    backfill_seconds: float,
    limit: int,
) -> list[Window]:
    """Whole windows that have closed (end <= now - lag) since `watermark`, oldest first, at most `limit`.

    Without a watermark (a job never ran) the first window starts `backfill_seconds` back. A watermark off
    the grid (a manual run that ended mid-window) restarts at the window containing it, so that window is
    recomputed whole.
    """
    horizon = now - timedelta(seconds=lag_seconds)
    start = watermark if watermark is not None else now - timedelta(seconds=backfill_seconds)
    start = align_down(start, window_seconds)
    step = timedelta(seconds=window_seconds)
    out: list[Window] = []
    while start + step <= horizon and len(out) < limit:
        out.append(Window(start, start + step))
        start += step
    return out


def range_windows(since: datetime, until: datetime, *, window_seconds: int) -> list[Window]:
    """Grid windows covering [since, until); the last one is cut at `until` when it is not on the grid."""
    start = align_down(since, window_seconds)
    step = timedelta(seconds=window_seconds)
    out: list[Window] = []
    while start < until:
        out.append(Window(start, min(start + step, until)))
        start += step
    return out


def fmt_time(t: datetime) -> str:
    """The text form ClickHouse parses for DateTime64(3, 'UTC') parameters."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"
