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


def test_file_path_stores_every_line(tmp_path: Path) -> None:
    paths = [str(p) for p in data.write_instance_files(tmp_path / "in", instances=2, lines_per_instance=300)]
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run_worker("file", {"dsn": f"chdb://{tmp_path / 'store'}", "paths": paths, "start_time": start,
                                 "lines": 600}, timeout=120)
    assert result.units == 600
    assert result.rows == 600
    assert result.cpu_s > 0 and result.peak_rss_mb > 0


def test_templates_are_real_gc_lines() -> None:
    lines = data.instance_lines(5, first=10)
    assert [line.split()[1] for line in lines] == ["11", "12", "13", "14", "15"]
    assert all(" ms clock, " in line for line in lines)
