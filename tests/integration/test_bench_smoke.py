"""The benchmark harness still runs: its CLI parses, and one path stores every line of a tiny input.

No timing is asserted (speed is measured by `make bench`, not by tests); this only keeps bench/ from
rotting as the pipeline changes.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench import data
from bench.run import ROOT, run_worker

pytestmark = pytest.mark.integration


def test_bench_cli_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--full" in proc.stdout


def test_otlp_request_cpu_measures_every_part_of_the_request_path() -> None:
    """bench.otlp_request_cpu still drives the request path it measures (decode, token, mapping) on the bench's
    requests."""
    from bench.otlp_request_cpu import measure

    parts = measure(requests=2, repeats=1)
    assert set(parts) == {"decode", "dedup_token", "normalize_request", "request worker (all three)"}
    assert all(value > 0 for value in parts.values())


def test_templates_are_real_gc_lines() -> None:
    lines = data.instance_lines(5, first=10)
    assert [line.split()[1] for line in lines] == ["11", "12", "13", "14", "15"]
    assert all(" ms clock, " in line for line in lines)


def test_file_path_stores_every_line_and_reports_the_commands_phases(tmp_path: Path) -> None:
    paths = [str(p) for p in data.write_instance_files(tmp_path / "in", instances=2, lines_per_instance=1_500)]
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run_worker("file", {"dsn": f"chdb://{tmp_path / 'store'}", "paths": paths, "start_time": start,
                                 "lines": 3_000}, timeout=120)
    assert result.units == 3_000 and result.rows == 3_000
    assert result.cpu_s > 0 and result.peak_rss_mb > 0
    phases = result.extra["phases"]
    assert list(phases) == ["start-up", "ingest", "close"]
    assert phases["ingest"]["cpu_s"] > 0
    assert sum(p["cpu_s"] for p in phases.values()) == pytest.approx(result.cpu_s, abs=0.05)


def test_file_store_bare_replays_the_commands_statements(tmp_path: Path) -> None:
    """The bound row stores every line with the statements the command would issue: one per file here (1,500 clean
    lines, under a batch), on as many threads as the command would use."""
    paths = [str(p) for p in data.write_instance_files(tmp_path / "in", instances=3, lines_per_instance=1_500)]
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run_worker("file_store_bare", {"dsn": f"chdb://{tmp_path / 'store'}", "paths": paths,
                                            "start_time": start, "lines": 4_500, "jobs": 2}, timeout=120)
    assert result.rows == 4_500
    assert result.extra["statements"] == 3 and result.extra["jobs"] == 2


def test_file_store_bare_refuses_an_input_the_command_would_not_store_in_one_statement(tmp_path: Path) -> None:
    lines = data.instance_lines(1_500)
    path = tmp_path / "mixed.log"
    path.write_text("\n".join([*lines[:700], "app: listening on :8080", *lines[700:]]) + "\n", encoding="utf-8")
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(RuntimeError, match="another path"):
        run_worker("file_store_bare", {"dsn": f"chdb://{tmp_path / 'store'}", "paths": [str(path)],
                                       "start_time": start, "lines": 1_501}, timeout=120)
