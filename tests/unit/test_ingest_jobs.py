"""How many inputs `fleetwatch ingest gctrace` takes at once by default: one per core it may run on."""

from __future__ import annotations

import os

import pytest

from pipeline.cli import build_parser
from pipeline.sources import files


def test_default_jobs_follow_the_cpu_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert files.default_jobs() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert files.default_jobs() == files.MAX_JOBS


def test_default_jobs_without_affinity_use_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(pid: int) -> set[int]:
        raise OSError("no affinity here")

    monkeypatch.setattr(os, "sched_getaffinity", unavailable, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert files.default_jobs() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert files.default_jobs() == 4


def test_jobs_flag_is_optional_and_explicit_values_stay() -> None:
    parser = build_parser()
    assert parser.parse_args(["ingest", "gctrace", "a.log"]).jobs is None
    assert parser.parse_args(["ingest", "gctrace", "--jobs", "1", "a.log"]).jobs == 1
