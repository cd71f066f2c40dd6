"""A real `fleetwatch run` process with its OTLP receivers, for tests that send with the official exporters.

The process gets its own embedded store path (chdb allows one path per process, and the test session
already holds another), free loopback ports, no query endpoint and no jobs. Tests read what it stored
after it has exited, through `fleetwatch sql` in a short subprocess.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.process import FleetwatchProcess


@pytest.fixture
def fleetwatch_run() -> Iterator[Any]:
    """Factory: `fleetwatch_run(env={...})` starts a process; every one started is killed at the end."""
    started: list[FleetwatchProcess] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def _start(env: dict[str, str] | None = None) -> FleetwatchProcess:
        tmp = tempfile.TemporaryDirectory(prefix="fw-otlp-", dir="/tmp")
        dirs.append(tmp)
        proc = FleetwatchProcess(Path(tmp.name), env)
        started.append(proc)
        return proc.start()

    yield _start
    for proc in started:
        proc.kill()
    for tmp in dirs:
        tmp.cleanup()
