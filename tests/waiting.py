"""Waiting on state: every test that waits for rows, counters or health polls through this one loop."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "the condition",
             interval: float = 0.1) -> None:
    """Poll `predicate` every `interval` seconds until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
