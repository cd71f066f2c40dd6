"""The jobs that read another job's window run after it: the scheduler runs jobs in name order."""

from __future__ import annotations

from pipeline.config import load_settings
from pipeline.jobs.runner import discover_jobs


def test_readers_run_after_the_jobs_they_read() -> None:
    names = [j.name for j in discover_jobs(load_settings().sql_dir)]
    for producer, reader in (("leak_sites", "leak_trends"), ("gc_storms", "storm_sites")):
        assert names.index(producer) < names.index(reader), names
        assert f".{producer}" in (load_settings().sql_dir / "jobs" / f"{reader}.sql").read_text()
