"""Which engine and system errors mean "a resource ran out" (retry later) rather than "this is wrong".

The receivers and the query endpoint answer the first kind with 503 / 429 or UNAVAILABLE /
RESOURCE_EXHAUSTED and a retry delay, so exporters keep their data; a 500 would make them drop it.
"""

from __future__ import annotations

import errno

# Texts and ClickHouse codes that mean "a resource ran out", not "this request is wrong".
# A query's own memory limit ("Query memory limit exceeded") is not among them: that query would fail again.
_EXHAUSTION_TEXT = ("too many open files", "cannot allocate memory", "memory limit (total)", "too many simultaneous",
                    "cannot schedule a task", "resource temporarily unavailable")
_EXHAUSTION_CODES = frozenset({
    173,  # CANNOT_ALLOCATE_MEMORY
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    241,  # MEMORY_LIMIT_EXCEEDED
    439,  # CANNOT_SCHEDULE_TASK
    76,   # CANNOT_OPEN_FILE (EMFILE surfaces as this)
})


def is_exhaustion(exc: BaseException | None = None, *, text: str = "", code: int | None = None) -> bool:
    """Whether a failure is a resource running out (retry later) rather than a bad request."""
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN):
        return True
    if isinstance(exc, MemoryError):
        return True
    lowered = (text or (str(exc) if exc is not None else "")).lower()
    if code in _EXHAUSTION_CODES and code not in (76, 241):
        return True
    return any(part in lowered for part in _EXHAUSTION_TEXT)


